"""Market features by name (design.md section 4), for validation and for training.

Training code should import this module rather than reimplement the features:

    from engine.features import compute_features, lookback
    X = compute_features(bars, ["ret_1", "ret_4", "vol_24", "rsi_14", "hour_sin"])

so that a policy sees in validation exactly the numbers it saw in training. Each
value at bar t uses bars <= t and only the last L of them, so it does not depend on
where the history starts. Names with a window take any positive integer k:
`ret_k`, `vol_k`, `sma_ratio_k`, `rsi_k`, `volume_z_k`; the others have none:
`hl_range`, `hour_sin`, `hour_cos`, `dow_sin`, `dow_cos`.

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

import re
from typing import Iterable, Sequence

import numpy as np

from kernels.features import FEATURE_KINDS, features_nb

from .errors import FeatureError

WINDOWED = ("ret", "vol", "sma_ratio", "rsi", "volume_z")
PLAIN = ("hl_range", "hour_sin", "hour_cos", "dow_sin", "dow_cos")
STATE_FEATURES = ("position", "unrealized_return", "bars_held")
KNOWN_FEATURES = tuple(f"{w}_k" for w in WINDOWED) + PLAIN

# Bars before t that the feature at t reads: ret/vol/rsi need c_{t-k}; sma_ratio and
# volume_z need the k bars ending at t.
_EXTRA_BARS = {"ret": 0, "vol": 0, "rsi": 0, "sma_ratio": -1, "volume_z": -1}

_WINDOWED_RE = re.compile(r"^(%s)_(\d+)$" % "|".join(sorted(WINDOWED, key=len, reverse=True)))
_CODES = {kind: i for i, kind in enumerate(FEATURE_KINDS)}


def _known() -> str:
    return ", ".join(KNOWN_FEATURES) + " (k = a positive integer, e.g. ret_4)"


def parse_feature(name: str) -> tuple[str, int]:
    """`"ret_4"` -> `("ret", 4)`; `"hl_range"` -> `("hl_range", 0)`.

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


def feature_lookback(name: str) -> int:
    """Bars before t that this feature needs at t (0 for bar-local features)."""
    kind, k = parse_feature(name)
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


def compute_features(bars, names: Sequence[str]) -> np.ndarray:
    """Features of `bars` as a float64 (T, F) C-contiguous matrix, column j = names[j];
    rows before a feature's lookback are NaN."""
    parsed = parse_features(names)
    codes = np.array([_CODES[kind] for kind, _ in parsed], dtype=np.int64)
    ks = np.array([k for _, k in parsed], dtype=np.int64)
    ts = _kernel_input(bars.timestamp, np.int64)
    cols = [_kernel_input(getattr(bars, c), np.float64) for c in ("high", "low", "close", "volume")]
    n = len(ts)
    if any(len(c) != n for c in cols):
        raise ValueError("timestamp, high, low, close and volume must have the same length")
    out = np.empty((n, len(codes)), dtype=np.float64)
    if n and len(codes):
        features_nb(ts, *cols, codes, ks, out)
    return out


STATE_FEATURES = ("position", "unrealized_return", "bars_held")


def stack_window(feats: np.ndarray, window: int) -> np.ndarray:
    """(T, F) features -> (T, F * window) float32 rows [features at t, at t-1, ...,
    at t-window+1], the layout of a policy's observation (design.md 3). Rows whose lags
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
    """The state features (design.md 4) as float32, in the order named: `position` is the
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

