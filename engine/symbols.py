"""`engine.symbols`: a former public path, kept for code written against it; nothing in
foldgate imports it. The rules live in `engine.data.symbols`."""

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
