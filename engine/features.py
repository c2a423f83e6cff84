"""Market features by name (docs/design.md section 4), for validation and for training.

Training code should import this module rather than reimplement the features:

    from engine.features import compute_features, lookback
    X = compute_features(bars, ["ret_1", "ret_4", "vol_24", "rsi_14", "hour_sin"])

so that a policy sees in validation exactly the numbers it saw in training. Each
value at bar t uses bars <= t and only the last L of them, so it does not depend on
where the history starts. Names with a window take any positive integer k:
`ret_k`, `vol_k`, `sma_ratio_k`, `rsi_k`, `volume_z_k`; the others have none:
`hl_range`, `hour_sin`, `hour_cos`, `dow_sin`, `dow_cos`.

FinRL's indicators come with stockstats' definitions under `stockstats:` (see
docs/features.md for each one's truncation length L): `stockstats:macd`, `macds`,
`macdh`, `boll`, `boll_ub`, `boll_lb` (window 20, or `boll_ub_k`), `rsi_k`, `cci_k`,
`dx_k`, `atr_k`, `wr_k` (window 14 when none is written), `close_k_sma`,
`close_k_ema`. Installed packages add features through the `foldgate.features` entry
point (engine/feature_plugins.py); their names carry their own namespace, `acme:mom_14`.

`compute_features` also accepts a plain object with `timestamp`, `high`, `low`,
`close`, `volume` arrays (e.g. a training environment's own container).

The whole observation a policy sees is built the same way: `market_observations`
stacks the window of lags exactly as the simulation kernel does, and
`state_observation` computes the state features from the environment's position; a
checkpoint's `obs_norm` is applied by `Policy.forward` / `Policy.act` (or
`Policy.obs_norm.apply` for a trainer's own network):

    market = market_observations(bars, policy.features, policy.window)   # (T, F*window) f32
    obs_t = np.concatenate([market[t], state_observation(policy.state_features, ...)])"""

from __future__ import annotations

import math
import re
from typing import Iterable, Sequence

import numpy as np

from kernels import features as kf
from kernels.features import FEATURE_KINDS, features_nb

from .errors import FeatureError
from .feature_plugins import compute_plugin_feature, plugin_lookback, resolve_plugin_name

WINDOWED = ("ret", "vol", "sma_ratio", "rsi", "volume_z")
PLAIN = ("hl_range", "hour_sin", "hour_cos", "dow_sin", "dow_cos")
STATE_FEATURES = ("position", "unrealized_return", "bars_held")

SS_PREFIX = "stockstats:"
# stockstats' own default windows (its _dft_windows and DX_SMMA), used for a name
# written without one, as stockstats does
SS_WINDOWED = {"rsi": 14, "cci": 14, "dx": 14, "atr": 14, "wr": 14, "boll": 20, "boll_ub": 20, "boll_lb": 20}
SS_PLAIN = ("macd", "macds", "macdh")
SS_CLOSE = ("sma", "ema")  # stockstats:close_k_sma, stockstats:close_k_ema
MACD_SPANS = (12, 26, 9)  # stockstats' macd: short, long, signal
# An exponential average is truncated where the weight of everything older than its
# last L inputs, (1 - alpha)^L, drops below EMA_TAIL: 1e-14 keeps the truncation below
# float64 noise relative to the values averaged, so the stockstats features stay within
# 1e-6 of stockstats, relative to the indicator itself, even near its zero crossings and
# after flat stretches (worst measured: 6e-8, dx near 0); a looser 1e-7 would meet 1e-6
# on average but not where macd or dx is near 0 (docs/features.md).
EMA_TAIL = 1e-14
# bounds a window before the kernels allocate their weights: L grows ~32 k and the work
# T * L with it
MAX_SS_WINDOW = 1_000

KNOWN_FEATURES = (
    tuple(f"{w}_k" for w in WINDOWED) + PLAIN
    + tuple(f"{SS_PREFIX}{w}_k" for w in SS_WINDOWED) + tuple(SS_PREFIX + w for w in SS_PLAIN)
    + tuple(f"{SS_PREFIX}close_k_{w}" for w in SS_CLOSE)
)

