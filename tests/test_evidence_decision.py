"""The evidence profile's decision (docs/design.md 8): each side of every comparison, the
order of the tests, gating caps, variants, BH, and the reasons in words."""

import numpy as np
import pytest

from engine.decision import (
    DECISIONS,
    decide,
    decide_evidence,
    decide_seed,
    evidence_tests,
    evidence_verdicts,
)
from engine.gating import default_thresholds, load_thresholds

BELOW = 1e-9


def ev(psr0=0.99, psr_h=None, dsr=None, folds=5, cochran_p=0.5, n_variants=1, hurdle=0.0,
       bh_q=None, bh_pass=None, never_traded=False, n_bars=4000, min_trl=1000.0):
    psr_h = psr0 if psr_h is None else psr_h
    return {"oos_folds": folds, "psr0": psr0, "psr_hurdle": psr_h,
            "dsr": psr_h if dsr is None else dsr, "n_variants": n_variants, "hurdle_sharpe": hurdle,
            "cochran_p": cochran_p, "bh_q": bh_q, "bh_pass": bh_pass, "never_traded": never_traded,
            "n_bars": n_bars, "min_trl_bars": min_trl, "min_trl_days": None if min_trl is None else min_trl / 24,
            "level": 0.95, "min_trl_reason": None, "sr": 0.01}


def d(positive=3, gating="APPROVED", multi=False, **kw):
    return decide_evidence(ev(**kw), positive, gating, multi_symbol=multi)[0]


def test_retrain_below_two_oos_folds():
    assert d(folds=1, positive=1) == "RETRAIN"
    assert d(folds=0, positive=0) == "RETRAIN"
    assert d(folds=2, positive=1) == "LIVE"
    _, reasons = decide_evidence(ev(folds=1), 1, "APPROVED")
    assert reasons[0].startswith("only 1 out-of-sample fold (< 2 needed)")
    # even a losing model: too little evidence to call the losses real
    assert d(folds=1, positive=0, psr0=0.001) == "RETRAIN"


def test_never_traded_is_retrain_saying_so():
    decision, reasons = decide_evidence(ev(never_traded=True, psr0=None, psr_h=None), 0, "APPROVED")
    assert decision == "RETRAIN"
    assert "never traded" in reasons[0]


def test_drop_boundary():
    assert d(psr0=0.05, positive=0) == "DROP"
    assert d(psr0=0.05 + BELOW, positive=0) == "RETRAIN"
    assert d(psr0=0.0, positive=3) == "DROP"       # checked before LIVE/PAPER
    decision, reasons = decide_evidence(ev(psr0=0.031), 0, "APPROVED")
    assert reasons[0] == "PSR 0.03 <= 0.05: losses beyond noise"


def test_live_psr_boundary():
    assert d(psr0=0.95) == "LIVE"
    assert d(psr0=0.95 - BELOW) == "PAPER"
    _, reasons = decide_evidence(ev(psr0=0.97), 3, "APPROVED")
    assert reasons[0] == "PSR 0.97 >= 0.95"
    _, reasons = decide_evidence(ev(psr0=0.95 - 1e-4), 3, "APPROVED")
    # rounding must not print a failing value as equal to its bound
    assert reasons[0] == "PSR 0.9499 < 0.95 needed for LIVE"


def test_live_positive_fraction_boundary():
    assert d(positive=1, folds=2) == "LIVE"          # exactly 0.5
    assert d(positive=5, folds=10) == "LIVE"
    assert d(positive=4, folds=10) == "PAPER"
    assert d(positive=2, folds=5) == "PAPER"
    assert d(positive=3, folds=5) == "LIVE"
    _, reasons = decide_evidence(ev(), 2, "APPROVED")
    assert reasons[0] == "2/5 out-of-sample folds positive (40% < 50% needed for LIVE)"


def test_live_cochran_boundary():
    assert d(cochran_p=0.01) == "LIVE"
    assert d(cochran_p=0.01 - BELOW) == "PAPER"
    assert d(cochran_p=None) == "PAPER"             # consistency unmeasured
    _, reasons = decide_evidence(ev(cochran_p=0.002), 3, "APPROVED")
    assert reasons[0].startswith("Cochran's Q p 0.002 < 0.01 needed for LIVE")


