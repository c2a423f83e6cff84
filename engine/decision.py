"""Deployment decision from a walk-forward summary (design.md 8), capped by gating.

With K folds, p = positive_folds / K and sigma = the fold Sharpe std (ddof 1):

    DROP     mean fold return < 0 and p <= 0.2   (consistent losses: investigate the data)
    LIVE     p >= 0.8 and sigma < 1.0
    PAPER    p >= 0.6 and sigma <= 2.0
    RETRAIN  otherwise

checked in that order (numbers from the [decision] table of the thresholds file).
Gating caps the result: a DROP model is DROP (backtested only when forced), a
REVIEW model is at most PAPER.

sigma is undefined with a single fold (and NaN or None when a fold Sharpe is): the
consistency across periods that LIVE and PAPER require is then unmeasured, so
neither is granted; such a model is RETRAIN (or DROP by the losses rule), and the
reasons say to run more folds.

Every decision comes with its reasons in words, the decisive one first.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from .gating import APPROVED, DROP, REVIEW, Thresholds, as_thresholds

LIVE = "LIVE"
PAPER = "PAPER"
RETRAIN = "RETRAIN"
DECISIONS = (LIVE, PAPER, RETRAIN, DROP)

# positive_folds / folds is compared with fractions like 0.6; 3/5 and 0.6 are the same
# double, but other K need not be, and a fold count must never miss its bound by an ulp.
_EPS = 1e-12


def _num(x: float) -> str:
    """Thresholds as people write them: 2.0, 0.75, 1.25."""
    return f"{x:.1f}" if round(x, 1) == x else f"{x:g}"


def _pct(x: float) -> str:
    return "0" if x == 0 else f"{x:+.2%}"


def _finite(summary: Mapping[str, Any], key: str) -> float | None:
    v = summary.get(key)
    if v is None or isinstance(v, bool):
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"walk-forward summary: {key} is not a number ({v!r})") from None
    return v if math.isfinite(v) else None


def _count(summary: Mapping[str, Any], key: str) -> int:
    v = summary.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or v < 0:
        raise ValueError(f"walk-forward summary: {key} must be a count, got {v!r}")
    return int(v)


def decide(summary: Mapping[str, Any] | None, gating_class: str | None,
           backtest_max_drawdown: float | None = None,
           thresholds: Thresholds | None = None) -> tuple[str, list[str]]:
    """(decision, reasons): decision one of "LIVE" | "PAPER" | "RETRAIN" | "DROP".

    summary: the walk-forward summary (docs/internals.md keys); None only for a model
    that gating dropped and that was therefore not backtested. gating_class:
    "APPROVED" | "REVIEW" | "DROP", or None when there was no gating (a bare model).
    backtest_max_drawdown: the quick backtest's real drawdown (fraction), flagged when
    worse than the REVIEW max_drawdown bound."""
    t = as_thresholds(thresholds)
    r = t.decision
    gating = gating_class.upper() if isinstance(gating_class, str) else gating_class
    if gating not in (None, APPROVED, REVIEW, DROP):
        raise ValueError(f"unknown gating class {gating_class!r}")

    if summary is None:
        if gating == DROP:
            return DROP, ["gating classified the model DROP on its training metrics; not backtested"]
        raise ValueError("a decision needs the walk-forward summary unless gating dropped the model")

    n = _count(summary, "folds")
    k = _count(summary, "positive_folds")
    if n < 1 or k > n:
        raise ValueError(f"walk-forward summary: {k} positive of {n} folds")
    p = k / n
    sigma = _finite(summary, "sharpe_std")
    mean = _finite(summary, "return_mean")
    best = _finite(summary, "return_max")

    need_live = math.ceil(r.live_min_positive_fraction * n - 1e-9)
    need_paper = math.ceil(r.paper_min_positive_fraction * n - 1e-9)
    most_drop = math.floor(r.drop_max_positive_fraction * n + 1e-9)
    folds_live = p >= r.live_min_positive_fraction - _EPS
    folds_paper = p >= r.paper_min_positive_fraction - _EPS

    reasons: list[str] = []
    if mean is not None and mean < r.drop_mean_return_below and p <= r.drop_max_positive_fraction + _EPS:
        base = DROP
        reasons.append(
            f"consistent losses: mean fold return {mean:+.2%} < {_pct(r.drop_mean_return_below)} with only "
            f"{k}/{n} positive folds (<= {most_drop}/{n}); investigate the training data")
    elif folds_live and sigma is not None and sigma < r.live_max_sharpe_std:
        base = LIVE
        reasons.append(f"{k}/{n} positive folds (>= {need_live}/{n} needed for LIVE)")
        reasons.append(f"Sharpe std {sigma:.2f} < {_num(r.live_max_sharpe_std)}")
    elif folds_paper and sigma is not None and sigma <= r.paper_max_sharpe_std:
        base = PAPER
        if folds_live:
            reasons.append(f"{k}/{n} positive folds, but Sharpe std {sigma:.2f} >= {_num(r.live_max_sharpe_std)} "
                           f"(LIVE needs < {_num(r.live_max_sharpe_std)})")
        else:
            reasons.append(f"{k}/{n} positive folds (>= {need_paper}/{n} needed for PAPER, "
                           f"< {need_live}/{n} needed for LIVE)")
            reasons.append(f"Sharpe std {sigma:.2f} <= {_num(r.paper_max_sharpe_std)}")
    else:
        base = RETRAIN
        if not folds_paper:
            reasons.append(f"{k}/{n} positive folds (< {need_paper}/{n} needed for PAPER)")
        if sigma is None:
            why = f"undefined with {n} fold" if n == 1 else "unavailable (a fold Sharpe is not finite)"
            reasons.append(f"Sharpe std {why}: consistency across periods is unmeasured, so neither LIVE nor "
                           f"PAPER can be granted; run more folds")
        elif sigma > r.paper_max_sharpe_std:
            reasons.append(f"Sharpe std {sigma:.2f} > {_num(r.paper_max_sharpe_std)}")
        elif folds_paper:
            reasons.append(f"{k}/{n} positive folds and Sharpe std {sigma:.2f}")

    decision = base
    if gating == DROP:
        decision = DROP
        reasons.insert(0, f"gating classified the model DROP on its training metrics; backtested only because "
                          f"forced, and it stays DROP (walk-forward alone: {base})")
    elif gating == REVIEW and base == LIVE:
        decision = PAPER
        reasons.insert(0, "gating REVIEW caps the decision at PAPER (walk-forward alone: LIVE)")

    if mean is not None and mean < 0 and base != DROP:
        reasons.append(f"mean fold return {mean:+.2%} < 0")
    if n >= 2 and mean is not None and best is not None:
        total = mean * n
        if total > 0 and best > 0 and best >= r.carried_fold_share * total:
            if best >= total:
                share = f"is more than the {total:+.2%} summed over all {n} folds (the others lose together)"
            else:
                share = f"is {best / total:.0%} of the {total:+.2%} summed over {n} folds"
            reasons.append(f"carried by one period: the best fold's {best:+.2%} {share}")
    in_sample = summary.get("in_sample_folds") or 0
    if in_sample:
        reasons.append(f"in-sample folds: {in_sample}/{n} overlap the training period, so their results are "
                       f"optimistic")
    if backtest_max_drawdown is not None and math.isfinite(float(backtest_max_drawdown)):
        dd, bound = float(backtest_max_drawdown), t.review.max_drawdown
        if dd > bound:
            reasons.append(f"backtest max drawdown {dd:.1%} is worse than the REVIEW bound {bound:.0%}")
    return decision, reasons