# Bars before t that the feature at t reads: ret/vol/rsi need c_{t-k}; sma_ratio and
# volume_z need the k bars ending at t.
_EXTRA_BARS = {"ret": 0, "vol": 0, "rsi": 0, "sma_ratio": -1, "volume_z": -1}

_WINDOWED_RE = re.compile(r"^(%s)_(\d+)$" % "|".join(sorted(WINDOWED, key=len, reverse=True)))
_SS_WINDOWED_RE = re.compile(r"^(%s)(?:_(\d+))?$" % "|".join(sorted(SS_WINDOWED, key=len, reverse=True)))
_SS_CLOSE_RE = re.compile(r"^close_(\d+)_(%s)$" % "|".join(SS_CLOSE))
_CODES = {kind: i for i, kind in enumerate(FEATURE_KINDS)}


def _known() -> str:
    return ", ".join(KNOWN_FEATURES) + " (k = a positive integer, e.g. ret_4)"


def smma_alpha(k: int) -> float:
    """stockstats' SMMA (RSI, ATR, DX): ewm with alpha = 1 / k."""
    return 1.0 / k


def span_alpha(span: int) -> float:
    """stockstats' EMA (macd, close_k_ema): ewm(span), alpha = 2 / (span + 1)."""
    return 2.0 / (span + 1.0)


def truncation_length(alpha: float) -> int:
    """L: the fewest last inputs whose ewm weights leave out at most EMA_TAIL of the
    whole, (1 - alpha)^L <= EMA_TAIL."""
    if alpha >= 1.0:
        return 1
    return max(1, math.ceil(math.log(EMA_TAIL) / math.log1p(-alpha)))


def _parse_stockstats(name: str, rest: str) -> tuple[str, int]:
    if rest in SS_PLAIN:
        return "ss_" + rest, 0
    m = _SS_WINDOWED_RE.match(rest)
    kind, k = None, 0
    if m:
        kind, k = m.group(1), int(m.group(2)) if m.group(2) else SS_WINDOWED[m.group(1)]
    else:
        m = _SS_CLOSE_RE.match(rest)
        if m:
            kind, k = m.group(2), int(m.group(1))
    if kind is None:
        raise FeatureError(f"unknown feature {name!r}; known features: {_known()}")
    if not 1 <= k <= MAX_SS_WINDOW:
        raise FeatureError(f"feature {name!r}: the window must be an integer from 1 to {MAX_SS_WINDOW}")
    if kind.startswith("boll") and k < 2:
        raise FeatureError(f"feature {name!r}: Bollinger bands need a window of at least 2 (a sample std)")
    return "ss_" + kind, k


def _parse_plugin(name: str) -> tuple[str, int]:
    return resolve_plugin_name(name)


def parse_feature(name: str) -> tuple[str, int]:
    """`"ret_4"` -> `("ret", 4)`; `"hl_range"` -> `("hl_range", 0)`;
    `"stockstats:rsi_30"` -> `("ss_rsi", 30)`; a plugin's `"acme:mom_14"` ->
    `("acme:mom", 14)`.

    Raises FeatureError naming the bad name and listing the known ones."""
    if not isinstance(name, str):
        raise FeatureError(f"feature name must be a string, got {name!r}; known features: {_known()}")
    if name in PLAIN:
        return name, 0
    m = _WINDOWED_RE.match(name)
    if m:
        k = int(m.group(2))
        if k <= 0:
            raise FeatureError(f"feature {name!r}: the window k must be a positive integer")
        return m.group(1), k
    if name.startswith(SS_PREFIX):
        return _parse_stockstats(name, name[len(SS_PREFIX):])
    if ":" in name:
        return _parse_plugin(name)
    if name in STATE_FEATURES:
        raise FeatureError(
            f"{name!r} is a state feature (from the simulation), not a market feature; "
            f"list it under state_features; market features: {_known()}"
        )
    if name in WINDOWED:
        raise FeatureError(f"feature {name!r} needs a window, e.g. {name}_14; known features: {_known()}")
    raise FeatureError(f"unknown feature {name!r}; known features: {_known()}")