def test_live_needs_bh_pass_only_in_multi_symbol_runs():
    assert d(multi=True, bh_q=0.10, bh_pass=True) == "LIVE"
    assert d(multi=True, bh_q=0.11, bh_pass=False) == "PAPER"
    assert d(multi=True, bh_q=None, bh_pass=None) == "PAPER"
    assert d(multi=False, bh_q=0.5, bh_pass=False) == "LIVE"
    _, reasons = decide_evidence(ev(bh_q=0.04, bh_pass=True), 3, "APPROVED", multi_symbol=True)
    assert "BH q-value 0.04 <= 0.10 across the run's symbols" in reasons


def test_paper_boundary():
    assert d(psr0=0.80) == "PAPER"
    assert d(psr0=0.80 - BELOW) == "RETRAIN"
    _, reasons = decide_evidence(ev(psr0=0.85), 3, "APPROVED")
    assert reasons == ["PSR 0.85 < 0.95 needed for LIVE", "PSR 0.85 >= 0.80 (PAPER)"]
    _, reasons = decide_evidence(ev(psr0=0.62), 3, "APPROVED")
    assert reasons[0] == "PSR 0.62 < 0.80 needed for PAPER"  # the decisive test first


def test_hurdle_psr_decides_live_psr0_decides_paper_and_drop():
    assert d(psr0=0.99, psr_h=0.94, hurdle=1.0) == "PAPER"
    assert d(psr0=0.99, psr_h=0.95, hurdle=1.0) == "LIVE"
    assert d(psr0=0.79, psr_h=0.10, hurdle=1.0) == "RETRAIN"
    assert d(psr0=0.06, psr_h=0.0, hurdle=1.0, positive=0) == "RETRAIN"  # DROP is PSR(0)
    _, reasons = decide_evidence(ev(psr0=0.99, psr_h=0.94, hurdle=1.0), 3, "APPROVED")
    assert reasons[0] == "PSR(hurdle Sharpe 1) 0.94 < 0.95 needed for LIVE"


def test_variants_use_dsr_for_live_and_paper():
    assert d(psr0=0.99, dsr=0.95, n_variants=3) == "LIVE"
    assert d(psr0=0.99, dsr=0.95 - BELOW, n_variants=3) == "PAPER"
    assert d(psr0=0.99, dsr=0.80, n_variants=3) == "PAPER"
    assert d(psr0=0.99, dsr=0.80 - BELOW, n_variants=3) == "RETRAIN"
    # a single variant ignores a stale dsr
    assert d(psr0=0.99, dsr=0.1, n_variants=1) == "LIVE"
    # DROP stays on PSR(0)
    assert d(psr0=0.05, dsr=0.9, n_variants=3, positive=0) == "DROP"
    _, reasons = decide_evidence(ev(psr0=0.99, dsr=0.97, n_variants=3), 3, "APPROVED")
    assert reasons[0] == "DSR (3 variants) 0.97 >= 0.95"


def test_gating_caps_like_the_seed():
    assert d(gating="REVIEW") == "PAPER"
    assert d(gating="REVIEW", psr0=0.85) == "PAPER"
    assert d(gating="REVIEW", psr0=0.5) == "RETRAIN"
    assert d(gating="DROP") == "DROP"
    assert d(gating=None) == "LIVE"
    _, reasons = decide_evidence(ev(), 3, "REVIEW")
    assert reasons[0] == "gating REVIEW caps the decision at PAPER (evidence alone: LIVE)"
    _, reasons = decide_evidence(ev(psr0=0.5), 3, "DROP")
    assert reasons[0].startswith("gating classified the model DROP") and "evidence alone: RETRAIN" in reasons[0]
    assert decide_evidence(None, 0, "DROP")[0] == "DROP"
    with pytest.raises(ValueError):
        decide_evidence(None, 0, "APPROVED")
    with pytest.raises(ValueError):
        decide_evidence(ev(), 3, "MAYBE")
    with pytest.raises(ValueError):
        decide_evidence(ev(folds=5), 6, "APPROVED")


def test_min_trl_and_flags_are_reasons():
    _, reasons = decide_evidence(ev(psr0=0.9, n_bars=999, min_trl=1000.2), 3, "APPROVED",
                                 flags=["BUY_AND_HOLD_LIKE: one trade per fold at 100% exposure",
                                        {"code": "IN_SAMPLE_FOLDS", "message": "2 folds left out"}])
    assert any(r.startswith("window shorter than MinTRL: 999 out-of-sample bars < 1001") for r in reasons)
    assert reasons[-2:] == ["BUY_AND_HOLD_LIKE: one trade per fold at 100% exposure",
                            "IN_SAMPLE_FOLDS: 2 folds left out"]
    _, reasons = decide_evidence(ev(n_bars=1000, min_trl=1000.0), 3, "APPROVED")
    assert not any("MinTRL" in r for r in reasons)
    _, reasons = decide_evidence(ev(n_bars=10, min_trl=None), 3, "APPROVED")
    assert not any("MinTRL" in r for r in reasons)


