"""Terminal output of backtest and validate: rich tables, the seed's PER-FOLD ANALYSIS
lines, progress on stderr, report files."""

from __future__ import annotations

import contextlib
import sys

import click
from rich.console import Console
from rich.table import Table

DECISION_STYLE = {"LIVE": "bold green", "PAPER": "yellow", "RETRAIN": "magenta", "DROP": "bold red"}
DECISION_ORDER = {"LIVE": 0, "PAPER": 1, "RETRAIN": 2, "DROP": 3, None: 4}


def console() -> Console:
    # Through CliRunner stdout is not a terminal: keep a fixed width so tables stay whole.
    return Console(file=click.get_text_stream("stdout"), width=None if sys.stdout.isatty() else 120,
                   highlight=False, soft_wrap=False)


@contextlib.contextmanager
def status(label: str):
    """A spinner with the current step on stderr (only on a terminal); yields a callback."""
    err = Console(stderr=True)
    if not err.is_terminal:
        yield lambda message: None
        return
    with err.status(label) as spinner:
        yield lambda message: spinner.update(f"{label}: {message}")


def pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def num(x, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def print_metrics(con: Console, title: str, m: dict) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
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


def print_folds(con: Console, entry: dict) -> None:
    table = Table(title=f"{entry['symbol']} walk-forward", title_justify="left")
    for col, justify in [("Fold", "right"), ("Start", "left"), ("End", "left"), ("Bars", "right"),
                         ("Return", "right"), ("Sharpe", "right"), ("Max DD", "right"),
                         ("Trades", "right"), ("Win Rate", "right"), ("PF", "right"), ("", "left")]:
        table.add_column(col, justify=justify)
    for fold in entry["folds"]:
        m = fold["metrics"]
        table.add_row(str(fold["index"] + 1), fold["start"][:16], fold["end"][:16], str(fold["bars"]),
                      pct(m["total_return"]), num(m["sharpe"]), pct(m["max_drawdown"]),
                      str(m["n_trades"]), pct(m["win_rate"]), num(m["profit_factor"]),
                      "in-sample" if fold["in_sample"] else "")
    con.print(table)
    print_fold_analysis(con, entry["summary"])


def print_fold_analysis(con: Console, s: dict) -> None:
    """The seed's PER-FOLD ANALYSIS block, line for line."""
    std = "n/a" if s["sharpe_std"] is None else f"{s['sharpe_std']:.2f}"
    lines = [
        "PER-FOLD ANALYSIS",
        f"  Sharpe Range: {num(s['sharpe_min'])} to {num(s['sharpe_max'])}",
        f"  Sharpe Mean: {num(s['sharpe_mean'])} (+/- {std})",
        f"  Positive Folds: {s['positive_folds']}/{s['folds']}",
        f"  Return Range: {pct(s['return_min'])} to {pct(s['return_max'])} (mean {pct(s['return_mean'])})",
        f"  PSR (stitched folds): {num(s['psr'], 3)}",
    ]
    if s.get("dsr") is not None:
        lines.append(f"  DSR (across this run's models): {num(s['dsr'], 3)}")
    if s.get("in_sample_folds"):
        lines.append(f"  In-sample folds: {s['in_sample_folds']} (they overlap the training period)")
    for line in lines:
        con.print(line, markup=False)


def print_decision(con: Console, entry: dict) -> None:
    if entry.get("decision"):
        style = DECISION_STYLE.get(entry["decision"], "")
        con.print(f"Decision: [{style}]{entry['decision']}[/]")
        for reason in entry.get("reasons", []):
            con.print(f"  - {reason}", markup=False)


def print_backtest(report: dict) -> None:
    con = console()
    s = report["settings"]
    fill = s["fill"] + (" (optimistic)" if s["fill"] == "close" else "")
    con.print(f"foldgate backtest: {s['days']} days, capital {s['capital']:,.0f}, fill {fill}, "
              f"commission {s['commission_bps']} bps, slippage {s['slippage_bps']} bps, "
              f"device {s.get('device_used') or s['device']}", markup=False)
    for entry in report["models"]:
        side = "long-only" if entry["long_only"] else "long/short"
        con.print(f"\n[bold]{entry['symbol']}[/] {entry['timeframe']} ({entry['asset_class']}, {side}) "
                  f"{entry['model_path']}")
        if entry["backtest"]:
            bt = entry["backtest"]
            tag = " [in-sample]" if bt["in_sample"] else ""
            print_metrics(con, f"Backtest {bt['start'][:10]} to {bt['end'][:10]}{tag}", bt["metrics"])
        if entry["folds"]:
            print_folds(con, entry)
        print_decision(con, entry)


def write_reports(report: dict, json_path, html_path) -> None:
    from engine.report import write_html_report, write_json_report

    con = Console(stderr=True, highlight=False)
    if json_path:
        write_json_report(json_path, report)
        con.print(f"JSON report: {json_path}", markup=False)
    if html_path:
        write_html_report(html_path, report)
        con.print(f"HTML report: {html_path}", markup=False)


def print_validate(report: dict) -> None:
    """One line per model, sorted by decision, then the reasons of each."""
    con = console()
    s = report["settings"]
    con.print(f"foldgate validate: quick backtest {s['quick_days']} days, walk-forward {s['days']} days x "
              f"{s['walk_forward']} folds, capital {s['capital']:,.0f}, device {s.get('device_used') or s['device']}",
              markup=False)
    table = Table(title="Decisions", title_justify="left")
    for col, justify in [("Symbol", "left"), ("Gating", "left"), ("Decision", "left"), ("Pos. folds", "right"),
                         ("Sharpe mean", "right"), ("Sharpe std", "right"), ("Mean return", "right"),
                         ("Backtest return", "right"), ("Backtest DD", "right"), ("PSR", "right"),
                         ("DSR", "right")]:
        table.add_column(col, justify=justify)
    models = sorted(report["models"], key=lambda e: (DECISION_ORDER.get(e["decision"], 4), e["symbol"] or ""))
    for e in models:
        sm = e["summary"] or {}
        bt = (e["backtest"] or {}).get("metrics") or {}
        decision = e["decision"] or "ERROR"
        style = DECISION_STYLE.get(e["decision"], "red")
        table.add_row(
            e["symbol"] or "?", (e["gating"] or {}).get("classification", "-"), f"[{style}]{decision}[/]",
            f"{sm['positive_folds']}/{sm['folds']}" if sm else "-",
            num(sm.get("sharpe_mean")) if sm else "-", num(sm.get("sharpe_std")) if sm else "-",
            pct(sm.get("return_mean")) if sm else "-",
            pct(bt.get("total_return")) if bt else "-", pct(bt.get("max_drawdown")) if bt else "-",
            num(sm.get("psr"), 3) if sm else "-", num(sm.get("dsr"), 3) if sm else "-",
        )
    con.print(table)
    for e in models:
        label = e["decision"] or "ERROR"
        con.print(f"{e['symbol']}: {label}", markup=False)
        for reason in e["reasons"] or ([e["error"]] if e["error"] else []):
            con.print(f"  - {reason}", markup=False)
