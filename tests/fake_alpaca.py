"""A small fake of Alpaca's market-data REST API for tests: a real HTTP server on
127.0.0.1 (port 0) in a thread, so alpaca-py runs its own URL building, headers,
pagination and error handling against it through `url_override`.

Endpoints: `GET /v2/stocks/bars` (needs key headers) and `GET /v1beta3/crypto/us/bars`
(keys optional), Alpaca's JSON shape `{"bars": {"SYM": [{"t","o","h","l","c","v","n","vw"}]},
"next_page_token": ...}`, pages of `min(limit, max_page)` bars across the requested
symbols, `start`/`end` inclusive.

Faults are scripted per test and consumed one per request, in order:
`fake.fail(429, retry_after=1)`, `fake.fail(500)`, `fake.fail(401)`, `fake.hang(2.0)`,
`fake.drop()` (headers and half the body, then the connection closes),
`fake.raw(body, status=200)` (these bytes as the body: malformed pages).
`FakeAlpaca(echo_secrets=True)` echoes the key id and secret it received in every
error message, as a careless proxy would; foldgate must redact them.
Every request is recorded (path, query, key id, whether a secret came; never the secret).
Stock bars are kept per adjustment (`add_stock(..., adjustment="raw")`); a request gets
the bars of the `adjustment` it names (Alpaca's default: raw).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STOCKS_PATH = "/v2/stocks/bars"
CRYPTO_PATH = "/v1beta3/crypto/us/bars"
TIMEFRAMES = {"Min", "Hour", "Day", "Week", "Month"}


def iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(dt.timezone.utc)


def make_bars(start: dt.datetime, n: int, step: dt.timedelta = dt.timedelta(hours=1),
              price: float = 100.0, skip=None) -> list[dict]:
    """`n` bars every `step` from `start`, a gentle deterministic walk. `skip(ts)` True
    leaves that slot out (market closed, holes)."""
    out = []
    t = start
    i = 0
    while len(out) < n:
        if skip is None or not skip(t):
            p = price * (1.0 + 0.01 * math.sin(i / 7.0))
            out.append({"t": iso(t), "o": round(p, 4), "h": round(p * 1.004, 4),
                        "l": round(p * 0.996, 4), "c": round(p * 1.001, 4),
                        "v": 1000.0 + i % 50, "n": 10 + i % 7, "vw": round(p, 4)})
            i += 1
        t += step
    return out


@dataclass
class Recorded:
    path: str
    params: dict
    key_id: str | None
    has_secret: bool

    @property
    def start(self) -> dt.datetime | None:
        return parse_time(self.params["start"]) if "start" in self.params else None

    @property
    def end(self) -> dt.datetime | None:
        return parse_time(self.params["end"]) if "end" in self.params else None

    @property
    def symbols(self) -> list[str]:
        return self.params.get("symbols", "").split(",")


@dataclass
class _Fault:
    kind: str                    # "status" | "hang" | "drop" | "raw"
    status: int = 0
    retry_after: str | None = None
    seconds: float = 0.0
    path: str | None = None      # only requests to this path consume it
    skip: int = 0                # requests let through before this fault starts
    body: bytes = b""            # "raw": the body sent


@dataclass
class FakeAlpaca:
    max_page: int = 10_000
    keys: tuple[str, str] | None = ("PKTESTKEY0000", "fake-secret-0000")
    stocks: dict = field(default_factory=dict)     # (SYMBOL, timeframe) -> [bar]
    crypto: dict = field(default_factory=dict)     # (BASE/QUOTE, timeframe) -> [bar]
    requests: list = field(default_factory=list)
    echo_secrets: bool = False

    def __post_init__(self):
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # --- scripting -------------------------------------------------------------
    def add_stock(self, symbol: str, bars: list[dict], timeframe: str = "1Hour",
                  adjustment: str | None = None) -> None:
        """Bars served for every adjustment, or (adjustment given) for that one only."""
        key = (symbol, timeframe) if adjustment is None else (symbol, timeframe, adjustment)
        self.stocks[key] = sorted(bars, key=lambda b: b["t"])

    def add_crypto(self, symbol: str, bars: list[dict], timeframe: str = "1Hour") -> None:
        self.crypto[(symbol, timeframe)] = sorted(bars, key=lambda b: b["t"])

    def fail(self, status: int, times: int = 1, retry_after: str | float | None = None,
             path: str | None = None, skip: int = 0) -> None:
        """The next `times` requests (after `skip` good ones) answer `status`."""
        ra = None if retry_after is None else str(retry_after)
        self._add(_Fault("status", status=status, retry_after=ra, path=path), times, skip)

    def hang(self, seconds: float, times: int = 1, path: str | None = None, skip: int = 0) -> None:
        """The next `times` requests get no answer for `seconds`."""
        self._add(_Fault("hang", seconds=seconds, path=path), times, skip)

    def drop(self, times: int = 1, path: str | None = None, skip: int = 0) -> None:
        """The next `times` requests get headers and half the body, then a closed connection."""
        self._add(_Fault("drop", path=path), times, skip)

    def raw(self, body: bytes, status: int = 200, times: int = 1, path: str | None = None,
            skip: int = 0) -> None:
        """The next `times` requests get `body` as it is, with `status`."""
        self._add(_Fault("raw", status=status, body=body, path=path), times, skip)

    def _add(self, fault: _Fault, times: int, skip: int) -> None:
        from dataclasses import replace

        with self._lock:
            self._faults += [replace(fault, skip=skip if i == 0 else 0) for i in range(times)]

    def bar_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path in (STOCKS_PATH, CRYPTO_PATH)]

    # --- lifecycle ---------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "FakeAlpaca is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeAlpaca":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         kwargs={"poll_interval": 0.05}).start()
        return self

    def stop(self) -> None:
        self._release.set()  # wake hanging handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeAlpaca":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the API -------------------------------------------------------------------
    def _next_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for i, f in enumerate(self._faults):
                if f.path is None or f.path == path:
                    if f.skip > 0:
                        f.skip -= 1
                        return None
                    return self._faults.pop(i)
        return None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        key_id = h.headers.get("APCA-API-KEY-ID")
        secret = h.headers.get("APCA-API-SECRET-KEY")
        self.requests.append(Recorded(parts.path, params, key_id, bool(secret)))

        fault = self._next_fault(parts.path)
        if fault is not None:
            if fault.kind == "hang":
                self._release.wait(fault.seconds)
                # a client that gave up has closed the socket; answering is best effort
            elif fault.kind == "status":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                msg = {401: "request is not authorized", 403: "forbidden",
                       429: "too many requests"}.get(fault.status, "internal server error")
                return self._send(h, fault.status, {"code": 40000000 + fault.status,
                                                    "message": self._echo(msg, key_id, secret)},
                                  headers)
            elif fault.kind == "raw":
                h.send_response(fault.status)
                h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(len(fault.body)))
                h.end_headers()
                try:
                    h.wfile.write(fault.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                return
            elif fault.kind == "drop":
                body = json.dumps({"bars": {}, "next_page_token": None}).encode() * 50
                h.send_response(200)
                h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body[: len(body) // 2])
                h.wfile.flush()
                h.close_connection = True
                try:
                    h.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return

        if parts.path == STOCKS_PATH:
            if self.keys is not None and (key_id, secret) != self.keys:
                return self._send(h, 401 if not key_id else 403,
                                  {"code": 40110000,
                                   "message": self._echo("request is not authorized", key_id, secret)})
            adj = params.get("adjustment", "raw")
            book = {}
            for k, v in self.stocks.items():
                if len(k) == 2:
                    book.setdefault(k, v)
                elif k[2] == adj:
                    book[k[:2]] = v  # an adjustment's own bars win over the shared ones
        elif parts.path == CRYPTO_PATH:
            if key_id and self.keys is not None and (key_id, secret) != self.keys:
                return self._send(h, 401, {"code": 40110000,
                                           "message": self._echo("request is not authorized", key_id, secret)})
            book = self.crypto
        else:
            return self._send(h, 404, {"message": "Not Found"})
        self._bars(h, params, book)

    def _echo(self, msg: str, key_id, secret) -> str:
        if not self.echo_secrets:
            return msg
        return f"{msg} (received APCA-API-KEY-ID={key_id} APCA-API-SECRET-KEY={secret})"

    def _bars(self, h, params: dict, book: dict) -> None:
        tf = params.get("timeframe", "")
        if not tf or not any(tf.endswith(u) and tf[: -len(u)].isdigit() for u in TIMEFRAMES):
            return self._send(h, 400, {"code": 42210000, "message": "invalid timeframe"})
        if not params.get("symbols"):
            return self._send(h, 400, {"code": 42210000, "message": "missing symbols"})
        try:
            limit = int(params.get("limit", 1000))
            start = parse_time(params["start"]) if "start" in params else None
            end = parse_time(params["end"]) if "end" in params else None
        except ValueError:
            return self._send(h, 400, {"code": 42210000, "message": "invalid query"})
        if limit < 1 or limit > 10_000:
            return self._send(h, 400, {"code": 42210000, "message": "invalid limit"})
        page = min(limit, self.max_page)

        rows = []
        for sym in sorted(params["symbols"].split(",")):
            for b in book.get((sym, tf), []):
                try:
                    t = parse_time(b["t"])
                except (TypeError, ValueError):  # a scripted broken bar goes out as it is
                    rows.append((sym, b))
                    continue
                if (start is None or t >= start) and (end is None or t <= end):
                    rows.append((sym, b))
        offset = 0
        if params.get("page_token"):
            offset = int(base64.b64decode(params["page_token"]).decode().split("|")[1])
        chunk = rows[offset: offset + page]
        out: dict[str, list] = {}
        for sym, b in chunk:
            out.setdefault(sym, []).append(b)
        nxt = None
        if offset + page < len(rows):
            nxt = base64.b64encode(f"{chunk[-1][0]}|{offset + page}".encode()).decode()
        self._send(h, 200, {"bars": out, "next_page_token": nxt})

    @staticmethod
    def _send(h, status: int, payload: dict, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        try:
            h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
