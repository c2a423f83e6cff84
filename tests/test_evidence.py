"""engine.metrics.evidence (docs/design.md 6.1) against the plain references in naive_metrics."""

import math

import numpy as np
import pytest

from engine.metrics import (
    apply_variants,
    benjamini_hochberg,
    best_variant,
    evidence_summary,
    is_buy_and_hold_like,
    symbol_pvalue,
)
from engine.metrics.evidence import EVIDENCE_KEYS, EXTRA_KEYS, bartlett_q, cochran
from kernels.metrics import autocovariances
from naive_metrics import (
    naive_autocovariance,
    naive_bh,
    naive_dsr_variants,
    naive_evidence,
    naive_q,
)

BPY = 8766.0


def ar1(rng, n, rho, mu=0.0, sigma=0.01):
    e = rng.normal(size=n)
    z = np.empty(n)
    z[0] = e[0]
    for t in range(1, n):
        z[t] = rho * z[t - 1] + math.sqrt(1 - rho * rho) * e[t]
    return mu + sigma * z


def series(kind, rng, n):
    if kind == "iid":
        return rng.normal(rng.uniform(-0.002, 0.003), 0.01, n)
    if kind == "ar+":
        return ar1(rng, n, 0.3, rng.uniform(-0.002, 0.003))
    if kind == "ar-":
        return ar1(rng, n, -0.3, rng.uniform(-0.002, 0.003))
    if kind == "skewed":  # lognormal-ish returns: skew and kurtosis far from normal
        return np.exp(rng.normal(0, 0.6, n)) * 0.01 - 0.012
    if kind == "ar+strong":  # q well above 1
        return ar1(rng, n, 0.8, rng.uniform(-0.002, 0.003))
    raise AssertionError(kind)


def split_lengths(rng, n, k):
    cuts = np.sort(rng.choice(np.arange(1, n), size=k - 1, replace=False)) if k > 1 else []
    return np.diff(np.concatenate([[0], cuts, [n]])).astype(int).tolist()


def close(a, b, rel=1e-9, abs_=1e-12):
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or math.isnan(b)
    if b is None or math.isnan(b):
        return False
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def test_keys_are_design_61_plus_extras():
    e = evidence_summary(np.random.default_rng(0).normal(0, 0.01, 300), [100, 100, 100], BPY)
    assert tuple(e) == EVIDENCE_KEYS + EXTRA_KEYS
    assert e["bh_q"] is None and e["bh_pass"] is None and e["n_variants"] == 1
    assert e["buy_and_hold"] is None and e["excess_sharpe"] is None
    assert e["dsr"] == e["psr_hurdle"]


def test_autocovariances_kernel_matches_the_definition():
    rng = np.random.default_rng(1)
    for n in (0, 1, 2, 5, 30, 101):
        r = rng.normal(size=n)
        got = autocovariances(r, 24)
        for j in range(25):
            want = naive_autocovariance(list(r), j) if j < n else 0.0
            assert math.isclose(got[j], want, rel_tol=1e-10, abs_tol=1e-14), (n, j)


