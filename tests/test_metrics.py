"""kernels/metrics.py and engine/metrics.py against tests/naive_metrics.py and scipy."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from engine.metrics import (
    EULER_GAMMA,
    METRIC_NAMES,
    SUMMARY_KEYS,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    metrics_rows,
    per_bar_sharpe,
    probabilistic_sharpe_ratio,
    trajectory_metrics,
    trajectory_returns,
    walk_forward_summary,
)
from naive_metrics import (
    naive_dsr,
    naive_psr,
    naive_returns,
    naive_trajectory_metrics,
    naive_walk_forward_summary,
)

C = 100_000.0
BPY = 8766.0


def pack(slots, trades, stats=None, capacity=None):
    """Lay out per-trajectory equity slots and trade PnLs the way simulate() does."""
    n = len(slots)
    eq_off = np.zeros(n + 1, dtype=np.int64)
    tr_off = np.zeros(n + 1, dtype=np.int64)
    for i, s in enumerate(slots):
        eq_off[i + 1] = eq_off[i] + len(s)
        cap = max(len(s) - 1, len(trades[i])) if capacity is None else capacity[i]
        tr_off[i + 1] = tr_off[i] + cap
    equity = np.concatenate([np.asarray(s, dtype=np.float64) for s in slots]) if n else np.empty(0)
    trade_float = np.zeros((int(tr_off[-1]), 4))
    n_trades = np.zeros(n, dtype=np.int64)
    for i, pnls in enumerate(trades):
        n_trades[i] = len(pnls)
        rows = slice(tr_off[i], tr_off[i] + len(pnls))
        trade_float[rows, 0] = 100.0
        trade_float[rows, 1] = 101.0
        trade_float[rows, 2] = pnls
        trade_float[rows, 3] = 0.5
    if stats is None:
        stats = np.zeros((n, 4))
    return equity, eq_off, n_trades, trade_float, tr_off, np.asarray(stats, dtype=np.float64)


def assert_metrics_match(got, i, want, rtol=1e-9):
    for name in METRIC_NAMES:
        g, w = float(got[name][i]), want[name]
        if math.isnan(w):
            assert math.isnan(g), (name, i, g, w)
        else:
            assert g == pytest.approx(w, rel=rtol, abs=1e-12), (name, i, g, w)


def random_case(rng, n_traj):
    slots, trades, stats = [], [], []
    for _ in range(n_traj):
        bars = int(rng.integers(1, 120))
        kind = rng.integers(0, 4)
        if kind == 0:  # ordinary random walk
            r = rng.normal(0.0, 0.01, bars)
        elif kind == 1:  # mostly flat with a few moves, as a sparse trader
            r = np.where(rng.random(bars) < 0.2, rng.normal(0, 0.02, bars), 0.0)
        elif kind == 2:  # heavy tails
            r = rng.standard_t(3, bars) * 0.01
        else:  # steady decline towards zero (bankrupt-ish but positive)
            r = -rng.uniform(0.2, 0.6, bars)
        eq = C * np.cumprod(1.0 + r)
        slots.append(np.concatenate([[C], eq]))
        nt = int(rng.integers(0, bars + 1))
        trades.append(rng.normal(0.0, 500.0, nt))
        stats.append([rng.integers(0, bars + 1), rng.uniform(0, 5 * C), rng.integers(0, 5),
                      rng.integers(0, 2 * bars + 1)])
    return slots, trades, stats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_matches_naive_on_random_trajectories(seed):
    rng = np.random.default_rng(seed)
    slots, trades, st = random_case(rng, 60)
    bpy = rng.uniform(1000, 9000, len(slots))
    got = trajectory_metrics(*pack(slots, trades, st), C, bpy)
    for i, (s, p, row) in enumerate(zip(slots, trades, st)):
        want = naive_trajectory_metrics(s, list(p), row[0], row[1], row[2], C, bpy[i])
        assert_metrics_match(got, i, want)


def test_edge_cases_against_naive_and_by_hand():
    flat = [C] * 11
    winners_slot = [C, C * 1.01, C * 1.02, C * 1.03]
    losers_slot = [C, C * 0.99, C * 0.98, C * 0.97]
    single_bar = [C, C * 1.05]
    bankrupt = [C, C * 0.1, C * 1e-6, C * 1e-12]
    ruined = [C, C * 0.5, 0.0, 0.0]
    negative = [C, C * 0.5, -C * 0.1, -C * 0.2]
    slots = [flat, winners_slot, losers_slot, single_bar, bankrupt, ruined, negative]
    trades = [[], [10.0, 20.0, 5.0], [-10.0, -20.0], [], [-5.0], [-1.0], [-1.0]]
    st = [[0, 0, 0, 0], [3, 3 * C, 0, 6], [3, 3 * C, 2, 4], [1, C, 0, 2], [3, C, 0, 2],
          [2, C, 0, 2], [2, C, 0, 2]]
    got = trajectory_metrics(*pack(slots, trades, st), C, BPY)
    for i, (s, p, row) in enumerate(zip(slots, trades, st)):
        want = naive_trajectory_metrics(s, p, row[0], row[1], row[2], C, BPY)
        assert_metrics_match(got, i, want)

    # flat equity, no trades
    assert got["sharpe"][0] == 0.0 and got["sortino"][0] == 0.0
    assert got["total_return"][0] == 0.0 and got["max_drawdown"][0] == 0.0
    assert math.isnan(got["win_rate"][0]) and math.isnan(got["profit_factor"][0])
    assert got["n_trades"][0] == 0 and got["gross_profit"][0] == 0 and got["gross_loss"][0] == 0
    # all winners: profit factor null, win rate 1, no downside -> sortino 0
    assert got["win_rate"][1] == 1.0 and math.isnan(got["profit_factor"][1])
    assert got["gross_profit"][1] == 35.0 and got["sortino"][1] == 0.0
    # all losers: profit factor 0, not null
    assert got["profit_factor"][2] == 0.0 and got["win_rate"][2] == 0.0
    assert got["gross_loss"][2] == 30.0 and got["clipped_shorts"][2] == 2
    assert got["exposure"][2] == 1.0 and got["turnover"][2] == 3.0 and got["bars"][2] == 3
    # one bar: one return, no Sharpe; sortino 0 (no loss)
    assert got["sharpe"][3] == 0.0 and got["total_return"][3] == pytest.approx(0.05)
    # bankrupt-ish: finite everything, drawdown just below 1
    assert np.isfinite(got["sharpe"][4]) and got["sharpe"][4] < 0
    assert got["max_drawdown"][4] == pytest.approx(1 - 1e-12)
    # ruined: returns after zero equity are undefined
    assert math.isnan(got["sharpe"][5]) and math.isnan(got["sortino"][5])
    assert got["total_return"][5] == -1.0 and got["max_drawdown"][5] == 1.0
    # negative equity: drawdown above 1, ratios undefined
    assert got["max_drawdown"][6] == pytest.approx(1.2) and math.isnan(got["sharpe"][6])


def test_drawdown_is_measured_from_capital_too():
    # The curve never exceeds C, so the peak is C, not the first close.
    slot = [C, C * 0.9, C * 0.8, C * 0.95]
    got = trajectory_metrics(*pack([slot], [[]]), C, BPY)
    assert got["max_drawdown"][0] == pytest.approx(0.2)
    slot = [C, C * 1.2, C * 0.9, C * 1.3]
    got = trajectory_metrics(*pack([slot], [[]]), C, BPY)
    assert got["max_drawdown"][0] == pytest.approx(1 - 0.9 / 1.2)


def test_constant_growth_has_zero_sharpe():
    # E_t = C * 1.375^t is exact in binary, so every return is exactly 0.375: std 0.
    slot = [C * 1.375 ** t for t in range(11)]
    rets = trajectory_returns(slot, [0, len(slot)])[0]
    assert rets.min() == rets.max() == 0.375
    got = trajectory_metrics(*pack([slot], [[]]), C, BPY)
    assert got["sharpe"][0] == 0.0 and got["sortino"][0] == 0.0
    want = naive_trajectory_metrics(slot, [], 0, 0, 0, C, BPY)
    assert want["sharpe"] == 0.0


def test_hand_computed_sharpe_and_sortino():
    slot = [100.0, 110.0, 99.0, 108.9]  # returns 0.1, -0.1, 0.1
    r = np.array([0.1, -0.1, 0.1])
    got = trajectory_metrics(*pack([slot], [[]]), 100.0, 4.0)
    assert got["sharpe"][0] == pytest.approx(r.mean() / r.std(ddof=1) * 2.0, rel=1e-12)
    assert got["sortino"][0] == pytest.approx(r.mean() / math.sqrt(0.01 / 3) * 2.0, rel=1e-12)
    assert got["total_return"][0] == pytest.approx(0.089)
    assert got["max_drawdown"][0] == pytest.approx(0.1)


def test_returns_are_views_and_match_naive():
    rng = np.random.default_rng(5)
    slots, trades, st = random_case(rng, 7)
    equity, eq_off, *_ = pack(slots, trades, st)
    rets = trajectory_returns(equity, eq_off)
    assert len(rets) == len(slots)
    base = rets[0].base
    for s, r in zip(slots, rets):
        assert r.base is base
        np.testing.assert_allclose(r, naive_returns(list(s)), rtol=1e-14)


def test_empty_run_and_scalar_or_per_trajectory_inputs():
    got = trajectory_metrics(np.empty(0), np.zeros(1, np.int64), np.empty(0, np.int64),
                             np.empty((0, 4)), np.zeros(1, np.int64), np.empty((0, 4)), C, BPY)
    assert set(got) == set(METRIC_NAMES) and all(v.shape == (0,) for v in got.values())
    slots = [[50.0, 55.0, 60.0], [200.0, 190.0, 210.0]]
    got = trajectory_metrics(*pack(slots, [[5.0], []]), [50.0, 200.0], [100.0, 400.0])
    assert got["total_return"] == pytest.approx([0.2, 0.05])


def test_wrapper_refuses_inconsistent_inputs():
    args = list(pack([[C, C], [C, C, C]], [[], [1.0]]))
    with pytest.raises(ValueError, match="capital"):
        trajectory_metrics(*args, 2 * C, BPY)
    with pytest.raises(ValueError, match="bars_per_year"):
        trajectory_metrics(*args, C, 0.0)
    bad = list(args)
    bad[1] = np.array([0, 2, 9])
    with pytest.raises(ValueError, match="traj_eq_off"):
        trajectory_metrics(*bad, C, BPY)
    bad = list(args)
    bad[2] = np.array([0, 5])
    with pytest.raises(ValueError, match="n_trades"):
        trajectory_metrics(*bad, C, BPY)
    bad = list(args)
    bad[5] = np.zeros((3, 4))
    with pytest.raises(ValueError, match="stats"):
        trajectory_metrics(*bad, C, BPY)


def test_metrics_rows():
    got = trajectory_metrics(*pack([[C, C * 1.1], [C, C]], [[3.0], []]), C, BPY)
    rows = metrics_rows(got)
    assert list(rows[0]) == list(METRIC_NAMES)
    assert isinstance(rows[0]["n_trades"], int) and rows[0]["n_trades"] == 1
    assert isinstance(rows[1]["bars"], int) and math.isnan(rows[1]["win_rate"])


# ---------------------------------------------------------------------------------
# PSR and DSR


def scipy_psr(r, sr_star=0.0):
    r = np.asarray(r, dtype=np.float64)
    sr = r.mean() / r.std(ddof=1)
    g3 = sps.skew(r)
    g4 = sps.kurtosis(r, fisher=False)
    return sps.norm.cdf((sr - sr_star) * np.sqrt(r.size - 1)
                        / np.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr ** 2))


def scipy_sr_star(trials):
    t = np.asarray(trials, dtype=np.float64)
    n = t.size
    return np.sqrt(np.var(t)) * ((1 - np.euler_gamma) * sps.norm.ppf(1 - 1 / n)
                                 + np.euler_gamma * sps.norm.ppf(1 - 1 / (n * np.e)))


@pytest.mark.parametrize("seed", range(4))
def test_psr_against_scipy_and_naive(seed):
    rng = np.random.default_rng(seed)
    r = rng.standard_t(4, int(rng.integers(20, 400))) * 0.01 + rng.normal(0, 0.002)
    if seed == 3:
        r = np.abs(r) * (rng.random(r.size) < 0.3) - 0.001  # skewed, sparse
    for bench in (0.0, 0.05, -0.02):
        want = scipy_psr(r, bench)
        assert probabilistic_sharpe_ratio(r, bench) == pytest.approx(want, rel=1e-9, abs=1e-15)
        assert naive_psr(r, bench) == pytest.approx(want, rel=1e-9, abs=1e-15)


def test_psr_normal_case_by_hand():
    # With skew 0 and raw kurtosis 3 the denominator is sqrt(1 + SR^2 / 2).
    r = np.array([0.02, -0.01, 0.0, 0.01, -0.02, 0.03, -0.03, 0.04])
    r = np.concatenate([r, -r]) + 0.005  # symmetric: skew 0
    sr = r.mean() / r.std(ddof=1)
    k = sps.kurtosis(r, fisher=False)
    z = sr * math.sqrt(r.size - 1) / math.sqrt(1 + (k - 1) / 4 * sr ** 2)
    assert probabilistic_sharpe_ratio(r) == pytest.approx(0.5 * math.erfc(-z / math.sqrt(2)))
    assert probabilistic_sharpe_ratio(r) > 0.5
    assert probabilistic_sharpe_ratio(-r) == pytest.approx(1 - probabilistic_sharpe_ratio(r))


def test_psr_degenerate_inputs_are_nan():
    assert math.isnan(probabilistic_sharpe_ratio([]))
    assert math.isnan(probabilistic_sharpe_ratio([0.01]))
    assert math.isnan(probabilistic_sharpe_ratio(np.zeros(50)))
    assert math.isnan(probabilistic_sharpe_ratio(np.full(50, 0.001)))
    assert math.isnan(probabilistic_sharpe_ratio([0.01, np.nan, 0.02]))
    assert math.isnan(per_bar_sharpe(np.zeros(3)))
    assert per_bar_sharpe([0.01, 0.03]) == pytest.approx(0.02 / np.std([0.01, 0.03], ddof=1))


@pytest.mark.parametrize("n_models", [2, 3, 10, 50])
def test_dsr_against_scipy_and_naive(n_models):
    rng = np.random.default_rng(n_models)
    r = rng.normal(0.001, 0.01, 500)
    trials = list(rng.normal(0.02, 0.03, n_models - 1)) + [per_bar_sharpe(r)]
    star = scipy_sr_star(trials)
    assert expected_max_sharpe(trials) == pytest.approx(star, rel=1e-9)
    want = scipy_psr(r, star)
    assert deflated_sharpe_ratio(r, trials) == pytest.approx(want, rel=1e-9, abs=1e-15)
    assert naive_dsr(r, trials) == pytest.approx(want, rel=1e-9, abs=1e-15)
    assert deflated_sharpe_ratio(r, trials) <= probabilistic_sharpe_ratio(r)


def test_dsr_single_model_and_equal_trials_are_psr():
    r = np.random.default_rng(9).normal(0.001, 0.01, 300)
    psr = probabilistic_sharpe_ratio(r)
    assert deflated_sharpe_ratio(r, [per_bar_sharpe(r)]) == psr  # N = 1
    assert deflated_sharpe_ratio(r, [0.1, 0.1, 0.1]) == psr  # V = 0
    assert deflated_sharpe_ratio(r, [0.1, np.nan]) == psr  # one finite SR: V = 0
    with pytest.raises(ValueError):
        deflated_sharpe_ratio(r, [])
    # An undefined trial SR still counts in N.
    t = [0.0, 0.05, 0.1]
    assert expected_max_sharpe(t + [np.nan]) == pytest.approx(
        math.sqrt(np.var(t)) * ((1 - EULER_GAMMA) * sps.norm.ppf(0.75)
                                + EULER_GAMMA * sps.norm.ppf(1 - 1 / (4 * math.e))))


# ---------------------------------------------------------------------------------
# walk-forward summary


def fold(sharpe, total_return, **extra):
    m = {name: 0.0 for name in METRIC_NAMES}
    m.update(sharpe=sharpe, total_return=total_return, **extra)
    return m


def test_seed_uniusd_example():
    """The seed prints `Sharpe Range: -3.67 to 2.36`, `Sharpe Mean: -1.18 (+/- 2.17)`,
    `Positive Folds: 2/5`. With that range and mean, a ddof-1 std can't be below 2.185,
    so the seed's 2.17 was numpy's default population std; the contract (ddof 1) gives
    sqrt(5/4) times it."""
    sharpes = [-3.67, -2.82, -1.87, 0.10, 2.36]
    returns = [-0.041, -0.022, -0.008, 0.004, 0.031]
    rng = np.random.default_rng(1)
    fold_returns = [rng.normal(0, 0.01, 253) for _ in range(5)]
    s = walk_forward_summary([fold(a, b) for a, b in zip(sharpes, returns)], fold_returns)
    assert tuple(s) == SUMMARY_KEYS
    assert f"{s['sharpe_min']:.2f} to {s['sharpe_max']:.2f}" == "-3.67 to 2.36"
    assert f"{s['sharpe_mean']:.2f}" == "-1.18"
    assert f"{np.std(sharpes):.2f}" == "2.17"
    assert s["sharpe_std"] == pytest.approx(np.std(sharpes) * math.sqrt(5 / 4))
    assert f"{s['positive_folds']}/{s['folds']}" == "2/5"
    assert s["return_min"] == -0.041 and s["return_max"] == 0.031
    assert s["return_mean"] == pytest.approx(np.mean(returns))
    assert s["psr"] == pytest.approx(scipy_psr(np.concatenate(fold_returns)), rel=1e-9)
    assert s["in_sample_folds"] == 0


def test_summary_matches_naive_and_flags_in_sample():
    rng = np.random.default_rng(3)
    metrics = [fold(float(rng.normal()), float(rng.normal(0, 0.02))) for _ in range(7)]
    fold_returns = [rng.normal(0.0005, 0.01, int(rng.integers(2, 100))) for _ in range(7)]
    flags = [True, True, False, False, False, False, False]
    got = walk_forward_summary(metrics, fold_returns, flags)
    want = naive_walk_forward_summary(metrics, fold_returns, flags)
    assert got["in_sample_folds"] == 2
    for key in SUMMARY_KEYS:
        assert got[key] == pytest.approx(want[key], rel=1e-9), key


def test_summary_degenerate_cases():
    one = walk_forward_summary([fold(1.5, 0.01)], [np.array([0.01, -0.005, 0.006])])
    assert one["folds"] == 1 and one["sharpe_std"] != one["sharpe_std"]  # NaN with one fold
    assert one["sharpe_min"] == one["sharpe_max"] == one["sharpe_mean"] == 1.5
    # JSON-cleaned metrics carry None for NaN; a ruined fold makes the Sharpe stats NaN
    s = walk_forward_summary([fold(None, -1.0), fold(0.5, 0.1)], [np.zeros(3), np.zeros(3)])
    assert math.isnan(s["sharpe_mean"]) and s["positive_folds"] == 1
    assert math.isnan(s["psr"])  # all returns 0: no Sharpe ratio to test
    zero = walk_forward_summary([fold(0.0, 0.0)] * 3, [np.zeros(4)] * 3)
    assert zero["positive_folds"] == 0 and zero["sharpe_std"] == 0.0
    with pytest.raises(ValueError):
        walk_forward_summary([], [])
    with pytest.raises(ValueError):
        walk_forward_summary([fold(0, 0)], [])
    with pytest.raises(ValueError):
        walk_forward_summary([{"sharpe": 1.0}], [np.zeros(2)])
