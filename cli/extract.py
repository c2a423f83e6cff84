"""`foldgate extract`: the seed's step 1, done safely and idempotently."""

from __future__ import annotations

from pathlib import Path

import click

from engine.archive import existing_extract, extract_archive, find_summaries
from engine.errors import FoldgateError

_MB = 1024 * 1024


@click.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="ARCHIVE.zip")
@click.option("--dest", default="training_archives", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Directory that receives YYYYMMDD_HHMMSS_extract/.")
@click.option("--max-total-mb", type=click.FloatRange(min=0, min_open=True, max=1e9), default=4096, show_default=True,
              help="Refuse archives that inflate beyond this many MiB.")
@click.option("--max-ratio", type=click.FloatRange(min=1, max=1e9), default=200, show_default=True,
              help="Refuse entries (and archives) that inflate more than this many times.")
def extract(archive: Path, dest: Path, max_total_mb: float, max_ratio: float) -> None:
    """Extract a training ARCHIVE.zip to DEST/YYYYMMDD_HHMMSS_extract/, refusing unsafe
    entries; a complete earlier extract of the same archive is reused."""

    try:
        reused = existing_extract(archive, dest) is not None
        # require_summary: what validate refuses, extract refuses too, in the same words
        out = extract_archive(archive, dest, max_total_bytes=int(max_total_mb * _MB), max_ratio=max_ratio,
                              require_summary=True)
    except FoldgateError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{'Already extracted' if reused else 'Extracted'}: {out}")
    for summary in find_summaries(out):
        click.echo(f"  summary: {summary.relative_to(out)}")
    models = sorted(p for p in out.rglob("*.pt") if p.is_file())
    click.echo(f"  models: {len(models)} .pt file{'s' if len(models) != 1 else ''}")
