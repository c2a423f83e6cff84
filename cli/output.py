"""Terminal output of backtest and validate: rich tables, the seed's PER-FOLD ANALYSIS
lines, progress on stderr, report files."""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import textwrap
import threading

import click
from rich import box
from rich.console import Console
from rich.cells import cell_len
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from engine.report.together import write_reports as write_both
from engine.stress import SCENARIOS

DECISION_STYLE = {"LIVE": "bold green", "PAPER": "yellow", "RETRAIN": "magenta", "DROP": "bold red"}
DECISION_ORDER = {"LIVE": 0, "PAPER": 1, "RETRAIN": 2, "DROP": 3, None: 4}


def console() -> Console:
    # Through CliRunner stdout is not a terminal: keep a fixed width so tables stay whole.
    # COLUMNS (as a shell sets it) overrides, so tests can check the layout at 80 columns.
    width = os.environ.get("COLUMNS")
    width = int(width) if width and width.isdigit() else (None if sys.stdout.isatty() else 120)
    return Console(file=click.get_text_stream("stdout"), width=width, highlight=False, soft_wrap=False)


PROGRESS_AFTER_S = 1.0
"""The progress bar appears only on work that has taken this long (issue 11 item 5)."""


def _silent(message) -> None:
    return None


_silent.takes_chunks = True


@contextlib.contextmanager
def status(label: str, console: Console | None = None, after_s: float = PROGRESS_AFTER_S):
    """Progress on stderr, only on a terminal, only once the work has taken `after_s`:
    the current step, and while chunks run a bar of trajectories done (rich.progress).
    Yields the callback the engine calls with a step (str) or an engine.run
    ChunkProgress (it says so by `takes_chunks`)."""
    err = console or Console(stderr=True)
    if not err.is_terminal:
        yield _silent
        return
    # lazy: rich.progress, only on a terminal
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True)
    task = bar.add_task(label, total=None)

    def update(message) -> None:
        if isinstance(message, str):
            bar.update(task, description=f"{label}: {message}")
            return
        what = "simulating trajectories" + (" (from the run directory)" if message.reused else "")
        bar.update(task, description=f"{label}: {what}", total=message.n_trajectories,
                   completed=message.trajectories_done)

    update.takes_chunks = True
    timer = threading.Timer(after_s, bar.start)
    timer.daemon = True
    timer.start()
    try:
        yield update
    finally:
        timer.cancel()
        timer.join()
        bar.stop()


def model_label(e: dict) -> str:
    """The symbol, and with --checkpoints advised|all which of its checkpoints this is
    (its variants would read alike otherwise)."""
    ck = e.get("checkpoint")
    if not ck:
        return e.get("symbol") or "?"
    which = "final" if ck.get("index") is None else f"ckpt {ck['index']}"
    return f"{e.get('symbol') or '?'} ({which})"


def pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def num(x, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def print_metrics(con: Console, title: str, m: dict) -> None:
    # the title on its own line: as a table title it wraps to the two narrow columns
    con.print(title, markup=False)
    table = Table(show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("Total Return", pct(m["total_return"])),
        ("Max Drawdown", pct(m["max_drawdown"])),
        ("Sharpe", num(m["sharpe"])),
        ("Sortino", num(m["sortino"])),
        ("Trades", str(m["n_trades"])),
        ("Win Rate", pct(m["win_rate"])),
        ("Profit Factor", num(m["profit_factor"])),
        ("Gross Profit", num(m["gross_profit"])),
        ("Gross Loss", num(m["gross_loss"])),
        ("Exposure", pct(m["exposure"])),
        ("Turnover", num(m["turnover"])),
        ("Clipped Shorts", str(m["clipped_shorts"])),
        ("Bars", str(m["bars"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    con.print(table)


FOLD_COLUMNS = (  # (header, justify): sized so the table fits 80 columns (issue 8 item 10)
    ("#", "right"), ("Start", "left"), ("End", "left"), ("Bars", "right"), ("Return", "right"),
    ("Sharpe", "right"), ("MaxDD", "right"), ("Trades", "right"), ("Win", "right"), ("PF", "right"),
    ("", "left"),
)


def print_folds(con: Console, entry: dict) -> None:
    # no box and one space between columns: 11 columns of dates and numbers in 80
    table = Table(title=f"{entry['symbol']} walk-forward", title_justify="left", box=None,
                  padding=(0, 0, 0, 1), pad_edge=False, caption_justify="left",
                  caption="IS: in-sample (overlaps training), left out of the evidence"
                  if any(f["in_sample"] for f in entry["folds"]) else None)
    for col, justify in FOLD_COLUMNS:
        table.add_column(col, justify=justify, no_wrap=True, header_style="bold")
    for fold in entry["folds"]:
        m = fold["metrics"]
        table.add_row(str(fold["index"] + 1), fold["start"][:10], fold["end"][:10], str(fold["bars"]),
                      pct(m["total_return"]), num(m["sharpe"]), pct(m["max_drawdown"]),
                      str(m["n_trades"]), pct(m["win_rate"]), num(m["profit_factor"]),
                      "IS" if fold["in_sample"] else "")
    con.print(table)
    print_fold_analysis(con, entry["summary"])
    print_evidence(con, entry)


def print_fold_analysis(con: Console, s: dict) -> None:
    """The seed's PER-FOLD ANALYSIS block, line for line."""
    std = "n/a" if s["sharpe_std"] is None else f"{s['sharpe_std']:.2f}"
    lines = [
        "PER-FOLD ANALYSIS",
        f"  Sharpe Range: {num(s['sharpe_min'])} to {num(s['sharpe_max'])}",
        f"  Sharpe Mean: {num(s['sharpe_mean'])} (+/- {std})",
        f"  Positive Folds: {s['positive_folds']}/{s['folds']}",
        f"  Return Range: {pct(s['return_min'])} to {pct(s['return_max'])} (mean {pct(s['return_mean'])})",
        f"  PSR (all folds stitched): {num(s['psr'], 3)}",
    ]
    if s.get("in_sample_folds"):
        lines.append(f"  In-sample folds: {s['in_sample_folds']} (they overlap the training period)")
    for line in lines:
        con.print(line, markup=False)


def evidence_lines(e: dict) -> list[str]:
    """The key figures of docs/design.md 6.1, each line under 80 columns."""
    lo, hi = e.get("sr_ci90") or (None, None)
    hurdle = e.get("hurdle_sharpe") or 0.0
    lines = [
        f"EVIDENCE ({e['oos_folds']} out-of-sample folds, {e.get('n_bars', 0):,} bars)",
        f"  Sharpe: {num(e.get('sr_annual'))} (90% CI {num(lo)} to {num(hi)}), q {num(e.get('q'))}",
        f"  PSR(0): {num(e.get('psr0'), 3)}  PSR(hurdle {hurdle:g}): {num(e.get('psr_hurdle'), 3)}",
    ]
    if e.get("min_trl_bars") is not None:
        # whole bars, rounded up as the reasons' "window shorter than MinTRL" rounds them
        lines.append(f"  MinTRL: {math.ceil(e['min_trl_bars']):,} bars ({e['min_trl_days']:,.0f} days)")
    else:
        lines.append("  MinTRL: n/a")
        lines.append(f"    {e.get('min_trl_reason') or 'no Sharpe above the hurdle'}")
    lines.append(f"  Cochran's Q: {num(e.get('cochran_q'))} (p {num(e.get('cochran_p'), 3)})")
    if (e.get("n_variants") or 1) > 1:
        lines.append(f"  DSR: {num(e.get('dsr'), 3)} (deflated across the {e['n_variants']} variants of this symbol)")
    if e.get("bh_q") is not None:
        lines.append(f"  BH q-value: {num(e['bh_q'], 3)} ({'passes' if e.get('bh_pass') else 'fails'} "
                     f"the run's false-discovery bound)")
    bh = e.get("buy_and_hold")
    if bh:
        lines.append(f"  Buy-and-hold: return {pct(bh.get('return'))}, Sharpe {num(bh.get('sharpe'))}; "
                     f"excess Sharpe {num(e.get('excess_sharpe'))}")
    return lines


def print_evidence(con: Console, entry: dict) -> None:
    e = (entry.get("summary") or {}).get("evidence")
    if e:
        for line in evidence_lines(e):
            con.print(line, markup=False)


def reason_text(con: Console, reason: str) -> str:
    """A reason as a list item whose continuation lines stay indented under it."""
    return textwrap.fill(reason, width=max(40, con.width - 1), initial_indent="  - ", subsequent_indent="    ",
                         break_on_hyphens=False)


def print_reason(con: Console, reason: str) -> None:
    con.print(reason_text(con, reason), markup=False)


def print_decision(con: Console, entry: dict) -> None:
    if entry.get("decision"):
        style = DECISION_STYLE.get(entry["decision"], "")
        profile = entry.get("profile") or "evidence"
        con.print(f"Decision ({profile} profile): [{style}]{entry['decision']}[/]")
        for reason in entry.get("reasons", []):
            print_reason(con, reason)
        others = [f"{name} {d}" for name, d in (entry.get("decisions") or {}).items() if name != profile and d]
        if others:
            con.print(f"  Other profile: {', '.join(others)}", markup=False)
    reasons = set(entry.get("reasons") or [])
    for flag in entry.get("flags") or []:
        text = f"{flag['code']}: {flag['message']}"
        if text not in reasons:  # the evidence rule lists its flags among the reasons already
            con.print(f"  Flag {text}", markup=False)


def print_backtest(report: dict, verbose: bool = False) -> None:
    """Per model its metrics, fold table, the seed's lines, evidence and decision; above
    10 models (without verbose) one summary table instead (docs/design.md 9)."""
    con = console()
    s = report["settings"]
    fill = s["fill"] + (" (optimistic)" if s["fill"] == "close" else "")
    window = f"{s['days']} days" + (f" x {s['walk_forward']} folds" if s.get("walk_forward") else "")
    # two short lines, not one that wraps at 80 columns
    con.print(f"foldgate backtest: {window}, capital {s['capital']:,.0f}, profile {s.get('profile') or 'evidence'}",
              markup=False)
    con.print(f"  fill {fill}, commission {s['commission_bps']:g} bps, slippage {s['slippage_bps']:g} bps, "
              f"device {s.get('device_used') or s['device']}", markup=False)
    if not verbose and len(report["models"]) > FOLD_TABLE_MAX_MODELS:
        con.print()
        for e in print_summary_table(con, report, s.get("profile") or "evidence"):
            if e.get("error"):
                con.print(f"{e['symbol'] or e['model_path']}: ERROR", markup=False)
                print_reason(con, e["error"])
        con.print(f"({len(report['models'])} models: --verbose prints each one's fold table)", markup=False)
        print_stress_table(con, report)
        return
    for entry in report["models"]:
        if entry.get("error"):
            con.print(f"\n[bold]{escape(entry['symbol'] or '?')}[/] {escape(str(entry['model_path']))}: [red]failed[/]")
            con.print(f"  {entry['error']}", markup=False)
            continue
        side = "long-only" if entry["long_only"] else "long/short"
        # paths and names are the user's: escaped, so a folder called "[/]" is not markup
        con.print(f"\n[bold]{escape(entry['symbol'])}[/] {escape(entry['timeframe'])} ({entry['asset_class']}, {side}) "
                  f"{escape(str(entry['model_path']))}")
        if entry["backtest"]:
            bt = entry["backtest"]
            tag = " [in-sample]" if bt["in_sample"] else ""
            print_metrics(con, f"Backtest {bt['start'][:10]} to {bt['end'][:10]}{tag}", bt["metrics"])
        if entry["folds"]:
            print_folds(con, entry)
        print_decision(con, entry)
    if any(e.get("stress") for e in report["models"]):
        con.print()
        print_stress_table(con, report)


def write_reports(report: dict, json_path, html_path) -> None:
    """--json and --html: the two written at once on a large run."""
    write_both(json_path or None, html_path or None, report)
    con = Console(stderr=True, highlight=False)
    if json_path:
        con.print(f"JSON report: {json_path}", markup=False)
    if html_path:
        con.print(f"HTML report: {html_path}", markup=False)


FOLD_TABLE_MAX_MODELS = 10  # docs/design.md 9: above this, one summary table (fold tables with --verbose)


def undecided_label(entry: dict) -> str:
    """A model without a decision: ERROR when it failed; else it was not backtested (a
    missing model file, docs/design.md 7: gated and flagged, not an error)."""
    return "ERROR" if entry.get("error") else "-"


SUMMARY_COLUMNS = (  # (header, justify); NARROW_DROPS leave the table below 80 columns
    ("Symbol", "left"), ("Gating", "left"), ("Decision", "left"), ("Other", "left"), ("+Folds", "right"),
    ("SR mean", "right"), ("SR std", "right"), ("OOS SR", "right"), ("90% CI", "right"), ("PSR", "right"),
    ("MinTRL d", "right"), ("BH q", "right"), ("DSR", "right"),
)
SUMMARY_WIDE = 116  # the whole table's width; below it every column was cut to "Gati…"
NARROW_DROPS = {"evidence": ("+Folds", "SR mean", "SR std", "90% CI"), "seed": ("SR mean", "OOS SR", "90% CI", "MinTRL d")}


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
Cell = tuple[str, str | None]
"""A table cell: its text (never markup: symbols and paths are the user's) and a rich style or None."""


def print_table(con: Console, title: str, columns: list[tuple[str, str]], rows: list[list[Cell]]) -> None:
    """A table as rich draws Table(box=SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    with no_wrap columns, but built as one styled Text: rich lays out a Table cell by cell
    (~0.3 ms a row), so a 1,000-model summary took seconds. Tables that do not fit the
    console, or that hold a line break, go to rich.Table itself, which shrinks them."""
    heads = [h for h, _ in columns]
    widths = [cell_len(h) for h in heads]
    for row in rows:
        for j, (text, _) in enumerate(row):
            widths[j] = max(widths[j], cell_len(text))
    # rich breaks lines and drops or expands control characters: its Table does those
    simple = bool(rows) and not _CONTROL.search(title + "".join(heads) + "".join(t for row in rows for t, _ in row))
    total = 2 + sum(widths) + 2 * (len(widths) - 1)
    with _width(con, UNBOUNDED_WIDTH) if stretched_tables(con) else contextlib.nullcontext():
        _print_table(con, title, columns, rows, heads, widths, total, simple)


UNBOUNDED_WIDTH = 100_000
"""The console's width while a table is drawn into a pipe or a file: the table's own."""


def stretched_tables(con: Console) -> bool:
    """Into a pipe or a file (COLUMNS unset) a table is drawn whole, however wide: a
    log of a checkpoint run keeps every label (rich.Table cut them to "C000USD …"
    at 120 columns, and took ~3 ms a row to do it)."""
    return not con.is_terminal and not os.environ.get("COLUMNS")


@contextlib.contextmanager
def _width(con: Console, width: int):
    old = con.width
    con.width = width
    try:
        yield
    finally:
        con.width = old


def _print_table(con: Console, title: str, columns, rows, heads, widths, total: int, simple: bool) -> None:
    if not simple or total > con.width or cell_len(title) > total:
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
        for head, justify in columns:
            table.add_column(head, justify=justify, no_wrap=True)
        for row in rows:
            table.add_row(*(Text(text, style=style or "") for text, style in row))
        con.print(table)
        return

    def pad(text: str, j: int) -> str:
        fill = " " * (widths[j] - cell_len(text))
        return fill + text if columns[j][1] == "right" else text + fill

    last = len(columns) - 1
    spans = []  # (start, end, style) of each styled text, as a styled Text cell in rich.Table
    lines = [title + " " * (total - cell_len(title)), " " * total]  # SIMPLE_HEAD's top edge is blank
    at = 2 * (total + 1)
    head = " " + "".join(pad(h, j) + ("  " if j < last else " ") for j, h in enumerate(heads))
    lines += [head, " " + "\u2500" * (total - 2) + " "]
    spans += [(0, len(title), "table.title"), (at, at + len(head), "table.header")]
    at += len(head) + total + 2
    for row in rows:
        line = " "
        for j, (text, style) in enumerate(row):
            cell = pad(text, j)
            if style and text:
                start = at + len(line) + cell.index(text)
                spans.append((start, start + len(text), style))
            line += cell + ("  " if j < last else " ")
        lines.append(line)
        at += len(line) + 1
    lines.append(" " * total)
    out = Text("\n".join(lines), no_wrap=True, overflow="ignore")
    for start, end, style in spans:
        out.stylize(style, start, end)
    con.print(out)


def print_summary_table(con: Console, report: dict, profile: str) -> list[dict]:
    """One row per model, sorted by decision; returns the models in that order. On a
    terminal narrower than the table, the columns the profile does not decide on go."""
    drop = NARROW_DROPS.get(profile, NARROW_DROPS["evidence"]) if con.width < SUMMARY_WIDE else ()
    columns = [(c, j) for c, j in SUMMARY_COLUMNS if c not in drop]
    keep = [n for n, (c, _) in enumerate(SUMMARY_COLUMNS) if c not in drop]
    models = sorted(report["models"], key=lambda e: (DECISION_ORDER.get(e["decision"], 4), e["symbol"] or ""))
    rows = []
    for e in models:
        sm = e["summary"] or {}
        ev = sm.get("evidence") or {}
        decision = e["decision"] or undecided_label(e)
        style = DECISION_STYLE.get(e["decision"], "red" if e.get("error") else None)
        other = ", ".join(f"{d}" for name, d in (e.get("decisions") or {}).items() if name != profile and d)
        lo, hi = ev.get("sr_ci90") or (None, None)
        cells = (
            model_label(e), (e["gating"] or {}).get("classification", "-"),
            decision,
            other or "-",
            f"{sm['positive_folds']}/{sm['folds']}" if sm else "-",
            num(sm.get("sharpe_mean")) if sm else "-", num(sm.get("sharpe_std")) if sm else "-",
            num(ev.get("sr_annual")) if ev else "-", f"{num(lo)}..{num(hi)}" if ev else "-",
            num(ev.get("psr_hurdle"), 3) if ev else "-",
            num(ev.get("min_trl_days"), 0) if ev else "-",
            num(ev.get("bh_q"), 3) if ev else "-",
            num(sm.get("dsr"), 3) if sm else "-",
        )
        # rich.Table shows a None cell as empty
        rows.append([("" if cells[n] is None else str(cells[n]), style if n == 2 else None) for n in keep])
    print_table(con, "Decisions", columns, rows)
    return models


def print_stress_table(con: Console, report: dict) -> None:
    """--stress: a row per model, PSR(0) and the annual OOS Sharpe (the backtest's Sharpe
    without folds) under each scenario, and whether it is FRAGILE_TO_COSTS."""
    models = [e for e in report["models"] if e.get("stress")]
    if not models:
        return
    columns = [("Symbol", "left")] + [(sc.label, "right") for sc in SCENARIOS] + [("Fragile", "left")]
    rows = []
    for e in models:
        by_name = {r["scenario"]: r for r in e["stress"]["scenarios"]}
        cells = []
        for sc in SCENARIOS:
            r = by_name.get(sc.name)
            if r is None:
                cells.append("-")
            elif r["fold_sharpes"]:
                cells.append(f"{num(r['psr0'], 3)} / {num(r['sr_annual'])}")
            else:
                cells.append(f"- / {num(r['backtest_sharpe'])}")
        fragile = any(f["code"] == "FRAGILE_TO_COSTS" for f in e.get("flags") or [])
        rows.append([(model_label(e), None)] + [(c, None) for c in cells]
                    + [("yes", "red") if fragile else ("no", None)])
    print_table(con, "Stress (PSR(0) / annual Sharpe per scenario)", columns, rows)


def print_validate(report: dict, verbose: bool = False) -> None:
    """A fold table with the seed's lines per model (up to 10 models, or all with
    verbose), then the summary table sorted by decision, then the reasons of each."""
    con = console()
    s = report["settings"]
    profile = s.get("profile") or "evidence"
    con.print(f"foldgate validate: quick backtest {s['quick_days']} days, walk-forward {s['days']} days x "
              f"{s['walk_forward']} folds, capital {s['capital']:,.0f}", markup=False)
    con.print(f"  profile {profile} (the other profile's verdict in 'Other'), device "
              f"{s.get('device_used') or s['device']}", markup=False)
    if verbose or len(report["models"]) <= FOLD_TABLE_MAX_MODELS:
        for entry in report["models"]:
            if entry["folds"]:
                con.print(f"\n[bold]{escape(entry['symbol'])}[/] {escape(entry['timeframe'])} "
                          f"{escape(str(entry['model_path']))}")
                print_folds(con, entry)
        con.print()
    models = print_summary_table(con, report, profile)
    print_stress_table(con, report)
    # one print for all models' lines: rich renders each print (~0.3 ms), and wraps each
    # line of a longer text on its own, as it would have wrapped it alone
    lines = []
    for e in models:
        lines.append(f"{model_label(e)}: {e['decision'] or undecided_label(e)}")
        lines.extend(reason_text(con, reason) for reason in e["reasons"] or ([e["error"]] if e["error"] else []))
    if lines:
        # rich wraps what is wider than the console; with nothing that wide, no wrapping to do
        fits = max(map(cell_len, lines)) <= con.width
        con.print("\n".join(lines), markup=False, no_wrap=fits or None)


def note_resumed(cfg) -> None:
    """On stderr: how much of a resumed run came from its run directory."""
    stats = cfg.run_stats or {}
    if stats.get("chunks_reused"):
        click.echo(f"Resumed: {stats['chunks_reused']} of {stats['chunks']} chunks read from "
                   f"{stats['run_dir']}, {stats['chunks_run']} simulated", err=True)


WARNING_FLAGS = ("SYMBOL_MISMATCH", "END_PAST_LAST_BAR")


def warn_flags(report: dict) -> None:
    """Flags a user must see even when stdout goes elsewhere: one `Warning:` line each on stderr."""
    for m in report["models"]:
        for flag in m.get("flags") or []:
            if flag["code"] in WARNING_FLAGS:
                click.echo(f"Warning: {flag['message']}", err=True)


def exit_on_failures(report: dict) -> None:
    """docs/design.md 9: exit status 1 when any model failed, after the reports are written;
    each failure's reason on stderr."""
    failed = [m for m in report["models"] if m.get("error")]
    if not failed:
        return
    for m in failed:
        label = m.get("symbol") or m.get("model_path") or "?"
        # a loading error already opens with the model's path: name it once
        text = m["error"] if str(m["error"]).startswith(f"{label}:") else f"{label}: {m['error']}"
        click.echo(f"Error: {text}", err=True)
    click.echo(f"Error: {len(failed)} of {len(report['models'])} models failed; the reports include them",
               err=True)
    raise SystemExit(1)