def parse_features(names: Iterable[str]) -> list[tuple[str, int]]:
    """parse_feature for each name; a bare string is refused (it would iterate chars)."""
    if isinstance(names, str):
        raise FeatureError(f"features must be a list of names, got the string {names!r}")
    return [parse_feature(n) for n in names]


def is_plugin_kind(kind: str) -> bool:
    return ":" in kind


def _ss_spec(kind: str, k: int) -> tuple[list[int], list[float], int]:
    """(truncation lengths, alphas, lookback) of a stockstats feature: the one place
    where the truncation of its exponential averages and its lookback are decided."""
    if kind in ("ss_rsi", "ss_atr", "ss_dx"):
        a = smma_alpha(k)
        length = truncation_length(a)
        return [length], [a], length  # each input is a change from the bar before
    if kind == "ss_ema":
        a = span_alpha(k)
        length = truncation_length(a)
        return [length], [a], length - 1
    if kind in ("ss_macd", "ss_macds", "ss_macdh"):
        alphas = [span_alpha(s) for s in MACD_SPANS]
        lengths = [truncation_length(a) for a in alphas]
        look = max(lengths[0], lengths[1]) - 1
        if kind != "ss_macd":
            look += lengths[2] - 1  # the signal averages that many macd values
        return lengths, alphas, look
    return [], [], k - 1  # sma, boll, cci, wr: plain k-bar windows


_MACD_PART = {"ss_macd": 0, "ss_macds": 1, "ss_macdh": 2}
_BOLL_SIDE = {"ss_boll": 0.0, "ss_boll_ub": 1.0, "ss_boll_lb": -1.0}


def _ss_column(kind: str, k: int, high, low, close, out) -> None:
    """One stockstats feature into `out`, each kernel called by itself so that only
    the kernels a run uses are compiled."""
    lengths, alphas, _ = _ss_spec(kind, k)
    if kind == "ss_sma":
        kf.ss_sma_nb(close, k, out)
    elif kind == "ss_ema":
        kf.ewm_trunc_nb(close, alphas[0], lengths[0], lengths[0] - 1, out)
    elif kind in _BOLL_SIDE:
        kf.ss_boll_nb(close, k, _BOLL_SIDE[kind], out)
    elif kind == "ss_rsi":
        kf.ss_rsi_nb(close, alphas[0], lengths[0], out)
    elif kind == "ss_cci":
        kf.ss_cci_nb(high, low, close, k, out)
    elif kind == "ss_dx":
        kf.ss_dx_nb(high, low, close, alphas[0], lengths[0], out)
    elif kind == "ss_atr":
        kf.ss_atr_nb(high, low, close, alphas[0], lengths[0], out)
    elif kind == "ss_wr":
        kf.ss_wr_nb(high, low, close, k, out)
    elif kind in _MACD_PART:
        kf.ss_macd_nb(close, np.array(lengths, dtype=np.int64), np.array(alphas), _MACD_PART[kind], out)
    else:  # pragma: no cover - parse_feature only yields the kinds above
        raise ValueError(f"no kernel for {kind!r}")


_SS_KINDS = frozenset(
    ["ss_" + w for w in SS_WINDOWED] + ["ss_" + w for w in SS_PLAIN] + ["ss_" + w for w in SS_CLOSE]
)


def _is_stockstats(kind: str) -> bool:
    return kind in _SS_KINDS


def feature_lookback(name: str) -> int:
    """Bars before t that this feature needs at t (0 for bar-local features)."""
    kind, k = parse_feature(name)
    if is_plugin_kind(kind):
        return plugin_lookback(kind, k)
    if _is_stockstats(kind):
        return _ss_spec(kind, k)[2]
    return k + _EXTRA_BARS[kind] if kind in _EXTRA_BARS else 0


