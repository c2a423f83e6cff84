"""`foldgate backtest`: the seed's run_backtest.py, for one or many models at once."""

from __future__ import annotations

import click

from . import output
from .options import decision_options, positive_int, report_options, simulation_options


@click.command()
@click.option("--model", "models", multiple=True, required=True, type=click.Path(),
              help="Checkpoint (.pt, or SB3 .zip with a .features.json sidecar) or a directory of "
                   "them; repeat for several models, all simulated in one batched call.")
@click.option("--days", type=int, default=30, show_default=True, callback=positive_int,
              help="Days of bars, ending at --end, to test on.")
@click.option("--walk-forward", type=int, default=None, callback=positive_int, metavar="K",
              help="Cut the window into K out-of-sample folds, each starting flat with --capital.")
@click.option("--verbose", "-v", is_flag=True, help="Each model's fold table even above 10 models.")
@simulation_options
@decision_options
@report_options
def backtest(models, days, walk_forward, verbose, capital, end, store, data_source, data_url, fill, commission_bps,
             slippage_bps, long_only, bars_per_year, device, thresholds_path, profile, hurdle_sharpe,
             json_path, html_path):
    """Backtest models on stored hourly bars, optionally walk-forward over K folds and
    decide LIVE / PAPER / RETRAIN / DROP. With several models a bad one fails alone
    (exit status 1 once the reports are written)."""
    from engine.pipeline import RunConfig, run_backtest

    cfg = RunConfig(
        days=days, walk_forward=walk_forward, capital=capital, commission_bps=commission_bps,
        slippage_bps=slippage_bps, fill=fill, end=end, store=store, source=data_source, data_url=data_url,
        long_only=long_only, bars_per_year=bars_per_year, device=device, profile=profile,
        hurdle_sharpe=hurdle_sharpe, thresholds=thresholds_path,
    )
    with output.status("backtesting") as progress:
        report = run_backtest(list(models), cfg, progress=progress)
    output.warn_flags(report)
    output.print_backtest(report, verbose=verbose)
    output.write_reports(report, json_path, html_path)
    output.exit_on_failures(report)
