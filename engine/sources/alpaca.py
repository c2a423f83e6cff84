"""`engine.sources.alpaca`, kept as a path while the pipeline still imports it: the
Alpaca source lives in `engine.data.sources.alpaca`."""

from ..data.sources.alpaca import ensure_bars, fetch_bars, to_utc  # noqa: F401
