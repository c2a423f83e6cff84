"""What a run concludes per job once the kernel has run: the walk-forward summary and
its evidence statistics, the stress scenarios, the variants' deflation and the
multi-symbol FDR, then the decision (LIVE / PAPER / RETRAIN / DROP). engine/pipeline.py
calls `summarize_jobs` then `decide_jobs`; both work on its `ModelJob`s in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .decision import SHORT_OF_MIN_TRL, decide_evidence, decide_seed, min_trl_shortfall
from .errors import FoldgateError
from .gating import as_thresholds
from .metrics import (
    apply_variants,
    benjamini_hochberg,
    best_variant,
    evidence_summaries,
    is_buy_and_hold_like,
    per_bar_sharpe,
    symbol_pvalue,
    walk_forward_summary,
)
from .pbo import N_BLOCKS, PBOResult, pbo_cscv, returns_matrix
from .stress import BASE, FRAGILE_SCENARIO, STAT_KEYS, fragile_to_costs, stress_section

if TYPE_CHECKING:  # the jobs are engine/pipeline.py's, which imports this module
    from .pipeline import ModelJob


def summarize_jobs(jobs: list[ModelJob], thresholds=None) -> None:
    """Per job: the walk-forward summary of section 6 (all folds) and the evidence
    statistics of 6.1 (out-of-sample folds only, with buy-and-hold over the same folds);
    then the variants of each (symbol, timeframe) are deflated and, in a run of several
    symbols, Benjamini-Hochberg decides which symbols' evidence survives the multiplicity."""

    t = as_thresholds(thresholds)
    with_folds = [j for j in jobs if j.folds]
    evidence = _all_evidence(with_folds, t)
    for job in with_folds:
        summary = walk_forward_summary(
            [f["metrics"] for f in job.folds], job.fold_returns, [f["in_sample"] for f in job.folds])
        summary["evidence"] = evidence[id(job), BASE]
        job.oos_positive_folds = sum(1 for f in job.folds
                                     if not f["in_sample"] and (f["metrics"]["total_return"] or 0) > 0)
        job.summary = summary
    _variants_and_fdr(jobs, t)
    for job in with_folds:
        job.summary["dsr"] = job.summary["evidence"]["dsr"]
        job.summary = {k: _clean(v) for k, v in job.summary.items()}
        _evidence_flags(job, t)
    for job in jobs:
        if job.stress_runs:
            _stress(job, t, evidence)


def _all_evidence(jobs: list[ModelJob], t) -> dict:
    """{(id(job), scenario): evidence} for every job's base folds and each --stress
    scenario's, computed in one evidence_summaries call: thousands of small numpy calls
    per model otherwise, which cost more than simulating it. Buy-and-hold's figures and
    the excess Sharpe are the base scenario's only (a stress row keeps STAT_KEYS)."""
    keys, requests, benchmarks = [], [], []
    for job in jobs:
        oos = [k for k, f in enumerate(job.folds) if not f["in_sample"]]
        # buy-and-hold over the same folds, the same for every scenario; a job built by
        # hand (a notebook) may lack it
        hold = np.concatenate([job.hold_returns[k] for k in oos]) \
            if oos and len(job.hold_returns) == len(job.folds) else None
        if t.evidence.benchmark == "buy_and_hold" and hold is None:
            raise FoldgateError("[decision.evidence] benchmark = \"buy_and_hold\" needs buy-and-hold's returns")
        scenarios = [(BASE, [f["metrics"] for f in job.folds], job.fold_returns)]
        scenarios += [(name, [m for m, _ in run["folds"]], [r for _, r in run["folds"]])
                      for name, run in job.stress_runs.items() if run["folds"]]
        for name, fold_metrics, fold_returns in scenarios:
            request, excess = _evidence_request(job, t, oos, hold, fold_metrics, fold_returns)
            keys.append((id(job), name))
            requests.append(request)
            benchmarks.append((hold, excess, request[3], job.bars_per_year) if name == BASE else None)
    ev = t.evidence
    out = evidence_summaries(requests, hurdle_sharpe=ev.hurdle_sharpe, level=ev.live_min_psr)
    for evidence, bench in zip(out, benchmarks):
        if bench is None or bench[0] is None:
            continue
        hold, excess, traded, bars_per_year = bench
        ann = float(np.sqrt(bars_per_year))
        evidence["buy_and_hold"] = {"return": _finite_or_none(np.prod(1.0 + hold) - 1.0),
                                    "sharpe": _finite_or_none(per_bar_sharpe(hold) * ann)}
        # the information ratio: annualised Sharpe of the per-bar excess over buy-and-hold
        evidence["excess_sharpe"] = _finite_or_none(per_bar_sharpe(excess) * ann) if traded else None
    return dict(zip(keys, out))


