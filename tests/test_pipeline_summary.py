"""Summaries across the models of one run: the evidence statistics on the out-of-sample
folds, the deflated Sharpe ratio across the variants of ONE symbol, Benjamini-Hochberg
across symbols (docs/design.md 6.1), checked against plain formulas."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from engine import metrics
from engine.pipeline import ModelJob, decide_jobs, summarize_jobs

BPY = 8766.0
GAMMA = 0.5772156649015329


def _job(seed, symbol=None, *, drift=None, n_folds=3, bars=200, in_sample=(), never_trades=False, hold=True):
    rng = np.random.default_rng(seed)
    job = ModelJob(model_path=None, symbol=symbol or f"S{seed}", timeframe="1Hour", bars_per_year=BPY)
    mu = 0.0005 * seed if drift is None else drift
    for k in range(n_folds):
        r = np.zeros(bars) if never_trades else rng.normal(mu, 0.01, bars)
        job.fold_returns.append(r)
        if hold:
            job.hold_returns.append(rng.normal(0.0002, 0.012, bars))
        sd = r.std(ddof=1)
        job.folds.append({"index": k, "bars": bars, "in_sample": k in in_sample, "metrics": {
            "total_return": float(np.prod(1 + r) - 1), "sharpe": float(r.mean() / sd * math.sqrt(BPY)) if sd else 0.0,
            "n_trades": 0 if never_trades else 7, "exposure": 0.0 if never_trades else 0.5}})
    return job


def _plain_sr(r):
    return r.mean() / r.std(ddof=1)


def _plain_se(r, q):
    sr = _plain_sr(r)
    d = r - r.mean()
    m2 = np.mean(d * d)
    g3, g4 = np.mean(d ** 3) / m2 ** 1.5, np.mean(d ** 4) / m2 ** 2
    return math.sqrt(q * (1 - g3 * sr + (g4 - 1) / 4 * sr * sr) / (r.size - 1))


def _oos(job):
    return np.concatenate([r for r, f in zip(job.fold_returns, job.folds) if not f["in_sample"]])


def test_one_model_per_symbol_has_dsr_equal_to_its_psr():
    jobs = [_job(1), _job(2), _job(4)]
    summarize_jobs(jobs)
    for job in jobs:
        e = job.summary["evidence"]
        assert e["n_variants"] == 1
        assert job.summary["dsr"] == e["dsr"] == pytest.approx(e["psr_hurdle"], abs=0)
        # summary.psr keeps its section 6 meaning: all folds stitched, no q
        assert job.summary["psr"] == pytest.approx(
            metrics.probabilistic_sharpe_ratio(np.concatenate(job.fold_returns)), rel=1e-12)


def test_variants_of_one_symbol_are_deflated_as_design_6_1_says():
    """Three checkpoints of one symbol, one of which never traded: it counts in N, not
    in V (its SR is NaN; today's 0.0 would enter the variance)."""
    jobs = [_job(3, "AAA"), _job(5, "AAA"), _job(7, "AAA", never_trades=True), _job(2, "BBB")]
    summarize_jobs(jobs)
    ev = [j.summary["evidence"] for j in jobs]
    assert [e["n_variants"] for e in ev] == [3, 3, 3, 1]
    assert ev[2]["sr"] is None and ev[2]["dsr"] is None and ev[2]["never_traded"]
    srs = [_plain_sr(_oos(j)) for j in jobs[:2]]
    assert ev[0]["sr"] == pytest.approx(srs[0], rel=1e-12)
    v_noise = np.median([e["q"] / (e["n_bars"] - 1) for e in ev[:2]])
    v = max(np.var(srs, ddof=1), v_noise)
    n = 3
    sr_star = math.sqrt(v) * ((1 - GAMMA) * norm.ppf(1 - 1 / n) + GAMMA * norm.ppf(1 - 1 / (n * math.e)))
    for job, e, sr in zip(jobs[:2], ev[:2], srs):
        want = norm.cdf((sr - sr_star) / _plain_se(_oos(job), e["q"]))
        assert e["dsr"] == pytest.approx(want, rel=1e-9)
        assert e["dsr"] < e["psr_hurdle"]  # deflating never helps
    assert ev[3]["dsr"] == pytest.approx(ev[3]["psr_hurdle"], abs=0)


def test_benjamini_hochberg_across_symbols_uses_each_best_variant():
    jobs = [_job(9, "AAA"), _job(2, "AAA"), _job(6, "BBB"), _job(1, "CCC"), _job(8, "DDD")]
    jobs[4].gating_class = "DROP"  # a gating drop (backtested because forced) is left out
    summarize_jobs(jobs)
    ev = [j.summary["evidence"] for j in jobs]
    best_aaa = max(ev[0]["dsr"], ev[1]["dsr"])
    p = np.array([1 - best_aaa, 1 - ev[2]["dsr"], 1 - ev[3]["dsr"]])
    order = np.argsort(p)
    m = p.size
    q = np.empty(m)
    running = 1.0
    for rank in range(m, 0, -1):  # plain BH step-up
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        q[i] = running
    assert ev[0]["bh_q"] == ev[1]["bh_q"] == pytest.approx(q[0], rel=1e-12)
    assert ev[2]["bh_q"] == pytest.approx(q[1], rel=1e-12)
    assert ev[3]["bh_q"] == pytest.approx(q[2], rel=1e-12)
    assert [e["bh_pass"] for e in ev[:4]] == [q[0] <= 0.1, q[0] <= 0.1, q[1] <= 0.1, q[2] <= 0.1]
    assert ev[4]["bh_q"] is None and ev[4]["bh_pass"] is None


def test_a_run_of_one_symbol_needs_no_bh():
    jobs = [_job(3, "AAA"), _job(4, "AAA")]
    summarize_jobs(jobs)
    assert all(j.summary["evidence"]["bh_q"] is None for j in jobs)


def test_in_sample_folds_are_left_out_of_the_evidence():
    job = _job(2, n_folds=4, in_sample=(0,))
    job.fold_returns[0] = job.fold_returns[0] + 0.05  # a flattering in-sample fold
    summarize_jobs([job])
    e = job.summary["evidence"]
    assert e["oos_folds"] == 3 and e["n_bars"] == 600
    assert e["sr"] == pytest.approx(_plain_sr(_oos(job)), rel=1e-12)
    assert len(e["fold_sharpe"]) == 3
    assert "IN_SAMPLE_FOLDS" in {f["code"] for f in job.flags}
    flag = next(f for f in job.flags if f["code"] == "IN_SAMPLE_FOLDS")
    assert "optimistic" not in flag["message"]  # in-sample results may flatter or not (issue 8 item 11)
    assert "left out" in flag["message"]


def test_buy_and_hold_and_the_excess_sharpe():
    job = _job(4)
    summarize_jobs([job])
    e = job.summary["evidence"]
    hold = np.concatenate(job.hold_returns)
    assert e["buy_and_hold"]["return"] == pytest.approx(np.prod(1 + hold) - 1, rel=1e-12)
    assert e["buy_and_hold"]["sharpe"] == pytest.approx(_plain_sr(hold) * math.sqrt(BPY), rel=1e-12)
    r = np.concatenate(job.fold_returns)
    assert e["excess_sharpe"] == pytest.approx(_plain_sr(r - hold) * math.sqrt(BPY), rel=1e-12)


def test_a_never_trading_model_has_buy_and_holds_figures_but_no_excess_sharpe():
    """Its returns are all 0, so `r - hold` is just -hold: an information ratio of a model
    that never took a position would only be buy-and-hold's Sharpe negated."""
    job = _job(3, never_trades=True)
    summarize_jobs([job])
    e = job.summary["evidence"]
    hold = np.concatenate(job.hold_returns)
    assert e["never_traded"] is True and e["excess_sharpe"] is None
    assert e["buy_and_hold"]["sharpe"] == pytest.approx(_plain_sr(hold) * math.sqrt(BPY), rel=1e-12)


def test_benchmark_buy_and_hold_tests_the_excess_returns():
    import dataclasses

    from engine.gating import default_thresholds

    t = default_thresholds()
    t = dataclasses.replace(t, evidence=dataclasses.replace(t.evidence, benchmark="buy_and_hold"))
    job = _job(4)
    summarize_jobs([job], t)
    r, hold = np.concatenate(job.fold_returns), np.concatenate(job.hold_returns)
    assert job.summary["evidence"]["sr"] == pytest.approx(_plain_sr(r - hold), rel=1e-12)


def test_never_trading_model_is_retrain_in_the_evidence_profile():
    job = _job(1, never_trades=True)
    summarize_jobs([job])
    decide_jobs([job])
    assert job.summary["evidence"]["sr"] is None
    assert job.decisions["evidence"] == "RETRAIN" and job.decision == "RETRAIN"
    assert any("never traded" in r for r in job.reasons)


def test_both_profiles_are_decided_and_the_profile_picks_one():
    import dataclasses

    from engine.gating import default_thresholds

    jobs = [_job(s) for s in (1, 6)]
    summarize_jobs(jobs)
    decide_jobs(jobs, dataclasses.replace(default_thresholds(), profile="seed"))
    for job in jobs:
        assert job.profile == "seed" and set(job.decisions) == {"evidence", "seed"}
        assert job.decision == job.decisions["seed"]
    decide_jobs(jobs)
    for job in jobs:
        assert job.profile == "evidence" and job.decision == job.decisions["evidence"]


def test_flags_are_reasons_in_both_profiles():
    import dataclasses

    from engine.gating import default_thresholds

    job = _job(6)
    job.flag("SYMBOL_MISMATCH", "x.pt: the checkpoint says symbol A but its file name says B")
    summarize_jobs([job])
    for profile in ("evidence", "seed"):
        decide_jobs([job], dataclasses.replace(default_thresholds(), profile=profile))
        assert "SYMBOL_MISMATCH: x.pt: the checkpoint says symbol A but its file name says B" in job.reasons


@pytest.mark.parametrize("exposure, trades, flagged", [(0.99, 1, True), (0.95, 1, True), (0.94, 1, False),
                                                       (1.0, 2, False), (0.96, 1, True)])
def test_buy_and_hold_like_flag(exposure, trades, flagged):
    job = _job(3, n_folds=3, in_sample=(0,))
    for k, f in enumerate(job.folds):
        # the in-sample fold is left out: its trades must not unflag the model
        f["metrics"].update(exposure=exposure if k else 0.0, n_trades=trades if k else 40)
    summarize_jobs([job])
    assert ("BUY_AND_HOLD_LIKE" in {f["code"] for f in job.flags}) is flagged
