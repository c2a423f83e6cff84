"""`foldgate backtest`: the seed's run_backtest.py, for one or many models at once."""

from __future__ import annotations

import click

from engine.pipeline import run_backtest

from . import output
from .gc_pause import paused_gc
from .options import report_options, run_config_options


@click.command()
@click.option("--model", "models", multiple=True, required=True, type=click.Path(),
              help="Checkpoint (.pt, or SB3 .zip with a .features.json sidecar) or a directory of "
                   "them; repeat for several models, all simulated in one batched call.")
@click.option("--verbose", "-v", is_flag=True, help="Each model's fold table even above 10 models.")
@run_config_options(
    days=30, days_help="Days of bars, ending at --end, to test on.",
    walk_forward=None, walk_forward_help="Cut the window into K out-of-sample folds, each starting flat with --capital.",
    out_help="Keep the run's chunks in DIR/run/ as they finish, for --resume.")
@report_options
@paused_gc()
def backtest(models, verbose, json_path, html_path, cfg):
    """Backtest models on stored hourly bars, optionally walk-forward over K folds and
    decide LIVE / PAPER / RETRAIN / DROP. With several models a bad one fails alone
    (exit status 1 once the reports are written)."""
    with output.status("backtesting") as progress:
        report = run_backtest(list(models), cfg, progress=progress)
    output.note_resumed(cfg)
    output.warn_flags(report)
    output.print_backtest(report, verbose=verbose)
    output.write_reports(report, json_path, html_path)
    output.exit_on_failures(report)