def _stress(job: ModelJob, t, evidence: dict) -> None:
    """--stress: each scenario's fold returns and Sharpes, its evidence statistics
    (from `_all_evidence`), their change from the base; FRAGILE_TO_COSTS (docs/design.md
    11). Decisions stay on the base."""

    def row(name, fold_metrics, backtest):
        out = {"backtest_return": None if backtest is None else backtest["total_return"],
               "backtest_sharpe": None if backtest is None else backtest["sharpe"]}
        if fold_metrics:
            rets = [m["total_return"] for m in fold_metrics]
            sharpes = [m["sharpe"] for m in fold_metrics]
            ev = evidence[id(job), name]
            out.update({k: _finite_or_none(ev[k]) for k in STAT_KEYS})
            out.update(fold_returns=[_finite_or_none(r) for r in rets],
                       fold_sharpes=[_finite_or_none(x) for x in sharpes],
                       positive_folds=sum(1 for r in rets if (r or 0) > 0),
                       return_mean=_finite_or_none(np.mean([r or 0.0 for r in rets])),
                       sharpe_mean=_finite_or_none(np.mean([x or 0.0 for x in sharpes])))
        else:
            out.update({k: None for k in STAT_KEYS})
            out.update(fold_returns=[], fold_sharpes=[], positive_folds=0, return_mean=None, sharpe_mean=None)
        return out

    rows = {BASE: row(BASE, [f["metrics"] for f in job.folds],
                      None if job.backtest is None else job.backtest["metrics"])}
    for name, run in job.stress_runs.items():
        rows[name] = row(name, [m for m, _ in run["folds"]], run["backtest"])
    job.stress = stress_section(rows)
    paper = t.evidence.paper_min_psr
    b, x2 = rows[BASE]["psr0"], rows.get(FRAGILE_SCENARIO, {}).get("psr0")
    if job.folds and fragile_to_costs(b, x2, paper):
        x2_text = "n/a" if x2 is None else f"{x2:.3f}"
        job.flag("FRAGILE_TO_COSTS",
                 f"PSR(0) {b:.3f} reaches the PAPER level ({paper}) at base costs but {x2_text} at 2x "
                 f"commission and slippage: the edge may not survive real costs")


def _evidence_request(job: ModelJob, t, oos: list[int], hold, fold_metrics: list[dict], fold_returns):
    """What docs/design.md 6.1 takes of the job's out-of-sample folds `oos` under one
    scenario's metrics and returns: ((returns, fold lengths, bars per year, traded) for
    evidence_summaries, the excess returns over buy-and-hold's `hold` or None)."""
    returns = [np.asarray(fold_returns[k], dtype=np.float64) for k in oos]
    stitched = np.concatenate(returns) if returns else np.zeros(0)
    excess = stitched - hold if hold is not None else None
    # with no out-of-sample fold there is nothing to have traded in: that is said, not "never traded"
    traded = not oos or any(fold_metrics[k].get("n_trades", 1) > 0 for k in oos)
    series = excess if t.evidence.benchmark == "buy_and_hold" else stitched
    return (series, [r.size for r in returns], job.bars_per_year, traded), excess


def _symbol_groups(jobs: list[ModelJob]) -> dict[tuple[str, str], list[ModelJob]]:
    """The variants of each (symbol, timeframe): its models with a summary."""
    groups: dict[tuple[str, str], list[ModelJob]] = {}
    for job in jobs:
        if job.summary is not None:
            groups.setdefault((job.symbol, job.timeframe), []).append(job)
    return groups


def _fdr_eligible(group: list[ModelJob]) -> list[ModelJob]:
    """The variants whose symbol takes part in BH: gating drops (backtested when forced) do not."""
    return [j for j in group if j.gating_class != "DROP"]


def is_multi_symbol(jobs: list[ModelJob]) -> bool:
    """A run of several symbols (docs/design.md 8: LIVE then also needs the BH pass)."""
    return sum(1 for group in _symbol_groups(jobs).values() if _fdr_eligible(group)) > 1


