"""Adversarial review of the evidence profile (issue 9) against docs/design.md 6.1 and 8:
each test here failed against a deliberate mutation of the code it guards (a comparison
flipped, in-sample folds counted, a median read as a mean) that the suite let through."""

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import norm

from cli.main import app
from engine.decision import decide_evidence
from engine.errors import ConfigError
from engine.gating import default_thresholds, load_thresholds
from engine.metrics import apply_variants, benjamini_hochberg, evidence_summary
from engine.pipeline import ModelJob, decide_jobs, summarize_jobs
from naive_metrics import naive_dsr_variants

ROOT = Path(__file__).resolve().parent.parent
BPY = 8766.0


def _job(seed, *, means, bars=300, in_sample=(), trades=None, exposure=None, symbol="AAA", exact=False):
    """A job built by hand: fold k has mean return means[k] (exactly, with std 0.01, when
    exact); trades / exposure per fold."""
    rng = np.random.default_rng(seed)
    job = ModelJob(model_path=None, symbol=symbol, timeframe="1Hour", bars_per_year=BPY)
    bars = [bars] * len(means) if isinstance(bars, int) else list(bars)
    for k, (mu, n) in enumerate(zip(means, bars)):
        r = rng.normal(mu, 0.01, n)
        if exact:
            r = mu + 0.01 * (r - r.mean()) / r.std(ddof=1)
        job.fold_returns.append(r)
        job.hold_returns.append(rng.normal(0.0, 0.01, n))
        job.folds.append({"index": k, "bars": n, "in_sample": k in in_sample, "metrics": {
            "total_return": float(np.prod(1 + r) - 1), "sharpe": float(r.mean() / r.std(ddof=1) * math.sqrt(BPY)),
            "n_trades": 7 if trades is None else trades[k],
            "exposure": 0.5 if exposure is None else exposure[k]}})
    return job


# --- in-sample folds are left out of every statistic the evidence profile decides on


def test_positive_fraction_counts_out_of_sample_folds_only():
    # two winning in-sample folds, three losing out-of-sample ones
    job = _job(1, means=[0.01, 0.01, -0.001, -0.001, -0.001], in_sample=(0, 1))
    summarize_jobs([job])
    decide_jobs([job])
    assert job.summary["positive_folds"] == 2 + sum(
        f["metrics"]["total_return"] > 0 for f in job.folds[2:])  # section 6 counts every fold
    assert job.oos_positive_folds == sum(f["metrics"]["total_return"] > 0 for f in job.folds[2:])
    assert job.oos_positive_folds < 2
    assert not any(r.startswith("2/3") for r in job.reasons)


def test_trades_in_in_sample_folds_do_not_make_a_model_traded():
    job = _job(2, means=[0.001, 0.0, 0.0], in_sample=(0,), trades=[12, 0, 0])
    for k in (1, 2):
        job.fold_returns[k] = np.zeros(300)
        job.folds[k]["metrics"].update(total_return=0.0, sharpe=0.0)
    summarize_jobs([job])
    decide_jobs([job])
    e = job.summary["evidence"]
    assert e["never_traded"] is True and e["sr"] is None
    assert job.decisions["evidence"] == "RETRAIN" and any("never traded" in r for r in job.reasons)


def test_no_out_of_sample_fold_is_not_called_never_traded():
    job = _job(3, means=[0.001, 0.001], in_sample=(0, 1))
    summarize_jobs([job])
    decide_jobs([job])
    e = job.summary["evidence"]
    assert e["oos_folds"] == 0 and e["never_traded"] is False
    assert job.decision == "RETRAIN" and job.reasons[0].startswith("only 0 out-of-sample folds")


# --- BUY_AND_HOLD_LIKE: exposure weighted by bars