def test_thresholds_file_sets_the_evidence_rules(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text("[decision]\nprofile = \"seed\"\n[decision.evidence]\nlive_min_psr = 0.99\n"
                 "min_oos_folds = 3\nhurdle_sharpe = 0.5\n")
    t = load_thresholds(p)
    assert t.profile == "seed" and t.evidence.live_min_psr == 0.99 and t.evidence.min_oos_folds == 3
    assert t.evidence.paper_min_psr == 0.80  # the rest keep the defaults
    assert t.decision == default_thresholds().decision
    assert decide_evidence(ev(psr0=0.98), 3, "APPROVED", t)[0] == "PAPER"
    assert decide_evidence(ev(psr0=0.99), 3, "APPROVED", t)[0] == "LIVE"
    assert decide_evidence(ev(folds=2), 1, "APPROVED", t)[0] == "RETRAIN"
    d_ = t.to_dict()
    assert d_["decision"]["profile"] == "seed" and d_["decision"]["evidence"]["live_min_psr"] == 0.99


def test_default_profile_and_keys():
    t = default_thresholds()
    assert t.profile == "evidence"
    e = t.evidence
    assert (e.live_min_psr, e.paper_min_psr, e.drop_max_psr, e.min_positive_fraction, e.cochran_min_p,
            e.q_fdr, e.min_oos_folds, e.hurdle_sharpe, e.benchmark) == (0.95, 0.80, 0.05, 0.5, 0.01, 0.10, 2,
                                                                      0.0, "zero")


@pytest.mark.parametrize("text,key", [
    ('[decision]\nprofile = "fast"\n', "decision.profile"),
    ('[decision.evidence]\nlive_min_psr = 95\n', "decision.evidence.live_min_psr"),
    ('[decision.evidence]\nmin_oos_folds = 1\n', "decision.evidence.min_oos_folds"),
    ('[decision.evidence]\nmin_oos_folds = 2.5\n', "decision.evidence.min_oos_folds"),
    ('[decision.evidence]\nbenchmark = "spy"\n', "decision.evidence.benchmark"),
    ('[decision.evidence]\nhurdle_sharpe = "x"\n', "decision.evidence.hurdle_sharpe"),
    ('[decision.evidence]\nlive_psr = 0.9\n', "decision.evidence.live_psr"),
    ('[decision.evidence]\ndrop_max_psr = 0.9\n', "decision.evidence.drop_max_psr"),
    ('[decision]\nevidence = 1\n', "decision.evidence"),
])
def test_bad_evidence_keys_name_the_key(tmp_path, text, key):
    from engine.errors import ConfigError

    p = tmp_path / "t.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_thresholds(p)
    assert f"'{key}'" in str(exc.value) and "\n" not in str(exc.value)


def test_seed_names_are_the_same_function():
    assert decide is decide_seed


def test_vectorised_rule_equals_the_scalar_decision():
    rng = np.random.default_rng(0)
    n = 3000
    psr0 = rng.choice([0.0, 0.05, 0.0501, 0.5, 0.79999, 0.8, 0.9, 0.95, 0.97, np.nan], n)
    psr_h = np.where((rng.random(n) < 0.5) | np.isnan(psr0), psr0, rng.choice([0.94, 0.95, 0.99], n))
    folds = rng.integers(1, 11, n)
    pos = np.array([rng.integers(0, f + 1) for f in folds])
    cp = rng.choice([0.0, 0.00999, 0.01, 0.3, np.nan], n)
    t = default_thresholds().evidence
    tests = evidence_tests(psr0, psr_h, psr0, pos / folds, cp, t)
    codes = evidence_verdicts(tests, folds >= t.min_oos_folds)
    for i in range(n):
        e = ev(psr0=None if np.isnan(psr0[i]) else float(psr0[i]),
               psr_h=None if np.isnan(psr_h[i]) else float(psr_h[i]),
               folds=int(folds[i]), cochran_p=None if np.isnan(cp[i]) else float(cp[i]))
        if np.isnan(psr0[i]):
            e["psr_hurdle"] = e["dsr"] = None
        assert decide_evidence(e, int(pos[i]), None)[0] == DECISIONS[codes[i]], i
