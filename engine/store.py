"""`engine.store`: the bar store's public path (docs/design.md 1, `engine.store.BarStore`).

The bar data lives in `engine/data/` (store, Arrow file, bars, gaps, importer, sources,
symbols, calendar); this module only hands the names of the former `engine/store.py`
on, so notebooks and code written against the design's path keep working. New code
imports from `engine.data.*`."""

from .data.arrow_file import (  # noqa: F401
    META_ADJUSTMENT,
    META_ASSET_CLASS,
    META_FEED,
    META_FIRST_AVAILABLE,
    META_FORMAT,
    META_SEARCHED_FROM,
    META_SYMBOL,
    META_TIMEFRAME,
    bars_from_table,
    bars_to_table,
    table_metadata,
)
from .data.bars import (  # noqa: F401
    ADJUSTMENTS,
    COLUMNS,
    DEFAULT_STOCK_ADJUSTMENT,
    EARLIEST_NS,
    FLOAT_COLUMNS,
    FORMAT,
    NS_PER_DAY,
    NS_PER_SECOND,
    PRICE_COLUMNS,
    SCHEMA,
    Bars,
    RowCheck,
    RowProblem,
    bar_problems,
    canonical_timeframe,
    check_adjustment,
    format_problems,
    format_ts,
    latest_ns,
    ns_to_datetime,
    row_checks,
    timeframe_seconds,
    validate_bars,
)
from .data.gaps import BarsSummary, Gap, gaps, summarize  # noqa: F401
from .data.store import DEFAULT_ROOT, BarStore, StoreEntry, StoreWrite, is_shipped_sample  # noqa: F401
