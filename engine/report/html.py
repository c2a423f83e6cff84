"""The HTML page of a report: self-contained, inline SVG charts, no network.

A small inline script only sorts the summary table; a Content-Security-Policy allows
that script by hash and nothing else, so no string from the report can run as code
even if escaping were ever missed."""

from __future__ import annotations

import functools
import html
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_text
from ..decision import DECISIONS  # LIVE, PAPER, RETRAIN, DROP: also the page's sort order
from ..errors import ConfigError
from ..gating import as_thresholds, default_thresholds, metric_level
from .jsonio import to_jsonable
from .page_assets import CSS, SCRIPT, csp
from .svg import downsample_rows, forest_plot, stitched_chart


_SPECIAL = re.compile(r"[&<>\"']")


def _e(value: Any) -> str:
    s = "" if value is None else str(value)
    return html.escape(s, quote=True) if _SPECIAL.search(s) else s  # most strings need nothing


def _fnum(x, digits: int = 2, signed: bool = False) -> str:
    if x is None:
        return '<span class="na">&mdash;</span>'
    return f"{x:+,.{digits}f}" if signed else f"{x:,.{digits}f}"


def _fpct(x, digits: int = 2, signed: bool = True) -> str:
    if x is None:
        return '<span class="na">&mdash;</span>'
    return f"{x * 100:+.{digits}f}%" if signed else f"{x * 100:.{digits}f}%"


def _signcls(x) -> str:
    return "" if x is None or x == 0 else ("pos" if x > 0 else "neg")


def _td_pct(x, digits: int = 2, signed: bool = True, colour: bool = True) -> str:
    cls = f' class="{_signcls(x)}"' if colour and signed else ""
    return f"<td{cls}>{_fpct(x, digits, signed)}</td>"


def _td_num(x, digits: int = 2, colour: bool = False) -> str:
    cls = f' class="{_signcls(x)}"' if colour else ""
    return f"<td{cls}>{_fnum(x, digits)}</td>"


def _fdate(iso: str | None, with_time: bool = True) -> str:
    if not iso:
        return "&mdash;"
    s = str(iso).replace("T", " ").rstrip("Z")
    s = s[:16] if with_time else s[:10]
    return _e(s)


def _badge(kind: str, text: str | None = None) -> str:
    return f'<span class="badge b-{_e(kind.lower())}">{_e(text or kind)}</span>'


def _decision_badge(m: dict) -> str:
    if m.get("error"):
        return _badge("error", "ERROR")
    d = m.get("decision")
    return _badge(d) if d in DECISIONS else _badge("none", "no decision")


def _order_key(item: tuple[int, dict]):
    i, m = item
    if m.get("error"):
        rank = len(DECISIONS) + 1
    else:
        rank = DECISIONS.index(m["decision"]) if m.get("decision") in DECISIONS else len(DECISIONS)
    s = m.get("summary") or {}
    sharpe = s.get("sharpe_mean")
    return (rank, -(sharpe if sharpe is not None else -math.inf), str(m.get("symbol")), i)





POLICY_COLOUR = "#0969da"
HOLD_COLOUR = "#6e7781"


def _epoch(times) -> np.ndarray:
    """A period's timestamps -> epoch seconds: a datetime64 array as the pipeline leaves
    it, or ISO times with a Z (as to_jsonable writes them)."""
    if isinstance(times, np.ndarray) and times.dtype.kind == "M":
        seconds = times if times.dtype == np.dtype("datetime64[s]") else times.astype("datetime64[s]")
        return seconds.view(np.int64).astype(np.float64)
    if times is None or len(times) == 0:
        return np.zeros(0)
    stamps = np.array([str(t).rstrip("Z") for t in times], dtype="datetime64[s]")
    return stamps.astype(np.int64).astype(np.float64)


def _curve(p: dict, key: str = "equity") -> np.ndarray:
    """A period's equity (or its buy-and-hold's) as float64, NaN where the JSON has null."""
    src = p.get(key) if key == "equity" else (p.get("buy_and_hold") or {}).get("equity")
    if isinstance(src, np.ndarray):
        a = np.asarray(src, dtype=np.float64)
        finite = np.isfinite(a)
        return a if finite.all() else np.where(finite, a, np.nan)  # as to_jsonable's null would read
    return np.array([np.nan if v is None else v for v in src or []], dtype=np.float64)


