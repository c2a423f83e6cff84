"""Workload sizes of the kernel benchmarks, in one place.

REFERENCE is docs/design.md 10's reference workload: a 2x64 tanh MLP on 16 inputs, 3
discrete actions, 256 trajectories of 2,000 bars. TINY keeps the same shapes at a
size CI can afford; `--tiny` or FOLDGATE_BENCH_TINY=1 selects it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np


@dataclass(frozen=True)
class KernelSizes:
    name: str
    n_traj: int = 256
    n_bars: int = 2000
    n_inputs: int = 16
    hidden: tuple[int, ...] = (64, 64)
    n_actions: int = 3
    n_series: int = 8  # trajectories share series, as folds of a few symbols do
    rounds: int = 5
    obs_norm: bool = False  # VecNormalize statistics, as most SB3 policies carry


REFERENCE = KernelSizes("reference")
TINY = KernelSizes("tiny", n_traj=8, n_bars=200, n_series=2, rounds=2)
MEMORY = KernelSizes("memory", n_traj=1000, n_bars=8760, n_series=4, rounds=1)


def tiny_requested() -> bool:
    return os.environ.get("FOLDGATE_BENCH_TINY", "") not in ("", "0")


def reference_policy(sizes: KernelSizes, seed: int = 7, activation: str = "tanh"):
    """A stand-in with the fields of engine.policy.Policy the packer reads."""
    rng = np.random.default_rng(seed)
    dims = [sizes.n_inputs, *sizes.hidden, sizes.n_actions]
    layers = [((rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32),
               (0.1 * rng.standard_normal(o)).astype(np.float32))
              for i, o in zip(dims[:-1], dims[1:])]
    return SimpleNamespace(
        features=[f"ret_{k}" for k in range(1, sizes.n_inputs + 1)], window=1,
        state_features=[],
        obs_norm=SimpleNamespace(mean=0.1 * rng.standard_normal(sizes.n_inputs),
                                 var=rng.uniform(0.5, 2.0, sizes.n_inputs), epsilon=1e-8,
                                 clip=10.0) if sizes.obs_norm else None,
        layers=layers, activation=activation,
        action_kind="discrete", targets=np.array([-1.0, 0.0, 1.0]), low=-1.0, high=1.0,
        obs_dim=sizes.n_inputs)


def make_kernel_batch(sizes: KernelSizes, seed: int = 7, fill_mode: int = 0):
    """(Batch, PackedBatch) of `sizes`: random-walk prices, standard-normal features."""
    from engine.batch import Batch

    rng = np.random.default_rng(seed)
    policy = reference_policy(sizes, seed)
    batch = Batch(fill_mode=fill_mode)
    series = []
    for _ in range(sizes.n_series):
        close = 100.0 * np.exp(np.cumsum(0.01 * rng.standard_normal(sizes.n_bars)))
        open_ = close * np.exp(0.002 * rng.standard_normal(sizes.n_bars))
        feats = rng.standard_normal((sizes.n_bars, sizes.n_inputs))
        sid = batch.add_series(open_, close, feats, policy.features)
        series.append((sid, batch.add_model(policy, sid)))
    for i in range(sizes.n_traj):
        sid, mid = series[i % len(series)]
        batch.add_trajectory(mid, sid, 0, sizes.n_bars, capital=100_000.0, commission=0.001,
                             slippage=0.0005, long_only=False)
    return batch, batch.pack()


def bar_steps(sizes: KernelSizes) -> int:
    """Policy forwards per call: every bar of every trajectory but its last."""
    return sizes.n_traj * (sizes.n_bars - 1)
