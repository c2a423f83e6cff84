"""`foldgate validate`: the seed's whole post-training workflow in one command."""

from __future__ import annotations

import click

from engine.atomic import ensure_writable_dir
from engine.pipeline import promote as promote_models
from engine.pipeline import report_dir, run_validate
from engine.report.together import write_reports
from engine.summary import CHECKPOINT_CHOICES

from . import output
from .gc_pause import paused_gc
from .options import report_options, run_config_options


@click.command()
@click.argument("training_source", metavar="SOURCE", type=click.Path(exists=True))
@click.option("--quick-days", "quick_days", type=int, default=30, show_default=True,
              help="Days of the quick sanity backtest (the seed's step 4).")
@click.option("--dest", default="training_archives", show_default=True, type=click.Path(file_okay=False),
              help="Where archives are extracted.")
@click.option("--promote", is_flag=True, help="Copy LIVE and PAPER models into --models-dir and write "
              "its deployment manifest.")
@click.option("--models-dir", default="models/rl_symbols", show_default=True, type=click.Path(file_okay=False),
              help="Where --promote puts models.")
@click.option("--force", "force", is_flag=True,
              help="Backtest models that gating dropped, too (they stay DROP).")
@click.option("--checkpoints", "checkpoints", type=click.Choice(CHECKPOINT_CHOICES), default="final",
              show_default=True,
              help="Validate the final model, gating's advised checkpoint, or every checkpoint the summary "
                   "lists (a symbol's checkpoints are its variants: DSR and PBO across them).")
@click.option("--verbose", "-v", is_flag=True, help="A fold table per model even above 10 models.")
@run_config_options(
    days=180, days_help="Days of bars for the walk-forward test.",
    walk_forward=5, walk_forward_help="Number of out-of-sample folds.",
    out_help="Report directory [default: validation_reports/<archive stamp>/]; the run's "
             "chunks go to its run/ (see --resume).",
    keep_chunks=True)
@report_options
@paused_gc()
def validate(training_source, dest, promote, models_dir, verbose, json_path, html_path, cfg):
    """Validate a training ARCHIVE (zip), its extracted DIR, or its SUMMARY.json: extract,
    gate, backtest, walk-forward, decide LIVE / PAPER / RETRAIN / DROP, and report."""
    if cfg.out_dir is not None:
        ensure_writable_dir(cfg.out_dir)  # fail before the work, not after it
    with output.status("validating") as progress:
        report, jobs = run_validate(training_source, cfg, dest_root=dest, progress=progress)
    output.note_resumed(cfg)
    stamp = (report.get("archive") or {}).get("stamp")
    out = report_dir(cfg.out_dir, stamp)
    ensure_writable_dir(out)
    json_file, html_file = out / "report.json", out / "report.html"
    write_reports(json_file, html_file, report)  # at once, on a large run
    output.warn_flags(report)
    output.print_validate(report, verbose=verbose)
    output.write_reports(report, json_path, html_path)
    if promote:
        manifest = promote_models(jobs, json_file, models_dir)
        click.echo(f"Promoted to {models_dir}: manifest {manifest}" if manifest
                   else "Nothing to promote: no LIVE or PAPER models.")
    click.echo(f"Reports: {json_file} and {html_file}")
    output.exit_on_failures(report)