def _variants_and_fdr(jobs: list[ModelJob], t) -> None:

    groups = _symbol_groups(jobs)
    pvalued = []  # (group, p-value of its best variant): errors and gating drops left out
    for group in groups.values():
        apply_variants([j.summary["evidence"] for j in group])
        if len(group) > 1:
            pbo = _variants_pbo(group)
            for job in group:
                job.summary["pbo"] = pbo
        eligible = _fdr_eligible(group)
        if eligible:
            best = best_variant([j.summary["evidence"] for j in eligible])
            pvalued.append((group, symbol_pvalue(eligible[best].summary["evidence"])))
    if not is_multi_symbol(jobs):  # a run of one symbol needs no BH
        return
    qvalues, passes = benjamini_hochberg([p for _, p in pvalued], t.evidence.q_fdr)
    for (group, _), q, ok in zip(pvalued, qvalues, passes):
        for job in group:
            job.summary["evidence"]["bh_q"] = _finite_or_none(q)
            job.summary["evidence"]["bh_pass"] = bool(ok)


def _variants_pbo(group: list[ModelJob]) -> dict:
    """docs/design.md 11: the probability of backtest overfitting across one symbol's variants,
    by CSCV over the folds that are out of sample for every one of them."""

    def undefined(reason):
        return PBOResult(None, reason, len(group), 0, N_BLOCKS, 0, None, None).to_dict()

    n_folds = {len(j.folds) for j in group}
    if len(n_folds) != 1:
        return undefined("the variants have different numbers of folds")
    common = [k for k in range(n_folds.pop()) if not any(j.folds[k]["in_sample"] for j in group)]
    if not common:
        return undefined("no fold is out of sample for every variant")
    try:
        m = returns_matrix([np.concatenate([j.fold_returns[k] for k in common]) for j in group])
        return pbo_cscv(m).to_dict()
    except ValueError as exc:  # folds of different lengths, a ruined (NaN) curve
        return undefined(str(exc))


def _evidence_flags(job: ModelJob, t) -> None:
    """The model's flags of docs/design.md 8, each also a reason in both profiles: in-sample
    folds, BUY_AND_HOLD_LIKE, a window shorter than MinTRL (the evidence rule says itself
    when a model never traded)."""

    e = job.summary["evidence"]
    oos = [f for f in job.folds if not f["in_sample"]]
    n_is = len(job.folds) - len(oos)
    if n_is:
        job.flag("IN_SAMPLE_FOLDS",
                 f"{n_is} of {len(job.folds)} folds overlap the training period; they are shown but left out of "
                 f"the evidence statistics, as their results may flatter the model or not")
    bars = sum(f["bars"] for f in oos)
    if bars:
        exposure = sum((f["metrics"]["exposure"] or 0.0) * f["bars"] for f in oos) / bars
        if is_buy_and_hold_like(exposure, [f["metrics"]["n_trades"] for f in oos]):
            bh = e.get("buy_and_hold") or {}
            vs = f" (buy-and-hold Sharpe {bh['sharpe']:.2f})" if bh.get("sharpe") is not None else ""
            job.flag("BUY_AND_HOLD_LIKE",
                     f"exposure {exposure:.0%} with at most one trade per fold: the model mostly holds the "
                     f"symbol{vs}; its edge is the market's, not the policy's")
    shortfall = min_trl_shortfall(e, t.evidence.live_min_psr)
    if shortfall:
        job.flag(SHORT_OF_MIN_TRL, shortfall)


def _finite_or_none(x):
    return None if x is None or not np.isfinite(x) else float(x)


def _clean(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return _finite_or_none(float(v))
    return v


GATING_DROP_REASON = "gating classified the model DROP on its training metrics; not backtested"


def decide_jobs(jobs: list[ModelJob], thresholds=None) -> None:
    """Both profiles' verdicts for every decided job; `decision` and `reasons` are those
    of the thresholds' profile."""

    t = as_thresholds(thresholds)
    multi = is_multi_symbol(jobs)
    for job in jobs:
        job.profile = t.profile
        if job.error:
            job.decision, job.reasons = None, [job.error]
            continue
        if job.gating_class == "DROP" and not job.folds:
            job.decision = "DROP"
            job.decisions = {"evidence": "DROP", "seed": "DROP"}
            job.reasons = [GATING_DROP_REASON]
            continue
        if job.summary is None:
            continue
        bt_dd = (job.backtest or {}).get("metrics", {}).get("max_drawdown")
        e = job.summary["evidence"]
        verdicts = {
            "evidence": decide_evidence(e, job.oos_positive_folds, job.gating_class, t, multi_symbol=multi,
                                        flags=job.flags),
            "seed": decide_seed(job.summary, job.gating_class, bt_dd, t),
        }
        # flags are reasons in both profiles (docs/design.md 8); the seed rule words in-sample folds itself
        verdicts["seed"][1].extend(f"{f['code']}: {f['message']}" for f in job.flags
                                   if f["code"] != "IN_SAMPLE_FOLDS")
        job.decisions = {name: v[0] for name, v in verdicts.items()}
        job.decision, job.reasons = verdicts[t.profile]
