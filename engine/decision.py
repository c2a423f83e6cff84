"""Deployment decisions (docs/design.md 8), capped by gating, in two profiles.

evidence (the default), `decide_evidence`, on the statistics of docs/design.md 6.1 of the
out-of-sample folds (engine.metrics.evidence_summary), checked in this order:

    RETRAIN  fewer than min_oos_folds (2) out-of-sample folds, or the model never traded
    DROP     PSR(0) <= 0.05                      (losses beyond noise)
    LIVE     PSR(hurdle) >= 0.95, positive out-of-sample folds >= 50%, Cochran's Q
             p >= 0.01, and in a run of several symbols the Benjamini-Hochberg pass
    PAPER    PSR(0) >= 0.80
    RETRAIN  otherwise

with the DSR in place of the PSR in LIVE and PAPER when a symbol has several variants.
The comparisons are written once, in `evidence_verdicts`, which takes arrays too: the
operating-characteristic benchmark runs millions of simulated models through it.

seed, `decide_seed` (also `decide`, its old name), the seed's table: with K folds, p = positive_folds / K and sigma = the fold Sharpe std (ddof 1):

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

import numpy as np

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


def _gating(gating_class: str | None) -> str | None:
    gating = gating_class.upper() if isinstance(gating_class, str) else gating_class
    if gating not in (None, APPROVED, REVIEW, DROP):
        raise ValueError(f"unknown gating class {gating_class!r}")
    return gating


NOT_BACKTESTED = "gating classified the model DROP on its training metrics; not backtested"


def gating_cap(base: str, gating: str | None, reasons: list[str], alone: str = "walk-forward alone") -> str:
    """Both profiles: a gating DROP stays DROP, a REVIEW model is at most PAPER; the
    cap's reason goes first in `reasons` (in place). Returns the capped decision."""
    if gating == DROP:
        reasons.insert(0, f"gating classified the model DROP on its training metrics; backtested only because "
                          f"forced, and it stays DROP ({alone}: {base})")
        return DROP
    if gating == REVIEW and base == LIVE:
        reasons.insert(0, f"gating REVIEW caps the decision at PAPER ({alone}: LIVE)")
        return PAPER
    return base


