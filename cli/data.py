"""`foldgate data`: the local bar store. import | fetch | list | show."""

from __future__ import annotations

import sys

import click
from rich import box
from rich.console import Console
from rich.table import Table

from engine.data.bars import NS_PER_SECOND, canonical_timeframe, format_ts
from engine.data.gaps import summarize
from engine.data.store import BarStore
from engine.data.symbols import canonical_symbol
from engine.errors import FoldgateError

from .options import store_option
from .sample_guard import guard_shipped_sample

ASSET_CLASSES = ("crypto", "us_equity")


def _console() -> Console:
    # a fixed width off a terminal keeps tables whole in pipes, logs and tests
    return Console(file=click.get_text_stream("stdout"), width=None if sys.stdout.isatty() else 120,
                   highlight=False, soft_wrap=True)


def _symbol(ctx, param, value):
    try:
        return canonical_symbol(value)
    except FoldgateError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _timeframe(ctx, param, value):
    if value is None:
        return None
    try:
        return canonical_timeframe(value)
    except FoldgateError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _when(ns: int | None) -> str:
    return "-" if ns is None else format_ts(ns).replace("T", " ").removesuffix(":00Z")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _provenance(bars) -> str:
    """Where the bars came from, as `data show` says it."""
    if bars.feed is None:
        what = "imported or fetched before foldgate recorded it"
    else:
        what = f"Alpaca, feed {bars.feed}"
    if bars.asset_class == "us_equity":
        what += f", {bars.adjustment}-adjusted" if bars.adjustment else ", adjustment not recorded"
    if bars.first_available is not None:
        what += f"; none before {_when(bars.first_available)} UTC (asked from {_when(bars.searched_from)})"
    return what


def _bars(n: int) -> str:
    return f"{n:,} bar" if n == 1 else f"{n:,} bars"


def _duration(ns: int) -> str:
    s = ns // NS_PER_SECOND
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m = s // 60
    parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m else ""]
    return " ".join(p for p in parts if p) or f"{ns / NS_PER_SECOND:g}s"


@click.group()
def data() -> None:
    """The local bar store: import files, fetch from Alpaca, list and inspect."""


@data.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--symbol", required=True, callback=_symbol,
              help="Symbol, in any common form (BTC/USD, btc-usd, BTCUSD, AAPL); stored canonical.")
@click.option("--timeframe", required=True, callback=_timeframe, help="Bar timeframe, e.g. 1Hour, 15Min, 1Day.")
@click.option("--asset-class", type=click.Choice(ASSET_CLASSES), default=None,
              help="[default: the stored one, else guessed from the symbol]")
@click.option("--replace", is_flag=True, help="Replace the stored bars instead of merging (file rows win either way).")
@store_option
def import_cmd(file, symbol, timeframe, asset_class, replace, store):
    """Import bars from a CSV or Parquet FILE.

    Columns (any case): timestamp (ISO-8601 or epoch s/ms/us/ns), open, high, low, close,
    volume, and optionally trade_count and vwap. Every row is checked first; nothing is
    written unless all rows are valid."""
    from engine.data.importer import import_file  # lazy: pyarrow.csv/parquet, ~0.15 s of start-up

    st = BarStore(store)
    guard_shipped_sample(st, "import")
    res = import_file(file, symbol, timeframe, asset_class, st, mode="replace" if replace else "merge")
    how = {"option": "", "store": " (as stored)", "guessed": " (guessed from the symbol; set --asset-class to change)"}
    con = _console()
    con.print(
        f"Imported {_bars(res.rows)} of {res.symbol} {res.timeframe} {res.asset_class}"
        f"{how[res.asset_class_source]} from {file}: {res.added:,} new, {res.replaced:,} replaced."
    )
    con.print(f"Store now holds {_bars(res.total)}, {_when(res.first)} to {_when(res.last)} UTC, in {res.path}")


