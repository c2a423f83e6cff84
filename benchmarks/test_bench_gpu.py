"""The CUDA simulation kernel on the reference workload at GPU scale.

docs/design.md 10's shapes (a 2x64 tanh MLP on 16 inputs, 3 discrete actions) with
10,240 trajectories of 2,000 bars (issue 5 asks >= 100M bar-steps/s on an H100-class
GPU for 10,000+ trajectories, transfers counted apart). Skipped without a real GPU;
it has not yet run on one.

    pytest benchmarks/test_bench_gpu.py --benchmark-enable
    FOLDGATE_BENCH_TINY=1 pytest benchmarks/test_bench_gpu.py   # smoke size

The timed call is the whole `gpu_simulate` (input checks, planning, transfers,
kernel). extra_info splits it: kernel_s (launch to synchronise), h2d_s and d2h_s
(transfers), bar-steps/s of the kernel alone and of the whole call, the GPU's name,
and the CPU kernel's rate on 256 of the same trajectories in the same run, with the
speed-up of the kernel over it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sizes import KernelSizes, make_kernel_batch, tiny_requested  # noqa: E402

GPU_SIZES = KernelSizes("gpu", n_traj=10_240, n_bars=2_000, n_series=8, rounds=5)
GPU_TINY = KernelSizes("gpu-tiny", n_traj=512, n_bars=200, n_series=8, rounds=2)
CPU_SLICE = 256


def _real_gpu() -> bool:
    """cuda_available(), asked in a child process unless numba.cuda is loaded here
    already: importing it would fix this process to CUDA-or-simulator for good."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return False
    if "numba.cuda" in sys.modules:
        from kernels.gpu_simulate import cuda_available

        return cuda_available()
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run(
        [sys.executable, "-c",
         "from kernels.gpu_simulate import cuda_available; print(cuda_available())"],
        cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=300)
    return proc.stdout.strip().endswith("True")


@pytest.fixture(scope="module")
def gpu_name():
    if not _real_gpu():
        pytest.skip("no CUDA GPU here (numba-cuda finds no device or driver)")
    from kernels.gpu_simulate import device_name

    return device_name()


@pytest.mark.gpu
@pytest.mark.benchmark(group="gpu-kernel")
def test_bench_gpu_kernel(benchmark, gpu_name):
    from kernels.gpu_simulate import gpu_simulate
    from kernels.simulate import simulate

    sizes = GPU_TINY if tiny_requested() else GPU_SIZES
    _, packed = make_kernel_batch(sizes)
    arrays = packed.arrays
    first = gpu_simulate(**arrays)  # compile or load from Numba's cache: not timed

    timings = []

    def run():
        t0 = time.perf_counter()
        res = gpu_simulate(**arrays)
        timings.append(dict(res.timings, call_s=time.perf_counter() - t0))
        return res

    benchmark.pedantic(run, rounds=sizes.rounds, iterations=1)

    steps = sizes.n_traj * (sizes.n_bars - 1)
    kernel = float(np.median([t["kernel_s"] for t in timings]))
    h2d = float(np.median([t["h2d_s"] for t in timings]))
    d2h = float(np.median([t["d2h_s"] for t in timings]))
    call = float(np.median([t["call_s"] for t in timings]))

    # the CPU kernel on a slice of the same trajectories, in the same run
    n_cpu = min(CPU_SLICE, sizes.n_traj)
    cpu_sizes = KernelSizes("cpu-slice", n_traj=n_cpu, n_bars=sizes.n_bars,
                            n_series=sizes.n_series)
    _, cpu_packed = make_kernel_batch(cpu_sizes)
    simulate(**cpu_packed.arrays)  # compile or cache load
    t0 = time.perf_counter()
    simulate(**cpu_packed.arrays)
    cpu_rate = n_cpu * (sizes.n_bars - 1) / (time.perf_counter() - t0)

    benchmark.extra_info.update({
        "device": gpu_name,
        "trajectories": sizes.n_traj,
        "bars": sizes.n_bars,
        "bar_steps": steps,
        "first_call_s": first.timings["kernel_s"],
        "kernel_s": kernel,
        "h2d_s": h2d,
        "d2h_s": d2h,
        "transfer_s": h2d + d2h,
        "call_s": call,
        "bar_steps_per_s_kernel": steps / kernel,
        "bar_steps_per_s_call": steps / call,
        "cpu_bar_steps_per_s": cpu_rate,
        "speedup_kernel_vs_cpu": (steps / kernel) / cpu_rate,
        "threads_per_block": timings[-1]["threads_per_block"],
        "staged_blocks": timings[-1]["staged_blocks"],
        "blocks": timings[-1]["blocks"],
    })
    print(f"\n{gpu_name}: kernel {steps / kernel:,.0f} bar-steps/s ({kernel:.3f} s), "
          f"transfers {h2d + d2h:.3f} s, whole call {steps / call:,.0f} bar-steps/s; "
          f"CPU kernel {cpu_rate:,.0f} bar-steps/s")
