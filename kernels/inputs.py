"""The simulation kernels' inputs: their names, dtypes and every check the kernels rely
on (docs/internals.md, "The simulation kernel"). kernels/simulate.py and
kernels/gpu_simulate.py both call `validate_inputs`, so the two twins accept and
refuse exactly the same inputs; the kernels themselves do no bounds checks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .codes import ACT_RELU, ACTION_CONTINUOUS, ACTION_DISCRETE, FILL_CODES, STATE_BARS_HELD

MARKET_INPUTS = ("open_", "close", "bar_off", "feats", "feat_off", "n_feat")
_MODELS = ("model_feat_off", "model_feat_col", "model_window", "model_state_off",
           "model_state_code", "model_obs_dim", "model_norm", "norm_off", "norm_mean",
           "norm_denom", "norm_clip", "model_layer_off", "layer_in", "layer_out",
           "layer_w_off", "layer_b_off", "weights", "biases", "model_act",
           "model_action_kind", "model_target_off", "targets", "model_low", "model_high",
           "max_width")
_TRAJECTORIES = ("traj_model", "traj_series", "traj_start", "traj_end", "traj_capital",
                 "traj_commission", "traj_slippage", "traj_long_only", "fill_mode",
                 "traj_eq_off", "traj_trade_off")
KERNEL_INPUTS = MARKET_INPUTS + _MODELS + _TRAJECTORIES
"""Names of `simulate`'s inputs, in the kernel's argument order."""

DTYPES = {
    "open_": np.float64, "close": np.float64, "feats": np.float64, "norm_mean": np.float32,
    "norm_denom": np.float32, "norm_clip": np.float32, "weights": np.float32,
    "biases": np.float32, "targets": np.float64, "model_low": np.float64,
    "model_high": np.float64, "traj_capital": np.float64, "traj_commission": np.float64,
    "traj_slippage": np.float64, "traj_long_only": np.uint8, "model_norm": np.uint8,
}
FILL_DTYPE = np.int8
"""fill_mode: one code of kernels/codes.py (FILL_CODES) per trajectory."""


def _array(name, x, dtype, ndim=1):
    a = np.asarray(x)
    if a.dtype != dtype:
        if not np.can_cast(a.dtype, dtype, "safe"):
            raise TypeError(f"{name} must be {np.dtype(dtype).name}, got {a.dtype.name}")
        a = a.astype(dtype)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {a.shape}")
    return np.ascontiguousarray(a)


def _length(name, a, n):
    if a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} entries, expected {n}")


def _offsets(name, off, n, limit):
    """off has n + 1 non-decreasing entries from 0 to at most limit."""
    _length(name, off, n + 1)
    if off[0] != 0 or np.any(np.diff(off) < 0) or off[-1] > limit:
        raise ValueError(f"{name} must rise from 0 to at most {limit} without decreasing")


def _first_bad(mask):
    return int(np.flatnonzero(mask)[0])


def _check_market(a):
    bar_off = a["bar_off"]
    n_series = bar_off.shape[0] - 1
    if n_series < 1:
        raise ValueError("bar_off needs at least 2 entries (one series)")
    n_bars = a["open_"].shape[0]
    _length("close", a["close"], n_bars)
    _offsets("bar_off", bar_off, n_series, n_bars)
    if bar_off[-1] != n_bars:
        raise ValueError(f"bar_off ends at {bar_off[-1]}, but open_ has {n_bars} bars")
    for name in ("open_", "close"):
        bad = ~(np.isfinite(a[name]) & (a[name] > 0.0))
        if bad.any():
            raise ValueError(f"{name}[{_first_bad(bad)}] is not a finite price > 0")
    _length("n_feat", a["n_feat"], n_series)
    if np.any(a["n_feat"] < 0):
        raise ValueError("n_feat must be >= 0")
    feat_off = a["feat_off"]
    if feat_off.shape[0] not in (n_series, n_series + 1):
        raise ValueError(f"feat_off has {feat_off.shape[0]} entries, expected {n_series + 1}")
    sizes = np.diff(bar_off) * a["n_feat"]
    ends = feat_off[:n_series] + sizes
    bad = (feat_off[:n_series] < 0) | (ends > a["feats"].shape[0])
    if bad.any():
        s = _first_bad(bad)
        raise ValueError(f"the feature block of series {s} does not fit in feats")
    return n_series


def _check_models(a):
    n_models = a["model_window"].shape[0]
    for name in ("model_obs_dim", "model_norm", "norm_off", "norm_clip", "model_act",
                 "model_action_kind", "model_low", "model_high"):
        _length(name, a[name], n_models)
    _offsets("model_feat_off", a["model_feat_off"], n_models, a["model_feat_col"].shape[0])
    _offsets("model_state_off", a["model_state_off"], n_models,
             a["model_state_code"].shape[0])
    _offsets("model_target_off", a["model_target_off"], n_models, a["targets"].shape[0])
    n_layers = a["layer_in"].shape[0]
    for name in ("layer_out", "layer_w_off", "layer_b_off"):
        _length(name, a[name], n_layers)
    _offsets("model_layer_off", a["model_layer_off"], n_models, n_layers)
    if np.any(a["model_window"] < 1):
        raise ValueError("model_window must be >= 1")
    if np.any((a["model_state_code"] < 0) | (a["model_state_code"] > STATE_BARS_HELD)):
        raise ValueError("model_state_code must be 0 (position), 1 (unrealized_return) "
                         "or 2 (bars_held)")
    if np.any((a["model_act"] < 0) | (a["model_act"] > ACT_RELU)):
        raise ValueError("model_act must be 0 (tanh) or 1 (relu)")
    if np.any((a["model_action_kind"] < 0) | (a["model_action_kind"] > ACTION_CONTINUOUS)):
        raise ValueError("model_action_kind must be 0 (discrete) or 1 (continuous)")
    if np.any(a["model_feat_col"] < 0):
        raise ValueError("model_feat_col must be >= 0")
    li, lo = a["layer_in"], a["layer_out"]
    if np.any(li < 1) or np.any(lo < 1):
        raise ValueError("every layer needs at least one input and one output")
    if np.any(a["layer_w_off"] < 0) or np.any(a["layer_w_off"] + li * lo > a["weights"].shape[0]):
        raise ValueError("a layer's weights do not fit in weights (layer_w_off, in, out)")
    if np.any(a["layer_b_off"] < 0) or np.any(a["layer_b_off"] + lo > a["biases"].shape[0]):
        raise ValueError("a layer's biases do not fit in biases (layer_b_off, out)")
    for name in ("weights", "biases", "norm_mean", "norm_denom", "norm_clip"):
        if not np.all(np.isfinite(a[name])):
            raise ValueError(f"{name} holds a non-finite value")
    max_width = a["max_width"]
    for m in range(n_models):
        n_cols = a["model_feat_off"][m + 1] - a["model_feat_off"][m]
        n_state = a["model_state_off"][m + 1] - a["model_state_off"][m]
        obs_dim = a["model_obs_dim"][m]
        if obs_dim != a["model_window"][m] * n_cols + n_state:
            raise ValueError(f"model {m}: model_obs_dim {obs_dim} != window * features + "
                             f"state features = {a['model_window'][m] * n_cols + n_state}")
        l0, l1 = a["model_layer_off"][m], a["model_layer_off"][m + 1]
        if l1 <= l0:
            raise ValueError(f"model {m} has no layers")
        if li[l0] != obs_dim:
            raise ValueError(f"model {m}: first layer takes {li[l0]} inputs, obs_dim is {obs_dim}")
        for layer in range(l0 + 1, l1):
            if li[layer] != lo[layer - 1]:
                raise ValueError(f"model {m}: layer {layer - l0} takes {li[layer]} inputs, "
                                 f"the layer before gives {lo[layer - 1]}")
        if max(obs_dim, int(lo[l0:l1].max())) > max_width:
            raise ValueError(f"max_width {max_width} is smaller than model {m}'s widest layer")
        if a["model_norm"][m]:
            no = a["norm_off"][m]
            if no < 0 or no + obs_dim > min(a["norm_mean"].shape[0], a["norm_denom"].shape[0]):
                raise ValueError(f"model {m}: normalisation statistics do not fit (norm_off)")
            if np.any(a["norm_denom"][no:no + obs_dim] <= 0) or a["norm_clip"][m] < 0:
                raise ValueError(f"model {m}: norm_denom must be > 0 and norm_clip >= 0")
        n_targets = a["model_target_off"][m + 1] - a["model_target_off"][m]
        if a["model_action_kind"][m] == ACTION_DISCRETE:
            if lo[l1 - 1] != n_targets:
                raise ValueError(f"model {m}: {lo[l1 - 1]} outputs but {n_targets} targets")
            t = a["targets"][a["model_target_off"][m]:a["model_target_off"][m + 1]]
            if np.any(np.isinf(t)):
                raise ValueError(f"model {m}: targets must be finite or NaN (hold)")
        else:
            if lo[l1 - 1] != 1:
                raise ValueError(f"model {m}: a continuous action needs 1 output, "
                                 f"got {lo[l1 - 1]}")
            if not (np.isfinite(a["model_low"][m]) and np.isfinite(a["model_high"][m])
                    and a["model_low"][m] <= a["model_high"][m]):
                raise ValueError(f"model {m}: needs finite model_low <= model_high")
    return n_models


def _check_trajectories(a, n_series, n_models):
    n_traj = a["traj_model"].shape[0]
    for name in ("traj_series", "traj_start", "traj_end", "traj_capital", "traj_commission",
                 "traj_slippage", "traj_long_only"):
        _length(name, a[name], n_traj)
    fill = a["fill_mode"]
    if fill.ndim == 0:  # one mode for every trajectory
        fill = a["fill_mode"] = np.full(n_traj, fill, dtype=FILL_DTYPE)
    _length("fill_mode", fill, n_traj)
    model, series = a["traj_model"], a["traj_series"]
    if np.any((model < 0) | (model >= n_models)):
        raise ValueError(f"traj_model[{_first_bad((model < 0) | (model >= n_models))}] "
                         "is not a model index")
    if np.any((series < 0) | (series >= n_series)):
        raise ValueError(f"traj_series[{_first_bad((series < 0) | (series >= n_series))}] "
                         "is not a series index")
    start, end = a["traj_start"], a["traj_end"]
    n_bars = np.diff(a["bar_off"])[series]
    warm = a["model_window"][model] - 1
    bad = (start - warm < 0) | (end <= start) | (end > n_bars)
    if bad.any():
        i = _first_bad(bad)
        raise ValueError(f"trajectory {i}: bars {start[i]}..{end[i] - 1} with window "
                         f"{warm[i] + 1} need 0 <= start - {warm[i]} and start < end <= "
                         f"{n_bars[i]} (the series' bars)")
    cap = a["traj_capital"]
    if not np.all(np.isfinite(cap) & (cap > 0)):
        raise ValueError(f"traj_capital[{_first_bad(~(np.isfinite(cap) & (cap > 0)))}] "
                         "must be finite and > 0")
    for name, hi in (("traj_commission", np.inf), ("traj_slippage", 1.0)):
        r = a[name]
        bad = ~(np.isfinite(r) & (r >= 0) & (r < hi))
        if bad.any():
            raise ValueError(f"{name}[{_first_bad(bad)}] must be a rate >= 0"
                             + (" and < 1" if hi == 1.0 else ""))
    if np.any(a["traj_long_only"] > 1):
        raise ValueError("traj_long_only must be 0 or 1")
    want_eq = np.zeros(n_traj + 1, dtype=np.int64)
    np.cumsum(end - start + 1, out=want_eq[1:])
    if a["traj_eq_off"] is None:
        a["traj_eq_off"] = want_eq
    elif not np.array_equal(a["traj_eq_off"], want_eq):
        raise ValueError("traj_eq_off must give trajectory i exactly end - start + 1 slots, "
                         "in order")
    if a["traj_trade_off"] is None:
        want_tr = want_eq - np.arange(n_traj + 1, dtype=np.int64)
        a["traj_trade_off"] = want_tr
    else:
        off = a["traj_trade_off"]
        _length("traj_trade_off", off, n_traj + 1)
        if off[0] != 0 or np.any(np.diff(off) < end - start):
            raise ValueError("traj_trade_off must give trajectory i at least end - start "
                             "trade rows, from 0")
    return n_traj


def _check_feature_reads(a):
    """Every feature value an observation reads must exist and be finite (NaN would
    silently become an argmax of 0)."""
    feat_off, n_feat, bar_off = a["feat_off"], a["n_feat"], a["bar_off"]
    pairs = {}
    window = a["model_window"].tolist()  # Python ints: no numpy scalar per trajectory
    for m, s, start, end in zip(a["traj_model"].tolist(), a["traj_series"].tolist(),
                                a["traj_start"].tolist(), a["traj_end"].tolist()):
        first = start - window[m] + 1
        last = end - 2  # the last bar with a decision
        lo, hi = pairs.get((m, s), (first, last))
        pairs[(m, s)] = (min(lo, first), max(hi, last))
    for (m, s), (first, last) in pairs.items():
        cols = a["model_feat_col"][a["model_feat_off"][m]:a["model_feat_off"][m + 1]]
        if cols.size == 0 or last < first:
            continue
        nf = int(n_feat[s])
        if np.any(cols >= nf):
            raise ValueError(f"model {m} reads feature column {int(cols.max())}, but series "
                             f"{s} has {nf}")
        t_s = int(bar_off[s + 1] - bar_off[s])
        block = a["feats"][feat_off[s]:feat_off[s] + t_s * nf].reshape(t_s, nf)
        vals = block[first:last + 1][:, cols]
        bad = ~np.isfinite(vals)
        if bad.any():
            r, c = np.unravel_index(_first_bad(bad.ravel()), bad.shape)
            raise ValueError(f"series {s} has a non-finite feature (column {int(cols[c])}) at "
                             f"bar {first + int(r)}, which model {m} reads: start the "
                             "trajectory later or give the features more warm-up")


def _fill_modes(x) -> np.ndarray:
    """fill_mode as given (one code, or one per trajectory) -> int8 codes; the length is
    checked with the trajectories."""
    f = np.asarray(x)
    if f.dtype == np.bool_ or not np.issubdtype(f.dtype, np.integer):
        raise TypeError(f"fill_mode must be integer codes, got {f.dtype.name}")
    if f.ndim > 1:
        raise ValueError(f"fill_mode must be one code or one per trajectory, got shape {f.shape}")
    bad = ~np.isin(np.atleast_1d(f), FILL_CODES)
    if bad.any():
        where = f"[{_first_bad(bad)}]" if f.ndim else ""
        raise ValueError(f"fill_mode{where} must be 0 (next open), 1 (close) or 2 (next open, "
                         "one bar late)")
    return np.ascontiguousarray(f, dtype=FILL_DTYPE)


@dataclass(frozen=True)
class KernelInputs:
    """The simulation kernels' inputs once `validate_inputs` has checked them: every
    array contiguous and of its kernel dtype, in the kernels' argument order
    (KERNEL_INPUTS); the arrays are docs/internals.md's. Both twins' drivers take one."""

    open_: np.ndarray
    close: np.ndarray
    bar_off: np.ndarray
    feats: np.ndarray
    feat_off: np.ndarray
    n_feat: np.ndarray
    model_feat_off: np.ndarray
    model_feat_col: np.ndarray
    model_window: np.ndarray
    model_state_off: np.ndarray
    model_state_code: np.ndarray
    model_obs_dim: np.ndarray
    model_norm: np.ndarray
    norm_off: np.ndarray
    norm_mean: np.ndarray
    norm_denom: np.ndarray
    norm_clip: np.ndarray
    model_layer_off: np.ndarray
    layer_in: np.ndarray
    layer_out: np.ndarray
    layer_w_off: np.ndarray
    layer_b_off: np.ndarray
    weights: np.ndarray
    biases: np.ndarray
    model_act: np.ndarray
    model_action_kind: np.ndarray
    model_target_off: np.ndarray
    targets: np.ndarray
    model_low: np.ndarray
    model_high: np.ndarray
    max_width: int
    traj_model: np.ndarray
    traj_series: np.ndarray
    traj_start: np.ndarray
    traj_end: np.ndarray
    traj_capital: np.ndarray
    traj_commission: np.ndarray
    traj_slippage: np.ndarray
    traj_long_only: np.ndarray
    fill_mode: np.ndarray  # int8 (n_traj,): each trajectory's FILL_* code
    traj_eq_off: np.ndarray
    traj_trade_off: np.ndarray

    def args(self) -> tuple:
        """The fields in KERNEL_INPUTS order, as the kernels take them (not copied)."""
        return tuple(getattr(self, name) for name in KERNEL_INPUTS)


def validate_inputs(given: dict) -> KernelInputs:
    """`given` (every name of KERNEL_INPUTS) checked and converted: arrays contiguous and
    of their kernel dtype, max_width an int, fill_mode one int8 code per trajectory (a
    single code is given to all of them), a None traj_eq_off / traj_trade_off
    replaced by the contiguous layout. Raises ValueError / TypeError naming the array
    at fault."""
    a = {}
    for name in KERNEL_INPUTS:
        x = given[name]
        if name == "max_width":
            a[name] = int(x)
        elif name == "fill_mode":
            a[name] = _fill_modes(x)
        elif x is None:
            a[name] = None
        else:
            a[name] = _array(name, x, DTYPES.get(name, np.int64))
    n_series = _check_market(a)
    n_models = _check_models(a)
    _check_trajectories(a, n_series, n_models)
    _check_feature_reads(a)
    return KernelInputs(**a)


__all__ = ["KernelInputs", "KERNEL_INPUTS", "MARKET_INPUTS", "DTYPES", "FILL_DTYPE",
           "validate_inputs"]
