"""`engine.symbols`, kept as a path while modules written before `engine/data/` (the
pipeline, policies, training summaries) still import it: the rules live in
`engine.data.symbols`."""

from .data.symbols import (  # noqa: F401
    ASSET_CLASSES,
    CRYPTO_QUOTES,
    SymbolError,
    alpaca_symbol,
    canonical_symbol,
    check_asset_class,
    guess_asset_class,
    is_pair_notation,
    split_crypto_pair,
)
