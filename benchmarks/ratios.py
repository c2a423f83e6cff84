"""Print (or write) a markdown table of bar-steps/s and ratios for the reference workload:
foldgate's kernel vs a per-step torch loop at batch 1 vs torch in lockstep, all measured
in this one process on this machine.

    python benchmarks/ratios.py                 # the reference workload of docs/design.md 10
    python benchmarks/ratios.py --tiny          # a few trajectories (CI keeps it working)
    python benchmarks/ratios.py --out perf.md   # also write the table to a file
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.atomic import atomic_write_text  # noqa: E402
from engine.bench import BenchConfig, run_bench  # noqa: E402

LABELS = {
    "foldgate_cpu": "foldgate, Numba CPU kernel, all trajectories in one call",
    "foldgate_cuda": "foldgate, Numba CUDA kernel",
    "torch_batch1": "torch, batch 1, one step at a time (the seed's loop)",
    "torch_lockstep": "torch, all trajectories in lockstep, one batched forward per bar (1 thread)",
}


def markdown(result: dict) -> str:
    w, m = result["workload"], result["machine"]
    lines = [
        f"Reference workload: {w['trajectories']} trajectories x {w['bars']} bars, "
        f"{w['inputs']}-{'-'.join(map(str, w['hidden']))}-{w['actions']} {w['activation']} MLP.",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; "
        f"numba {result['versions']['numba']}, torch {result['versions']['torch']}.",
        "",
        "| engine | bar-steps/s | seconds | vs torch batch 1 | vs torch lockstep |",
        "|---|---:|---:|---:|---:|",
    ]
    res = result["results"]
    lock = res.get("torch_lockstep", {}).get("bar_steps_per_s")
    for name, r in res.items():
        ratio1 = r.get("vs_torch_batch1")
        ratio2 = r["bar_steps_per_s"] / lock if lock else None
        lines.append(f"| {LABELS.get(name, name)} | {r['bar_steps_per_s']:,.0f} | {r['seconds']:.4f} | "
                     f"{'-' if ratio1 is None else f'{ratio1:.1f}x'} | {'-' if ratio2 is None else f'{ratio2:.2f}x'} |")
    cpu = res.get("foldgate_cpu", {})
    if cpu.get("bar_steps_per_cpu_s"):
        lines.append("")
        lines.append(f"foldgate's kernel ran on {cpu['threads']} threads at "
                     f"{cpu['bar_steps_per_cpu_s']:,.0f} bar-steps per CPU-second (all threads): "
                     "the rate two free cores would give is twice that; on a shared machine "
                     "the wall-clock rates above swing with the load.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    cfg = BenchConfig.tiny() if args.tiny else BenchConfig()
    table = markdown(run_bench(cfg, device=args.device))
    print(table)
    if args.out:
        atomic_write_text(args.out, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
