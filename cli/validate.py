"""`foldgate validate`: the seed's whole post-training workflow in one command."""

from __future__ import annotations

from pathlib import Path

import click

from . import output
from .options import decision_options, positive_int, report_options, simulation_options


@click.command()
@click.argument("source", type=click.Path(exists=True))
@click.option("--days", type=int, default=180, show_default=True, callback=positive_int,
              help="Days of bars for the walk-forward test.")
@click.option("--walk-forward", type=int, default=5, show_default=True, callback=positive_int, metavar="K",
              help="Number of out-of-sample folds.")
@click.option("--quick-days", type=int, default=30, show_default=True, callback=positive_int,
              help="Days of the quick sanity backtest (the seed's step 4).")
@click.option("--dest", default="training_archives", show_default=True, type=click.Path(file_okay=False),
              help="Where archives are extracted.")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Report directory [default: validation_reports/<archive stamp>/].")
@click.option("--promote", is_flag=True, help="Copy LIVE and PAPER models into --models-dir and write "
              "its deployment manifest.")
@click.option("--models-dir", default="models/rl_symbols", show_default=True, type=click.Path(file_okay=False),
              help="Where --promote puts models.")
@click.option("--force", is_flag=True, help="Backtest models that gating dropped, too (they stay DROP).")
@click.option("--verbose", "-v", is_flag=True, help="A fold table per model even above 10 models.")
@simulation_options
@decision_options
@report_options
def validate(source, days, walk_forward, quick_days, dest, out_dir, promote, models_dir, force, verbose, capital, end,
             store, data_source, data_url, fill, commission_bps, slippage_bps, long_only, bars_per_year, device,
             thresholds_path, profile, hurdle_sharpe, json_path, html_path):
    """Validate a training ARCHIVE (zip), its extracted DIR, or its SUMMARY.json: extract,
    gate, backtest, walk-forward, decide LIVE / PAPER / RETRAIN / DROP, and report."""
    from engine.atomic import ensure_writable_dir
    from engine.pipeline import RunConfig, promote as promote_models, run_validate
    from engine.report import write_html_report, write_json_report

    cfg = RunConfig(
        days=days, walk_forward=walk_forward, quick_days=quick_days, capital=capital,
        commission_bps=commission_bps, slippage_bps=slippage_bps, fill=fill, end=end, store=store,
        source=data_source, data_url=data_url, long_only=long_only, bars_per_year=bars_per_year,
        device=device, force=force, profile=profile, hurdle_sharpe=hurdle_sharpe, thresholds=thresholds_path,
    )
    if out_dir is not None:
        ensure_writable_dir(out_dir)  # fail before the work, not after it
    with output.status("validating") as progress:
        report, jobs = run_validate(source, cfg, dest_root=dest, progress=progress)
    stamp = (report.get("archive") or {}).get("stamp") or "run"
    out = Path(out_dir) if out_dir else Path("validation_reports") / stamp
    ensure_writable_dir(out)
    json_file, html_file = out / "report.json", out / "report.html"
    write_json_report(json_file, report)
    write_html_report(html_file, report)
    output.warn_flags(report)
    output.print_validate(report, verbose=verbose)
    output.write_reports(report, json_path, html_path)
    if promote:
        manifest = promote_models(jobs, json_file, models_dir)
        click.echo(f"Promoted to {models_dir}: manifest {manifest}" if manifest
                   else "Nothing to promote: no LIVE or PAPER models.")
    click.echo(f"Reports: {json_file} and {html_file}")
    output.exit_on_failures(report)
