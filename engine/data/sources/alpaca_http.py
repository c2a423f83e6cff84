"""The HTTP side of the Alpaca source: every request bounded (`HttpPolicy`, env
`FOLDGATE_ALPACA_*`).

- every request has a (connect, read) timeout; alpaca-py sets none by default;
- alpaca-py's own retry (3 fixed 3 s sleeps on 429/504, blind to Retry-After) is
  switched off and replaced here, per page (`Pager`): 429, 5xx, timeouts and dropped
  connections are retried up to `retries` times with exponential backoff and jitter,
  honouring `Retry-After` (or `X-RateLimit-Reset`) up to `max_wait` seconds;
- 401/403 stop at once ("the keys were refused"); other 4xx stop with Alpaca's message;
- a response is read at most `max_response_bytes` long, a symbol at most `_MAX_PAGES` pages.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import os
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable
from urllib.parse import urlsplit

from ...errors import FoldgateError, SourceError
from ..bars import datetime_ns
from .credentials import Credentials
from .pages import check_page, decode_json

DATA_URL_ENV = "FOLDGATE_ALPACA_DATA_URL"
_MAX_PAGES = 100_000  # a server that never stops paginating is a bug, not data

# ----------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts and retries of every Alpaca request."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    retries: int = 4            # further attempts of one page after the first
    backoff: float = 1.0        # first wait in seconds; doubles per attempt, +-50% jitter
    max_wait: float = 60.0      # longest single wait; a longer Retry-After fails at once
    max_response_bytes: int = 64 * 1024 * 1024  # a page of 10,000 bars is ~1.5 MB

    def __post_init__(self):
        for name in ("connect_timeout", "read_timeout", "max_wait"):
            if not getattr(self, name) > 0:
                raise FoldgateError(f"HTTP {name.replace('_', ' ')} must be positive")
        if self.retries < 0 or self.backoff < 0:
            raise FoldgateError("HTTP retries and backoff must not be negative")
        if self.retries > 100:
            raise FoldgateError("HTTP retries must be at most 100")
        if not 1024 <= self.max_response_bytes <= 2**34:
            raise FoldgateError("the largest HTTP response must be between 1 KiB and 16 GiB")

    @classmethod
    def from_env(cls, env=None) -> "HttpPolicy":
        """`FOLDGATE_ALPACA_TIMEOUT` (seconds, both timeouts), `FOLDGATE_ALPACA_RETRIES`,
        `FOLDGATE_ALPACA_BACKOFF`, `FOLDGATE_ALPACA_MAX_WAIT`, `FOLDGATE_ALPACA_MAX_RESPONSE`
        (bytes); unset ones keep the defaults."""
        env = os.environ if env is None else env
        kw: dict[str, Any] = {}

        def num(name, conv):
            raw = env.get(name, "").strip()
            if not raw:
                return None
            if len(raw) > 30:
                raise FoldgateError(f"{name} is not a number ({len(raw)} characters)")
            try:
                v = conv(raw)
            except ValueError:
                raise FoldgateError(f"{name}={raw!r} is not a number") from None
            if isinstance(v, float) and not math.isfinite(v):
                raise FoldgateError(f"{name}={raw!r} is not a finite number")
            return v

        t = num("FOLDGATE_ALPACA_TIMEOUT", float)
        if t is not None:
            kw["connect_timeout"] = kw["read_timeout"] = t
        for key, name, conv in (("retries", "FOLDGATE_ALPACA_RETRIES", int),
                                ("backoff", "FOLDGATE_ALPACA_BACKOFF", float),
                                ("max_wait", "FOLDGATE_ALPACA_MAX_WAIT", float),
                                ("max_response_bytes", "FOLDGATE_ALPACA_MAX_RESPONSE", int)):
            v = num(name, conv)
            if v is not None:
                kw[key] = v
        return cls(**kw)



# ----------------------------------------------------------------------------- HTTP


def _short(text: str, limit: int = 200) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _alpaca_message(exc) -> str:
    try:
        return _short(exc.message)
    except Exception:
        resp = getattr(exc, "response", None)
        return _short(getattr(resp, "text", "") or "no message")


def _retry_after(response, now: float) -> float | None:
    if response is None:
        return None
    raw = response.headers.get("Retry-After")
    if raw:
        raw = raw.strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(raw).timestamp() - now)
            except (TypeError, ValueError, IndexError, OverflowError):
                return None
    reset = response.headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            return None
    return None


class Pager:
    """Runs one page request of alpaca-py with a timeout and bounded retries, and
    reports progress. One instance per symbol fetch."""

    def __init__(self, policy: HttpPolicy, host: str, key_source: str | None,
                 on_page: Callable[[dict], None], on_retry: Callable[[str, float], None],
                 sleep: Callable[[float], None] = time.sleep):
        self.policy = policy
        self.host = host
        self.key_source = key_source
        self.on_page = on_page
        self.on_retry = on_retry
        self.sleep = sleep
        self.pages = 0
        self.retries = 0
        self.server_now_ns: int | None = None   # from the last response's Date header
        self._tokens: set = set()

    def saw_response(self, response) -> None:
        raw = response.headers.get("Date")
        if raw:
            try:
                self.server_now_ns = datetime_ns(parsedate_to_datetime(raw).astimezone(dt.timezone.utc))
            except (TypeError, ValueError, IndexError, OverflowError):
                pass

    def call(self, fn: Callable[[], Any], params: dict | None) -> dict:
        import requests  # lazy: requests and alpaca-py (pandas), only when a fetch runs
        from alpaca.common.exceptions import APIError

        token = (params or {}).get("page_token")
        if token is not None:
            if token in self._tokens:
                raise SourceError(f"{self.host} sent the same next_page_token twice; stopping "
                                  "rather than looping")
            self._tokens.add(token)
        if self.pages >= _MAX_PAGES:
            raise SourceError(f"{self.host} kept paginating past {_MAX_PAGES} pages; stopping")
        p = self.policy
        attempt = 0
        while True:
            wait_hint = None
            try:
                resp = fn()
            except APIError as exc:
                status = exc.status_code
                if status in (401, 403):
                    who = f" (from {self.key_source})" if self.key_source else " (none were sent)"
                    raise SourceError(
                        f"the keys were refused{who}: Alpaca answered HTTP {status}, "
                        f"{_alpaca_message(exc)}; "
                        "check the key id and secret, and that your data plan covers this feed "
                        "(--feed iex needs no subscription)") from None
                if status is None or not (status == 429 or status >= 500):
                    raise SourceError(f"Alpaca answered HTTP {status}: {_alpaca_message(exc)}") from None
                problem = f"HTTP {status} ({_alpaca_message(exc)})"
                wait_hint = _retry_after(exc.response, time.time())
            except requests.exceptions.ConnectTimeout:
                problem = f"no connection within {p.connect_timeout:g} s"
            except requests.exceptions.Timeout:
                problem = f"no response within {p.read_timeout:g} s"
            except (requests.exceptions.ConnectionError,
                    requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as exc:
                problem = f"connection failed or dropped ({type(exc).__name__})"
            except ValueError as exc:  # a truncated or non-JSON body
                problem = str(exc) if isinstance(exc, FoldgateError) else "a malformed (non-JSON) response"
            except RecursionError:  # alpaca-py parsing a deeply nested error body itself
                problem = "a malformed response (JSON nested too deep)"
            else:
                resp = check_page(resp, self.host)
                self.pages += 1
                self.on_page(resp)
                return resp

            if attempt >= p.retries:
                raise SourceError(f"Alpaca data request to {self.host} failed after "
                                  f"{attempt + 1} attempt{'s' if attempt else ''}: {problem}")
            if wait_hint is not None:
                if wait_hint > p.max_wait:
                    raise SourceError(f"Alpaca asked to wait {wait_hint:.0f} s before retrying "
                                      f"({problem}), longer than the {p.max_wait:g} s allowed "
                                      "(FOLDGATE_ALPACA_MAX_WAIT); try again later")
                wait = wait_hint
            else:
                wait = min(p.max_wait, p.backoff * (2 ** attempt)) * (0.5 + random.random())
            attempt += 1
            self.retries += 1
            self.on_retry(problem, wait)
            self.sleep(wait)


def _read_capped(response, limit: int, host: str) -> bytes:
    """The whole (decoded) body, refusing one longer than `limit` before holding it."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and len(declared) < 20 and int(declared) > limit:
        raise SourceError(f"{host} sent a {int(declared):,}-byte response, more than the "
                          f"{limit:,} allowed (FOLDGATE_ALPACA_MAX_RESPONSE)")
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=1 << 16):
        size += len(chunk)
        if size > limit:
            raise SourceError(f"{host} sent a response of more than {limit:,} bytes "
                              "(FOLDGATE_ALPACA_MAX_RESPONSE); stopping")
        chunks.append(chunk)
    return b"".join(chunks)


