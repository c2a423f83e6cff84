"""Deployment decision (docs/design.md 8): every rule boundary, gating caps, reasons."""

import pytest

from engine.decision import decide
from engine.gating import load_thresholds


def summary(folds=5, positive=3, std=1.5, mean=0.01, best=0.02, in_sample=0):
    return {"folds": folds, "positive_folds": positive, "sharpe_min": -1.0, "sharpe_max": 2.0,
            "sharpe_mean": 0.5, "sharpe_std": std, "return_min": -0.01, "return_max": best,
            "return_mean": mean, "psr": 0.7, "dsr": None, "in_sample_folds": in_sample}


def d(**kw):
    gating = kw.pop("gating", "APPROVED")
    return decide(summary(**kw), gating)[0]


def test_live_needs_p_at_least_08_and_sigma_strictly_below_1():
    assert d(positive=4, std=0.99) == "LIVE"          # p exactly 0.8
    assert d(positive=5, std=0.0) == "LIVE"
    assert d(positive=4, std=1.0) == "PAPER"          # sigma exactly 1.0 is not < 1.0
    assert d(positive=3, std=0.5) == "PAPER"          # p 0.6 < 0.8
    assert d(folds=10, positive=8, std=0.5) == "LIVE"
    assert d(folds=10, positive=7, std=0.5) == "PAPER"


def test_paper_needs_p_at_least_06_and_sigma_at_most_2():
    assert d(positive=3, std=2.0) == "PAPER"          # p exactly 0.6, sigma exactly 2.0
    assert d(positive=3, std=2.0000001) == "RETRAIN"
    assert d(positive=2, std=0.5) == "RETRAIN"        # p 0.4
    assert d(folds=10, positive=6, std=2.0) == "PAPER"
    assert d(folds=10, positive=5, std=0.1) == "RETRAIN"


def test_drop_needs_negative_mean_and_p_at_most_02():
    assert d(positive=1, mean=-0.001, best=0.001) == "DROP"   # p exactly 0.2
    assert d(positive=0, mean=-0.05, best=-0.01) == "DROP"
    assert d(positive=1, mean=0.0, best=0.001) == "RETRAIN"   # mean exactly 0 is not < 0
    assert d(positive=2, mean=-0.05) == "RETRAIN"             # p 0.4 > 0.2
    # losses are checked before LIVE/PAPER, but they need p <= 0.2, so they never overlap
    assert d(positive=4, std=0.5, mean=-0.01) == "LIVE"


def test_drop_reason_says_consistent_losses():
    decision, reasons = decide(summary(positive=1, mean=-0.0123, best=0.001), "APPROVED")
    assert decision == "DROP"
    assert reasons[0].startswith("consistent losses: mean fold return -1.23% < 0 with only 1/5 positive folds")
    assert "investigate the training data" in reasons[0]


def test_gating_caps():
    assert d(positive=5, std=0.1, gating="REVIEW") == "PAPER"
    assert d(positive=3, std=1.5, gating="REVIEW") == "PAPER"
    assert d(positive=2, std=2.5, gating="REVIEW") == "RETRAIN"
    assert d(positive=5, std=0.1, gating="DROP") == "DROP"
    assert d(positive=5, std=0.1, gating=None) == "LIVE"
    decision, reasons = decide(summary(positive=5, std=0.1), "REVIEW")
    assert reasons[0] == "gating REVIEW caps the decision at PAPER (walk-forward alone: LIVE)"
    decision, reasons = decide(summary(positive=5, std=0.1), "DROP")
    assert decision == "DROP" and "walk-forward alone: LIVE" in reasons[0]


def test_gating_drop_without_backtest():
    assert decide(None, "DROP") == ("DROP", ["gating classified the model DROP on its training metrics; "
                                             "not backtested"])
    with pytest.raises(ValueError):
        decide(None, "APPROVED")
    with pytest.raises(ValueError):
        decide(summary(), "MAYBE")