@pytest.mark.parametrize("bars, exposure, flagged", [
    ((900, 100), (1.0, 0.6), True),     # bar-weighted 0.96; the plain mean 0.80 would not flag
    ((100, 900), (1.0, 0.94), False),   # bar-weighted 0.946; the plain mean 0.97 would flag
])
def test_buy_and_hold_like_weights_exposure_by_bars(bars, exposure, flagged):
    job = _job(4, means=[0.0005, 0.0005], bars=bars, trades=[1, 1], exposure=exposure)
    summarize_jobs([job])
    assert ("BUY_AND_HOLD_LIKE" in {f["code"] for f in job.flags}) is flagged


# --- Benjamini-Hochberg: a q-value equal to q_fdr passes (docs/design.md 8: "the BH pass")


def test_bh_q_value_at_the_bound_passes():
    q, ok = benjamini_hochberg([0.05, 0.1], 0.10)
    assert q == [0.1, 0.1] and ok == [True, True]
    q, ok = benjamini_hochberg([0.05 + 1e-12, 0.1 + 1e-12], 0.10)
    assert ok == [False, False]


# --- DSR: V_noise is the MEDIAN of q/(n-1)


def test_v_noise_is_the_median_over_variants_of_different_lengths():
    rng = np.random.default_rng(5)
    ev = []
    for n in (200, 2000, 20000, 40000):  # median of q/(n-1) far from its mean
        z = rng.normal(size=n)
        r = 0.01 * ((z - z.mean()) / z.std(ddof=1) + 0.03)  # every variant's SR is 0.03
        ev.append(evidence_summary(r, [n // 4] * 3 + [n - 3 * (n // 4)], BPY))
    # SRs close together: V is V_noise, not the SRs' variance
    apply_variants(ev)
    want = naive_dsr_variants([e["sr"] for e in ev], [e["se"] for e in ev], [e["q"] for e in ev],
                              [e["n_bars"] for e in ev])
    v_noise = np.median([e["q"] / (e["n_bars"] - 1) for e in ev])
    assert np.var([e["sr"] for e in ev], ddof=1) < v_noise  # the case this test is about
    for e, w in zip(ev, want):
        assert e["dsr"] == pytest.approx(w, rel=1e-9)


# --- MinTRL uses the configured LIVE level, never a fixed 0.95


def test_min_trl_level_is_the_thresholds_live_min_psr():
    t = default_thresholds()
    t = dataclasses.replace(t, evidence=dataclasses.replace(t.evidence, live_min_psr=0.9))
    job = _job(6, means=[0.001] * 4)
    summarize_jobs([job], t)
    e = job.summary["evidence"]
    assert e["level"] == 0.9
    f = e["q"] * (1 - e["g3"] * e["sr"] + (e["g4"] - 1) / 4 * e["sr"] ** 2)
    assert e["min_trl_bars"] == pytest.approx(1 + f * (norm.ppf(0.9) / e["sr"]) ** 2, rel=1e-9)


# --- the thresholds file: a LIVE level MinTRL cannot use is a config error, not a traceback


@pytest.mark.parametrize("level", ["1.0", "0.5", "0.3"])
def test_live_min_psr_outside_the_open_interval_is_refused(tmp_path, level):
    p = tmp_path / "t.toml"
    p.write_text(f"[decision.evidence]\nlive_min_psr = {level}\npaper_min_psr = 0.2\n")
    with pytest.raises(ConfigError) as exc:
        load_thresholds(p)
    assert "'decision.evidence.live_min_psr'" in str(exc.value) and "\n" not in str(exc.value)


def test_live_min_psr_one_through_backtest_is_one_error_line(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    cfg = tmp_path / "t.toml"
    cfg.write_text("[decision.evidence]\nlive_min_psr = 1.0\n")
    r = CliRunner().invoke(app, ["backtest", "--store", str(ROOT / "data" / "bars"), "--model",
                                 str(ROOT / "data" / "policies" / "ETHUSD_1Hour.pt"), "--days", "60",
                                 "--walk-forward", "2", "--config", str(cfg)])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "live_min_psr" in errors[0]


# --- reasons: the decisive test first


def _ev(psr0, cochran_p=0.5):
    return {"oos_folds": 5, "psr0": psr0, "psr_hurdle": psr0, "dsr": psr0, "n_variants": 1, "hurdle_sharpe": 0.0,
            "cochran_p": cochran_p, "bh_q": None, "bh_pass": None, "never_traded": False, "n_bars": 4000,
            "min_trl_bars": None, "min_trl_days": None, "level": 0.95, "min_trl_reason": None, "sr": 0.01}


def test_retrain_says_first_why_it_is_not_paper():
    decision, reasons = decide_evidence(_ev(0.62, cochran_p=0.001), 1, "APPROVED")
    assert decision == "RETRAIN"
    assert reasons[0] == "PSR 0.62 < 0.80 needed for PAPER"
    # the LIVE tests it failed follow
    assert "PSR 0.62 < 0.95 needed for LIVE" in reasons[1:]
    assert any(r.startswith("1/5 out-of-sample folds positive") for r in reasons[1:])
    assert any(r.startswith("Cochran's Q p 0.001 < 0.01") for r in reasons[1:])


def test_paper_says_first_why_it_is_not_live():
    decision, reasons = decide_evidence(_ev(0.85), 3, "APPROVED")
    assert decision == "PAPER" and reasons[0] == "PSR 0.85 < 0.95 needed for LIVE"


# --- a run of several symbols: LIVE also needs the BH pass, through decide_jobs


def test_several_symbols_live_needs_the_bh_pass_through_the_pipeline():
    strong = _job(7, means=[0.00075] * 4, symbol="AAA")
    others = [_job(8 + i, means=[-0.0002] * 4, symbol=f"Z{i}") for i in range(3)]
    summarize_jobs([strong] + others)
    decide_jobs([strong] + others)
    e = strong.summary["evidence"]
    assert e["psr_hurdle"] >= 0.95 and e["cochran_p"] >= 0.01 and strong.oos_positive_folds >= 2  # LIVE alone
    assert e["bh_q"] > 0.10 and e["bh_pass"] is False
    assert strong.decision == "PAPER"
    assert any(r.startswith("BH q-value") and "needed for LIVE" in r for r in strong.reasons)
    # the same model alone: one symbol needs no BH
    alone = _job(7, means=[0.00075] * 4, symbol="AAA")
    summarize_jobs([alone])
    decide_jobs([alone])
    assert alone.summary["evidence"]["bh_q"] is None and alone.decision == "LIVE"


# --- terminal output


def _backtest(tmp_path, monkeypatch, *args):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "80")
    return CliRunner().invoke(app, ["backtest", "--store", str(ROOT / "data" / "bars"), "--model",
                                    str(ROOT / "data" / "policies" / "ETHUSD_1Hour.pt"), *map(str, args)])


def test_backtest_title_is_one_line(tmp_path, monkeypatch):
    r = _backtest(tmp_path, monkeypatch, "--days", 30)
    assert r.exit_code == 0, r.output
    assert any(re.fullmatch(r"Backtest \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d", line.strip())
               for line in r.output.splitlines()), r.output


def test_min_trl_is_the_same_whole_number_in_the_figures_and_the_reasons(tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    r = _backtest(tmp_path, monkeypatch, "--days", 180, "--walk-forward", 5, "--json", out)
    assert r.exit_code == 0, r.output
    e = json.loads(out.read_text())["models"][0]["summary"]["evidence"]
    assert e["min_trl_bars"] is not None and e["min_trl_bars"] > e["n_bars"]  # the shipped ETHUSD: short window
    want = math.ceil(e["min_trl_bars"])
    text = " ".join(r.output.split())  # reasons wrap at 80 columns
    assert f"MinTRL: {want:,} bars" in text
    assert f"< {want} (" in text  # "window shorter than MinTRL: ... < N (D days)"


def test_summary_table_does_not_call_an_undecided_model_an_error():
    from cli.output import undecided_label

    assert undecided_label({"decision": None, "error": "boom"}) == "ERROR"
    assert undecided_label({"decision": None, "error": None}) == "-"


def test_a_failed_model_is_named_once_on_stderr(tmp_path, monkeypatch):
    bad = tmp_path / "BAD_1Hour.pt"
    bad.write_bytes(b"not a checkpoint")
    r = _backtest(tmp_path, monkeypatch, "--model", bad, "--days", 60, "--walk-forward", 2)
    assert r.exit_code == 1, r.output
    line = next(x for x in r.stderr.splitlines() if str(bad) in x)
    assert line.startswith("Error: ") and line.count(str(bad)) == 1, line


# --- a window shorter than MinTRL is a flag, and so a reason in BOTH profiles (docs/design.md 8)


def test_short_of_min_trl_is_a_flag_and_a_reason_in_both_profiles():
    job = _job(9, means=[0.0002] * 4, exact=True)  # per-bar SR 0.02
    summarize_jobs([job])
    e = job.summary["evidence"]
    assert e["min_trl_bars"] is not None and e["n_bars"] < e["min_trl_bars"]
    flag = next(f for f in job.flags if f["code"] == "SHORT_OF_MIN_TRL")
    assert flag["message"].startswith(f"window shorter than MinTRL: {e['n_bars']} out-of-sample bars < "
                                      f"{math.ceil(e['min_trl_bars'])}")
    for profile in ("evidence", "seed"):
        decide_jobs([job], dataclasses.replace(default_thresholds(), profile=profile))
        assert sum("shorter than MinTRL" in r for r in job.reasons) == 1, (profile, job.reasons)
    # long enough: no flag
    job = _job(10, means=[0.002] * 4, exact=True)  # per-bar SR 0.2
    summarize_jobs([job])
    assert job.summary["evidence"]["n_bars"] >= job.summary["evidence"]["min_trl_bars"]
    assert "SHORT_OF_MIN_TRL" not in {f["code"] for f in job.flags}


@pytest.mark.parametrize("profile", ["evidence", "seed"])
def test_summary_table_fits_80_columns_without_cutting_its_cells(profile):
    import io

    from rich.console import Console

    from cli.output import print_summary_table

    ev = {"sr_annual": -12.34, "sr_ci90": [-14.56, -10.12], "psr_hurdle": 0.001, "min_trl_days": 12345.0,
          "bh_q": 0.999, "oos_folds": 5}
    model = {"symbol": "PAXGUSD", "gating": {"classification": "APPROVED"}, "decision": "RETRAIN", "error": None,
             "decisions": {"evidence": "RETRAIN", "seed": "RETRAIN"},
             "summary": {"positive_folds": 5, "folds": 5, "sharpe_mean": -12.34, "sharpe_std": 10.12,
                         "dsr": 0.001, "evidence": ev}}
    buf = io.StringIO()
    con = Console(file=buf, width=80, highlight=False, soft_wrap=False)
    print_summary_table(con, {"models": [model]}, profile)
    lines = buf.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "…" not in buf.getvalue(), buf.getvalue()
    assert "APPROVED" in buf.getvalue() and "RETRAIN" in buf.getvalue()
    wide = io.StringIO()
    print_summary_table(Console(file=wide, width=120, highlight=False, soft_wrap=False), {"models": [model]}, profile)
    assert "SR mean" in wide.getvalue() and "90% CI" in wide.getvalue()  # all columns where they fit


def test_reasons_say_when_the_psr_is_of_the_excess_over_buy_and_hold():
    t = default_thresholds()
    t = dataclasses.replace(t, evidence=dataclasses.replace(t.evidence, benchmark="buy_and_hold"))
    _, reasons = decide_evidence(_ev(0.85), 3, "APPROVED", t)
    assert reasons[0] == "PSR of the excess over buy-and-hold 0.85 < 0.95 needed for LIVE"
    _, reasons = decide_evidence(_ev(0.85), 3, "APPROVED")
    assert reasons[0] == "PSR 0.85 < 0.95 needed for LIVE"