def _timeout_session(policy: HttpPolicy, on_response: Callable[[Any], None], host: str = "the data server"):
    import requests  # lazy: as in Pager.call

    class _Session(requests.Session):
        # alpaca-py calls session.request(...) without a timeout; a silent server
        # would hang the fetch forever. The body is read here, bounded, and decoded
        # by `decode_json` (alpaca-py's response.json() would raise RecursionError on
        # deep nesting).
        def request(self, method, url, **kwargs):
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = (policy.connect_timeout, policy.read_timeout)
            kwargs["stream"] = True
            response = super().request(method, url, **kwargs)
            try:
                body = _read_capped(response, policy.max_response_bytes, host)
            finally:
                response.close()
            response._content = body
            response._content_consumed = True
            on_response(response)
            if response.status_code < 400:
                parsed = decode_json(body)
                response.json = lambda **_: parsed
            return response

    return _Session()


def data_client(asset_class: str, creds: Credentials | None, url: str | None, pager: Pager):
    # lazy: alpaca-py pulls pandas, ~0.5 s no other command needs
    from alpaca.data.historical.crypto import CryptoHistoricalDataClient
    from alpaca.data.historical.stock import StockHistoricalDataClient

    base = CryptoHistoricalDataClient if asset_class == "crypto" else StockHistoricalDataClient

    class Client(base):
        # alpaca-py's pagination calls self.get once per page: retrying here repeats a
        # page, never the pages already received.
        def get(self, path, data=None, **kwargs):
            return pager.call(lambda: base.get(self, path, dict(data) if data else data, **kwargs), data)

    kw = {"raw_data": True, "url_override": url}
    if creds is not None:
        kw.update(api_key=creds.key_id, secret_key=creds.secret)
    client = Client(**kw)
    client._retry = 0            # the SDK's retry is replaced by Pager's
    client._retry_codes = []
    client._session = _timeout_session(pager.policy, pager.saw_response, pager.host)
    return client


def resolve_data_url(data_url: str | None) -> str | None:
    """`data_url`, else $FOLDGATE_ALPACA_DATA_URL, else None (Alpaca's own)."""
    url = (data_url or os.environ.get(DATA_URL_ENV, "")).strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FoldgateError(f"data URL {url!r} must be http(s)://HOST[:PORT]")
    if parts.query or parts.fragment:
        raise FoldgateError(f"data URL {url!r} must not have a query or fragment")
    return url.rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
