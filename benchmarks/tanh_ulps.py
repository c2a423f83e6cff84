"""Ulps between the kernel's float32 tanh and torch.tanh on every float32 input.

    python benchmarks/tanh_ulps.py          # all 2^31 non-negative inputs (~2 min)
    python benchmarks/tanh_ulps.py --all    # all 2^32 inputs, negative ones too
    python benchmarks/tanh_ulps.py --step 97

Prints the worst case and how many inputs are 0, 1 and > 1 ulp from torch. CI runs a
dense sweep of every exponent instead (tests/test_activations.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def _ordered(x: np.ndarray) -> np.ndarray:
    i = x.view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def main(argv=None) -> int:
    import torch

    from kernels.activations import tanh_f32_array_nb

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="negative inputs too")
    ap.add_argument("--step", type=int, default=1, help="every step-th bit pattern")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    stop = 1 << 32 if args.all else 1 << 31
    chunk = 1 << 24
    hist = np.zeros(3, dtype=np.int64)
    worst, worst_x = 0, 0.0
    t0 = time.perf_counter()
    for start in range(0, stop, chunk * args.step):
        bits = np.arange(start, min(stop, start + chunk * args.step), args.step, dtype=np.int64)
        x = bits.astype(np.uint32).view(np.float32)
        got = tanh_f32_array_nb(x)
        want = torch.tanh(torch.from_numpy(x)).numpy()
        nan = np.isnan(x)
        if not (np.array_equal(np.isnan(got), nan) and np.array_equal(np.isnan(want), nan)):
            print(f"NaN mismatch in the chunk from bit pattern {start:#x}")
            return 1
        d = np.abs(_ordered(got[~nan]) - _ordered(want[~nan]))
        hist += np.bincount(np.minimum(d, 2), minlength=3)
        if d.size and int(d.max()) > worst:
            k = int(np.argmax(d))
            worst, worst_x = int(d[k]), float(x[~nan][k])
    n = int(hist.sum())
    print(f"{n:,} inputs in {time.perf_counter() - t0:.0f} s: worst {worst} ulp (at x = "
          f"{worst_x!r}); 0 ulp {hist[0] / n:.4%}, 1 ulp {hist[1] / n:.4%}, > 1 ulp {hist[2]:,}")
    return 0 if worst <= 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
