"""Bars from Alpaca's market-data API into the bar store, through alpaca-py.

Stocks go through `StockHistoricalDataClient` (keys required), crypto through
`CryptoHistoricalDataClient` (keys optional: they only raise the rate limit); the
SDK's own pagination walks `next_page_token`. Per symbol, only the ranges the store
lacks are asked for (`refresh=True` asks for the whole window), and the bars are
written (validated, merged, atomically) only after every page of that symbol has
arrived, so a fetch that fails half-way leaves the store exactly as it was.

Network behaviour, all bounded (timeouts, retries, response and page caps), is
`alpaca_http` (`HttpPolicy`, env `FOLDGATE_ALPACA_*`).

Times: the window is [start, end], both inclusive, in UTC. An `end` in the future
(or ahead of this machine's clock) is clamped to now with a note in the report,
rather than refused, because "up to now" is what a future end can only mean. Bars
that have not closed yet (start + timeframe > now) are not stored: the store holds
finished bars only, and the next fetch re-asks from the last stored bar anyway.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import numpy as np

from ...errors import DataError, FoldgateError, SourceError
from ..bars import (
    DEFAULT_STOCK_ADJUSTMENT,
    NS_PER_SECOND,
    Bars,
    canonical_timeframe,
    check_adjustment,
    datetime_ns,
    format_ts,
    timeframe_seconds,
)
from ..store import BarStore
from ..calendar import market_open_between, slots_in_sessions
from ..symbols import alpaca_symbol, canonical_symbol, check_asset_class, guess_asset_class, split_crypto_pair
from .credentials import MISSING_KEYS_HINT, Credentials, load_credentials
from .alpaca_http import HttpPolicy, Pager, data_client, is_loopback, resolve_data_url
from .pages import page_rows, parse_bars
from .redact import Redactor

FEEDS = ("iex", "sip", "delayed_sip")
CRYPTO_FEED = "us"  # alpaca-py's CryptoFeed.US, the one crypto feed asked for
DEFAULT_DAYS = 365
_SKEW_NOTE_NS = 120 * NS_PER_SECOND  # HTTP Date has 1 s resolution; 2 min is real skew

# ----------------------------------------------------------------------------- reports


@dataclass
class FetchProgress:
    """What `progress` callbacks receive."""

    symbol: str
    stage: str          # "start" | "page" | "retry" | "write" | "done"
    fraction: float     # share of the window's time span covered so far, 0..1
    bars: int           # bars received so far for this symbol
    message: str = ""


@dataclass
class FetchReport:
    """What one symbol's fetch did and how good the data in the window is."""

    symbol: str
    timeframe: str
    asset_class: str
    alpaca_symbol: str
    start: dt.datetime                  # the window, after clamping
    end: dt.datetime
    status: str = "up-to-date"          # "fetched" | "up-to-date" | "no-data"
    requested: list = field(default_factory=list)   # [(start, end)] asked of Alpaca
    pages: int = 0
    retries: int = 0
    received: int = 0                   # bars that arrived
    refused: dict = field(default_factory=dict)     # reason -> count of bars not stored
    unfinished: int = 0                 # bars still forming, not stored
    new_bars: int = 0                   # timestamps the store did not have
    stored: int = 0                     # bars of the window in the store afterwards
    first: dt.datetime | None = None    # first and last stored bar in the window
    last: dt.datetime | None = None
    closed_gaps: int = 0                # us_equity: gaps explained by market closure
    holes: int = 0                      # gaps during market hours (crypto: every gap)
    hole_bars: int = 0                  # bars missing inside those holes
    largest_hole: tuple | None = None   # (last bar before, first bar after)
    zero_volume: int = 0
    notes: list = field(default_factory=list)
    path: Path | None = None
    seconds: float = 0.0

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def to_dict(self) -> dict:
        iso = lambda t: None if t is None else t.isoformat().replace("+00:00", "Z")  # noqa: E731
        return {
            "symbol": self.symbol, "timeframe": self.timeframe, "asset_class": self.asset_class,
            "alpaca_symbol": self.alpaca_symbol, "start": iso(self.start), "end": iso(self.end),
            "status": self.status, "requested": [[iso(a), iso(b)] for a, b in self.requested],
            "pages": self.pages, "retries": self.retries, "received": self.received,
            "refused": dict(self.refused), "unfinished": self.unfinished,
            "new_bars": self.new_bars, "stored": self.stored,
            "first": iso(self.first), "last": iso(self.last),
            "closed_gaps": self.closed_gaps, "holes": self.holes, "hole_bars": self.hole_bars,
            "largest_hole": None if self.largest_hole is None else [iso(t) for t in self.largest_hole],
            "zero_volume": self.zero_volume, "notes": list(self.notes),
            "path": None if self.path is None else str(self.path), "seconds": round(self.seconds, 3),
        }


