"""Symbols in one canonical form.

The store, checkpoints and reports name a symbol one way (`BTCUSD`, `AAPL`, `BRK.B`),
whatever the user or a data source wrote (`BTC/USD`, `btc-usd`, ` aapl `). Alpaca wants
crypto pairs as `BTC/USD`, so `alpaca_symbol` maps back on the way out."""

from __future__ import annotations

import re

from ..errors import FoldgateError

ASSET_CLASSES = ("crypto", "us_equity")

# Longest first, so that BTCUSDT is split as BTC + USDT, not BTCUSD + T.
CRYPTO_QUOTES = ("USDT", "USDC", "USD", "BTC", "ETH")

# Bases Alpaca lists (and a few more), used only to guess defaults; an unknown base
# with a quote suffix is still guessed as crypto when the user wrote a pair.
_KNOWN_CRYPTO_BASES = frozenset(
    """AAVE AVAX BAT BCH BTC CRV DOGE DOT ETH GRT LINK LTC MKR PEPE SHIB SOL SUSHI
    TRUMP UNI USDC USDT XRP XTZ YFI ADA ATOM MATIC POL ALGO FIL NEAR ARB OP SUI PAXG
    HYPE RENDER SKY ONDO WIF BONK LDO""".split()
)

_CANONICAL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.]{0,19}$")
_SEPARATORS = re.compile(r"[/\-_:\s]")


class SymbolError(FoldgateError):
    """A symbol that cannot be written in canonical form."""


def canonical_symbol(symbol: str) -> str:
    """`BTC/USD`, `btc-usd`, `BTC_USD` -> `BTCUSD`; `aapl` -> `AAPL`; `BRK.B` stays.

    Raises SymbolError for anything that would not make a safe file name."""
    if not isinstance(symbol, str):
        raise SymbolError(f"symbol must be a string, got {type(symbol).__name__}")
    s = _SEPARATORS.sub("", symbol.strip()).upper()
    if not s:
        raise SymbolError("symbol is empty")
    if not _CANONICAL_RE.match(s) or s.endswith("."):
        raise SymbolError(
            f"invalid symbol {symbol!r}: use letters and digits (e.g. BTCUSD, BTC/USD, AAPL, BRK.B), "
            "at most 20 characters"
        )
    return s


def is_pair_notation(symbol: str) -> bool:
    """True when the user wrote a crypto pair with a separator and a quote currency
    (`BTC/USD`, `eth-usdt`), not e.g. a share class (`BRK-B`)."""
    parts = re.split(r"[/\-_:]", symbol.strip().upper())
    return len(parts) == 2 and all(parts) and parts[1] in CRYPTO_QUOTES


def split_crypto_pair(symbol: str) -> tuple[str, str] | None:
    """`BTCUSD` -> ("BTC", "USD"); None when no known quote currency ends the symbol."""
    raw = symbol.strip()
    if "/" in raw:
        base, _, quote = raw.partition("/")
        base, quote = canonical_symbol(base), canonical_symbol(quote)
        return base, quote
    s = canonical_symbol(raw)
    for quote in CRYPTO_QUOTES:
        if s.endswith(quote) and len(s) > len(quote):
            return s[: -len(quote)], quote
    return None


def guess_asset_class(symbol: str) -> str:
    """Best guess for a default (`--asset-class` overrides it): a written pair, or a known
    crypto base followed by a quote currency, is crypto; anything else us_equity."""
    if is_pair_notation(symbol):
        return "crypto"
    pair = split_crypto_pair(symbol)
    if pair is not None and pair[0] in _KNOWN_CRYPTO_BASES:
        return "crypto"
    return "us_equity"


def check_asset_class(asset_class: str) -> str:
    """Return the asset class lower-cased, or raise naming the accepted values."""
    a = str(asset_class).strip().lower()
    if a not in ASSET_CLASSES:
        raise SymbolError(
            f"unknown asset class {asset_class!r}; use one of: {', '.join(ASSET_CLASSES)}"
        )
    return a


def alpaca_symbol(symbol: str, asset_class: str | None = None) -> str:
    """The form Alpaca's API takes: `BTCUSD` -> `BTC/USD` for crypto, `AAPL` unchanged.

    With asset_class None the class is guessed from the symbol."""
    ac = check_asset_class(asset_class) if asset_class is not None else guess_asset_class(symbol)
    s = canonical_symbol(symbol)
    if ac != "crypto":
        return s
    pair = split_crypto_pair(symbol)
    if pair is None:
        raise SymbolError(
            f"cannot write crypto symbol {symbol!r} as an Alpaca pair: it does not end in "
            f"one of {', '.join(CRYPTO_QUOTES)} (write it as BASE/QUOTE, e.g. BTC/USD)"
        )
    return f"{pair[0]}/{pair[1]}"
