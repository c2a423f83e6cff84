"""`foldgate data fetch`: bars from Alpaca into the store, with a progress line per
symbol and a data-quality table at the end."""

from __future__ import annotations

import contextlib
import json
import sys
import warnings

import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.atomic import atomic_write_text
from engine.data.bars import ADJUSTMENTS, DEFAULT_STOCK_ADJUSTMENT, canonical_timeframe
from engine.data.sources.credentials import KeysFileWarning
from engine.data.store import BarStore
from engine.data.symbols import canonical_symbol
from engine.errors import FoldgateError, SourceError

from .options import store_option
from .sample_guard import guard_shipped_sample


def _date(ctx, param, value):
    if value is None:
        return None
    from engine.data.sources.alpaca import to_utc  # lazy: the Alpaca source (email, HTTP), ~20 ms of start-up

    try:
        return to_utc(value, param.name, end_of_day=param.name == "end")
    except FoldgateError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _timeframe(ctx, param, value):
    try:
        return canonical_timeframe(value)
    except FoldgateError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _when(t) -> str:
    return "-" if t is None else t.strftime("%Y-%m-%d %H:%M")


def _stdout() -> Console:
    return Console(file=click.get_text_stream("stdout"), width=None if sys.stdout.isatty() else 120,
                   highlight=False, soft_wrap=False)


def _quality_table(reports) -> Table:
    t = Table(title="Data quality", title_justify="left", box=box.SIMPLE_HEAVY, padding=(0, 1),
              pad_edge=False)
    for name, justify in (("Symbol", "left"), ("Status", "left"), ("Recv", "right"),
                          ("New", "right"), ("Refused", "right"), ("Bars", "right"),
                          ("From", "left"), ("To", "left"), ("Holes", "right"),
                          ("Miss", "right"), ("Closed", "right"), ("0-vol", "right")):
        t.add_column(name, justify=justify, no_wrap=True)
    style = {"fetched": "green", "up-to-date": "cyan", "no-data": "bold red"}
    for r in reports:
        t.add_row(r.symbol, f"[{style.get(r.status, '')}]{r.status}[/]",
                  str(r.received), str(r.new_bars),
                  f"[red]{r.refused_total}[/]" if r.refused_total else "0",
                  str(r.stored), _when(r.first), _when(r.last),
                  f"[yellow]{r.holes}[/]" if r.holes else "0", str(r.hole_bars),
                  "-" if r.asset_class == "crypto" else str(r.closed_gaps), str(r.zero_volume))
    t.caption = ("Holes: gaps longer than a bar (stocks: during market hours); Miss: bars "
                 "in them; Closed: stock gaps over nights, weekends, holidays")
    t.caption_justify = "left"
    return t


@contextlib.contextmanager
def _progress(err: Console):
    """A bar per symbol on a terminal; elsewhere one plain line per event that matters."""
    if not err.is_terminal:
        def plain(ev):
            if ev.stage == "retry":
                err.print(f"{ev.symbol}: {ev.message}", highlight=False)
            elif ev.stage == "done":
                err.print(f"{ev.symbol}: {ev.message}, {ev.bars} bars received", highlight=False)
        yield plain
        return
    prog = Progress(TextColumn("[bold]{task.fields[symbol]:<10}"), BarColumn(),
                    TextColumn("{task.fields[bars]:>7} bars"), TextColumn("{task.fields[note]}"),
                    TimeElapsedColumn(), console=err, transient=False)
    tasks: dict[str, int] = {}

    def update(ev):
        if ev.symbol not in tasks:
            tasks[ev.symbol] = prog.add_task("", total=1.0, symbol=ev.symbol, bars=0, note="")
        note = ev.message if ev.stage in ("retry", "done", "start") else ""
        prog.update(tasks[ev.symbol], completed=ev.fraction, bars=ev.bars, note=note)

    with prog:
        yield update


@click.command("fetch")
@click.argument("symbols", nargs=-1, required=True, metavar="SYMBOL...")
@click.option("--timeframe", default="1Hour", show_default=True, callback=_timeframe,
              help="Bar length: 1Min, 15Min, 1Hour, 4Hour, 1Day, ...")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Days back from --end (default 365 when --start is not given).")