def decide_seed(summary: Mapping[str, Any] | None, gating_class: str | None,
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
    gating = _gating(gating_class)

    if summary is None:
        if gating == DROP:
            return DROP, [NOT_BACKTESTED]
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

    decision = gating_cap(base, gating, reasons)

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
        # the direction is unknown: a policy can overfit its training period or have
        # been trained on a regime that later folds do not repeat
        reasons.append(f"in-sample folds: {in_sample}/{n} overlap the training period, so their results "
                       f"may flatter the model or not; the seed's rule still counts them")
    if backtest_max_drawdown is not None and math.isfinite(float(backtest_max_drawdown)):
        dd, bound = float(backtest_max_drawdown), t.review.max_drawdown
        if dd > bound:
            reasons.append(f"backtest max drawdown {dd:.1%} is worse than the REVIEW bound {bound:.0%}")
    return decision, reasons


decide = decide_seed  # the name before the evidence profile existed


# ---------------------------------------------------------------------------------
# the evidence profile

# verdict codes of evidence_verdicts: indices into DECISIONS
LIVE_CODE, PAPER_CODE, RETRAIN_CODE, DROP_CODE = (DECISIONS.index(x) for x in DECISIONS)


def evidence_tests(psr0, psr_live, psr_paper, positive_fraction, cochran_p, rules, bh_pass=True) -> dict:
    """Each test of the evidence rule (scalars or arrays; NaN fails every test):
    drop: PSR(0) <= drop_max_psr; live_psr: PSR(hurdle) (or DSR) >= live_min_psr;
    live_folds: positive fraction >= min_positive_fraction; live_cochran: Cochran's p
    >= cochran_min_p; live_bh: the BH pass (True outside a run of several symbols);
    paper: PSR(0) (or DSR) >= paper_min_psr."""
    with np.errstate(invalid="ignore"):
        return {
            "drop": np.asarray(psr0) <= rules.drop_max_psr,
            "live_psr": np.asarray(psr_live) >= rules.live_min_psr,
            "live_folds": np.asarray(positive_fraction) >= rules.min_positive_fraction - _EPS,
            "live_cochran": np.asarray(cochran_p) >= rules.cochran_min_p,
            "live_bh": np.asarray(bh_pass, dtype=bool),
            "paper": np.asarray(psr_paper) >= rules.paper_min_psr,
        }


def evidence_verdicts(tests: dict, enough_folds=True):
    """Codes (LIVE_CODE ...) from evidence_tests, in docs/design.md 8's order: RETRAIN
    without enough out-of-sample folds, DROP, LIVE, PAPER, RETRAIN."""
    live = tests["live_psr"] & tests["live_folds"] & tests["live_cochran"] & tests["live_bh"]
    code = np.select([~np.asarray(enough_folds, dtype=bool), tests["drop"], live, tests["paper"]],
                     [RETRAIN_CODE, DROP_CODE, LIVE_CODE, PAPER_CODE], RETRAIN_CODE)
    return code if code.ndim else int(code)


def _fmt_vs(value: float, threshold: float) -> str:
    """value with 2 decimals, more when 2 would hide which side of the threshold it is;
    small p-values with 2 significant digits (0.002, 1.3e-05), never as 0.00."""
    if value != 0 and abs(value) < 0.01 and threshold != 0:
        text = f"{value:.2g}"
        if (float(text) == threshold) == (value == threshold):
            return text
    for digits in (2, 3, 4, 6):
        text = f"{value:.{digits}f}"
        if (float(text) == threshold) == (value == threshold):
            return text
    return repr(value)


def _vs(label: str, value: float, op: str, threshold: float, why: str = "") -> str:
    th = f"{threshold:.2f}" if round(threshold, 2) == threshold else f"{threshold:g}"
    return f"{label} {_fmt_vs(value, threshold)} {op} {th}{why}"


def _flag_text(flag: Any) -> str:
    if isinstance(flag, Mapping):
        return f"{flag.get('code')}: {flag.get('message')}"
    return str(flag)


def decide_evidence(evidence: Mapping[str, Any] | None, positive_folds: int, gating_class: str | None,
                    thresholds: Thresholds | None = None, *, multi_symbol: bool = False,
                    flags=()) -> tuple[str, list[str]]:
    """(decision, reasons) of the evidence profile (docs/design.md 8).

    evidence: engine.metrics.evidence_summary of the out-of-sample folds (after
    apply_variants and BH where they apply); None only for a model gating dropped and
    that was not backtested. positive_folds: out-of-sample folds with total_return > 0.
    multi_symbol: the run has several symbols, so LIVE also needs bh_pass. flags:
    "CODE: message" strings (or {code, message}) appended to the reasons."""
    t = as_thresholds(thresholds)
    e = t.evidence
    gating = _gating(gating_class)
    if evidence is None:
        if gating == DROP:
            return DROP, [NOT_BACKTESTED]
        raise ValueError("a decision needs the evidence statistics unless gating dropped the model")

    oos = _count(evidence, "oos_folds")
    k = int(positive_folds)
    if k < 0 or k > oos:
        raise ValueError(f"evidence: {positive_folds} positive of {oos} out-of-sample folds")
    variants = int(evidence.get("n_variants") or 1)
    hurdle = float(evidence.get("hurdle_sharpe") or 0.0)
    psr0 = _finite(evidence, "psr0")
    psr_h = _finite(evidence, "psr_hurdle")
    dsr = _finite(evidence, "dsr")
    if variants > 1:
        live_label = paper_label = f"DSR ({variants} variants)"
        psr_live = psr_paper = dsr
    else:
        live_label = "PSR" if hurdle == 0 else f"PSR(hurdle Sharpe {hurdle:g})"
        paper_label = "PSR" if hurdle == 0 else "PSR(0)"
        psr_live, psr_paper = psr_h, psr0
    drop_label = "PSR" if hurdle == 0 else "PSR(0)"
    if e.benchmark == "buy_and_hold":  # the statistics are of the excess returns: say so
        of = " of the excess over buy-and-hold"
        live_label, paper_label, drop_label = live_label + of, paper_label + of, drop_label + of

    reasons: list[str] = []
    if oos < e.min_oos_folds:
        base = RETRAIN
        reasons.append(f"only {oos} out-of-sample fold{'s' if oos != 1 else ''} (< {e.min_oos_folds} needed): "
                       f"the evidence is unmeasured; run more folds or a window after the training period")
    elif evidence.get("never_traded"):
        base = RETRAIN
        reasons.append(f"the model never traded in the {oos} out-of-sample folds: there is nothing to judge")
    elif psr0 is None or psr_live is None or psr_paper is None:
        base = RETRAIN
        why = evidence.get("min_trl_reason") or "the statistics are undefined"
        reasons.append(f"no PSR: {why}")
    else:
        frac = k / oos
        cp = _finite(evidence, "cochran_p")
        bh = evidence.get("bh_pass") is True if multi_symbol else True
        tests = evidence_tests(psr0, psr_live, psr_paper, frac, math.nan if cp is None else cp, e, bh)
        tests = {name: bool(v) for name, v in tests.items()}
        code = evidence_verdicts(tests)
        base = DECISIONS[code]

        def psr_live_text(ok):
            return _vs(live_label, psr_live, ">=" if ok else "<", e.live_min_psr,
                       "" if ok else " needed for LIVE")

        def folds_text(ok):
            op = ">=" if ok else "<"
            return (f"{k}/{oos} out-of-sample folds positive ({frac:.0%} {op} {e.min_positive_fraction:.0%}"
                    f"{'' if ok else ' needed for LIVE'})")

        def cochran_text(ok):
            if cp is None:
                return "Cochran's Q undefined (a fold has fewer than 2 bars): fold consistency unmeasured"
            return _vs("Cochran's Q p", cp, ">=" if ok else "<", e.cochran_min_p,
                       " (the folds agree)" if ok else " needed for LIVE: the folds disagree beyond noise")

        def bh_text(ok):
            bq = _finite(evidence, "bh_q")
            if bq is None:
                return "no Benjamini-Hochberg q-value across the run's symbols"
            return _vs("BH q-value", bq, "<=" if ok else ">", e.q_fdr,
                       " across the run's symbols" if ok else " across the run's symbols: needed for LIVE")

        live_parts = [("live_psr", psr_live_text), ("live_folds", folds_text), ("live_cochran", cochran_text)]
        if multi_symbol:
            live_parts.append(("live_bh", bh_text))
        if base == DROP:
            reasons.append(_vs(drop_label, psr0, "<=", e.drop_max_psr, ": losses beyond noise"))
        elif base == LIVE:
            reasons.extend(text(True) for _, text in live_parts)
        elif base == PAPER:  # decisive: the LIVE tests it failed
            reasons.extend(text(False) for name, text in live_parts if not tests[name])
            reasons.append(_vs(paper_label, psr_paper, ">=", e.paper_min_psr, " (PAPER)"))
        else:  # decisive: the PAPER test it failed (as the seed rule words RETRAIN); then LIVE's
            reasons.append(_vs(paper_label, psr_paper, "<", e.paper_min_psr, " needed for PAPER"))
            reasons.extend(text(False) for name, text in live_parts if not tests[name])

    flags = list(flags)
    shortfall = min_trl_shortfall(evidence, e.live_min_psr)
    if base != DROP and shortfall and not any(_flag_code(f) == SHORT_OF_MIN_TRL for f in flags):
        reasons.append(shortfall)  # called without the run's flags (the API): said all the same
    decision = gating_cap(base, gating, reasons, "evidence alone")
    reasons.extend(_flag_text(f) for f in flags)
    return decision, reasons


SHORT_OF_MIN_TRL = "SHORT_OF_MIN_TRL"
"""Flag code: the out-of-sample bars fall short of MinTRL (docs/design.md 8 names it among the
flags that are reasons in both profiles)."""


def min_trl_shortfall(evidence: Mapping[str, Any], live_min_psr: float) -> str | None:
    """"window shorter than MinTRL: ..." when the out-of-sample bars are fewer than MinTRL
    (rounded up to whole bars), else None."""
    n_bars = evidence.get("n_bars")
    mtrl = _finite(evidence, "min_trl_bars")
    if mtrl is None or n_bars is None or not n_bars < mtrl:
        return None
    days = _finite(evidence, "min_trl_days")
    span = f" ({days:.0f} days)" if days is not None else ""
    return (f"window shorter than MinTRL: {n_bars} out-of-sample bars < {math.ceil(mtrl)}{span} "
            f"needed for PSR {_num(float(evidence.get('level') or live_min_psr))} at this Sharpe")


def _flag_code(flag: Any) -> str | None:
    if isinstance(flag, Mapping):
        return flag.get("code")
    return str(flag).split(":", 1)[0]