@pytest.mark.parametrize("kind", ["iid", "ar+", "ar-", "skewed", "ar+strong"])
def test_evidence_matches_naive_on_random_series(kind):
    rng = np.random.default_rng(abs(hash(kind)) % 2**32)
    for _ in range(6):
        n = int(rng.integers(8, 900))
        k = int(rng.integers(2, 7))
        lens = split_lengths(rng, n, k)
        r = series(kind, rng, n)
        hurdle = float(rng.choice([0.0, 0.5, 2.0, -1.0]))
        level = float(rng.choice([0.95, 0.9, 0.99]))
        bpy = float(rng.choice([BPY, 1638.0, 252.0]))
        got = evidence_summary(r, lens, bpy, hurdle_sharpe=hurdle, level=level)
        want = naive_evidence(list(r), lens, bpy, hurdle, level)
        for key in ("lags", "q", "sr", "sr_annual", "se", "psr0", "psr_hurdle", "min_trl_bars",
                    "min_trl_days", "cochran_q", "cochran_p", "g3", "g4"):
            assert close(got[key], want[key], rel=1e-7), (kind, key, got[key], want[key])
        for a, b in zip(got["sr_ci90"], want["sr_ci90"]):
            assert close(a, b, rel=1e-9)
        assert len(got["fold_sharpe"]) == k
        for a, b in zip(got["fold_sharpe"], want["fold_sharpe"]):
            assert close(a, b)
        for (a0, a1), (b0, b1) in zip(got["fold_sharpe_ci90"], want["fold_sharpe_ci90"]):
            assert close(a0, b0) and close(a1, b1)
        assert got["oos_folds"] == k and got["n_bars"] == n
        assert got["hurdle_sharpe"] == hurdle
        assert (got["min_trl_reason"] is None) == (got["min_trl_bars"] is not None)


def test_ar1_positive_raises_q_and_negative_lowers_it():
    rng = np.random.default_rng(7)
    q_pos = evidence_summary(ar1(rng, 4000, 0.3), [800] * 5, BPY)["q"]
    q_neg = evidence_summary(ar1(rng, 4000, -0.3), [800] * 5, BPY)["q"]
    # (1 + rho) / (1 - rho) = 1.857 and 0.538; Bartlett weights pull a little towards 1
    assert 1.5 < q_pos < 2.1
    assert 0.4 < q_neg < 0.7


def test_lags_rule_and_q_floor():
    assert evidence_summary(np.random.default_rng(0).normal(size=400), [200, 200], BPY)["lags"] == 24
    assert evidence_summary(np.random.default_rng(0).normal(size=40), [20, 20], BPY)["lags"] == 10
    # alternating returns: rho_1 = -1 would give q < 0; the floor holds it at 0.05
    r = np.tile([0.01, -0.009], 50)
    e = evidence_summary(r, [50, 50], BPY)
    assert e["q"] == 0.05
    assert naive_q(list(r))[0] == 0.05


def test_psr_is_not_rounded_z_and_level_drives_min_trl():
    rng = np.random.default_rng(3)
    r = rng.normal(0.001, 0.01, 500)
    a = evidence_summary(r, [250, 250], BPY, level=0.95)
    b = evidence_summary(r, [250, 250], BPY, level=0.99)
    assert b["min_trl_bars"] > a["min_trl_bars"]
    # z = PhiInv(0.95) = 1.6448536..., not 1.645
    sr, q = a["sr"], a["q"]
    f = 1 - a["g3"] * sr + (a["g4"] - 1) / 4 * sr ** 2
    assert a["min_trl_bars"] == pytest.approx(1 + q * f * (1.6448536269514722 / sr) ** 2, rel=1e-12)
    assert a["min_trl_bars"] != pytest.approx(1 + q * f * (1.645 / sr) ** 2, rel=1e-6)
    # the interval is 90% whatever the level
    assert a["sr_ci90"] == b["sr_ci90"]


def test_min_trl_null_with_reason_when_sr_below_hurdle():
    r = np.random.default_rng(4).normal(-0.001, 0.01, 500)
    e = evidence_summary(r, [250, 250], BPY, hurdle_sharpe=1.0)
    assert e["min_trl_bars"] is None and e["min_trl_days"] is None
    assert "hurdle" in e["min_trl_reason"]


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_tiny_series_do_not_raise(n):
    r = np.random.default_rng(n).normal(0.001, 0.01, n)
    lens = [n] if n < 2 else [1, n - 1]
    e = evidence_summary(r, lens, BPY)
    assert e["n_bars"] == n
    if n < 2:
        assert e["sr"] is None and e["psr0"] is None and e["q"] is None
        assert "at least 2" in e["min_trl_reason"]
        assert e["cochran_p"] is None
    else:
        assert e["sr"] is not None and e["lags"] == 0 and e["q"] == 1.0
    e = evidence_summary(np.empty(0), [], BPY)
    assert e["oos_folds"] == 0 and e["sr"] is None and e["fold_sharpe"] == []


