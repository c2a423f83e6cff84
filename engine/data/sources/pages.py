"""Alpaca's bar pages, parsed defensively: a page is untrusted JSON from the network.

`decode_json` turns a response body into Python values or raises MalformedResponse (a
SourceError, and a ValueError so that a truncated transfer is retried); `page_rows`
checks a page's shape and returns one symbol's rows; `parse_bars` turns rows into
clean columns, counting the bars it refuses by reason (the rules of docs/design.md 2,
from `engine.data.store.row_checks`, the same ones an import applies)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np

from ...errors import SourceError
from ..bars import row_checks

MAX_TOKEN_CHARS = 4096  # a next_page_token longer than this is not Alpaca's


class MalformedResponse(SourceError, ValueError):
    """A response body that is not the JSON Alpaca sends."""


def decode_json(body: bytes | str):
    """The JSON value of a response body. Deep nesting (RecursionError), integers past
    Python's digit limit (ValueError) and bytes that are not text all come out as
    MalformedResponse with a one-line message."""
    try:
        return json.loads(body)
    except RecursionError:
        raise MalformedResponse("a malformed response (JSON nested too deep)") from None
    except json.JSONDecodeError as exc:
        raise MalformedResponse(f"a malformed (non-JSON) response ({exc.msg} at character {exc.pos})") from None
    except (ValueError, TypeError) as exc:  # the int digit limit, undecodable bytes
        why = " ".join(str(exc).split())[:120]
        raise MalformedResponse(f"a malformed response ({why})") from None


def check_page(resp, host: str) -> dict:
    """The page if it has Alpaca's shape ({"bars": {SYMBOL: [...]}, "next_page_token":
    str | null}); `bars: null` reads as no bars. SourceError naming what is wrong."""
    if not isinstance(resp, dict) or "bars" not in resp:
        raise SourceError(f"{host} did not answer with Alpaca's bars JSON "
                          "(check --data-url / FOLDGATE_ALPACA_DATA_URL)")
    bars = resp["bars"]
    if bars is None:  # some endpoints say null for "no bars"
        resp = dict(resp, bars={})
    elif not isinstance(bars, dict):
        raise SourceError(f"{host} answered with a malformed bars object ({type(bars).__name__}, "
                          "not an object)")
    else:
        for sym, rows in bars.items():
            if rows is not None and not isinstance(rows, list):
                raise SourceError(f"{host} answered with malformed bars for {str(sym)[:40]!r} "
                                  f"({type(rows).__name__}, not a list)")
    token = resp.get("next_page_token")
    if token is not None and not (isinstance(token, str) and len(token) <= MAX_TOKEN_CHARS):
        raise SourceError(f"{host} answered with a malformed next_page_token "
                          f"({type(token).__name__}{', too long' if isinstance(token, str) else ''})")
    return resp


def page_rows(resp: dict, symbol: str) -> list:
    """One symbol's rows of a checked page (empty when the page has none)."""
    return resp["bars"].get(symbol) or []


def _column(rows: list, key: str) -> np.ndarray:
    """float64 per row; NaN where the field is missing or not a JSON number (a string,
    a bool, null, an object, an integer too large for a float)."""
    out = np.full(len(rows), np.nan)
    for i, r in enumerate(rows):
        v = r.get(key) if isinstance(r, dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            try:
                out[i] = float(v)
            except OverflowError:  # an integer like 10**400
                pass
    return out


_BAD_TS = np.iinfo(np.int64).min


def _timestamps(rows: list) -> np.ndarray:
    """Alpaca's RFC 3339 `t` -> int64 ns UTC; unparseable or out of range -> INT64 min."""
    import pandas as pd  # lazy: ~0.3 s, an alpaca-py dependency; fast and strict ISO-8601

    raw = [r.get("t") if isinstance(r, dict) and isinstance(r.get("t"), str) and len(r["t"]) <= 64
           else None for r in rows]
    if not raw:
        return np.empty(0, np.int64)
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce"))
        return idx.as_unit("ns").asi8.copy()
    except (ValueError, OverflowError, TypeError):  # one odd value spoils the vector parse
        return np.array([_one_timestamp(v) for v in raw], dtype=np.int64)


def _one_timestamp(value: str | None) -> int:
    """The slow, exact path for one value: ns, or INT64 min."""
    if value is None:
        return _BAD_TS
    s = value.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        t = dt.datetime.fromisoformat(s)
    except ValueError:
        return _BAD_TS
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    d = t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    ns = (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1000
    return ns if -(2**63) < ns < 2**63 else _BAD_TS


@dataclass
class _Parsed:
    bars: dict                 # column name -> array, clean rows only, sorted, unique
    refused: dict
    unfinished: int


def parse_bars(rows: list, step_ns: int, now_ns: int) -> _Parsed:
    """Alpaca bar dicts -> clean, sorted, unique columns; refused rows counted by reason.
    Refused: a row that is not an object, a bad `t`, and whatever `engine.data.store.row_checks`
    (docs/design.md 2, the same rules as an import) refuses. Unfinished: bars whose interval
    has not ended by `now_ns`."""
    if not isinstance(rows, list):
        raise SourceError(f"bars must be a list, got {type(rows).__name__}")
    ts = _timestamps(rows)
    o, h, l_, c, v = (_column(rows, k) for k in ("o", "h", "l", "c", "v"))
    n_ = _column(rows, "n")
    vw = _column(rows, "vw")
    refused: dict[str, int] = {}
    bad = np.zeros(len(rows), dtype=bool)

    def mark(mask, reason):
        new = mask & ~bad
        if new.any():
            refused[reason] = refused.get(reason, 0) + int(new.sum())
        bad[:] |= mask

    mark(np.array([not isinstance(r, dict) for r in rows], dtype=bool), "malformed bar")
    mark(ts == _BAD_TS, "bad timestamp")
    # trade count and vwap are optional: a bad one is dropped below, not a refused bar
    for check in row_checks(np.where(bad, 0, ts), o, h, l_, c, v, now_ns=now_ns):
        mark(check.mask, check.reason)
    unfinished_mask = ~bad & (ts + step_ns > now_ns)
    unfinished = int(unfinished_mask.sum())
    keep = ~bad & ~unfinished_mask

    ts = ts[keep]
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    last_of_run = np.ones(len(ts), dtype=bool)
    last_of_run[:-1] = ts[1:] != ts[:-1]
    sel = order[last_of_run]
    ts = ts[last_of_run]

    def pick(a):
        return a[keep][sel]

    tc = pick(n_)
    with np.errstate(invalid="ignore"):
        tc_ok = np.isfinite(tc) & (tc >= 0) & (tc <= 2.0**62) & (tc == np.round(tc))
    tc = None if len(tc) and not tc_ok.any() else np.where(tc_ok, tc, -1).astype(np.int64)
    vwp = pick(vw)
    with np.errstate(invalid="ignore"):
        vwp = np.where(np.isfinite(vwp) & (vwp > 0), vwp, np.nan)
    vwp = None if len(vwp) and np.isnan(vwp).all() else vwp
    cols = {"timestamp": ts, "open": pick(o), "high": pick(h), "low": pick(l_),
            "close": pick(c), "volume": pick(v), "trade_count": tc, "vwap": vwp}
    return _Parsed(cols, refused, unfinished)