def _stitched(m: dict) -> dict | None:
    """The out-of-sample folds compounded into one curve on one time axis (docs/design.md 6.1:
    the evidence is theirs), with buy-and-hold over the same folds; in-sample folds are
    gaps, shaded. A model without folds shows its backtest the same way."""
    folds = m.get("folds") or []
    periods = [(f"F{f.get('index', k) + 1}", f) for k, f in enumerate(folds)] if folds else \
        ([("", m["backtest"])] if m.get("backtest") else [])
    segments, boundaries, shaded = [], [], []
    level = {"equity": 1.0, "hold": 1.0}
    run: dict | None = None
    for name, p in periods:
        t = _epoch(p.get("timestamps"))
        eq = _curve(p)
        if t.size == 0 or eq.size != t.size + 1 or not np.isfinite(eq[0]) or eq[0] == 0:
            continue
        if p.get("in_sample"):
            shaded.append((float(t[0]), float(t[-1]), f"{name} in-sample"))
            run = None
            continue
        if folds:
            boundaries.append((float(t[0]), name))
        if run is None:
            run = {"x": [], "equity": [], "hold": []}
            segments.append(run)
        for key, curve in (("equity", eq), ("hold", _curve(p, "hold"))):
            if curve.size != eq.size or not np.isfinite(curve[0]) or curve[0] == 0:
                curve = np.full(eq.size, np.nan)
            growth = curve / curve[0]
            run[key].append(level[key] * growth[1:])
            last = growth[np.isfinite(growth)]
            level[key] *= float(last[-1]) if last.size else 1.0
        run["x"].append(t)
    if not segments:
        return None
    out = {"segments": [], "boundaries": boundaries, "shaded": shaded}
    peak = 1.0
    for seg in segments:
        x = np.concatenate(seg["x"])
        eq = np.concatenate(seg["equity"])
        hold = np.concatenate(seg["hold"])
        # the running peak carries over the in-sample gaps
        running = np.maximum(np.fmax.accumulate(np.where(np.isfinite(eq), eq, -np.inf)), peak)
        dd = eq / running - 1.0
        peak = float(running[-1]) if running.size else peak
        out["segments"].append({"x": x, "ret": eq - 1.0, "hold": hold - 1.0, "dd": dd})
    out["total"] = level["equity"] - 1.0
    out["hold_total"] = level["hold"] - 1.0 if np.isfinite(level["hold"]) else None
    return out


