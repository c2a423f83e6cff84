"""The fields of a policy checkpoint checked one by one (docs/design.md 3), each failure
one line naming the file and the field; `policy_from_fields` builds the `Policy`."""

from __future__ import annotations

import math
import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..data.bars import canonical_timeframe
from ..data.symbols import canonical_symbol
from ..errors import FoldgateError, PolicyError
from ..limits import LAYER_WIDTH, POLICY_PARAMS, one_line, show
from .model import (
    ACTIVATIONS,
    FORMAT,
    ObsNorm,
    Policy,
    STATE_FEATURES,
    SUPPORTED,
    TRAINED_UNTIL_RANGE,
)

# ---------------------------------------------------------------------------
# validation

class FieldContext:
    """Names the file in every message so one line says where and what."""

    def __init__(self, path: Path | str | None):
        self.where = str(path) if path is not None else "<policy>"

    def err(self, fieldname: str, msg: str) -> PolicyError:
        return PolicyError(one_line(f"{self.where}: {fieldname}: {msg}"))


def field_key(k: Any) -> str:
    """A dict key in a field path: a plain name as is, anything else quoted."""
    return k if isinstance(k, str) and k.isidentifier() and len(k) <= 40 else _short(k)


def _short(v: Any) -> str:
    return show(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _finite(v: Any) -> float | None:
    """A number as a finite float, or None (not a number, NaN, inf, or an integer too
    large for a float, which float() would raise on)."""
    if not _is_number(v):
        return None
    try:
        f = float(v)
    except (OverflowError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _float32_ok(v: float) -> bool:
    with np.errstate(over="ignore"):
        return bool(np.isfinite(np.float32(v)))


def check_tensor_meta(ctx: FieldContext, fieldname: str, t: Any, ndim: int, width: int) -> int:
    """Shape, layout and dtype of a tensor from its metadata alone, before anything is
    copied: a tensor can declare a shape its storage does not hold (stride 0), and
    converting it would allocate the declared size. Returns its element count."""
    torch = sys.modules.get("torch")  # a tensor exists only once torch is imported
    if torch is not None and isinstance(t, torch.Tensor):
        if t.layout != torch.strided:
            raise ctx.err(fieldname, f"a {t.layout} tensor; only dense tensors are supported")
        if not t.is_floating_point():
            raise ctx.err(fieldname, f"dtype {t.dtype} is not a float tensor")
        shape = tuple(int(d) for d in t.shape)
    elif isinstance(t, np.ndarray):
        if t.dtype.kind != "f":
            raise ctx.err(fieldname, f"dtype {t.dtype} is not a float array")
        shape = tuple(int(d) for d in t.shape)
    else:
        raise ctx.err(fieldname, f"expected a float tensor, got {type(t).__name__}")
    if len(shape) != ndim:
        raise ctx.err(fieldname, f"expected {ndim} dimensions, got shape {shape}")
    if any(d > width for d in shape):
        raise ctx.err(fieldname, f"shape {shape} is wider than {width:,} units; {LAYER_WIDTH.advice()}")
    return math.prod(shape)


def _tensor_to_f32(ctx: FieldContext, fieldname: str, t: Any, ndim: int) -> np.ndarray:
    """A float tensor (or, for data made in Python, a float ndarray) -> float32 ndarray.
    Its metadata is checked first (bounded shape), so the copy is bounded too."""
    check_tensor_meta(ctx, fieldname, t, ndim, LAYER_WIDTH.value())
    if isinstance(t, np.ndarray):
        with np.errstate(over="ignore", invalid="ignore"):
            arr = np.array(t, dtype=np.float32, order="C")
    else:
        import torch  # lazy: a tensor came from torch.load, so torch is loaded already

        arr = t.detach().to("cpu", torch.float32).contiguous().numpy().copy()
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ctx.err(fieldname, f"{bad} non-finite value(s) (NaN/inf, or too large for float32)")
    return arr


def _vector(ctx: FieldContext, fieldname: str, v: Any, n: int) -> np.ndarray:
    if isinstance(v, (list, tuple)):
        if len(v) != n:
            raise ctx.err(fieldname, f"length {len(v)} != obs_dim {n}")
        if not all(_is_number(x) for x in v):
            raise ctx.err(fieldname, "expected a list of numbers")
        vals = [_finite(x) for x in v]
        if any(x is None or not _float32_ok(x) for x in vals):
            raise ctx.err(fieldname, "non-finite value(s) (NaN/inf, or too large for float32)")
        out = np.asarray(vals, dtype=np.float32)
    else:
        out = _tensor_to_f32(ctx, fieldname, v, 1)
    if out.shape != (n,):
        raise ctx.err(fieldname, f"length {out.shape[0] if out.ndim else 0} != obs_dim {n}")
    return out


def _str_list(ctx: FieldContext, fieldname: str, v: Any, most: int) -> list[str]:
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        raise ctx.err(fieldname, f"expected a list of names, got {_short(v)}")
    if len(v) > most:
        raise ctx.err(fieldname, f"{len(v):,} names, more than the {most:,} inputs a layer may take; "
                                 f"{LAYER_WIDTH.advice()}")
    names = list(v)
    seen: set[str] = set()
    dup = sorted({x for x in names if x in seen or seen.add(x)})
    if dup:
        raise ctx.err(fieldname, f"duplicate name(s) {_short(', '.join(dup))}")
    return names


def _check_features(ctx: FieldContext, names: list[str]) -> None:
    from ..features import parse_feature  # lazy: the Numba kernels; a file refused for its size is refused in ms

    for i, name in enumerate(names):
        try:
            parse_feature(name)
        except (FoldgateError, ValueError, KeyError) as exc:
            detail = str(exc).strip() or f"unknown feature {name!r}"
            raise ctx.err(f"features[{i}]", detail) from None


# SYMBOL_TIMEFRAME, then an optional suffix after a second underscore
_FILENAME_RE = re.compile(r"([A-Za-z0-9.-]+)_(\d+[A-Za-z]+)(?:_.*)?")


def parse_filename(path: str | os.PathLike) -> tuple[str | None, str | None]:
    """`UNIUSD_1Hour.pt` -> ("UNIUSD", "1Hour"); (None, None) when the name does not
    follow SYMBOL_TIMEFRAME (a suffix after a second underscore is allowed)."""
    stem = Path(path).name
    for suffix in (".features.json", ".pt", ".pth", ".zip"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    m = _FILENAME_RE.fullmatch(stem)
    if not m:
        return None, None
    try:
        # any spelling the store accepts (1Hour, 1hour, 1H, 1h, 60Min) names the timeframe
        return canonical_symbol(m.group(1)), canonical_timeframe(m.group(2))
    except FoldgateError:
        return None, None


def parse_utc(s: str) -> datetime:
    """ISO-8601 -> aware UTC datetime; a naive time is taken as UTC."""
    d = datetime.fromisoformat(s.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if d.tzinfo is None:
        return d.replace(tzinfo=timezone.utc)
    return d.astimezone(timezone.utc)


def policy_from_fields(
    fields: Mapping[str, Any],
    *,
    path: str | os.PathLike | None = None,
    source_format: str = FORMAT,
    sha256: str = "",
    name_path: str | os.PathLike | None = None,
    where: str | os.PathLike | None = None,
) -> Policy:
    """Validate checkpoint fields (docs/design.md 3) and build a `Policy`. Messages name
    `where` (default `path`) and the field; SYMBOL_TIMEFRAME is parsed from the name
    of `name_path` (default `path`) when the fields do not say."""
    ctx = FieldContext(where if where is not None else path)
    if not isinstance(fields, Mapping):
        raise ctx.err("checkpoint", f"top level is a {type(fields).__name__}, not a dict; {SUPPORTED}")
    fmt = fields.get("format")
    if fmt is None:
        hint = ""
        if any(isinstance(k, str) and k.endswith(".weight") for k in fields):
            hint = " (this looks like a bare state_dict)"
        raise ctx.err("format", f"missing; expected {FORMAT!r}{hint}; {SUPPORTED}")
    if not isinstance(fmt, str) or fmt != FORMAT:
        raise ctx.err("format", f"{_short(fmt)} is not supported (supported: {FORMAT!r})")
    # Fields beyond docs/design.md 3 (a trainer's step count, optimiser notes, ...) are
    # metadata: they are ignored, never interpreted.

    # what the observation is made of
    if "features" not in fields:
        raise ctx.err("features", "missing")
    width, max_params = LAYER_WIDTH.value(), POLICY_PARAMS.value()
    features = _str_list(ctx, "features", fields["features"], width)
    window = fields.get("window", 1)
    if not isinstance(window, (int, np.integer)) or isinstance(window, bool) or not 1 <= window <= 100_000:
        raise ctx.err("window", f"expected an integer >= 1, got {_short(window)}")
    window = int(window)
    state = _str_list(ctx, "state_features", fields.get("state_features", []) or [], width)
    for i, s in enumerate(state):
        if s not in STATE_FEATURES:
            raise ctx.err(f"state_features[{i}]", f"unknown state feature {_short(s)} (known: {', '.join(STATE_FEATURES)})")
    obs_dim = len(features) * window + len(state)
    if obs_dim == 0:
        raise ctx.err("features", "no features and no state features: the observation is empty")
    if obs_dim > width:
        raise ctx.err("window", f"the observation has {obs_dim:,} inputs ({len(features)} features x window "
                                f"{window} + {len(state)} state), more than {width:,}; {LAYER_WIDTH.advice()}")
    obs_what = f"{len(features)} features x window {window} + {len(state)} state features"

    # the network
    actor = fields.get("actor")
    if actor is None:
        raise ctx.err("actor", "missing")
    if not isinstance(actor, (list, tuple)) or len(actor) < 2 or len(actor) % 2:
        raise ctx.err("actor", "expected a list [W0, b0, ..., Wout, bout] of tensors (even length >= 2)")
    if len(actor) > 2 * 64:
        raise ctx.err("actor", f"{len(actor) // 2} layers; foldgate takes at most 64")
    # every shape from metadata first: nothing is copied before the whole network fits
    n_params = 0
    for j in range(len(actor) // 2):
        n_params += check_tensor_meta(ctx, f"actor[{2 * j}] (layer {j} weight)", actor[2 * j], 2, width)
        n_params += check_tensor_meta(ctx, f"actor[{2 * j + 1}] (layer {j} bias)", actor[2 * j + 1], 1, width)
        if n_params > max_params:
            raise ctx.err("actor", f"more than {max_params:,} parameters (at layer {j}); "
                                   f"{POLICY_PARAMS.advice()}")
    # after the sizes: naming the features imports the feature kernels (Numba, ~0.7 s
    # the first time), which a file refused for its size should not wait for
    _check_features(ctx, features)
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    prev_out, prev_name = obs_dim, f"the observation ({obs_what})"
    for j in range(len(actor) // 2):
        wn, bn = f"actor[{2 * j}]", f"actor[{2 * j + 1}]"
        w = _tensor_to_f32(ctx, f"{wn} (layer {j} weight)", actor[2 * j], 2)
        b = _tensor_to_f32(ctx, f"{bn} (layer {j} bias)", actor[2 * j + 1], 1)
        n_out, n_in = w.shape
        if n_out == 0:
            raise ctx.err(f"{wn} (layer {j} weight)", "has 0 outputs")
        if n_in != prev_out:
            raise ctx.err(
                f"{wn} (layer {j} weight)",
                f"shape {tuple(w.shape)} takes {n_in} inputs but {prev_name} has {prev_out}",
            )
        if b.shape[0] != n_out:
            raise ctx.err(f"{bn} (layer {j} bias)", f"length {b.shape[0]} != {n_out} outputs of {wn}")
        layers.append((w, b))
        prev_out, prev_name = n_out, f"layer {j} output"
    n_out = prev_out

    activation = fields.get("activation", "tanh")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ctx.err("activation", f"{_short(activation)} is not supported (supported: tanh, relu)")

    # the action
    action = fields.get("action")
    if not isinstance(action, Mapping):
        raise ctx.err("action", "missing or not a dict {type: discrete|continuous, ...}")
    kind = action.get("type")
    kind = kind if isinstance(kind, str) else _short(kind)
    targets = None
    if kind == "discrete":
        extra = [k for k in action if k not in ("type", "targets")]
        if extra:
            raise ctx.err(f"action.{field_key(extra[0])}", "unknown key for a discrete action (known: type, targets)")
        tg = action.get("targets")
        if not isinstance(tg, (list, tuple)) or not tg:
            raise ctx.err("action.targets", "expected a non-empty list of numbers or null (hold)")
        if len(tg) != n_out:
            raise ctx.err(
                "action.targets",
                f"{len(tg)} targets but the last layer has {n_out} outputs",
            )
        vals = []
        for i, t in enumerate(tg):
            f = math.nan if t is None else _finite(t)
            if f is None:
                raise ctx.err(f"action.targets[{i}]", f"{_short(t)} is not a finite number or null")
            vals.append(f)
        targets = np.asarray(vals, dtype=np.float64)
        real = targets[~np.isnan(targets)]
        low, high = (float(real.min()), float(real.max())) if real.size else (0.0, 0.0)
    elif kind == "continuous":
        extra = [k for k in action if k not in ("type", "low", "high")]
        if extra:
            raise ctx.err(f"action.{field_key(extra[0])}", "unknown key for a continuous action (known: type, low, high)")
        bounds = {}
        for nm in ("low", "high"):
            v = action.get(nm)
            bounds[nm] = _finite(v)
            if bounds[nm] is None or not _float32_ok(bounds[nm]):
                raise ctx.err(f"action.{nm}", f"{_short(v)} is not a finite number (within float32)")
        low, high = bounds["low"], bounds["high"]
        if not low < high:
            raise ctx.err("action", f"low {low:g} must be < high {high:g}")
        if n_out != 1:
            raise ctx.err("action", f"continuous needs 1 output but the last layer has {n_out}")
    else:
        raise ctx.err("action.type", f"{_short(kind)} is not supported (supported: discrete, continuous)")

    # normalisation
    obs_norm = None
    on = fields.get("obs_norm")
    if on is not None:
        if not isinstance(on, Mapping):
            raise ctx.err("obs_norm", "expected a dict {mean, var, epsilon, clip}")
        extra = [k for k in on if k not in ("mean", "var", "epsilon", "clip")]
        if extra:
            raise ctx.err(f"obs_norm.{field_key(extra[0])}", "unknown key (known: mean, var, epsilon, clip)")
        for k in ("mean", "var"):
            if k not in on:
                raise ctx.err(f"obs_norm.{k}", "missing")
        mean = _vector(ctx, "obs_norm.mean", on["mean"], obs_dim)
        var = _vector(ctx, "obs_norm.var", on["var"], obs_dim)
        if np.any(var < 0):
            raise ctx.err("obs_norm.var", f"negative at index {int(np.argmax(var < 0))}")
        raw_eps, raw_clip = on.get("epsilon", 1e-8), on.get("clip", 10.0)
        eps, clip = _finite(raw_eps), _finite(raw_clip)
        # the kernel computes in float32: a value that is finite only as a double (1e300)
        # would become inf there, so it is refused here, at load
        if eps is None or eps < 0 or not _float32_ok(eps):
            raise ctx.err("obs_norm.epsilon", f"{_short(raw_eps)} is not a finite number >= 0 (within float32)")
        if clip is None or not clip > 0 or not _float32_ok(clip):
            raise ctx.err("obs_norm.clip", f"{_short(raw_clip)} is not a finite number > 0 (within float32)")
        with np.errstate(over="ignore", invalid="ignore"):
            denom = np.sqrt(var + np.float32(eps))
        bad = ~(np.isfinite(denom) & (denom > 0))
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ctx.err("obs_norm.var", f"sqrt(var + epsilon) at index {i} is {float(denom[i])!r}, "
                                          f"not a finite number > 0 in float32")
        obs_norm = ObsNorm(mean=mean, var=var, epsilon=eps, clip=clip)

    # identity
    fsym, ftf = parse_filename(name_path if name_path is not None else (path or ""))
    symbol = fields.get("symbol")
    if symbol is not None:
        try:
            if not isinstance(symbol, str) or len(symbol) > 64:
                raise FoldgateError("not a short string")
            symbol = canonical_symbol(symbol)
        except FoldgateError:
            raise ctx.err("symbol", f"{_short(symbol)} is not a symbol like 'BTCUSD' or 'AAPL'") from None
    else:
        symbol = fsym
    timeframe = fields.get("timeframe")
    if timeframe is not None:

        try:
            if not isinstance(timeframe, str) or len(timeframe) > 32:
                raise FoldgateError("not a short string")
            timeframe = canonical_timeframe(timeframe)
        except FoldgateError:
            raise ctx.err("timeframe", f"{_short(timeframe)} is not a timeframe like '1Hour', '15Min', '1Day'") from None
    else:
        timeframe = ftf
    tu = fields.get("trained_until")
    trained_until = None
    if tu is not None:
        try:
            if isinstance(tu, datetime):
                trained_until = tu.replace(tzinfo=timezone.utc) if tu.tzinfo is None else tu.astimezone(timezone.utc)
            elif isinstance(tu, str) and len(tu) <= 64:
                trained_until = parse_utc(tu)
            else:
                raise ctx.err("trained_until", f"expected an ISO-8601 string, got {_short(tu)}")
        except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved by an offset
            raise ctx.err("trained_until", f"{_short(tu)} is not an ISO-8601 time in UTC's range") from None
        if not TRAINED_UNTIL_RANGE[0] <= trained_until <= TRAINED_UNTIL_RANGE[1]:
            raise ctx.err("trained_until", f"{_short(tu)} is outside 1970-2261, the range of bar timestamps")
    meta = fields.get("meta")
    if meta is not None and not isinstance(meta, Mapping):
        raise ctx.err("meta", "expected a dict")

    return Policy(
        path=Path(path) if path is not None else None,
        sha256=sha256,
        source_format=source_format,
        symbol=symbol,
        timeframe=timeframe,
        features=features,
        window=window,
        state_features=state,
        obs_norm=obs_norm,
        layers=layers,
        activation=activation,
        action_kind=kind,
        targets=targets,
        low=low,
        high=high,
        trained_until=trained_until,
    )
