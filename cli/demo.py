"""`foldgate demo`: the README's main job, offline on the shipped sample data."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from engine.archive import existing_extract
from engine.atomic import ensure_writable_dir
from engine.pipeline import run_validate
from engine.sample import build_sample_archive, sample_store_dir

from . import output
from .options import DEVICE_CHOICES, build_run_config, setting_errors


@click.command()
@click.option("--workdir", default="demo_run", show_default=True, type=click.Path(file_okay=False),
              help="Where the sample archive, its extract and the reports go.")
@click.option("--store", type=click.Path(file_okay=False), default=None,
              help="Bar store with the sample data [default: the shipped data/bars].")
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="cpu", show_default=True)
def demo(workdir, store, device):
    """Build a sample training archive from the shipped sample bars and policies, validate
    it (gate, backtest, 5-fold walk-forward, decide), and write the reports."""
    from engine.report import write_html_report, write_json_report  # lazy: the report modules, ~50 ms of start-up

    work = ensure_writable_dir(workdir)
    store = store or str(sample_store_dir())
    archive = build_sample_archive(work, store)
    click.echo(f"Sample training archive: {archive}")
    extracts = work / "training_archives"
    if existing_extract(archive, extracts) is None:
        # the demo owns its workdir: an extract left by an older sample archive goes
        for stale in extracts.glob("*_extract"):
            shutil.rmtree(stale)
    with setting_errors(), output.status("validating") as progress:
        cfg = build_run_config(dict(store=store, device=device), days=180, walk_forward=5, quick_days=30)
        report, _ = run_validate(archive, cfg, dest_root=extracts, progress=progress)
    out = ensure_writable_dir(work / "validation_reports" / report["archive"]["stamp"])
    write_json_report(out / "report.json", report)
    write_html_report(out / "report.html", report)
    output.print_validate(report)
    click.echo(f"\nJSON report: {out / 'report.json'}")
    click.echo(f"HTML report: {Path(out / 'report.html').resolve()}  (open it in a browser)")