def test_seed_example_reasons():
    # UNIUSD in the seed: Sharpe -3.67 to 2.36, mean -1.18 (+/- 2.17), 2/5 positive folds
    decision, reasons = decide(summary(positive=2, std=2.17, mean=0.004, best=0.03), "APPROVED")
    assert decision == "RETRAIN"
    assert reasons[:2] == ["2/5 positive folds (< 3/5 needed for PAPER)", "Sharpe std 2.17 > 2.0"]
    assert any(r.startswith("carried by one period") for r in reasons)


def test_live_and_paper_reasons_have_numbers():
    assert decide(summary(positive=4, std=0.5), "APPROVED")[1][:2] == [
        "4/5 positive folds (>= 4/5 needed for LIVE)", "Sharpe std 0.50 < 1.0"]
    assert decide(summary(positive=5, std=1.0), "APPROVED")[1][0] == (
        "5/5 positive folds, but Sharpe std 1.00 >= 1.0 (LIVE needs < 1.0)")
    assert decide(summary(positive=3, std=2.0), "APPROVED")[1][:2] == [
        "3/5 positive folds (>= 3/5 needed for PAPER, < 4/5 needed for LIVE)", "Sharpe std 2.00 <= 2.0"]


def test_single_fold_sigma_is_unmeasured_so_never_live_or_paper():
    for std in (None, float("nan")):
        decision, reasons = decide(summary(folds=1, positive=1, std=std, mean=0.05, best=0.05), "APPROVED")
        assert decision == "RETRAIN"
        assert "undefined with 1 fold" in reasons[0]
    assert d(folds=1, positive=0, std=None, mean=-0.02, best=-0.02) == "DROP"


def test_carried_by_one_period():
    _, reasons = decide(summary(positive=2, mean=0.02, best=0.09, std=1.5), "APPROVED")  # 0.09 of 0.10
    assert any("carried by one period" in r and "90% of the +10.00%" in r for r in reasons)
    _, reasons = decide(summary(positive=4, mean=0.02, best=0.03, std=0.5), "APPROVED")  # 30%
    assert not any("carried" in r for r in reasons)
    _, reasons = decide(summary(positive=2, mean=-0.01, best=0.09, std=1.5), "APPROVED")  # a net loss carries nothing
    assert not any("carried" in r for r in reasons)


def test_in_sample_and_backtest_drawdown_flags():
    decision, reasons = decide(summary(positive=4, std=0.5, in_sample=2), "APPROVED", backtest_max_drawdown=0.151)
    assert decision == "LIVE"  # flags inform, they do not change the rule
    assert "in-sample folds: 2/5 overlap the training period, so their results may flatter the model or not" in " ".join(reasons)
    assert "optimistic" not in " ".join(reasons)  # TSLA's in-sample folds were its losers
    assert "backtest max drawdown 15.1% is worse than the REVIEW bound 15%" in reasons
    _, reasons = decide(summary(positive=4, std=0.5), "APPROVED", backtest_max_drawdown=0.15)
    assert not any("drawdown" in r for r in reasons)


def test_rules_come_from_the_thresholds_file(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text("[decision]\nlive_min_positive_fraction = 1.0\nlive_max_sharpe_std = 0.5\n"
                 "[review]\nmax_drawdown = 0.10\n")
    t = load_thresholds(p)
    assert decide(summary(positive=4, std=0.4), "APPROVED", thresholds=t)[0] == "PAPER"
    assert decide(summary(positive=5, std=0.4), "APPROVED", thresholds=t)[0] == "LIVE"
    _, reasons = decide(summary(positive=5, std=0.4), "APPROVED", 0.12, thresholds=t)
    assert reasons[-1] == "backtest max drawdown 12.0% is worse than the REVIEW bound 10%"


def test_malformed_summary_is_a_value_error():
    with pytest.raises(ValueError, match="folds"):
        decide(summary(folds=0, positive=0), "APPROVED")
    with pytest.raises(ValueError, match="positive"):
        decide(summary(folds=5, positive=6), "APPROVED")
