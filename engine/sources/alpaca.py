"""`engine.sources.alpaca`: a former public path, kept for code written against it;
nothing in foldgate imports it. The Alpaca source lives in `engine.data.sources.alpaca`."""

from ..data.sources.alpaca import ensure_bars, fetch_bars, to_utc  # noqa: F401