def lookback(names: Iterable[str]) -> int:
    """Bars before t that bar t's features need: the first row without NaN is row
    `lookback(names)`. A policy with `window` lags needs `lookback + window - 1`."""
    return max((feature_lookback(n) for n in names), default=0)


def _kernel_input(a, dtype) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=dtype)
    # Numba compiles (and caches) a separate kernel for read-only arrays such as the
    # store's memory maps; a copy of four columns costs far less than a second compile
    return a if a.flags.writeable else a.copy()


def compute_features(bars, names: Sequence[str], *, verify_plugins: bool = True) -> np.ndarray:
    """Features of `bars` as a float64 (T, F) C-contiguous matrix, column j = names[j];
    rows before a feature's lookback are NaN. A plugin feature is checked for
    lookahead before its first use (engine/feature_plugins.py) unless
    `verify_plugins` is False (the check itself computes it that way)."""
    parsed = parse_features(names)
    ts = _kernel_input(bars.timestamp, np.int64)
    cols = [_kernel_input(getattr(bars, c), np.float64) for c in ("high", "low", "close", "volume")]
    n = len(ts)
    if any(len(c) != n for c in cols):
        raise ValueError("timestamp, high, low, close and volume must have the same length")
    out = np.empty((n, len(parsed)), dtype=np.float64)
    own = [j for j, (kind, _) in enumerate(parsed) if kind in _CODES]
    if n and own:
        codes = np.array([_CODES[parsed[j][0]] for j in own], dtype=np.int64)
        ks = np.array([parsed[j][1] for j in own], dtype=np.int64)
        block = np.empty((n, len(own)), dtype=np.float64)
        features_nb(ts, *cols, codes, ks, block)
        out[:, own] = block
    col = np.empty(n, dtype=np.float64)
    for j, (kind, k) in enumerate(parsed):
        if _is_stockstats(kind):
            if n:
                _ss_column(kind, k, cols[0], cols[1], cols[2], col)
            out[:, j] = col
        elif is_plugin_kind(kind):
            out[:, j] = compute_plugin_feature(bars, names[j], verify=verify_plugins)
    return out


def stack_window(feats: np.ndarray, window: int) -> np.ndarray:
    """(T, F) features -> (T, F * window) float32 rows [features at t, at t-1, ...,
    at t-window+1], the layout of a policy's observation (docs/design.md 3). Rows whose lags
    reach before the first bar are NaN."""
    feats = np.asarray(feats)
    if feats.ndim != 2:
        raise ValueError(f"features must be a (T, F) array, got shape {feats.shape}")
    if int(window) < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    t, f = feats.shape
    out = np.full((t, f * window), np.nan, dtype=np.float32)
    for lag in range(window):
        # float64 -> float32 once, as the kernel rounds each feature value
        out[lag:, lag * f:(lag + 1) * f] = feats[: t - lag].astype(np.float32)
    return out


def market_observations(bars, names: Sequence[str], window: int = 1) -> np.ndarray:
    """The market part of every bar's observation: compute_features + stack_window."""
    return stack_window(compute_features(bars, names), window)


def state_observation(names: Sequence[str], position: float, close: float = float("nan"),
                      avg_entry_price: float = float("nan"), bars_since_open: int = 0) -> np.ndarray:
    """The state features (docs/design.md 4) as float32, in the order named: `position` is the
    target fraction held; `unrealized_return` is sign(position) * (close / avg_entry_price
    - 1), 0 when flat; `bars_held` is bars since the opening fill / 100, 0 when flat."""
    flat = position == 0
    values = {
        "position": position,
        "unrealized_return": 0.0 if flat else float(np.sign(position)) * (close / avg_entry_price - 1.0),
        "bars_held": 0.0 if flat else bars_since_open / 100.0,
    }
    try:
        return np.array([values[n] for n in names], dtype=np.float32)
    except KeyError as exc:
        raise FeatureError(f"unknown state feature {exc.args[0]!r}; known: {', '.join(STATE_FEATURES)}") from None

