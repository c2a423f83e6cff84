"""`foldgate gate`: the seed's step 2 (gating on training metrics) for every symbol of
a training archive, its extracted directory, or a bare summary JSON."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from engine.archive import open_training_source
from engine.errors import FoldgateError
from engine.gating import gate_metrics, load_thresholds, metric_level
from engine.summary import parse_summary

from . import output
from .options import config_option

CLASS_STYLE = {"APPROVED": "bold green", "REVIEW": "yellow", "DROP": "bold red"}
LEVEL_STYLE = {2: "green", 1: "yellow", 0: "red"}
COLUMNS = (  # (gating metric, header, percent?)
    ("fitness", "Fitness", False),
    ("profit_factor", "PF", False),
    ("consistency", "Consistency", True),
    ("max_drawdown", "MaxDD*", True),
)


def _value(v: float | None, percent: bool) -> str:
    if v is None:
        return "n/a"
    return f"{v:.1%}" if percent else f"{v:.2f}"


def _bounds(name: str, percent: bool, t) -> str:
    """"≥0.7 / ≥0.5": the APPROVED bound, then the REVIEW one."""
    op = "≤" if name == "max_drawdown" else "≥"
    a, r = getattr(t.approved, name), getattr(t.review, name)
    fmt = (lambda x: f"{x:.0%}" if round(x * 100) == x * 100 else f"{x:.1%}") if percent else (lambda x: f"{x:g}")
    return f"{op}{fmt(a)} / {op}{fmt(r)}"


def _checkpoint_cell(g) -> str:
    if g is None:
        return "-"
    if not g.use_checkpoint:
        return "final"
    return f"use #{g.checkpoint_index}" + (f" {Path(g.checkpoint).name}" if g.checkpoint else "")


def build_gate_document(source: Path, root: Path, summary_path: Path, stamp: str | None, thresholds,
                        rows: list) -> dict:
    """The `--json` report (schema foldgate.report/2, command "gate", built by the one report
    builder): one entry per symbol with its `gating` object or its error; nothing was
    simulated, so the simulation settings are null and backtest, folds, summary and
    decision are empty."""
    from engine.report.build import build_report, model_entry  # lazy: the report modules, ~50 ms of start-up

    settings = {"thresholds": thresholds.to_dict(), "thresholds_file": thresholds.source,
                "profile": thresholds.profile}
    models = []
    for rec, g in rows:
        entry = model_entry(symbol=rec.symbol, timeframe=rec.timeframe, model_path=rec.model_path,
                            model_sha256=_sha256(rec.model_path), error=rec.error,
                            gating=g.to_dict() if g else None, profile=thresholds.profile)
        # the flags as the entry words them (no backtest here to point at)
        flags = (entry["gating"] or {}).get("flags") or []
        entry["reasons"] = list(g.shortfalls) + [f"{f['code']}: {f['message']}" for f in flags] if g else [rec.error]
        models.append(entry)
    return build_report("gate", models, settings,
                        archive={"path": str(source), "stamp": stamp, "extract_dir": str(root)})


def _sha256(path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None
    except OSError:
        return None


def _print(rows: list, thresholds, summary_path: Path, stamp: str | None) -> None:
    con = output.console()
    title = f"Gating: {summary_path.name}" + (f" (run {stamp})" if stamp else "")
    # one timeframe (the usual case) goes in the title, leaving the width to the metrics
    timeframes = {rec.timeframe for rec, _ in rows}
    show_tf = len(timeframes) > 1
    if not show_tf and None not in timeframes:
        title += f", {timeframes.pop()}"
    table = Table(title=title, title_justify="left", caption_justify="left",
                  caption="bounds: APPROVED / REVIEW; * MaxDD is the training proxy (reward volatility)")
    table.add_column("Symbol", no_wrap=True)
    if show_tf:
        table.add_column("TF", no_wrap=True)
    table.add_column("Class", no_wrap=True)
    for name, header, percent in COLUMNS:
        table.add_column(f"{header}\n{_bounds(name, percent, thresholds)}", justify="right", no_wrap=True)
    table.add_column("Flags", min_width=17, overflow="fold")
    table.add_column("Checkpoint", min_width=8)
    notes: list[str] = []
    for rec, g in rows:
        if g is None:
            # names from the summary are text, not rich markup ("[/]" would crash the table)
            table.add_row(escape(rec.symbol), *([escape(rec.timeframe or "-")] if show_tf else []), "[red]ERROR[/]",
                          "-", "-", "-", "-", "[red]see below[/]", "-")
            notes.append(f"{rec.symbol}: {rec.error}")
            continue
        cells = []
        for name, _, percent in COLUMNS:
            v = g.metrics[name]
            style = "red" if v is None else LEVEL_STYLE[metric_level(name, v, thresholds)]
            cells.append(f"[{style}]{_value(v, percent)}[/]")
        style = CLASS_STYLE[g.classification]
        table.add_row(escape(rec.symbol), *([escape(rec.timeframe or "-")] if show_tf else []),
                      f"[{style}]{g.classification}[/]", *cells,
                      ", ".join(dict.fromkeys(f.code for f in g.flags)) or "-", _checkpoint_cell(g))
        if g.shortfalls:
            notes.append(f"{rec.symbol} is {g.classification}: " + "; ".join(g.shortfalls))
        notes.extend(f"{rec.symbol} {f}" for f in g.flags)
        if rec.model_path is None:
            notes.append(f"{rec.symbol}: no model file found for it")
    con.print(table)
    for note in notes:
        con.print(f"  {note}", markup=False, highlight=False)
    counts = {c: sum(1 for _, g in rows if g and g.classification == c) for c in CLASS_STYLE}
    errors = sum(1 for _, g in rows if g is None)
    con.print(f"{len(rows)} symbols: {counts['APPROVED']} APPROVED, {counts['REVIEW']} REVIEW, "
              f"{counts['DROP']} DROP" + (f", {errors} not gated (errors)" if errors else ""), markup=False)


@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path), metavar="ARCHIVE|DIR|SUMMARY.json")
@config_option
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the gating results as JSON (atomically).")
@click.option("--dest", default="training_archives", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Where an archive is extracted.")
def gate(source: Path, thresholds: str | None, json_path: Path | None, dest: Path) -> None:
    """Classify every model of a training run APPROVED / REVIEW / DROP on its final
    training metrics, flag suspect metrics, and advise on better checkpoints."""
    from engine.report import write_json_report  # lazy: the report modules, ~50 ms of start-up

    try:
        thresholds = load_thresholds(thresholds)  # a bad config fails before any extraction
        root, summary_path, stamp = open_training_source(source, dest)
        # a bare summary can be gated without its models; an archive or extract must hold them
        bare = source.is_file() and source.suffix.lower() == ".json"
        records = parse_summary(summary_path, root, require_models=not bare)
        rows = [(rec, gate_metrics(rec.metrics, rec.checkpoints, thresholds) if rec.ok else None)
                for rec in records]
        _print(rows, thresholds, summary_path, stamp)
        if json_path is not None:
            doc = build_gate_document(source, root, summary_path, stamp, thresholds, rows)
            write_json_report(json_path, doc)
            click.echo(f"JSON: {json_path}")
    except FoldgateError as exc:
        # standalone (and under the app) a user error is one line, exit 1
        raise click.ClickException(str(exc)) from None
