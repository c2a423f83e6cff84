"""Bar-steps/s of the CPU simulation kernel on the reference workload (docs/design.md 10).

    python benchmarks/kernel_rate.py            # reference sizes
    python benchmarks/kernel_rate.py --tiny     # CI sizes
    python benchmarks/kernel_rate.py --memory   # 1000 x 8760 bars: peak RSS too
    python benchmarks/kernel_rate.py --norm     # with observation normalisation
    python benchmarks/kernel_rate.py --torch    # and torch's lockstep forward, same run
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numba  # noqa: E402
import numpy as np  # noqa: E402
from sizes import (MEMORY, REFERENCE, TINY, bar_steps, make_kernel_batch,  # noqa: E402
                   reference_policy)


def torch_lockstep_rate(sizes, threads: int = 1) -> float:
    """Bar-steps/s of the baseline the kernel must beat: all trajectories in lockstep,
    one batched torch forward (and argmax) per bar, on one thread (docs/design.md 10: two
    collapse to ~1% of the speed when other work holds a core); no accounting at all,
    so it flatters torch."""
    import torch

    torch.set_num_threads(threads)
    policy = reference_policy(sizes)
    layers = [(torch.from_numpy(w), torch.from_numpy(b)) for w, b in policy.layers]
    obs = torch.randn(sizes.n_bars, sizes.n_traj, sizes.n_inputs, dtype=torch.float32)

    def run():
        with torch.inference_mode():
            for t in range(sizes.n_bars - 1):
                h = obs[t]
                for i, (w, b) in enumerate(layers):
                    h = torch.addmm(b, h, w.T)
                    if i < len(layers) - 1:
                        h = torch.tanh(h)
                h.argmax(dim=1)

    run()
    times = []
    for _ in range(sizes.rounds):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return bar_steps(sizes) / float(np.median(times))


def main(argv: list[str]) -> None:
    sizes = TINY if "--tiny" in argv else MEMORY if "--memory" in argv else REFERENCE
    if "--norm" in argv:
        sizes = dataclasses.replace(sizes, name=sizes.name + " + obs_norm", obs_norm=True)
    batch, packed = make_kernel_batch(sizes)
    t0 = time.perf_counter()
    batch.simulate_packed(packed)  # compile or load from cache, not timed
    warm = time.perf_counter() - t0
    times, cpu = [], []
    for _ in range(sizes.rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        batch.simulate_packed(packed)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    best, median = min(times), float(np.median(times))
    steps = bar_steps(sizes)
    print(f"{sizes.name}: {sizes.n_traj} trajectories x {sizes.n_bars} bars, "
          f"{numba.get_num_threads()} threads; first call {warm:.2f} s")
    print(f"median {median:.3f} s = {steps / median:,.0f} bar-steps/s "
          f"(best {steps / best:,.0f})")
    # CPU seconds of all threads: what the kernel needs, whatever else the cores run
    print(f"per CPU-second {steps / float(np.median(cpu)):,.0f} bar-steps "
          f"(x {numba.get_num_threads()} cores if they were free)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:,.0f} MB")
    if "--torch" in argv:
        rate = torch_lockstep_rate(sizes)
        print(f"torch lockstep forward (no accounting, 1 thread): median {rate:,.0f} "
              f"bar-steps/s; kernel x {steps / median / rate:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
