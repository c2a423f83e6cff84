"""`foldgate check-features [NAMES]`: recompute features on truncated and late-started
copies of a series and report every value that moves (engine/feature_check.py)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("check-features")
@click.argument("names", nargs=-1)
@click.option("--symbol", help="Check on this symbol's stored bars instead of a synthetic series.")
@click.option("--timeframe", default="1Hour", show_default=True, help="Timeframe of --symbol's bars.")
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), help="Bar store (default $FOLDGATE_STORE or ./data/bars).")
@click.option("--bars", "n_bars", type=click.IntRange(1, 1_000_000), help="Length of the synthetic series (default: 3000, or 3x the longest lookback + 200).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the series and of the cut and start bars.")
@click.option("--cuts", type=click.IntRange(1, 1000), default=6, show_default=True, help="Truncated copies per feature.")
@click.option("--starts", type=click.IntRange(1, 1000), default=6, show_default=True, help="Late-started copies per feature.")
@click.option("--rtol", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True, help="Relative tolerance (0: a value must not move at all).")
@click.option("--limit", type=click.IntRange(0), default=10, show_default=True, help="Moved values printed per feature (0: all).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write every moved value to this JSON file.")
def check_features(names, symbol, timeframe, store, n_bars, seed, cuts, starts, rtol, limit, json_path) -> None:
    """Check features for lookahead and dependence on where the history starts.

    Without NAMES, every built-in feature (several windows each, stockstats' too).
    Exit status 1 when any value moved."""
    from engine.feature_check import BUILTIN_CHECK_NAMES, default_length, synthetic_bars
    from engine.feature_check import check_features as run_check

    names = list(names) or list(BUILTIN_CHECK_NAMES)
    n = default_length(names)  # parses every name: an unknown one is one error line
    if symbol is not None:
        if n_bars is not None:
            raise click.UsageError("--bars applies to the synthetic series, not to --symbol")
        from engine.store import BarStore, canonical_timeframe
        from engine.symbols import canonical_symbol

        bars = BarStore(store).read(canonical_symbol(symbol), canonical_timeframe(timeframe))
        where = f"{bars.symbol} {bars.timeframe}, {len(bars)} bars"
    else:
        n = n_bars or n
        bars = synthetic_bars(n, seed=seed)
        where = f"a synthetic series of {n} bars (seed {seed})"
    verdicts = run_check(names, bars, cuts=cuts, starts=starts, seed=seed, rtol=rtol)
    if json_path is not None:
        import json

        from engine.atomic import atomic_write_text

        atomic_write_text(json_path, json.dumps({
            "schema": "foldgate.check-features/1", "series": where, "seed": seed, "rtol": rtol,
            "features": [v.to_dict() for v in verdicts],
        }, indent=1))
    click.echo(f"Checked {len(verdicts)} features on {where}: {cuts} truncated and {starts} late-started copies each")
    failed = 0
    for v in verdicts:
        if v.ok:
            click.echo(f"  ok     {v.feature} (lookback {v.lookback})")
            continue
        failed += 1
        ahead = sum(m.copy == "truncated" for m in v.moves)
        click.echo(
            f"  MOVED  {v.feature} (lookback {v.lookback}): {len(v.moves)} values "
            f"({ahead} when the future was cut off: lookahead; {len(v.moves) - ahead} when the history started later)"
        )
        shown = v.moves if limit == 0 else v.moves[:limit]
        for m in shown:
            click.echo(f"         {m.describe()}")
        if len(shown) < len(v.moves):
            click.echo(f"         ... and {len(v.moves) - len(shown)} more (--limit 0 shows all)")
    if failed:
        click.echo(f"Error: {failed} of {len(verdicts)} features moved", err=True)
        raise SystemExit(1)
    click.echo(f"All {len(verdicts)} features kept their values.")