def _thin(x: np.ndarray, curves: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each curve over the time axis x, downsampled (all of them in one pass)."""
    return [(x[idx.astype(np.int64)], y) for idx, y in downsample_rows(np.stack(curves))]


def _equity_charts(st: dict, width: int, folds: bool) -> str:
    ret, hold, dd = [], [], []
    for seg in st["segments"]:
        with_hold = bool(np.isfinite(seg["hold"]).any())
        thin = _thin(seg["x"], [seg["ret"], seg["dd"]] + ([seg["hold"]] if with_hold else []))
        ret.append({"x": thin[0][0], "y": thin[0][1], "cls": "pol", "title": "policy"})
        dd.append({"x": thin[1][0], "y": thin[1][1], "cls": "pol", "title": "policy drawdown"})
        if with_hold:
            hold.append({"x": thin[2][0], "y": thin[2][1], "cls": "bh", "title": "buy-and-hold", "dashed": True})
    thin = hold + ret
    eq_svg = stitched_chart(thin, st["boundaries"], st["shaded"], width, 250,
                            "Out-of-sample equity, folds compounded, and buy-and-hold")
    dd_svg = stitched_chart(dd, st["boundaries"], st["shaded"], width, 120, "Drawdown of the stitched curve")
    legend = (f'<div class="legend"><span class="lg"><i class="sw" style="--c:{POLICY_COLOUR}"></i><b>Policy</b> '
              f'<span class="{_signcls(st["total"])}">{_fpct(st["total"])}</span></span>')
    if hold:
        legend += (f'<span class="lg"><i class="sw dash" style="--c:{HOLD_COLOUR}"></i><b>Buy-and-hold</b> '
                   f'(same {"folds" if folds else "bars"}, fills and costs) <span class="{_signcls(st["hold_total"])}">'
                   f'{_fpct(st["hold_total"])}</span></span>')
    if st["shaded"]:
        legend += '<span class="lg"><i class="sw shade"></i>in-sample folds: excluded from the curve and the evidence</span>'
    legend += "</div>"
    since = "the first out-of-sample bar, folds compounded" if folds else "the window's first bar"
    return (f'<div class="ct">Equity: return since {since}</div>{eq_svg}'
            f'<div class="ct">Drawdown from running peak</div>{dd_svg}{legend}')


def _forest(m: dict, width: int) -> str:
    """Fold Sharpes (section 6, annualised) with their 90% intervals (docs/design.md 6.1), and the
    stitched out-of-sample Sharpe with its interval as the last row."""
    folds = m.get("folds") or []
    e = (m.get("summary") or {}).get("evidence") or {}
    cis = list(e.get("fold_sharpe_ci90") or [])
    rows = []
    for k, f in enumerate(folds):
        v = (f.get("metrics") or {}).get("sharpe")
        row = {"name": f"Fold {f.get('index', k) + 1}", "value": v, "lo": None, "hi": None, "cls": "pol"}
        if f.get("in_sample"):
            row.update(cls="is", note="in-sample")
        elif cis:
            lo, hi = cis.pop(0) or (None, None)
            row.update(lo=lo, hi=hi)
        if v is not None:
            row["cls"] += " neg" if v < 0 else ""
        rows.append(row)
    if e.get("sr_annual") is not None:
        lo, hi = e.get("sr_ci90") or (None, None)
        rows.append({"name": "All OOS", "value": e["sr_annual"], "lo": lo, "hi": hi, "cls": "all", "diamond": True})
    return forest_plot(rows, width, "Sharpe ratio per fold with 90% intervals")


def _metric_tiles(p: dict) -> str:
    m = p.get("metrics") or {}
    tiles = [
        ("Total return", _fpct(m.get("total_return")), _signcls(m.get("total_return"))),
        ("Max drawdown", _fpct(m.get("max_drawdown"), signed=False), ""),
        ("Sharpe", _fnum(m.get("sharpe")), _signcls(m.get("sharpe"))),
        ("Sortino", _fnum(m.get("sortino")), _signcls(m.get("sortino"))),
        ("Trades", _fnum(m.get("n_trades"), 0), ""),
        ("Win rate", _fpct(m.get("win_rate"), 1, signed=False), ""),
        ("Profit factor", _fnum(m.get("profit_factor")), ""),
        ("Exposure", _fpct(m.get("exposure"), 1, signed=False), ""),
        ("Turnover", _fnum(m.get("turnover"), 2) + "&times;" if m.get("turnover") is not None else _fnum(None), ""),
        ("Gross profit", _fnum(m.get("gross_profit"), 0), ""),
        ("Gross loss", _fnum(m.get("gross_loss"), 0), ""),
        ("Clipped shorts", _fnum(m.get("clipped_shorts"), 0), ""),
    ]
    cells = "".join(f'<div class="tile"><span>{k}</span><b class="{c}">{v}</b></div>' for k, v, c in tiles)
    period = f'{_fdate(p.get("start"))} &rarr; {_fdate(p.get("end"))} UTC &middot; {_fnum(m.get("bars"), 0)} bars'
    insample = ' <span class="tag">in-sample</span>' if p.get("in_sample") else ""
    return f'<div class="sub">{period}{insample}</div><div class="tiles">{cells}</div>'


GATE_ROWS = [("fitness", "Fitness", False), ("profit_factor", "Profit factor", False),
             ("consistency", "Consistency", True), ("max_drawdown", "Max drawdown (proxy)", True)]
GATE_LEVELS = ("DROP", "REVIEW", "APPROVED")  # engine.gating.metric_level's 0, 1, 2


def _gate_thresholds(thresholds: dict | None):
    """The report's thresholds as engine.gating reads them (over the defaults), so the
    table's levels and operators come from gating's own comparisons, never a copy."""
    try:
        return as_thresholds(thresholds or None)
    except ConfigError:  # a hand-edited report: show the defaults rather than fail the page
        return as_thresholds(None)


def _gate_level(value, key: str, t) -> str | None:
    return None if value is None else GATE_LEVELS[metric_level(key, value, t)]


def _gate_op(key: str, t) -> str:
    """<= for a metric where less is better (no value is too small to approve), else >=."""
    return "&le;" if metric_level(key, -math.inf, t) == 2 else "&ge;"


@functools.lru_cache(maxsize=1)
def _default_thresholds() -> dict:
    return default_thresholds().to_dict()


def _page_thresholds(settings: dict):
    return _gate_thresholds(settings.get("thresholds") or _default_thresholds())


def _gating_table(g: dict, t, default_thresholds: bool) -> str:
    """The gating metrics against `t`, the thresholds as engine.gating reads them."""
    rows = []
    for key, name, pct in GATE_ROWS:
        v = (g.get("metrics") or {}).get(key)
        fmt = (lambda x: _fpct(x, 1, signed=False)) if pct else (lambda x: _fnum(x, 2))
        op = _gate_op(key, t)
        level = _gate_level(v, key, t)
        ths = "".join(f'<td class="th">{op} {fmt(getattr(getattr(t, c), key))}</td>' for c in ("approved", "review"))
        lv = _badge(level, level) if level else _badge("none", "missing")
        rows.append(f"<tr><th>{name}</th><td>{fmt(v)}</td>{ths}<td>{lv}</td></tr>")
    head = "<tr><th>Metric</th><th>Final</th><th>APPROVED</th><th>REVIEW</th><th>Level</th></tr>"
    note = ' <span class="muted">(default thresholds: the report did not record the ones it was gated with)</span>' \
        if default_thresholds else ""
    flags = g.get("flags") or []
    flag_html = ""
    if flags:
        flag_html = '<ul class="flags">' + "".join(
            f'<li><code>{_e(f.get("code"))}</code> {_e(f.get("message"))}</li>' for f in flags) + "</ul>"
    cp = ""
    if g.get("use_checkpoint"):
        where = _e(g.get("checkpoint")) if g.get("checkpoint") else f'index {_e(g.get("checkpoint_index"))}'
        cp = (f'<p class="cp">Checkpoint advised: the best fitness in training beat the final one; '
              f'use {where} (history index {_e(g.get("checkpoint_index"))}).</p>')
    return (f'<h4>Gating {_badge(g.get("classification") or "none", g.get("classification") or "none")}{note}</h4>'
            f'<table class="kv gate"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>{flag_html}{cp}')


def _fold_table(folds: list[dict]) -> str:
    head = ("<tr><th>Fold</th><th>Period (UTC)</th><th>Bars</th><th>Return</th><th>Sharpe</th><th>Sortino</th>"
            "<th>Max DD</th><th>Trades</th><th>Win rate</th><th>PF</th><th>Exposure</th><th>Sample</th></tr>")
    rows = []
    for k, f in enumerate(folds):
        m = f.get("metrics") or {}
        sample = '<span class="tag">in-sample</span>' if f.get("in_sample") else '<span class="muted">out</span>'
        rows.append(
            f'<tr><td>{f.get("index", k) + 1}</td>'
            f'<td class="per">{_fdate(f.get("start"))} &rarr; {_fdate(f.get("end"))}</td>'
            f'<td>{_fnum(f.get("bars"), 0)}</td>{_td_pct(m.get("total_return"))}{_td_num(m.get("sharpe"), 2, True)}'
            f'{_td_num(m.get("sortino"), 2, True)}{_td_pct(m.get("max_drawdown"), 2, signed=False)}'
            f'<td>{_fnum(m.get("n_trades"), 0)}</td>{_td_pct(m.get("win_rate"), 1, signed=False)}'
            f'{_td_num(m.get("profit_factor"))}{_td_pct(m.get("exposure"), 0, signed=False)}<td>{sample}</td></tr>')
    return f'<table class="grid folds"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _summary_line(s: dict | None) -> str:
    if not s:
        return ""
    items = [
        ("Positive folds", f'{s.get("positive_folds")}/{s.get("folds")}'),
        ("Sharpe range", f'{_fnum(s.get("sharpe_min"))} to {_fnum(s.get("sharpe_max"))}'),
        ("Sharpe mean", f'{_fnum(s.get("sharpe_mean"))} (&plusmn; {_fnum(s.get("sharpe_std"))})'),
        ("Return range", f'{_fpct(s.get("return_min"))} to {_fpct(s.get("return_max"))}'),
        ("Mean fold return", _fpct(s.get("return_mean"))),
        ("PSR", _fnum(s.get("psr"), 3)),
        ("DSR", _fnum(s.get("dsr"), 3)),
        ("In-sample folds", _e(s.get("in_sample_folds"))),
    ]
    return '<div class="wf">' + "".join(f"<div><span>{k}</span><b>{v}</b></div>" for k, v in items) + "</div>"


def _evidence_line(s: dict | None) -> str:
    """docs/design.md 6.1's figures, out-of-sample folds only."""
    e = (s or {}).get("evidence")
    if not e:
        return ""
    lo, hi = e.get("sr_ci90") or (None, None)
    hurdle = e.get("hurdle_sharpe") or 0.0
    bh = e.get("buy_and_hold") or {}
    mtrl = (f'{_fnum(e["min_trl_days"], 0)} days <small>({_fnum(e.get("min_trl_bars"), 0)} bars)</small>'
            if e.get("min_trl_bars") is not None else f'<span class="na" title="{_e(e.get("min_trl_reason"))}">n/a</span>')
    items = [
        ("Sharpe (90% CI)", f'{_fnum(e.get("sr_annual"))} <small>[{_fnum(lo)}, {_fnum(hi)}]</small>'),
        ("PSR(0)", _fnum(e.get("psr0"), 3)),
        (f"PSR(hurdle {hurdle:g})", _fnum(e.get("psr_hurdle"), 3)),
        ("MinTRL", mtrl),
        ("Out-of-sample", f'{_e(e.get("oos_folds"))} folds, {_fnum(e.get("n_bars"), 0)} bars'),
        ("Cochran's Q p", _fnum(e.get("cochran_p"), 3)),
        (f'DSR ({_e(e.get("n_variants") or 1)} variant{"s" if (e.get("n_variants") or 1) > 1 else ""})',
         _fnum(e.get("dsr"), 3)),
        ("BH q-value", _fnum(e.get("bh_q"), 3) + ("" if e.get("bh_pass") is None else
                                                    (" pass" if e["bh_pass"] else " fail"))),
        ("Buy-and-hold", f'{_fpct(bh.get("return"))} <small>Sharpe {_fnum(bh.get("sharpe"))}</small>'),
        ("Excess Sharpe", _fnum(e.get("excess_sharpe"), 2, True)),
        ("Serial corr. q", f'{_fnum(e.get("q"))} <small>{_e(e.get("lags"))} lags</small>'),
    ]
    return ('<h4>Evidence <small>out-of-sample folds stitched</small></h4><div class="wf ev">'
            + "".join(f"<div><span>{k}</span><b>{v}</b></div>" for k, v in items) + "</div>")


STRESS_SHOWN = ("scenario", "label", "psr0", "psr_hurdle", "sr_annual", "positive_folds", "fold_returns",
                "backtest_return", "change")
"""What `_stress_table` reads of a scenario: `_light` keeps only these."""


def _stress_table(st: dict | None) -> str:
    """--stress: each scenario's statistics and their change from the base (STRESS_SHOWN)."""
    rows = (st or {}).get("scenarios") or []
    if not rows:
        return ""
    head = ("<tr><th>Scenario</th><th>PSR(0)</th><th>&Delta;</th><th>PSR(hurdle)</th><th>Sharpe (OOS)</th>"
            "<th>&Delta;</th><th>+Folds</th><th>Fold returns</th><th>Backtest</th></tr>")
    body = []
    for r in rows:
        ch = r.get("change") or {}
        base = r.get("scenario") == "base"
        folds = " ".join(_fpct(x, 1) for x in r.get("fold_returns") or []) or "&mdash;"
        body.append(
            f'<tr><td>{_e(r.get("label"))}</td><td>{_fnum(r.get("psr0"), 3)}</td>'
            f'<td>{"" if base else _fnum(ch.get("psr0"), 3, True)}</td><td>{_fnum(r.get("psr_hurdle"), 3)}</td>'
            f'{_td_num(r.get("sr_annual"), 2, True)}<td>{"" if base else _fnum(ch.get("sr_annual"), 2, True)}</td>'
            f'<td>{_e(r.get("positive_folds"))}/{len(r.get("fold_returns") or [])}</td><td class="per">{folds}</td>'
            f'{_td_pct(r.get("backtest_return"))}</tr>')
    return (f'<h4>Stress <small>decisions stay on the base</small></h4>'
            f'<table class="grid folds"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>')


COLLAPSE_ABOVE = 10
"""Above this many models each model's figures, charts and folds sit in a closed
<details>, its charts in an inert <template> the page's script mounts when it is first
opened: a 1,000-model page then opens at once instead of laying out thousands of SVGs."""


def _model_section(i: int, m: dict, settings: dict, collapse: bool = False, gate=None) -> str:
    """One model's section; `gate`: the settings' thresholds as engine.gating reads them
    (the page reads them once for all models)."""
    gate = gate if gate is not None else _page_thresholds(settings)
    default_th = not settings.get("thresholds")
    dec = m.get("decision")
    kind = "error" if m.get("error") else (dec.lower() if dec in DECISIONS else "none")
    head = (f'<div class="mhead"><h2>{_e(m.get("symbol"))} <small>{_e(m.get("timeframe") or "")}</small></h2>'
            f'{_decision_badge(m)}'
            f'{_badge(m["gating"]["classification"], "gate " + m["gating"]["classification"]) if m.get("gating") and m["gating"].get("classification") else ""}'
            f'<span class="spacer"></span><a class="top" href="#summary">&uarr; summary</a></div>')
    meta_bits = []
    if m.get("asset_class"):
        meta_bits.append(_e(m["asset_class"]))
    if m.get("long_only") is not None:
        meta_bits.append("long-only" if m["long_only"] else "long/short")
    ck = m.get("checkpoint")
    if ck:
        meta_bits.append("final model" if ck.get("index") is None else
                         f'checkpoint {_e(ck["index"])}{" (gating advised)" if ck.get("kind") == "advised" else ""}')
    meta_bits.append(f'<code>{_e(m.get("model_path") or "no model file")}</code>')
    if m.get("model_sha256"):
        meta_bits.append(f'sha256 <code title="{_e(m["model_sha256"])}">{_e(m["model_sha256"][:16])}&hellip;</code>')
    meta = '<div class="meta">' + " &middot; ".join(meta_bits) + "</div>"

    verdict_title = "Evaluation failed" if m.get("error") else (f"Decision: {dec}" if dec else "No decision")
    reasons = [r for r in m.get("reasons") or [] if r != m.get("error")]
    if not dec and not m.get("error") and not reasons and not m.get("folds"):
        reasons = ["A decision needs a walk-forward test (--walk-forward K)."]
    lines = ([f'<p class="err">{_e(m["error"])}</p>'] if m.get("error") else []) + \
        (["<ul>" + "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>"] if reasons else [])
    profile = m.get("profile")
    if dec and profile:
        verdict_title += f" ({profile} profile)"
    others = [f"{_e(name)} profile: {_badge(d) if d in DECISIONS else '&mdash;'}"
              for name, d in (m.get("decisions") or {}).items() if name != profile and (d or dec)]
    if others and dec:
        lines.append(f'<p class="other">{" &middot; ".join(others)}</p>')
    # the evidence rule lists its flags among the reasons; show the others here
    flags = [f for f in m.get("flags") or [] if f"{f.get('code')}: {f.get('message')}" not in reasons]
    if flags:
        lines.append('<ul class="flags">' + "".join(
            f'<li><code>{_e(f.get("code"))}</code> {_e(f.get("message"))}</li>' for f in flags) + "</ul>")
    verdict = f'<div class="verdict v-{kind}"><h3>{_e(verdict_title)}</h3>{"".join(lines)}</div>'

    parts = [head, meta, verdict]
    inner = [_summary_line(m.get("summary")), _evidence_line(m.get("summary"))]
    blocks = []
    if m.get("gating"):
        blocks.append(_gating_table(m["gating"], gate, default_th))
    if m.get("backtest"):
        days = settings.get("quick_days") or (None if settings.get("walk_forward") else settings.get("days"))
        blocks.append(f'<h4>Backtest{f" (last {_e(days)} days)" if days else ""}</h4>' + _metric_tiles(m["backtest"]))
    elif m.get("gating") and not m.get("error"):
        blocks.append('<h4>Backtest</h4><p class="muted">Not backtested.</p>')
    if blocks:  # a plain `backtest` run has no gating; say nothing rather than "no data"
        inner.append('<div class="cols">' + "".join(f"<div>{b}</div>" for b in blocks) + "</div>")

    folds = m.get("folds") or []
    st = _stitched(m)
    if st:
        forest = ""
        if folds:
            s_ = m.get("summary") or {}
            stat = f' &middot; mean {_fnum(s_.get("sharpe_mean"))} &plusmn; {_fnum(s_.get("sharpe_std"))}' if s_ else ""
            forest = (f'<div class="chart"><div class="ct">Sharpe per fold, 90% intervals{stat}</div>'
                      f'{_forest(m, 360)}</div>')
        one = "" if forest else " one"
        charts = (f'<div class="charts{one}"><div class="chart">{_equity_charts(st, 760 if forest else 1100, bool(folds))}'
                  f'</div>{forest}</div>')
        inner.append(f"<template>{charts}</template>" if collapse else charts)
    if folds:
        inner.append("<h4>Walk-forward folds</h4>" + _fold_table(folds))
    inner.append(_stress_table(m.get("stress")))
    if collapse:
        parts.append('<details class="lazy"><summary>Figures, charts and folds</summary>' + "".join(inner)
                     + "</details>")
    else:
        parts.extend(inner)
    return f'<section class="model m-{kind}" id="m{i}">' + "".join(parts) + "</section>"


def _summary_table(order: list[tuple[int, dict]]) -> str:
    head = ("<tr><th>Symbol</th><th>Decision</th><th>Other profile</th><th>Gate</th><th>+Folds</th>"
            "<th>Sharpe mean</th><th>Sharpe std</th><th>OOS Sharpe [90% CI]</th><th>PSR</th><th>q-value</th>"
            "<th>MinTRL days</th><th>Mean fold ret.</th><th>Worst fold DD</th><th>Backtest ret.</th>"
            "<th>Backtest DD</th><th>DSR</th><th>Notes</th></tr>")
    rows = []
    for i, m in order:
        s = m.get("summary") or {}
        bt = (m.get("backtest") or {}).get("metrics") or {}
        dds = [(f.get("metrics") or {}).get("max_drawdown") for f in m.get("folds") or []]
        dds = [d for d in dds if d is not None]
        worst = max(dds) if dds else None
        g = m.get("gating") or {}
        notes = []
        if m.get("error"):
            notes.append(f'<span class="errtxt" title="{_e(m["error"])}">{_e(m["error"])}</span>')
        if s.get("in_sample_folds"):
            notes.append(f'<span class="tag">{_e(s["in_sample_folds"])} in-sample</span>')
        if g.get("flags"):
            n = len(g["flags"])
            notes.append(f'<span class="muted" title="{_e("; ".join(str(f.get("code")) for f in g["flags"]))}">'
                         f'{n} flag{"s" if n != 1 else ""}</span>')
        for f in m.get("flags") or []:
            notes.append(f'<span class="tag" title="{_e(f.get("message"))}">{_e(f.get("code"))}</span>')
        pos = f'{s["positive_folds"]}/{s["folds"]}' if s else "&mdash;"
        rank = _order_key((i, m))[0]
        e = s.get("evidence") or {}
        lo, hi = e.get("sr_ci90") or (None, None)
        ci = (f'<td data-v="{e["sr_annual"]}" class="{_signcls(e["sr_annual"])}">{_fnum(e["sr_annual"])} '
              f'<small>[{_fnum(lo)}, {_fnum(hi)}]</small></td>') if e.get("sr_annual") is not None else _td_num(None)
        other = [d for name, d in (m.get("decisions") or {}).items() if name != m.get("profile") and d]
        rows.append(
            f'<tr><td><a href="#m{i}">{_e(m.get("symbol"))}</a> <small>{_e(m.get("timeframe") or "")}</small></td>'
            f'<td data-v="{rank}">{_decision_badge(m)}</td>'
            f'<td>{" ".join(_badge(d) for d in other) if other else "&mdash;"}</td>'
            f'<td>{_badge(g["classification"]) if g.get("classification") else "&mdash;"}</td>'
            f'<td data-v="{(s["positive_folds"] / s["folds"]) if s else ""}">{pos}</td>'
            f'{_td_num(s.get("sharpe_mean"), 2, True)}{_td_num(s.get("sharpe_std"))}{ci}'
            f'{_td_num(e.get("psr_hurdle"), 3)}{_td_num(e.get("bh_q"), 3)}{_td_num(e.get("min_trl_days"), 0)}'
            f'{_td_pct(s.get("return_mean"))}{_td_pct(worst, signed=False)}'
            f'{_td_pct(bt.get("total_return"))}{_td_pct(bt.get("max_drawdown"), signed=False)}'
            f'{_td_num(s.get("dsr"), 3)}<td class="notes"><div>{" ".join(notes)}</div></td></tr>')
    return (f'<div class="scroll"><table class="grid summary" id="summary-table"><thead>{head}</thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _header(r: dict) -> str:
    st = r.get("settings") or {}
    cmd = r.get("command") or "run"
    created = _fdate(r.get("created"))
    title = f"foldgate {_e(cmd)} report"
    fill = st.get("fill")
    fill_txt = _e(fill) + (' <span class="tag warn">optimistic</span>' if fill == "close" else "")
    lo = st.get("long_only")
    rows = [
        ("Walk-forward", f'{_e(st.get("days"))} days &times; {_e(st.get("walk_forward"))} folds')
        if st.get("walk_forward") else ("Window", f'{_e(st.get("days"))} days' if st.get("days") else "&mdash;"),
        ("End", _fdate(st.get("end")) if st.get("end") else "last stored bar"),
        ("Capital", _fnum(st.get("capital"), 0)),
        ("Costs", f'{_fnum(st.get("commission_bps"), 1)} bps commission, {_fnum(st.get("slippage_bps"), 1)} bps slippage'),
        ("Fill", fill_txt if fill else "&mdash;"),
        ("Shorts", "per symbol (crypto long-only)" if lo is None else ("long-only" if lo else "allowed")),
        ("Bars / year", _fnum(st.get("bars_per_year"), 1) if st.get("bars_per_year") else "from the data"),
        ("Data", _e(st.get("source") or "") + (f' <code>{_e(st["store"])}</code>' if st.get("store") else "")),
        ("Device", _e(st.get("device_used") or st.get("device") or "")),
    ]
    if st.get("quick_days"):
        rows.insert(1, ("Backtest", f'last {_e(st["quick_days"])} days'))
    arch = r.get("archive")
    if arch:
        rows.insert(0, ("Archive", f'<code>{_e(arch.get("path"))}</code>'
                        + (f' &middot; stamp {_e(arch.get("stamp"))}' if arch.get("stamp") else "")))
    grid = "".join(f'<div{" class=wide" if k == "Archive" else ""}><span>{k}</span><b>{v}</b></div>' for k, v in rows)
    versions = " &middot; ".join(f"{_e(k)} {_e(v)}" for k, v in (r.get("versions") or {}).items() if v)
    return (f'<header><div class="brand">foldgate</div><h1>{title}</h1>'
            f'<div class="when">{created} UTC &middot; schema {_e(r.get("schema"))}</div>'
            f'<div class="settings">{grid}</div><div class="versions">{versions}</div></header>')


def _is_curve(key: str, v) -> bool:
    return isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind in ("M" if key == "timestamps" else "fiub")


def _light(report: Mapping) -> tuple[dict, list[list[dict]]]:
    """(a shallow copy without the trade lists and the curves held as numpy arrays, those
    curves per model and period). The page shows trade counts, not trades, and draws
    curves from arrays: neither is worth turning into JSON values and back; nor are the
    metrics of a period's buy-and-hold, or the stress figures outside STRESS_SHOWN,
    which the page does not show."""
    def strip(p, kept: list):
        curves = {}
        if isinstance(p, Mapping):
            curves = {k: p[k] for k in ("equity", "timestamps") if _is_curve(k, p.get(k))}
            bh = p.get("buy_and_hold")
            hold = bh.get("equity") if isinstance(bh, Mapping) else None
            p = {k: v for k, v in p.items() if k != "trades" and k not in curves}
            if _is_curve("equity", hold):
                curves["hold"] = hold
                p["buy_and_hold"] = {}  # the page reads only its curve (_curve), not its metrics
        kept.append(curves)
        return p

    def stress(st):
        rows = st.get("scenarios") if isinstance(st, Mapping) else None
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            return st
        return {**st, "scenarios": [{k: r[k] for k in STRESS_SHOWN if k in r} for r in rows]}

    models, aside = [], []
    for m in report.get("models") or []:
        kept: list[dict] = []
        if isinstance(m, Mapping):
            m = dict(m)
            m["backtest"] = strip(m.get("backtest"), kept)
            m["folds"] = [strip(f, kept) for f in m.get("folds") or []]
            if "stress" in m:
                m["stress"] = stress(m["stress"])
        models.append(m)
        aside.append(kept)
    return {**report, "models": models}, aside


def _reattach(models: list, aside: list[list[dict]]) -> None:
    """Put the curves `_light` took out back into the converted models, as arrays."""
    for m, kept in zip(models, aside):
        if not kept or not isinstance(m, dict):
            continue
        folds = m.get("folds")
        for p, curves in zip([m.get("backtest")] + list(folds if isinstance(folds, list) else []), kept):
            if not curves or not isinstance(p, dict):
                continue
            p.update({k: v for k, v in curves.items() if k != "hold"})
            if "hold" in curves and isinstance(p.get("buy_and_hold"), dict):
                p["buy_and_hold"]["equity"] = curves["hold"]


def render_html(report: Mapping) -> str:
    """One self-contained HTML page for the report: no network, no external files."""
    light, curves = _light(report)
    r = to_jsonable(light)
    _reattach(r.get("models") or [], curves)
    return page_html(r)


def page_html(r: dict) -> str:
    """The page of a report already in JSON values (to_jsonable's), whose curves may
    also be numpy arrays."""
    models = r.get("models") or []
    settings = r.get("settings") or {}
    order = sorted(enumerate(models), key=_order_key)

    counts = []
    tally = {d: 0 for d in DECISIONS}
    for _, m in order:
        if not m.get("error") and m.get("decision") in tally:
            tally[m["decision"]] += 1
    n_err = sum(1 for m in models if m.get("error"))
    n_none = len(models) - n_err - sum(tally.values())
    for d in DECISIONS:
        counts.append(f'<div class="count" style="--c:var(--{d.lower()})"><b>{tally[d]}</b><span>{d}</span></div>')
    if n_none:
        counts.append(f'<div class="count" style="--c:var(--none)"><b>{n_none}</b><span>no decision</span></div>')
    if n_err:
        counts.append(f'<div class="count" style="--c:var(--error)"><b>{n_err}</b><span>failed</span></div>')

    notes = []
    if settings.get("fill") == "close":
        notes.append("Orders filled at the close of the deciding bar (--fill close): optimistic; "
                     "next-open fills are the realistic default.")
    n_is = sum(1 for m in models if (m.get("summary") or {}).get("in_sample_folds"))
    if n_is:
        notes.append(f"{n_is} model(s) have folds that overlap their training period (marked in-sample).")
    note_html = "".join(f'<p class="muted">{_e(n)}</p>' for n in notes)

    if models:
        summary = (f'<section class="card" id="summary"><h2>Summary</h2><div class="counts">{"".join(counts)}</div>'
                   f'{note_html}{_summary_table(order)}</section>')
        collapse = len(models) > COLLAPSE_ABOVE
        gate = _page_thresholds(settings)
        body = "".join(_model_section(i, m, settings, collapse, gate) for i, m in order)
    else:
        summary = '<section class="card" id="summary"><h2>Summary</h2><p class="empty">No models in this report.</p></section>'
        body = ""
    title = f'foldgate {r.get("command") or ""} report {str(r.get("created") or "")[:16]}'
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{csp()}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="foldgate {_e((r.get("versions") or {}).get("foldgate"))}">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
            f"{_header(r)}{summary}{body}</main><script>{SCRIPT}</script></body></html>\n")


def write_html_report(path: str | os.PathLike, report: Mapping) -> Path:
    """Render and write the HTML page atomically; a failure leaves any old file untouched."""
    text = render_html(report)
    atomic_write_text(path, text)
    return Path(path)
