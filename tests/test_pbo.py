"""engine/pbo.py: CSCV's probability of backtest overfitting against the plain
reference in tests/naive_pbo.py, on random matrices and on the edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.pbo import N_BLOCKS, in_sample_combinations, pbo_cscv, returns_matrix
from naive_pbo import naive_pbo


def assert_matches_naive(m, n_blocks):
    got = pbo_cscv(m, n_blocks=n_blocks)
    want_pbo, want_logits, want_loss = naive_pbo(m, n_blocks)
    assert got.reason is None and got.pbo is not None
    assert got.n_combinations == math.comb(n_blocks, n_blocks // 2) == len(want_logits)
    np.testing.assert_array_equal(got.logits, want_logits)
    assert got.pbo == want_pbo
    assert got.prob_oos_loss == want_loss
    return got


@pytest.mark.parametrize("seed", range(8))
def test_random_matrices_match_the_reference(seed):
    rng = np.random.default_rng(seed)
    n_blocks = int(rng.choice([4, 6, 8, 10]))
    t = int(rng.integers(n_blocks, 120))
    n = int(rng.integers(2, 9))
    # a drift per column so that some variants are better than others
    m = 0.01 * rng.standard_normal((t, n)) + 0.003 * rng.standard_normal(n)
    assert_matches_naive(m, n_blocks)


def test_sixteen_blocks_match_the_reference_with_an_uneven_split():
    rng = np.random.default_rng(42)
    m = 0.01 * rng.standard_normal((203, 4)) + np.array([0.0, 0.001, -0.001, 0.002])
    got = assert_matches_naive(m, N_BLOCKS)
    assert got.n_combinations == 12_870 and got.n_blocks == 16 and got.n_bars == 203


def test_the_default_is_sixteen_blocks_and_every_half_has_eight():
    mask = in_sample_combinations()
    assert mask.shape == (12_870, 16)
    assert np.all(mask.sum(axis=1) == 8)
    assert len({row.tobytes() for row in mask}) == 12_870
    m = np.random.default_rng(0).standard_normal((64, 3))
    assert pbo_cscv(m).n_combinations == 12_870


def test_a_dominant_variant_is_not_overfit_and_pure_noise_is():
    rng = np.random.default_rng(7)
    noise = 0.01 * rng.standard_normal((800, 10))
    strong = noise.copy()
    strong[:, 3] += 0.01  # Sharpe 1 per bar: best in every half
    assert pbo_cscv(strong, n_blocks=8).pbo == 0.0
    assert pbo_cscv(strong, n_blocks=8).prob_oos_loss == 0.0
    # the in-sample best of noise is a coin flip out of sample
    assert 0.25 < pbo_cscv(noise, n_blocks=8).pbo < 0.75


def test_one_variant_or_too_few_bars_is_undefined_with_a_reason():
    one = pbo_cscv(np.random.default_rng(0).standard_normal((100, 1)))
    assert one.pbo is None and "one variant" in one.reason and one.logits is None
    short = pbo_cscv(np.random.default_rng(0).standard_normal((15, 3)))
    assert short.pbo is None and "15 bars" in short.reason
    assert short.to_dict()["pbo"] is None
    exact = pbo_cscv(np.random.default_rng(0).standard_normal((16, 3)))
    assert exact.pbo is not None and exact.reason is None


def test_identical_variants_tie_at_the_median():
    col = np.random.default_rng(3).standard_normal(64)
    m = np.stack([col] * 5, axis=1)
    got = assert_matches_naive(m, 8)
    # best = variant 0 (lowest index); all five tie out of sample: rank 3 of 5, w = 1/2
    assert np.all(got.logits == 0.0) and got.pbo == 1.0


def test_ties_between_some_variants_match_the_reference():
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((2, 48)) * 0.01
    m = np.stack([a, b, a, b + 0.001, a], axis=1)
    assert_matches_naive(m, 6)


def test_zero_variance_columns_have_sharpe_zero():
    rng = np.random.default_rng(5)
    m = 0.01 * rng.standard_normal((60, 4))
    m[:, 1] = 0.0
    m[:, 2] = 0.1  # constant, positive: Sharpe 0 all the same (docs/design.md 6)
    assert_matches_naive(m, 6)
    flat = np.tile([0.0, 0.1, -0.2], (40, 1))
    got = assert_matches_naive(flat, 4)
    assert got.pbo == 1.0 and np.all(got.logits == 0.0)  # three-way tie at Sharpe 0


def test_constant_within_some_blocks_matches_the_reference():
    rng = np.random.default_rng(9)
    m = 0.01 * rng.standard_normal((64, 3))
    m[:32, 0] = 0.002  # flat in the first half of the blocks only
    assert_matches_naive(m, 8)


def test_bad_input_is_refused_naming_the_cell():
    m = np.zeros((40, 3))
    m[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"returns\[7, 2\]"):
        pbo_cscv(m)
    with pytest.raises(ValueError, match="matrix"):
        pbo_cscv(np.zeros(40))
    with pytest.raises(ValueError, match="even"):
        pbo_cscv(np.zeros((40, 3)), n_blocks=7)


def test_returns_matrix_stacks_variants_and_names_a_length_mismatch():
    m = returns_matrix([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    assert m.shape == (2, 3) and list(m[:, 1]) == [3.0, 4.0]
    with pytest.raises(ValueError, match="variant 2 has 1 bars"):
        returns_matrix([[1.0, 2.0], [3.0, 4.0], [5.0]])


def test_a_backtest_of_variants_reports_their_pbo(tmp_path, monkeypatch):
    """Three checkpoints of one symbol (variants): each model's summary holds the PBO of
    the three, computed from the out-of-sample fold returns the report itself shows."""
    import sys
    from pathlib import Path

    from engine.pipeline import RunConfig, run_backtest
    from engine.report import to_jsonable, validate_report

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root / "data"))
    from make_sample_policies import build_sample_policies

    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    models = [build_sample_policies(tmp_path / f"v{k}", symbols=["ETHUSD"], seed=k)[0]
              for k in range(3)]
    single = build_sample_policies(tmp_path / "one", symbols=["BTCUSD"])[0]
    cfg = RunConfig(days=120, walk_forward=4, store=str(root / "data" / "bars"))
    report = to_jsonable(run_backtest([*models, single], cfg))
    validate_report(report)
    eth = [m for m in report["models"] if m["symbol"] == "ETHUSD"]
    btc = [m for m in report["models"] if m["symbol"] == "BTCUSD"]
    assert len(eth) == 3 and "pbo" not in btc[0]["summary"]  # one model: no variants
    pbos = [m["summary"]["pbo"] for m in eth]
    assert pbos[0] == pbos[1] == pbos[2] and pbos[0]["n_variants"] == 3

    def stitched(m):
        eq = [np.asarray(f["equity"], dtype=np.float64) for f in m["folds"] if not f["in_sample"]]
        return np.concatenate([e[1:] / e[:-1] - 1.0 for e in eq])

    want = pbo_cscv(returns_matrix([stitched(m) for m in eth]))
    got = pbos[0]
    assert got["n_bars"] == want.n_bars and got["n_combinations"] == 12_870
    assert got["pbo"] == pytest.approx(want.pbo, abs=1e-12)
    assert got["prob_oos_loss"] == pytest.approx(want.prob_oos_loss, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_variants_flat_in_random_blocks_match_the_reference(seed):
    """Blocks held at one level (a variant out of the market), sometimes the same level
    in every such block and sometimes not, sometimes the whole column: a half is flat
    exactly when all its values are equal, found only where each of its blocks is."""
    rng = np.random.default_rng(100 + seed)
    n_blocks = int(rng.choice([4, 6, 8]))
    per = int(rng.integers(2, 6))
    m = rng.standard_normal((n_blocks * per, 7)) * 0.01
    for j in range(1, 7):
        # levels of this variant's own, not proportional to another's: Sharpe does not
        # see scale, so two variants whose halves were the same levels times a factor
        # would tie but for rounding, which the two implementations do differently
        levels = [0.001 * j, -0.002 + 0.0003 * j, 0.0005 * j * j]
        level = float(rng.choice([0.0, levels[0]]))
        for b in np.flatnonzero(rng.random(n_blocks) < (1.0 if j == 6 else 0.6)):
            m[b * per:(b + 1) * per, j] = level if j % 2 else float(rng.choice(levels))
    assert_matches_naive(m, n_blocks)