@data.command("list")
@store_option
def list_cmd(store):
    """List the symbols and timeframes in the store."""
    st = BarStore(store)
    entries = st.list()
    con = _console()
    if not entries:
        where = "" if st.root.is_dir() else " (the directory does not exist)"
        con.print(
            f"No bars in store {st.root}{where}. Add some with `foldgate data import FILE --symbol S "
            "--timeframe 1Hour` or `foldgate data fetch S`."
        )
        return
    table = Table(title=f"Bar store {st.root}", box=box.SIMPLE_HEAD, title_justify="left")
    for col, justify in [("Symbol", "left"), ("Timeframe", "left"), ("Asset class", "left"), ("Bars", "right"),
                         ("First (UTC)", "left"), ("Last (UTC)", "left"), ("Size", "right")]:
        table.add_column(col, justify=justify, no_wrap=True)
    for e in entries:
        if e.error:
            table.add_row(e.symbol, e.timeframe, "[red]unreadable[/red]", "-", "-", "-", _size(e.size_bytes))
            continue
        table.add_row(e.symbol, e.timeframe, e.asset_class or "?", f"{e.n_bars:,}", _when(e.first_ns),
                      _when(e.last_ns), _size(e.size_bytes))
    con.print(table)
    bad = [e for e in entries if e.error]
    for e in bad:
        con.print(f"[red]unreadable:[/red] {e.path}: {e.error}")


@data.command("show")
@click.argument("symbol", callback=_symbol)
@click.option("--timeframe", default=None, callback=_timeframe, help="[default: every stored timeframe]")
@click.option("--gaps", "max_gaps", type=click.IntRange(min=0), default=10, show_default=True,
              help="List at most this many of the longest unexpected gaps.")
@store_option
def show_cmd(symbol, timeframe, max_gaps, store):
    """Show a symbol's range, bar count and gaps."""
    st = BarStore(store)
    timeframes = [timeframe] if timeframe else st.timeframes(symbol)
    if not timeframes:
        st.read(symbol, "1Hour")  # raises the "how to import or fetch" error
    con = _console()
    for i, tf in enumerate(timeframes):
        bars = st.read(symbol, tf)
        info = summarize(bars)
        path = st.path(symbol, tf)
        if i:
            con.print()
        con.print(f"[bold]{info.symbol}[/bold] {info.timeframe}  {info.asset_class}  {path} ({_size(path.stat().st_size)})")
        if not info.n_bars:
            con.print("  no bars")
            continue
        con.print(f"  Source      {_provenance(bars)}")
        span = info.last - info.first
        con.print(f"  Range       {_when(info.first)} to {_when(info.last)} UTC ({span / 86400e9:.1f} days)")
        con.print(f"  Bars        {info.n_bars:,}")
        last = float(bars.close[-1])
        con.print(f"  Last close  {last:,.2f}" if last >= 1 else f"  Last close  {last:.6g}")
        unexpected = info.unexpected_gaps
        closed = len(info.gaps) - len(unexpected)
        if not info.gaps:
            con.print(f"  Gaps        none longer than {info.timeframe}")
        elif info.asset_class == "us_equity":
            con.print(f"  Gaps        {len(unexpected):,} within trading days; {closed:,} between sessions "
                      "(nights, weekends, holidays)")
        else:
            con.print(f"  Gaps        {len(unexpected):,} longer than {info.timeframe}, "
                      f"{sum(g.missing for g in unexpected):,} bars missing in all")
        if unexpected and max_gaps:
            longest = sorted(unexpected, key=lambda g: (-g.length_ns, g.before))[:max_gaps]
            table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), title=f"  longest {len(longest)} of {len(unexpected)}",
                          title_justify="left")
            for col, justify in [("Last bar before", "left"), ("First bar after", "left"), ("Length", "right"),
                                 ("Missing bars", "right")]:
                table.add_column(col, justify=justify, no_wrap=True)
            for g in sorted(longest, key=lambda g: g.before):
                table.add_row(_when(g.before), _when(g.after), _duration(g.length_ns), f"{g.missing:,}")
            con.print(table)


# `data fetch` lives in cli/fetch.py (Alpaca); the store commands work without it.
try:
    from cli.fetch import fetch
except ModuleNotFoundError as _exc:
    if _exc.name != "cli.fetch":
        raise
    fetch = None
if fetch:
    data.add_command(fetch)
