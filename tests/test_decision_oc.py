"""benchmarks/decision_oc.py: its fast path (sufficient statistics) agrees with full bar
paths run through foldgate's own per-fold metrics, evidence_summary, walk_forward_summary,
decide_evidence and decide_seed; and the tiny CI mode of the operating characteristic."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import decision_oc as oc  # noqa: E402
from engine.decision import DECISIONS, decide_evidence, decide_seed  # noqa: E402
from engine.metrics import evidence_summary, trajectory_metrics, trajectory_returns, walk_forward_summary  # noqa: E402

C = 100_000.0


def full_path(w, z, sharpe):
    """One model's folds as foldgate sees them: equity curves from r = s (z + c), fold
    metrics from the kernel, stitched returns from the equity."""
    r = w.vol * (z + sharpe / math.sqrt(w.bpy))
    slots, start = [], 0
    for m in w.lengths:
        slots.append(np.concatenate([[C], C * np.cumprod(1.0 + r[start:start + m])]))
        start += m
    off = np.concatenate([[0], np.cumsum([len(s) for s in slots])]).astype(np.int64)
    equity = np.concatenate(slots)
    k = len(slots)
    metrics = trajectory_metrics(equity, off, np.zeros(k, np.int64), np.zeros((k, 4)),
                                 np.arange(k + 1, dtype=np.int64) * 0, np.zeros((k, 4)), C, w.bpy)
    fold_metrics = [{name: float(metrics[name][i]) for name in metrics} for i in range(k)]
    fold_returns = trajectory_returns(equity, off)
    return fold_metrics, fold_returns


@pytest.mark.parametrize("rho", [0.0, 0.3, -0.3])
def test_fast_path_equals_full_bar_paths(rho):
    wins = [oc.make_window("stock", 180, 5), oc.make_window("crypto", 180, 5), oc.make_window("stock", 365, 10)]
    models, first = 24, 1000
    fsum, cross, head, tail = oc.simulate(7, first, models, rho, wins)
    wins_sorted = sorted(wins, key=lambda w: w.n)
    z_all = oc.paths(7, range(first, first + models), wins_sorted[-1].n, rho)
    for wi, w in enumerate(wins_sorted):
        st = oc.chunk_stats(w, wi, fsum, cross, head, tail)
        for sharpe in (0.0, 2.0, 3.0):
            fast = oc.evidence_arrays(w, st, sharpe)
            ev_codes, seed_codes = oc.verdicts(w, st, sharpe)
            for i in range(models):
                fm, fr = full_path(w, z_all[i, :w.n], sharpe)
                stitched = np.concatenate(fr)
                e = evidence_summary(stitched, [len(x) for x in fr], w.bpy)
                positive = sum(m["total_return"] > 0 for m in fm)
                for key in ("sr", "q", "se", "psr0", "psr_hurdle", "cochran_p"):
                    assert fast[key][i] == pytest.approx(e[key], rel=1e-6, abs=1e-12), (w.label, sharpe, key)
                assert fast["positive"][i] == positive
                assert np.allclose(fast["fold_sharpe"][i], [m["sharpe"] for m in fm], rtol=1e-6)
                assert np.allclose(fast["fold_return"][i], [m["total_return"] for m in fm], rtol=0, atol=1e-7)  # 4th-order log growth
                assert DECISIONS[ev_codes[i]] == decide_evidence(e, positive, None)[0]
                summary = walk_forward_summary(fm, fr)
                assert DECISIONS[seed_codes[i]] == decide_seed(summary, None)[0]


def test_paths_are_stationary_with_the_asked_autocorrelation():
    z = oc.paths(3, range(4), 50_000, 0.3)
    assert abs(z.mean()) < 0.02
    assert z.std() == pytest.approx(1.0, abs=0.02)
    rho1 = np.mean([np.corrcoef(x[:-1], x[1:])[0, 1] for x in z])
    assert rho1 == pytest.approx(0.3, abs=0.01)
    # different models, different paths; the same model, the same path
    assert not np.allclose(z[0], z[1])
    assert np.array_equal(oc.paths(3, [2], 100, 0.3)[0], z[2, :100])


def test_bound_is_the_most_powerful_test():
    w = oc.make_window("crypto", 365, 10)
    years = w.n / w.bpy
    assert oc.bound(w, 0.0, 0.0) == pytest.approx(0.05, abs=1e-12)
    from scipy.stats import norm

    assert oc.bound(w, 2.0, 0.0) == pytest.approx(norm.cdf(2 * math.sqrt(years) - norm.ppf(0.95)))
    assert oc.bound(w, 2.0, 0.3) == pytest.approx(norm.cdf(2 * math.sqrt(years / (1.3 / 0.7)) - norm.ppf(0.95)))


def test_windows_are_cut_as_foldgate_cuts_them():
    w = oc.make_window("crypto", 180, 5)
    assert w.n == 180 * 24 and w.lengths == (864,) * 5
    s = oc.make_window("stock", 365, 10)
    assert 1630 <= s.n <= 1645 and s.lengths[-1] >= s.lengths[0]
    assert s.bpy == pytest.approx(1638, rel=0.01)


def test_check_targets_flags_each_side():
    row = {"process": "iid", "window": "w", "sharpe": 0.0, "bound": 0.05, "evidence_LIVE": 0.06}
    assert oc.check_targets([row]) == []
    assert oc.check_targets([{**row, "evidence_LIVE": 0.0601}])
    row2 = {**row, "sharpe": 2.0, "bound": 0.40, "evidence_LIVE": 0.37}
    assert oc.check_targets([row2]) == []
    assert oc.check_targets([{**row2, "evidence_LIVE": 0.369}])


def test_tiny_ci_mode_zero_edge_live_share():
    """>= 20,000 zero-edge models: the evidence profile grants LIVE to at most 8%."""
    wins = [oc.make_window("stock", 180, 5)]
    rows = oc.run(20_000, seed=11, chunk=20_000, windows=wins,
                  processes={"iid": 0.0, "AR(1) +0.3": 0.3}, sharpes=(0.0,), seed_profile=False)
    assert len(rows) == 2
    for r in rows:
        assert r["models"] == 20_000
        assert r["evidence_LIVE"] <= 0.08, r
        assert sum(r[f"evidence_{d}"] for d in DECISIONS) == pytest.approx(1.0)
        # a zero-edge model is DROP about as often as LIVE: PSR(0) <= 0.05 is the mirror test
        assert 0.02 < r["evidence_DROP"] < 0.08