def test_zero_variance_has_sr_zero():
    e = evidence_summary(np.full(100, 0.001), [50, 50], BPY)
    assert e["sr"] == 0.0 and e["q"] == 1.0 and e["psr0"] == 0.5
    assert e["g3"] is None and e["g4"] is None
    assert e["se"] == pytest.approx(1 / math.sqrt(99))
    assert e["fold_sharpe"] == [0.0, 0.0]


def test_never_traded_has_nan_sharpe():
    e = evidence_summary(np.zeros(200), [100, 100], BPY, traded=False)
    assert e["never_traded"] is True
    for key in ("sr", "psr0", "psr_hurdle", "dsr", "q", "se", "cochran_p", "min_trl_bars"):
        assert e[key] is None, key
    assert e["fold_sharpe"] == [None, None]
    assert "never traded" in e["min_trl_reason"]


def test_ruined_curve_has_nan_sharpe():
    r = np.array([0.01, -0.02, np.nan, 0.0, 0.01, 0.01])
    e = evidence_summary(r, [3, 3], BPY)
    assert e["sr"] is None and e["psr0"] is None and "not finite" in e["min_trl_reason"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="sum"):
        evidence_summary(np.zeros(10), [4, 4], BPY)
    with pytest.raises(ValueError, match="bars_per_year"):
        evidence_summary(np.zeros(10), [10], 0.0)
    with pytest.raises(ValueError, match="level"):
        evidence_summary(np.zeros(10), [10], BPY, level=1.0)


def test_cochran_detects_a_fold_that_disagrees():
    rng = np.random.default_rng(5)
    good = [rng.normal(0.002, 0.01, 400) for _ in range(4)]
    bad = rng.normal(-0.01, 0.01, 400)
    same = evidence_summary(np.concatenate(good), [400] * 4, BPY)
    mixed = evidence_summary(np.concatenate(good + [bad]), [400] * 5, BPY)
    assert same["cochran_p"] > 0.01
    assert mixed["cochran_p"] < 1e-6


def test_vectorised_formulas_equal_scalar_ones():
    rng = np.random.default_rng(6)
    acov = rng.normal(size=(50, 25))
    acov[:, 0] = np.abs(acov[:, 0]) + 5
    qs = bartlett_q(acov, 24)
    assert all(qs[i] == bartlett_q(acov[i], 24) for i in range(50))
    srk = rng.normal(0, 0.05, size=(50, 5))
    nk = np.full((50, 5), 300)
    qf = rng.uniform(0.5, 2, 50)
    stat, p = cochran(srk, nk, qf)
    for i in range(50):
        s1, p1 = cochran(srk[i], nk[i], qf[i])
        assert s1 == pytest.approx(stat[i], rel=1e-12) and p1 == pytest.approx(p[i], rel=1e-10)


# ---------------------------------------------------------------- variants, BH


