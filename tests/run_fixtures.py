"""Shared by the run tests: a random Batch of several series, models and fold
lengths, and a bit-for-bit comparison of per-trajectory results."""

from __future__ import annotations

import numpy as np

from engine.batch import Batch
from test_simulate import make_policy, make_series


def random_batch(seed=0, n_series=3, n_policies=4, bars=240, commission=0.001):
    rng = np.random.default_rng(seed)
    names = ["f0", "f1", "f2"]
    batch = Batch(fill_mode=int(rng.integers(0, 2)))
    sids = [batch.add_series(*make_series(rng, bars, names), names) for _ in range(n_series)]
    for k in range(n_policies):
        pol = make_policy(rng, hidden=(8,) if k % 2 else (6, 5), window=1 + k % 2,
                          state=("position", "unrealized_return")[: k % 3],
                          activation=("tanh", "relu")[k % 2], norm=bool(k % 2))
        for s in sids:
            mid = batch.add_model(pol, s)
            cuts = np.sort(rng.choice(np.arange(4, bars - 1), size=3, replace=False))
            for a, e in zip((3, *cuts), (*cuts, bars)):
                batch.add_trajectory(mid, s, int(a), int(e), capital=1e4 * (1 + k),
                                     commission=commission, slippage=0.0005,
                                     long_only=bool((k + s) % 2))
    return batch


def _floats(values) -> bytes:
    return np.array(values, dtype=np.float64).tobytes()


def assert_identical(got: list[dict], want: list[dict]):
    """Same trajectories, same values bit for bit (NaN included)."""
    assert [g["trajectory"] for g in got] == [w["trajectory"] for w in want]
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        for name in ("equity", "returns", "trade_int", "trade_float"):
            a, b = np.asarray(g[name]), np.asarray(w[name])
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name
        assert [t[:3] for t in g["trades"]] == [t[:3] for t in w["trades"]]
        assert _floats([t[3:] for t in g["trades"]]) == _floats([t[3:] for t in w["trades"]])
        assert g["stats"] == w["stats"]
        if "metrics" in w:
            assert g["metrics"].keys() == w["metrics"].keys()
            assert _floats(list(g["metrics"].values())) == _floats(list(w["metrics"].values()))