# ----------------------------------------------------------------------------- times


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def to_utc(value, name: str = "time", end_of_day: bool = False) -> dt.datetime | None:
    """datetime (naive = UTC), date, ISO string ('2024-05-01', '2024-05-01T13:00Z'),
    numpy datetime64 or int ns -> aware UTC datetime. A bare date as an `end` means
    the end of that day."""
    if value is None:
        return None
    if isinstance(value, np.datetime64):
        value = int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        sec, rem = divmod(int(value), NS_PER_SECOND)
        return dt.datetime.fromtimestamp(sec, dt.timezone.utc).replace(microsecond=rem // 1000)
    if isinstance(value, str):
        s = value.strip()
        try:
            if len(s) == 10:
                value = dt.date.fromisoformat(s)
            else:
                value = dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise FoldgateError(f"{name} {value!r} is not an ISO date or time "
                                "(e.g. 2024-05-01 or 2024-05-01T13:00:00Z)") from None
    if isinstance(value, dt.datetime):
        if hasattr(value, "to_pydatetime"):  # pandas Timestamp
            value = value.to_pydatetime()
        return (value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None
                else value.astimezone(dt.timezone.utc))
    if isinstance(value, dt.date):
        t = dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
        return t + dt.timedelta(days=1) - dt.timedelta(microseconds=1) if end_of_day else t
    raise FoldgateError(f"{name} must be a date or time, got {type(value).__name__}")


def _dt(ns: int) -> dt.datetime:
    return to_utc(int(ns))


@dataclass(frozen=True)
class GapStats:
    closed_gaps: int
    holes: int
    hole_bars: int
    largest_hole: tuple[int, int] | None


def analyse_gaps(timestamp: np.ndarray, timeframe: str, asset_class: str) -> GapStats:
    """Steps between consecutive bars longer than the timeframe. Crypto trades around
    the clock, so every gap is a hole. For us_equity a gap is a hole only when a
    missing bar would have overlapped a regular session (09:30-16:00 ET on an NYSE
    trading day, 13:00 on early closes); nights, weekends and holidays are closed gaps."""
    ts = np.asarray(timestamp, dtype=np.int64)
    step = timeframe_seconds(timeframe) * NS_PER_SECOND
    if len(ts) < 2:
        return GapStats(0, 0, 0, None)
    idx = np.flatnonzero(np.diff(ts) > step)
    closed = holes = hole_bars = 0
    largest = None
    largest_missing = 0
    for i in idx:
        a, b = int(ts[i]), int(ts[i + 1])
        if asset_class == "crypto":
            missing = -(-(b - a) // step) - 1
        else:
            missing = slots_in_sessions(a + step, b, step)
        if missing <= 0:
            closed += 1
            continue
        holes += 1
        hole_bars += missing
        if missing > largest_missing:
            largest_missing, largest = missing, (a, b)
    return GapStats(closed, holes, hole_bars, largest)


# ----------------------------------------------------------------------------- planning


def _window(start, end, days, now: dt.datetime, notes: list) -> tuple[dt.datetime, dt.datetime]:
    if days is not None and start is not None:
        raise FoldgateError("give either days or a start, not both")
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, (int, float)) or not days > 0 \
                or not math.isfinite(days):
            raise FoldgateError(f"days must be a positive number, got {days!r}")
    e = to_utc(end, "end", end_of_day=True)
    s = to_utc(start, "start")
    if e is None:
        e = now
    elif e > now:
        notes.append(f"end {e.isoformat()} is in the future (or this clock is behind); "
                     f"fetched up to now, {now.replace(microsecond=0).isoformat()}")
        e = now
    if s is None:
        s = e - dt.timedelta(days=days if days is not None else DEFAULT_DAYS)
    if s >= now:
        raise FoldgateError(f"start {s.isoformat()} is in the future: there are no bars yet")
    if s >= e:
        raise FoldgateError(f"start {s.isoformat()} is not before end {e.isoformat()}")
    return s, e


def _missing_ranges(held: tuple[int, int] | None, s: int, e: int, step: int,
                    asset_class: str, now: int) -> list[tuple[int, int]]:
    """[(from, to)] in ns, inclusive, that the store lacks inside [s, e].

    A range is missing only if a bar could be there: for stocks, some of it must
    fall in extended trading hours (04:00-20:00 ET on a trading day); at the tail,
    a bar after the last stored one must have finished by now. The tail is re-asked
    from the last stored bar (not after it) so a bar Alpaca corrected since is
    replaced. Holes inside the stored range are not re-asked: most are closures or
    bars in which nothing traded."""
    if held is None:
        return [(s, e)]
    first, last = held
    out = []
    if s < first:
        head_end = min(first - NS_PER_SECOND, e)
        if (first - s > step) if asset_class == "crypto" else market_open_between(s, min(first, e + 1)):
            out.append((s, head_end))
    latest_finished = min(e, now - step)  # the latest start of a bar that has closed
    tail_from = max(last + step, s)
    if tail_from <= latest_finished:
        if asset_class == "crypto" or market_open_between(tail_from, latest_finished + step):
            out.append((max(last, s), e))
    return out


# ----------------------------------------------------------------------------- fetching


def _emit(progress, symbol, stage, fraction, bars, message=""):
    if progress is not None:
        progress(FetchProgress(symbol, stage, max(0.0, min(1.0, fraction)), bars, message))


def fetch_bars(store: BarStore | str | os.PathLike | None, symbols, timeframe: str = "1Hour",
               start=None, end=None, days: float | None = None, feed: str = "iex",
               refresh: bool = False, data_url: str | None = None,
               progress: Callable[[FetchProgress], None] | None = None, *,
               http: HttpPolicy | None = None, credentials: Credentials | None = None,
               asset_class: str | None = None, adjustment: str | None = None) -> list[FetchReport]:
    """Fetch `symbols` at `timeframe` over the window into `store`; one FetchReport per
    symbol, in order. The window is [start, end] (UTC; `days` back from `end` when no
    start; `end` defaults to now, a future end is clamped), 365 days by default.

    Only the ranges the store lacks are asked for unless `refresh`. Each symbol is
    written after all its pages arrived; an exception (SourceError for the network
    and Alpaca, FoldgateError for bad arguments) leaves that symbol's file untouched,
    and symbols before it written. A symbol Alpaca has no bars for gets status
    "no-data" and no file. Keys come from `credentials`, else ALPACA_KEYS_FILE or
    APCA_API_KEY_ID / APCA_API_SECRET_KEY, and are looked up only when a request is
    needed (stocks need them, crypto sends them when present).
    Every message it returns or raises (notes, progress, errors, including the ones the
    server sent) has the key id and secret in use replaced by [REDACTED]."""
    box: list = []
    inner = None if progress is None else (lambda ev: progress(_redact_progress(box, credentials, ev)))
    try:
        reports = _fetch_bars(store, symbols, timeframe, start=start, end=end, days=days, feed=feed,
                              refresh=refresh, data_url=data_url, progress=inner, http=http,
                              credentials=credentials, asset_class=asset_class, adjustment=adjustment,
                              _creds_box=box)
    except FoldgateError as exc:
        raise _redactor(box, credentials).error(exc) from None
    red = _redactor(box, credentials)
    if red:
        for rep in reports:
            rep.notes = [red(n) for n in rep.notes]
    return reports


def _redactor(box: list, credentials: Credentials | None) -> Redactor:
    """The secrets this fetch looked up (none when there were none); before it looked,
    the ones it would have used, if they load."""
    if box:
        return Redactor.for_credentials(box[0])
    return Redactor.for_credentials(credentials) if credentials is not None else Redactor.known()


def _redact_progress(box: list, credentials, ev: FetchProgress) -> FetchProgress:
    if ev.message:
        ev.message = _redactor(box, credentials)(ev.message)
    return ev


def _fetch_bars(store: BarStore | str | os.PathLike | None, symbols, timeframe: str = "1Hour",
               start=None, end=None, days: float | None = None, feed: str = "iex",
               refresh: bool = False, data_url: str | None = None,
               progress: Callable[[FetchProgress], None] | None = None, *,
               http: HttpPolicy | None = None, credentials: Credentials | None = None,
               asset_class: str | None = None, adjustment: str | None = None,
               _creds_box: list | None = None) -> list[FetchReport]:
    """fetch_bars without the redaction of its messages."""
    if isinstance(symbols, str):
        symbols = [symbols]
    symbols = list(symbols)
    if not symbols:
        raise FoldgateError("no symbols to fetch")
    if not isinstance(store, BarStore):
        store = BarStore(store)
    tf = canonical_timeframe(timeframe)
    step = timeframe_seconds(tf) * NS_PER_SECOND
    feed = str(feed).lower()
    if feed not in FEEDS:
        raise FoldgateError(f"unknown feed {feed!r}; use one of: {', '.join(FEEDS)}")
    adj = check_adjustment(adjustment) if adjustment is not None else DEFAULT_STOCK_ADJUSTMENT
    url = resolve_data_url(data_url)
    policy = http or HttpPolicy.from_env()
    now = _utcnow()
    window_notes: list[str] = []
    s, e = _window(start, end, days, now, window_notes)
    s_ns, e_ns, now_ns = datetime_ns(s), datetime_ns(e), datetime_ns(now)

    # canonical names first, so a typo fails before any request
    wanted = []
    seen = set()
    for raw in symbols:
        sym = canonical_symbol(raw)
        if sym in seen:
            continue
        seen.add(sym)
        # the user's word, then what the store recorded when Alpaca answered, then a guess
        ac = (check_asset_class(asset_class) if asset_class else None) or store.asset_class(sym, tf) \
            or store.asset_class(sym) or guess_asset_class(raw)
        wanted.append((sym, ac, alpaca_symbol(raw, ac)))

    creds_box: list = [] if _creds_box is None else _creds_box

    def keys() -> Credentials | None:
        if not creds_box:
            creds_box.append(credentials if credentials is not None else load_credentials())
        return creds_box[0]

    reports = []
    for sym, ac, asym in wanted:
        src = _Source(feed if ac != "crypto" else CRYPTO_FEED, adj if ac != "crypto" else None)
        reports.append(_fetch_one(store, sym, ac, asym, tf, step, s, e, s_ns, e_ns, now_ns,
                                  src, refresh, url, policy, keys, progress, list(window_notes)))
    return reports


@dataclass(frozen=True)
class _Source:
    feed: str                   # iex | sip | delayed_sip; crypto: CRYPTO_FEED
    adjustment: str | None      # stocks: raw | split | dividend | all; crypto: None


def _known_empty_start(old, s_ns: int) -> int:
    """Where asking may start: a window that starts where Alpaca was asked before and had
    no bars (searched_from <= s < first_available) starts at the first available bar."""
    if old is not None and old.first_available is not None and old.searched_from <= s_ns < old.first_available:
        return old.first_available
    return s_ns


def _first_available(ranges, held, got_ts, ask_from: int, step: int, ac: str):
    """(searched_from, first_available) when the head of the window was asked for and
    Alpaca had nothing in a stretch where bars could have been, else None."""
    if not ranges or ranges[0][0] != ask_from or (held is not None and ask_from >= held[0]):
        return None
    first = int(got_ts[0]) if len(got_ts) else (held[0] if held is not None else None)
    if first is None or first <= ask_from:
        return None
    could_trade = (first - ask_from > step) if ac == "crypto" else market_open_between(ask_from, first)
    return (ask_from, first) if could_trade else None


def _fetch_one(store, sym, ac, asym, tf, step, s, e, s_ns, e_ns, now_ns, src, refresh,
               url, policy, keys, progress, notes) -> FetchReport:
    t0 = time.perf_counter()
    feed = src.feed
    rep = FetchReport(sym, tf, ac, asym, s, e, notes=notes)
    held = None
    old_meta = None
    if store.has(sym, tf):
        old = store.read(sym, tf)
        if old.adjustment and src.adjustment and old.adjustment != src.adjustment:
            raise DataError(
                f"{store.path(sym, tf)}: {sym} is stored {old.adjustment}-adjusted and this fetch asks "
                f"for {src.adjustment}-adjusted bars; bars of two adjustments are never merged: fetch "
                f"with --adjustment {old.adjustment}, or delete the file to switch")
        old_meta = Bars(sym, tf, ac, np.empty(0, np.int64), *([np.empty(0)] * 5), **old.provenance())
        if len(old):
            held = (int(old.timestamp[0]), int(old.timestamp[-1]))
        # no view may keep the file mapped while the write replaces it (Windows refuses
        # to replace a mapped file)
        del old
    ask_from = _known_empty_start(old_meta, s_ns)
    if ask_from != s_ns:
        rep.notes.append(f"Alpaca had no bars before {format_ts(ask_from)} when asked from "
                         f"{format_ts(old_meta.searched_from)}; not asked again")
    if ask_from > e_ns:
        ranges = []
    else:
        ranges = [(ask_from, e_ns)] if refresh else _missing_ranges(held, ask_from, e_ns, step, ac, now_ns)
    _emit(progress, sym, "start", 0.0, 0, f"{len(ranges)} range(s) to fetch" if ranges else "up to date")

    rows: list = []
    if ranges:
        creds = keys()
        if ac != "crypto" and creds is None:
            raise SourceError(f"no Alpaca keys for stock symbol {sym}: {MISSING_KEYS_HINT} "
                              "(crypto needs no keys)")
        if creds is not None and url and urlsplit(url).scheme == "http" \
                and not is_loopback(urlsplit(url).hostname or ""):
            raise SourceError(f"refusing to send Alpaca keys over plain http to {urlsplit(url).hostname}; "
                              "use an https:// data URL")
        host = urlsplit(url).netloc if url else "data.alpaca.markets"
        span = max(1, sum(b - a for a, b in ranges))
        done_before = [0]
        cur = [ranges[0][0]]

        def on_page(resp):
            page = page_rows(resp, asym)
            rows.extend(page)
            covered = done_before[0]
            if page and isinstance(page[-1], dict) and isinstance(page[-1].get("t"), str):
                try:
                    covered += datetime_ns(to_utc(page[-1]["t"])) - cur[0]
                except FoldgateError:
                    pass
            _emit(progress, sym, "page", covered / span, len(rows))

        def on_retry(problem, wait):
            _emit(progress, sym, "retry", done_before[0] / span, len(rows),
                  f"{problem}; retrying in {wait:.1f} s")

        pager = Pager(policy, host, creds.source if creds else None, on_page, on_retry)
        client = data_client(ac, creds, url, pager)
        for a, b in ranges:
            cur[0] = a
            rep.requested.append((_dt(a), _dt(b)))
            _request(client, ac, asym, tf, a, b, feed, src.adjustment)
            done_before[0] += b - a
        rep.pages, rep.retries = pager.pages, pager.retries
        if pager.server_now_ns is not None:
            skew = now_ns - pager.server_now_ns
            if abs(skew) > _SKEW_NOTE_NS:
                rep.notes.append(
                    f"this machine's clock is {abs(skew) / NS_PER_SECOND / 60:.0f} min "
                    f"{'ahead of' if skew > 0 else 'behind'} the data server's; bars are cut "
                    "at the earlier of the two clocks")
                now_ns = min(now_ns, pager.server_now_ns)

    rep.received = len(rows)
    parsed = parse_bars(rows, step, now_ns)
    rep.refused, rep.unfinished = parsed.refused, parsed.unfinished
    cols = parsed.bars
    if rep.refused:
        rep.notes.append(f"{rep.refused_total} bar(s) refused: "
                         + ", ".join(f"{n} {k}" for k, n in rep.refused.items()))

    found = _first_available(ranges, held, cols["timestamp"], ask_from, step, ac)
    prov = {"adjustment": src.adjustment, "feed": src.feed,
            "first_available": found[1] if found else None, "searched_from": found[0] if found else None}
    if len(cols["timestamp"]):
        bars = Bars(sym, tf, ac, **cols, **prov)
        _emit(progress, sym, "write", 1.0, len(rows))
        w = store.write_bars(bars, mode="merge")
        rep.path = w.path
        rep.status = "fetched"
        rep.new_bars = w.added
    elif found and held is not None:
        # nothing new, but what Alpaca does not have is worth remembering
        empty = {c: np.empty(0, np.int64 if c == "timestamp" else np.float64)
                 for c in ("timestamp", "open", "high", "low", "close", "volume")}
        rep.path = store.write_bars(Bars(sym, tf, ac, **empty, **prov), mode="merge").path
    elif held is None:
        rep.status = "no-data"
        if rep.received:
            rep.notes.append(f"none of the {rep.received} {tf} bars Alpaca sent for {asym} could be "
                             "stored (refused or unfinished); nothing written")
        else:
            hint = ""
            if ac != "crypto" and split_crypto_pair(sym) is not None:
                pair = split_crypto_pair(sym)
                hint = f" (if it is a crypto pair, write it as {pair[0]}/{pair[1]})"
            rep.notes.append(f"Alpaca has no {tf} bars for {asym} between {format_ts(s_ns)} and "
                             f"{format_ts(e_ns)}: unknown symbol, or nothing traded{hint}; "
                             "nothing written")
    else:
        rep.status = "up-to-date"
        if ranges and not rep.received:
            rep.notes.append("Alpaca had no bars in the missing range(s)")

    if rep.status != "no-data":
        _quality(store, rep, sym, tf, ac, s_ns, e_ns, feed)
    rep.seconds = time.perf_counter() - t0
    _emit(progress, sym, "done", 1.0, rep.received, rep.status)
    return rep


def _request(client, ac, asym, tf, a, b, feed, adjustment=None):
    # lazy: alpaca-py pulls pandas, ~0.5 s no other command needs
    from alpaca.data.enums import Adjustment, DataFeed
    from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

    m = re.match(r"(\d+)(\D+)", tf)
    try:
        frame = TimeFrame(int(m.group(1)), TimeFrameUnit(m.group(2)))
    except ValueError as exc:
        raise FoldgateError(f"Alpaca has no {tf} bars: {exc}") from None
    kw = dict(symbol_or_symbols=asym, timeframe=frame, start=_dt(a), end=_dt(b))
    if ac == "crypto":
        return client.get_crypto_bars(CryptoBarsRequest(**kw))
    if adjustment is not None:
        kw["adjustment"] = Adjustment(adjustment)
    return client.get_stock_bars(StockBarsRequest(feed=DataFeed(feed), **kw))


def _quality(store, rep, sym, tf, ac, s_ns, e_ns, feed):
    if not store.has(sym, tf):
        return
    bars = store.read(sym, tf)
    ts = bars.timestamp
    lo, hi = np.searchsorted(ts, s_ns, "left"), np.searchsorted(ts, e_ns, "right")
    win = ts[lo:hi]
    rep.path = store.path(sym, tf)
    rep.stored = int(len(win))
    if not len(win):
        rep.notes.append("the store holds no bars inside this window")
        return
    rep.first, rep.last = _dt(win[0]), _dt(win[-1])
    g = analyse_gaps(win, tf, ac)
    rep.closed_gaps, rep.holes, rep.hole_bars = g.closed_gaps, g.holes, g.hole_bars
    rep.largest_hole = None if g.largest_hole is None else (_dt(g.largest_hole[0]), _dt(g.largest_hole[1]))
    rep.zero_volume = int((bars.volume[lo:hi] == 0).sum())
    if rep.holes:
        what = "during market hours" if ac != "crypto" else ""
        rep.notes.append(f"{rep.holes} hole(s) {what}, {rep.hole_bars} bar(s) missing".replace("  ", " "))
    if ac != "crypto" and feed == "iex" and rep.status == "fetched":
        rep.notes.append("IEX is one exchange (a few % of US volume): volumes are thin; "
                         "--feed sip needs a paid plan")


def ensure_bars(store: BarStore | str | os.PathLike | None, symbol: str, timeframe: str,
                start, end, **kw) -> FetchReport:
    """Make sure the store holds `symbol`'s bars over [start, end]: fetches from Alpaca
    only what the store lacks (nothing, and no keys needed, when it is complete).
    Keyword arguments go to `fetch_bars` (feed, refresh, data_url, progress, http,
    credentials). Raises SourceError when Alpaca has no bars for the symbol at all."""
    rep = fetch_bars(store, [symbol], timeframe, start=start, end=end, **kw)[0]
    if rep.status == "no-data":
        raise SourceError(rep.notes[-1])
    return rep
