"""The CPU simulation kernel on the reference workload of docs/design.md 10 (2x64 tanh MLP,
16 inputs, 3 discrete actions, 256 trajectories x 2,000 bars), plus variants.

    pytest benchmarks/test_bench_kernel.py --benchmark-enable
    pytest benchmarks/test_bench_kernel.py --tiny          # CI: tiny sizes, run once

JIT compile (or cache load) happens in the fixtures, never inside the timed calls.
extra_info carries bar_steps_per_s (bar-steps = policy forwards = trajectories x
(bars - 1)).
"""

from __future__ import annotations

import dataclasses
import tracemalloc

import pytest

from sizes import MEMORY, REFERENCE, TINY, bar_steps, make_kernel_batch, tiny_requested

SIZES = TINY if tiny_requested() else REFERENCE

WORKLOADS = {
    "reference": dict(sizes=SIZES, fill_mode=0),
    "fill-close": dict(sizes=SIZES, fill_mode=1),
    "relu": dict(sizes=dataclasses.replace(SIZES, name=SIZES.name + "-relu"), fill_mode=0,
                 activation="relu"),
}


def _prepared(sizes, fill_mode=0, activation="tanh"):
    batch, packed = make_kernel_batch(sizes, fill_mode=fill_mode)
    if activation != "tanh":
        for policy, _ in batch.models:
            policy.activation = activation
        packed = batch.pack()
    batch.simulate_packed(packed)  # compile or load from cache: not timed
    return batch, packed


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_bench_kernel(benchmark, name):
    spec = dict(WORKLOADS[name])
    sizes = spec.pop("sizes")
    batch, packed = _prepared(sizes, **spec)
    benchmark.group = f"kernel-{name}"
    result = benchmark.pedantic(batch.simulate_packed, args=(packed,), rounds=sizes.rounds,
                                iterations=1)
    steps = bar_steps(sizes)
    benchmark.extra_info["bar_steps"] = steps
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["bar_steps_per_s"] = steps / stats.stats.median
    assert result.n_trades.sum() > 0
    assert result.equity.shape[0] == sizes.n_traj * (sizes.n_bars + 1)


def test_bench_kernel_memory(benchmark):
    """1,000 trajectories x 8,760 bars (a year of hourly bars each) stay under 2 GB:
    outputs are allocated once by the driver; the kernel's scratch is per trajectory."""
    sizes = TINY if tiny_requested() else MEMORY
    batch, packed = make_kernel_batch(sizes)
    benchmark.group = "kernel-memory"
    tracemalloc.start()
    try:
        result = benchmark.pedantic(batch.simulate_packed, args=(packed,), rounds=1,
                                    iterations=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    benchmark.extra_info["peak_mb_during_call"] = peak / 2**20
    assert peak < 2 * 2**30
    assert result.n_trades.shape == (sizes.n_traj,)
