"""Time `foldgate validate` of a large archive (1,000 models by default): wall time, the
kernel's share of it (docs/design.md 10 asks >= 50%), peak RSS, report sizes.

    python benchmarks/bulk_validate.py                    # 1,000 models, 180 days, 5 folds
    python benchmarks/bulk_validate.py --models 200 -- --executor ray
    python benchmarks/bulk_validate.py --policies reference   # every model 2x64 tanh
    python benchmarks/bulk_validate.py --policies reference --checkpoints-per-symbol 20
                                                          # 50 symbols x 20 checkpoints
    python benchmarks/bulk_validate.py --tiny             # seconds: what CI runs

Each model is a sample policy on its own symbol (the shipped sample series reused
under 1,000 names; the sample recipes in turn, or with `--policies reference` every
one in the reference workload's shape, the size of a default PPO policy), gated APPROVED, so every one is backtested and walked forward;
with `--stress` support in validate, every fold runs in its 4 scenarios. The archive
and store are built once per --workdir and reused. The command runs once to warm the
Numba and policy caches, then once measured in a child process: wall time around it,
peak RSS as that child's own VmHWM (Linux; its rusage elsewhere; with --executor ray
the driver's alone), and the kernel's seconds from the
run directory's index (the sum over chunks of the time inside the simulation call).
Arguments after `--` go to `foldgate validate` as they are."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

WARMUP_DAYS = 15  # bars kept before the window for the sample policies' features


# --policies: the shipped sample recipes in turn (small networks: 16-32 units, 3-16
# inputs), or every model in the reference shape of docs/design.md 10 (a 2x64 tanh MLP
# on 16 inputs, 3 actions; also stable-baselines3's default PPO policy network)
RECIPES = {"sample": None, "reference": "reference_random"}


def build(workdir: Path, models: int, days: int, quick_days: int,
          policies: str = "sample", per_symbol: int = 1) -> tuple[Path, Path]:
    """The archive and store, built once per (models, days, policies, per_symbol) and reused."""
    from workloads import make_checkpoint_workload, make_validate_workload

    keep = days + WARMUP_DAYS
    marker = workdir / "workload.json"
    spec = {"models": models, "bar_days": keep}
    if policies != "sample":  # the keys the sample workload always had
        spec["policies"] = policies
    if per_symbol != 1:
        spec["per_symbol"] = per_symbol
    if marker.exists() and json.loads(marker.read_text()).get("spec") == spec:
        info = json.loads(marker.read_text())
        return Path(info["archive"]), Path(info["store"])
    shutil.rmtree(workdir / "w", ignore_errors=True)
    (workdir / "w").mkdir(parents=True)
    if per_symbol == 1:
        archive, store = make_validate_workload(workdir / "w", n_symbols=models, days=keep,
                                                recipe=RECIPES[policies])
    else:
        archive, store = make_checkpoint_workload(workdir / "w", n_symbols=models // per_symbol,
                                                  per_symbol=per_symbol, days=keep, recipe=RECIPES[policies])
    marker.write_text(json.dumps({"spec": spec, "archive": str(archive), "store": str(store)}))
    return archive, store


def validate_supports(flag: str, env: dict) -> bool:
    out = subprocess.run([sys.executable, "-m", "cli.main", "validate", "--help"], cwd=ROOT,
                         env=env, capture_output=True, text=True)
    return flag in out.stdout


# The child reports its own peak RSS (VmHWM) at exit: Linux carries a forking parent's
# peak into the child's ru_maxrss, so wait4's figure can be this script's, not foldgate's.
_CHILD = ("import atexit, os, sys\n"
          "def _hwm():\n"
          "    with open('/proc/self/status') as f:\n"
          "        kb = next(int(l.split()[1]) for l in f if l.startswith('VmHWM:'))\n"
          "    with open(os.environ['FOLDGATE_BENCH_HWM'], 'w') as out:\n"
          "        out.write(str(kb))\n"
          "if os.path.exists('/proc/self/status'):\n"
          "    atexit.register(_hwm)\n"
          "sys.argv = ['foldgate'] + sys.argv[1:]\n"
          "from cli.main import main\n"
          "main()\n")


def run_child(args: list[str], env: dict, log: Path) -> dict:
    """`foldgate ARGS` in a child process: wall time, exit status, output, peak RSS."""
    hwm = log.with_suffix(".hwm")
    hwm.unlink(missing_ok=True)
    env = dict(env, FOLDGATE_BENCH_HWM=str(hwm))
    with open(log.with_suffix(".out"), "w+") as out, open(log.with_suffix(".err"), "w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, *args], cwd=ROOT, env=env,
                                stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        peak_kb = int(hwm.read_text()) if hwm.exists() else usage.ru_maxrss
        return {"rc": proc.returncode, "wall_s": wall, "stdout": out.read(), "stderr": err.read(),
                "peak_rss_mb": peak_kb / 1024.0}


def kernel_seconds(out_dir: Path) -> tuple[float | None, int | None]:
    """Seconds inside the kernel and the trajectories simulated (buy-and-hold ones
    included), from the run directory's index and manifest; None without them."""
    # builds before the per-trajectory fill mode ran --stress's delay scenario as a run
    # of its own in run/fill_late/: counted when it is there
    runs = [d for d in (out_dir / "run", out_dir / "run" / "fill_late") if (d / "index.json").exists()]
    if not runs:
        return None, None
    kernel, n = 0.0, 0
    for d in runs:
        chunks = json.loads((d / "index.json").read_text()).get("chunks", {})
        kernel += float(sum(c.get("kernel_s", 0.0) for c in chunks.values()))
        manifest = d / "manifest.json"
        n += (json.loads(manifest.read_text()).get("n_trajectories") or 0) if manifest.exists() else 0
    return kernel, n or None


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--quick-days", type=int, default=30)
    ap.add_argument("--policies", choices=sorted(RECIPES), default="sample",
                    help="sample: the sample recipes in turn; reference: every model a 2x64 "
                         "tanh MLP on 16 inputs (docs/design.md 10)")
    ap.add_argument("--checkpoints-per-symbol", type=int, default=1, metavar="K",
                    help="K checkpoints per symbol, validated with --checkpoints all (models / K "
                         "symbols, each symbol's checkpoints its variants); default 1: a symbol per model")
    ap.add_argument("--workdir", default=None,
                    help="default: /tmp/foldgate-bulk-<models>[-reference]")
    ap.add_argument("--tiny", action="store_true", help="6 models, 40 days, 3 folds, no warm-up")
    ap.add_argument("--no-warmup", action="store_true")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)
    if args.tiny:
        args.models, args.days, args.folds, args.quick_days = 6, 40, 3, 10
        args.no_warmup = True
    if args.checkpoints_per_symbol < 1 or args.models % args.checkpoints_per_symbol:
        ap.error("--models must be a multiple of --checkpoints-per-symbol")
    suffix = ("" if args.policies == "sample" else f"-{args.policies}") + (
        "" if args.checkpoints_per_symbol == 1 else f"-ck{args.checkpoints_per_symbol}")
    workdir = Path(args.workdir or f"/tmp/foldgate-bulk-{args.models}{suffix}")
    workdir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    archive, store = build(workdir, args.models, args.days, args.quick_days, args.policies,
                           args.checkpoints_per_symbol)
    build_s = time.perf_counter() - t0

    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("FOLDGATE_CACHE_DIR", str(workdir / "policy-cache"))
    stress = validate_supports("--stress", env)
    scenarios = 4 if stress else 1

    def command(out: Path) -> list[str]:
        cmd = ["validate", str(archive), "--store", str(store),
               "--days", str(args.days), "--walk-forward", str(args.folds),
               "--quick-days", str(args.quick_days), "--dest", str(workdir / "extracts"),
               "--out", str(out)]
        every = ["--checkpoints", "all"] if args.checkpoints_per_symbol > 1 else []
        return cmd + (["--stress"] if stress else []) + every + extra

    if not args.no_warmup:
        shutil.rmtree(workdir / "warm", ignore_errors=True)
        warm = run_child(command(workdir / "warm"), env, workdir / "warm")
        if warm["rc"] not in (0, 1):
            sys.stderr.write(warm["stderr"][-3000:])
            raise SystemExit(f"warm-up run failed with exit status {warm['rc']}")
    out_dir = workdir / "out"
    shutil.rmtree(out_dir, ignore_errors=True)
    res = run_child(command(out_dir), env, workdir / "measured")
    if res["rc"] not in (0, 1):  # 1: some model failed, reports still written
        sys.stderr.write(res["stderr"][-3000:])
        raise SystemExit(f"validate failed with exit status {res['rc']}")
    kernel_s, simulated = kernel_seconds(out_dir)
    sizes = {name: (out_dir / name).stat().st_size / 1e6
             for name in ("report.json", "report.html") if (out_dir / name).exists()}
    trajectories = args.models * (args.folds + (1 if args.quick_days else 0)) * scenarios
    figures = {
        "models": args.models, "policies": args.policies,
        "symbols": args.models // args.checkpoints_per_symbol, "days": args.days, "folds": args.folds, "scenarios": scenarios,
        "trajectories": trajectories, "simulated_trajectories": simulated, "wall_s": round(res["wall_s"], 3),
        "kernel_s": None if kernel_s is None else round(kernel_s, 3),
        "kernel_share": None if kernel_s is None else round(kernel_s / res["wall_s"], 4),
        "peak_rss_mb": round(res["peak_rss_mb"], 1), "exit_status": res["rc"],
        "report_json_mb": round(sizes.get("report.json", 0.0), 2),
        "report_html_mb": round(sizes.get("report.html", 0.0), 2),
        "build_s": round(build_s, 1), "extra_args": extra,
    }
    share = ("n/a (no run directory)" if kernel_s is None
             else f"{kernel_s:.2f} s = {100 * kernel_s / res['wall_s']:.1f}% of wall")
    print(f"foldgate validate: {args.models} {args.policies} models"
          f" ({args.models // args.checkpoints_per_symbol} symbols) x {args.folds} folds x {scenarios} "
          f"scenario{'s' if scenarios > 1 else ''}{' (no --stress in this build)' if not stress else ''}"
          f", {args.days} days, {trajectories:,} trajectories"
          + (f" ({simulated:,} simulated with buy-and-hold)" if simulated else ""))
    print(f"  wall time     {res['wall_s']:.2f} s (warm caches; exit status {res['rc']})")
    print(f"  kernel        {share}")
    print(f"  peak RSS      {res['peak_rss_mb']:.0f} MB")
    print(f"  reports       JSON {figures['report_json_mb']:.1f} MB, HTML {figures['report_html_mb']:.1f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
    return figures


if __name__ == "__main__":
    main()