@click.option("--start", default=None, metavar="DATE", callback=_date,
              help="First bar time, ISO date or time, UTC.")
@click.option("--end", default=None, metavar="DATE", callback=_date,
              help="Last bar time, ISO date (its whole day) or time, UTC [default: now]. "
                   "A future end is clamped to now.")
@click.option("--feed", type=click.Choice(["iex", "sip"]), default="iex", show_default=True,
              help="Stock data feed (sip needs a paid Alpaca plan). Crypto ignores it.")
@click.option("--adjustment", type=click.Choice(list(ADJUSTMENTS)), default=None,
              help=f"Stock price adjustment [default: {DEFAULT_STOCK_ADJUSTMENT}]; recorded in the store, and bars of "
                   "another adjustment are never merged into a symbol. Crypto ignores it.")
@click.option("--refresh", is_flag=True, help="Re-fetch the whole window, not only what is missing.")
@click.option("--data-url", envvar="FOLDGATE_ALPACA_DATA_URL", show_envvar=True, default=None,
              metavar="URL", help="Alpaca market-data base URL (proxies, tests).")
@click.option("--asset-class", type=click.Choice(["crypto", "us_equity"]), default=None,
              help="Which API to ask [default: what the store recorded, else guessed from the "
                   "symbol: BTC/USD-style pairs and known coins are crypto].")
@store_option
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the quality reports as JSON here.")
def fetch(symbols, timeframe, days, start, end, feed, adjustment, refresh, data_url, asset_class, store,
          json_path):
    """Fetch bars for SYMBOL... (AAPL, BTCUSD, BTC/USD) from Alpaca into the bar store.

    Only what the store lacks in the window is requested; each symbol is written
    atomically once all its pages arrived. Stocks need keys: ALPACA_KEYS_FILE, or
    APCA_API_KEY_ID and APCA_API_SECRET_KEY. Crypto needs none.
    """
    from engine.data.sources.alpaca import fetch_bars  # lazy: as in _date

    if days is not None and start is not None:
        raise click.UsageError("give --days or --start, not both")
    for s in symbols:
        try:
            canonical_symbol(s)
        except FoldgateError as exc:
            raise click.BadParameter(str(exc), param_hint="SYMBOL") from None

    st = BarStore(store)

    guard_shipped_sample(st, "fetch")
    err = Console(stderr=True, highlight=False)
    out = _stdout()
    reports = []
    failure: FoldgateError | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("default", KeysFileWarning)
        warnings.showwarning = (lambda message, category, *a, **k:
                                err.print(f"[yellow]Warning:[/] {message}", highlight=False))
        with _progress(err) as progress:
            for sym in symbols:
                try:
                    reports += fetch_bars(st, [sym], timeframe, start=start, end=end, days=days,
                                          feed=feed, refresh=refresh, data_url=data_url,
                                          progress=progress, asset_class=asset_class,
                                          adjustment=adjustment)
                except FoldgateError as exc:
                    failure = exc
                    break

    if reports:
        out.print(_quality_table(reports))
        for r in reports:
            for note in r.notes:
                out.print(f"  {r.symbol}: {note}", highlight=False, soft_wrap=True)
    if json_path and reports:
        atomic_write_text(json_path, json.dumps([r.to_dict() for r in reports], indent=2) + "\n")
    if failure is not None:
        done = [r.symbol for r in reports]
        pending = [s for s in symbols][len(done):]
        kept = f" ({', '.join(done)} written)" if done else ""
        raise type(failure)(f"{failure}; not fetched: {', '.join(pending)}{kept}")
    missing = [r.symbol for r in reports if r.status == "no-data" and not r.received]
    unusable = [r for r in reports if r.status == "no-data" and r.received]
    if unusable:  # bars came, none could be stored: say why, not "unknown symbol"
        raise SourceError("; ".join(
            f"none of the {r.received} {timeframe} bars Alpaca sent for {r.symbol} could be stored ("
            + (", ".join(f"{n} {k}" for k, n in r.refused.items()) or f"{r.unfinished} unfinished")
            + "); nothing written for it" for r in unusable))
    if missing:
        raise SourceError(f"Alpaca has no {timeframe} bars for {', '.join(missing)} in that window "
                          "(unknown symbol?); nothing written for it")