def variants(rng, n_var, mus, n=800, kinds=None):
    out = []
    for i in range(n_var):
        r = rng.normal(mus[i], 0.01, n)
        out.append(evidence_summary(r, [n // 4] * 4, BPY, hurdle_sharpe=0.5))
    return out


def test_one_variant_dsr_is_psr_hurdle():
    e = variants(np.random.default_rng(1), 1, [0.001])
    apply_variants(e)
    assert e[0]["n_variants"] == 1 and e[0]["dsr"] == e[0]["psr_hurdle"]


@pytest.mark.parametrize("n_var", [2, 3, 6])
def test_dsr_matches_naive(n_var):
    rng = np.random.default_rng(n_var)
    ev = variants(rng, n_var, rng.uniform(-0.001, 0.003, n_var))
    apply_variants(ev)
    want = naive_dsr_variants([e["sr"] for e in ev], [e["se"] for e in ev], [e["q"] for e in ev],
                              [e["n_bars"] for e in ev], 0.5 / math.sqrt(BPY))
    for e, w in zip(ev, want):
        assert e["n_variants"] == n_var
        assert e["dsr"] == pytest.approx(w, rel=1e-9)
        assert e["dsr"] < e["psr_hurdle"]  # selection among variants deflates


def test_dsr_pinned_halving_trial_sharpes_fails():
    # spread SRs far beyond the noise, so V is the SRs' variance (not V_noise)
    rng = np.random.default_rng(11)
    ev = variants(rng, 5, [0.004, -0.003, 0.001, 0.0035, -0.002])
    apply_variants(ev)
    srs = [e["sr"] for e in ev]
    args = ([e["se"] for e in ev], [e["q"] for e in ev], [e["n_bars"] for e in ev], 0.5 / math.sqrt(BPY))
    right = naive_dsr_variants(srs, *args)
    halved = naive_dsr_variants([s / 2 for s in srs], *args)
    assert ev[0]["dsr"] == pytest.approx(right[0], rel=1e-9)
    assert abs(ev[0]["dsr"] - halved[0]) > 0.01


def test_never_traded_variant_counts_in_n_not_in_v():
    rng = np.random.default_rng(12)
    ev = variants(rng, 3, [0.002, 0.001, 0.0])
    ev.append(evidence_summary(np.zeros(800), [200] * 4, BPY, hurdle_sharpe=0.5, traded=False))
    apply_variants(ev)
    assert all(e["n_variants"] == 4 for e in ev)
    assert ev[3]["dsr"] is None
    srs = [e["sr"] for e in ev[:3]] + [math.nan]
    want = naive_dsr_variants(srs, [e["se"] for e in ev[:3]] + [math.nan],
                              [e["q"] for e in ev[:3]] + [math.nan], [800] * 4, 0.5 / math.sqrt(BPY))
    for e, w in zip(ev[:3], want):
        assert e["dsr"] == pytest.approx(w, rel=1e-9)
    # treating the never-traded one as SR 0 (the old pipeline's mistake) changes the DSR
    wrong = naive_dsr_variants([e["sr"] for e in ev[:3]] + [0.0], [e["se"] for e in ev[:3]] + [1.0],
                               [e["q"] for e in ev[:3]] + [1.0], [800] * 4, 0.5 / math.sqrt(BPY))
    assert ev[0]["dsr"] != pytest.approx(wrong[0], rel=1e-6)


def test_two_variants_use_v_noise():
    rng = np.random.default_rng(13)
    ev = variants(rng, 2, [0.004, -0.004])  # SR variance huge; N = 2 ignores it
    apply_variants(ev)
    want = naive_dsr_variants([e["sr"] for e in ev], [e["se"] for e in ev], [e["q"] for e in ev],
                              [800, 800], 0.5 / math.sqrt(BPY))
    assert ev[0]["dsr"] == pytest.approx(want[0], rel=1e-9)


def test_best_variant_and_symbol_pvalue():
    ev = [{"sr": 0.01, "dsr": 0.7}, {"sr": 0.02, "dsr": 0.9}, {"sr": None, "dsr": None}, {"sr": 0.03, "dsr": 0.9}]
    assert best_variant(ev) == 1
    assert best_variant([{"dsr": None}, {"dsr": None}]) == 0
    assert symbol_pvalue(ev[1]) == pytest.approx(0.1)
    assert symbol_pvalue(ev[2]) == 1.0


@pytest.mark.parametrize("seed", range(8))
def test_benjamini_hochberg_matches_definition(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 30))
    p = list(rng.uniform(0, 0.3, m) ** 2)
    if m > 3:
        p[1] = p[2]  # a tie
    q, ok = benjamini_hochberg(p, 0.10)
    want = naive_bh(p)
    for a, b in zip(q, want):
        assert a == pytest.approx(b, rel=1e-12)
    assert ok == [x <= 0.10 for x in want]
    # step-up: every p at or below the largest p_(k) <= k q / m passes
    srt = sorted(p)
    ks = [k for k in range(1, m + 1) if srt[k - 1] <= k * 0.10 / m]
    cut = srt[max(ks) - 1] if ks else -1
    assert ok == [x <= cut for x in p]


def test_benjamini_hochberg_skips_missing():
    q, ok = benjamini_hochberg([0.01, None, float("nan"), 0.04], 0.10)
    assert math.isnan(q[1]) and math.isnan(q[2]) and ok[1] is False
    assert q[0] == pytest.approx(0.02) and q[3] == pytest.approx(0.04)  # m = 2


def test_buy_and_hold_like_bounds():
    assert is_buy_and_hold_like(0.95, [1, 1, 0])
    assert not is_buy_and_hold_like(0.9499, [1, 1])
    assert not is_buy_and_hold_like(1.0, [1, 2])
    assert is_buy_and_hold_like(1.0, [])
    assert not is_buy_and_hold_like(float("nan"), [1])


# ---------------------------------------------------------------- properties

from hypothesis import given, settings, strategies as hs  # noqa: E402


@settings(max_examples=150, deadline=None)
@given(hs.lists(hs.one_of(hs.floats(-0.5, 0.5), hs.sampled_from([0.0, 0.01, float("nan"), float("inf")])),
                max_size=60),
       hs.integers(1, 6), hs.booleans())
def test_any_series_gives_json_values_and_no_exception(values, k, traded):
    r = np.array(values, dtype=np.float64)
    k = min(k, max(len(r), 1))
    lens = [len(r) // k] * (k - 1) + [len(r) - (len(r) // k) * (k - 1)]
    e = evidence_summary(r, lens, BPY, traded=traded)
    for key, v in e.items():
        if isinstance(v, float):
            assert math.isfinite(v), key
    if e["psr0"] is not None:
        assert 0.0 <= e["psr0"] <= 1.0
        assert e["sr_ci90"][0] <= e["sr_annual"] <= e["sr_ci90"][1]
    if e["cochran_p"] is not None:
        assert 0.0 <= e["cochran_p"] <= 1.0


def test_statistics_do_not_depend_on_the_return_scale():
    rng = np.random.default_rng(21)
    r = ar1(rng, 600, 0.2, 0.0008)
    a = evidence_summary(r, [200] * 3, BPY)
    b = evidence_summary(r * 7.5, [200] * 3, BPY)
    for key in ("sr", "q", "se", "psr0", "cochran_p", "min_trl_bars", "g3", "g4"):
        assert b[key] == pytest.approx(a[key], rel=1e-9), key


def test_a_one_bar_fold_is_left_out_of_cochran():
    rng = np.random.default_rng(22)
    r = rng.normal(0.001, 0.01, 401)
    e = evidence_summary(r, [1, 200, 200], BPY)
    two = naive_evidence(list(r), [1, 200, 200], BPY)
    assert e["cochran_q"] == pytest.approx(two["cochran_q"], rel=1e-9)
    assert e["fold_sharpe"][0] is None and e["fold_sharpe_ci90"][0] == [None, None]
    # K' = 2: p = chi2 sf with 1 degree of freedom
    from scipy.stats import chi2

    assert e["cochran_p"] == pytest.approx(chi2.sf(e["cochran_q"], 1), rel=1e-9)


def _same(a, b):
    """Equal dicts, floats compared to 1e-12 (a batch and a lone call share the kernel,
    but numpy's reductions may group a padded row's zeros differently)."""
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, list):
            assert len(x) == len(y), key
            for u, v in zip(x, y):
                if isinstance(u, list):
                    assert all(close(p, q, rel=1e-12) for p, q in zip(u, v)), key
                else:
                    assert close(u, v, rel=1e-12), (key, u, v)
        elif isinstance(x, float):
            assert close(x, y, rel=1e-12), (key, x, y)
        else:
            assert x == y, (key, x, y)


def test_a_batch_of_mixed_models_gives_each_model_its_own_evidence():
    """evidence_summaries over models of different lengths (so different lags), fold
    counts, bars per year, never-traded, zero-variance, too-short and ruined series:
    each result is that model's evidence_summary alone, and the naive reference's."""
    from engine.metrics.evidence import evidence_summaries

    rng = np.random.default_rng(7)
    models = []
    for i in range(60):
        kind = ["iid", "ar+", "ar-", "skewed", "ar+strong"][i % 5]
        n = int(rng.choice([0, 1, 2, 3, 9, 40, 97, 250, 1200]))
        k = int(rng.integers(1, 7)) if n >= 7 else (1 if n else 0)
        lens = split_lengths(rng, n, k) if n else []
        r = series(kind, rng, n) if n else np.zeros(0)
        special = rng.integers(0, 6)
        if special == 0 and n:
            r = np.full(n, 0.001)
        elif special == 1 and n > 3:
            r[n // 2] = np.inf
        elif special == 2 and n > 3:  # one fold constant, the others not
            r[:lens[0]] = 0.0
        traded = special != 3
        models.append((r, lens, float(rng.choice([BPY, 1638.0, 252.0])), traded))
    for hurdle, level in ((0.0, 0.95), (1.5, 0.9)):
        batch = evidence_summaries(models, hurdle_sharpe=hurdle, level=level)
        assert len(batch) == len(models)
        for (r, lens, bpy, traded), got in zip(models, batch):
            alone = evidence_summary(r, lens, bpy, hurdle_sharpe=hurdle, level=level, traded=traded)
            _same(got, alone)
            assert got["never_traded"] is (not traded)
            if traded and r.size >= 8 and np.all(np.isfinite(r)) and r.min() < r.max() and len(lens) >= 2:
                want = naive_evidence(list(r), lens, bpy, hurdle, level)
                for key in ("lags", "q", "sr", "se", "psr0", "psr_hurdle", "min_trl_bars", "cochran_p"):
                    assert close(got[key], want[key], rel=1e-7), (key, got[key], want[key])
                for a, b in zip(got["fold_sharpe"], want["fold_sharpe"]):
                    assert close(a, b)


def test_evidence_in_several_kernel_batches_is_the_same(monkeypatch):
    import engine.metrics.evidence as ev

    rng = np.random.default_rng(11)
    models = [(series("iid", rng, n), split_lengths(rng, n, 3), BPY, True)
              for n in rng.integers(30, 400, 23)]
    whole = ev.evidence_summaries(models)
    monkeypatch.setattr(ev, "EVIDENCE_BATCH", 7)
    parts = ev.evidence_summaries(models)
    assert len(parts) == len(whole) == 23
    for a, b in zip(parts, whole):
        _same(a, b)
    assert ev.evidence_summaries([]) == []


def test_the_conventions_where_a_statistic_has_no_value():
    """engine/metrics/evidence.py's docstring, case by case: zero variance is SR 0 with
    undefined moments and q = 1; a ruined curve, too few bars or a model that never
    traded have no SR, and MinTRL says why."""
    const = evidence_summary(np.full(50, 0.001), [25, 25], BPY)
    assert const["sr"] == 0.0 and const["q"] == 1.0 and const["g3"] is None and const["g4"] is None
    assert const["psr0"] == 0.5 and const["fold_sharpe"] == [0.0, 0.0]
    assert const["min_trl_bars"] is None and const["min_trl_reason"].startswith("Sharpe 0.00 <= hurdle 0")
    r = np.random.default_rng(3).normal(0, 0.01, 40)
    r[7] = np.inf
    ruined = evidence_summary(r, [20, 20], BPY)
    assert ruined["sr"] is None and ruined["psr0"] is None and ruined["fold_sharpe"] == [None, None]
    assert ruined["min_trl_reason"].startswith("a return is not finite")
    one = evidence_summary(np.array([0.01]), [1], BPY)
    assert one["sr"] is None and one["min_trl_reason"] == "1 out-of-sample bar: a Sharpe ratio needs at least 2"
    idle = evidence_summary(np.random.default_rng(4).normal(0, 0.01, 60), [30, 30], BPY, traded=False)
    assert idle["never_traded"] is True and idle["sr"] is None and idle["psr0"] is None
    assert idle["min_trl_reason"] == "the model never traded in the out-of-sample folds"
    assert idle["lags"] == 15 and idle["oos_folds"] == 2


def test_a_track_record_too_long_for_a_float_says_so():
    """SR above the hurdle by a hair: MinTRL = 1 + q f (z / (SR - h))^2 overflows. It has no
    value then, and a reason (not the 'below the hurdle' one, which would be false)."""
    import warnings

    r = np.array([1e-3, -1e-3] * 50 + [1e-158])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an expected overflow, not a warning on the user's screen
        e = evidence_summary(r, [50, 51], BPY)
    assert e["sr"] is not None and e["sr"] > 0 and e["se"] is not None
    assert e["min_trl_bars"] is None
    assert "overflows" in e["min_trl_reason"] and "<=" not in e["min_trl_reason"]


def test_the_distribution_functions_agree_with_scipy():
    """phi, phi_inv and chi2_sf are written from the standard library (to keep scipy's
    0.24 s import out of start-up): they must give scipy's values, tails included."""
    from scipy import special, stats

    from engine.metrics.evidence import chi2_sf, phi, phi_inv

    rng = np.random.default_rng(21)
    x = np.concatenate([rng.normal(0, 3, 4000), [-40.0, -38.5, -8.0, 0.0, 8.0, 38.5, np.inf, -np.inf]])
    got, want = phi(x), special.ndtr(x)
    assert np.all(np.abs(got - want) <= 1e-15 + 1e-13 * want)
    assert math.isnan(phi(math.nan)) and phi(0.0) == 0.5
    p = np.concatenate([rng.uniform(0, 1, 4000), [1e-300, 1e-20, 1e-8, 0.5, 1 - 1e-12, 0.95, 0.975]])
    assert np.allclose(phi_inv(p), special.ndtri(p), rtol=1e-12, atol=0)
    assert phi_inv(0.0) == -math.inf and phi_inv(1.0) == math.inf
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(phi_inv(1.5)) and math.isnan(phi_inv(-0.1)) and math.isnan(phi_inv(math.nan))
    k = rng.integers(1, 60, 3000)
    q = rng.gamma(2.0, 1.0, 3000) * k  # around and far past each k's bulk
    q[:50] = rng.uniform(0, 1e-6, 50)
    q[50:100] = k[50:100] * 12.0  # far tail
    assert np.allclose(chi2_sf(k, q), stats.chi2.sf(q, k), rtol=1e-10, atol=1e-300)
    assert chi2_sf(3, 0.0) == 1.0 and chi2_sf(4, -1.0) == 1.0
    assert math.isnan(chi2_sf(0, 1.0)) and math.isnan(chi2_sf(2, math.nan))
    assert chi2_sf(1, 1e6) == 0.0 and chi2_sf(2, 1e6) == 0.0
    assert chi2_sf(np.array(5), np.array(3.0)) == pytest.approx(stats.chi2.sf(3.0, 5), rel=1e-12)


def test_evidence_does_not_import_scipy_special():
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from engine.metrics.evidence import evidence_summary\n"
            "evidence_summary(np.random.default_rng(0).normal(0, 0.01, 300), [100, 100, 100], 8766.0)\n"
            "print('scipy.special' in sys.modules, 'scipy.stats' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.split() == ["False", "False"]
