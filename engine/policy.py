"""Policy checkpoints -> `Policy`: the native `foldgate.policy/1` format (design.md 3)
and, through engine/sb3.py, stable-baselines3 PPO zips.

A `.pt` is a pickle, and a pickle can run code. foldgate is asked to validate files
it did not write, so the only reader is `torch.load(weights_only=True)`, whose
unpickler builds tensors and plain containers and refuses everything else. Every
field is then checked before anything downstream trusts it, and each failure is one
line naming the file and the field.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import sys
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .atomic import atomic_write_bytes
from .errors import FoldgateError, PolicyError
from .limits import LAYER_WIDTH, POLICY_FILE, POLICY_PARAMS, show

FORMAT = "foldgate.policy/1"
STATE_FEATURES = ("position", "unrealized_return", "bars_held")
ACTIVATIONS = ("tanh", "relu")
SUPPORTED = (
    "supported: a foldgate.policy/1 checkpoint (torch.save of a dict, design.md 3) or a "
    "stable-baselines3 PPO MlpPolicy .zip with a MODEL.features.json sidecar"
)
_FILENAME_RE = re.compile(r"([A-Za-z0-9.-]+)_(\d+[A-Za-z]+)(?:_.*)?")
# bar timestamps are int64 ns since 1970 (design.md 2); a date outside cannot be compared with them
TRAINED_UNTIL_RANGE = (datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(2261, 12, 31, 23, 59, 59, tzinfo=timezone.utc))
_FIELDS = (
    "format", "symbol", "timeframe", "features", "window", "state_features", "obs_norm",
    "actor", "activation", "action", "trained_until", "meta",
)


# ---------------------------------------------------------------------------
# activation used by forward: switchable so that numpy and the Numba kernel agree

def _resolve_tanh() -> Callable[[np.ndarray], np.ndarray]:
    """The fast kernel's vectorised float32 tanh when it is importable and works on
    arrays, so `forward` rounds like the kernel; else np.tanh on float32."""
    try:
        from kernels import activations  # noqa: PLC0415 - optional, written elsewhere
    except ImportError:
        return _np_tanh
    # the NumPy twin is bit-identical to the kernel's and needs no JIT compile
    for name in ("tanh_f32_np", "tanh_f32_array_nb"):
        fn = getattr(activations, name, None)
        if fn is None:
            continue
        try:
            probe = np.array([[-2.0, 0.0, 0.5]], dtype=np.float32)
            out = np.asarray(fn(probe))
            if out.shape == probe.shape and out.dtype == np.float32 and np.allclose(
                out, np.tanh(probe), atol=1e-6
            ):
                return fn
        except Exception:  # a scalar-only Numba function: not usable on arrays here
            continue
    return _np_tanh


def _np_tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x, dtype=np.float32)


_tanh_impl: Callable[[np.ndarray], np.ndarray] | None = None


def set_tanh(fn: Callable[[np.ndarray], np.ndarray] | None) -> None:
    """Use `fn` (float32 array -> float32 array) as the tanh of `forward`; None goes
    back to automatic selection (kernel tanh if available, else np.tanh)."""
    global _tanh_impl
    _tanh_impl = fn


def tanh32(x: np.ndarray) -> np.ndarray:
    global _tanh_impl
    if _tanh_impl is None:
        _tanh_impl = _resolve_tanh()
    return np.asarray(_tanh_impl(x), dtype=np.float32)


def _relu32(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.float32(0.0))


# ---------------------------------------------------------------------------
# the objects

@dataclass(frozen=True, eq=False)
class ObsNorm:
    """VecNormalize statistics: obs -> clip((obs - mean) / sqrt(var + epsilon), ±clip)."""

    mean: np.ndarray  # float32 (obs_dim,)
    var: np.ndarray  # float32 (obs_dim,)
    epsilon: float = 1e-8
    clip: float = 10.0

    @property
    def denom(self) -> np.ndarray:
        # float32 like the kernel's precomputed table, not VecNormalize's float64
        return np.sqrt(self.var + np.float32(self.epsilon)).astype(np.float32)

    def apply(self, obs: np.ndarray) -> np.ndarray:
        c = np.float32(self.clip)
        return np.clip((obs - self.mean) / self.denom, -c, c).astype(np.float32, copy=False)


@dataclass(eq=False)
class Policy:
    """A validated MLP policy. Build it with `load_policy` or `policy_from_fields`."""

    path: Path | None
    sha256: str
    source_format: str  # "foldgate.policy/1" | "sb3.zip"
    symbol: str | None
    timeframe: str | None
    features: list[str]
    window: int
    state_features: list[str]
    obs_norm: ObsNorm | None
    layers: list[tuple[np.ndarray, np.ndarray]]  # (W (out, in) f32, b (out,) f32)
    activation: str  # "tanh" | "relu"
    action_kind: str  # "discrete" | "continuous"
    targets: np.ndarray | None  # float64 (n_actions,), NaN = hold
    low: float  # continuous bounds; for discrete the range of the non-hold targets
    high: float
    trained_until: datetime | None
    obs_dim: int = field(init=False)

    def __post_init__(self) -> None:
        self.obs_dim = len(self.features) * self.window + len(self.state_features)

    @property
    def n_out(self) -> int:
        return int(self.layers[-1][0].shape[0])

    @property
    def hidden_sizes(self) -> list[int]:
        return [int(w.shape[0]) for w, _ in self.layers[:-1]]

    def describe(self) -> str:
        hidden = "x".join(str(h) for h in self.hidden_sizes) or "no hidden layers"
        if self.action_kind == "discrete":
            tg = ", ".join("hold" if math.isnan(t) else f"{t:g}" for t in self.targets)
            action = f"discrete [{tg}]"
        else:
            action = f"continuous [{self.low:g}, {self.high:g}]"
        norm = ", obs_norm" if self.obs_norm is not None else ""
        return (
            f"{self.source_format}: obs_dim {self.obs_dim} ({len(self.features)} features x "
            f"window {self.window} + {len(self.state_features)} state), {hidden} "
            f"{self.activation}, {action}{norm}"
        )

    def forward(self, obs: Any) -> np.ndarray:
        """float32 (N, obs_dim) -> raw last layer (N, n_out) float32."""
        x = np.asarray(obs, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.obs_dim:
            raise ValueError(
                f"observations must have shape (N, {self.obs_dim}), got {tuple(np.shape(obs))}"
            )
        if self.obs_norm is not None:
            x = self.obs_norm.apply(x)
        act = tanh32 if self.activation == "tanh" else _relu32
        last = len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            x = x @ w.T + b
            if i < last:
                x = act(x)
        return np.ascontiguousarray(x, dtype=np.float32)

    def act(self, obs: Any) -> np.ndarray:
        """discrete: int64 action index (N,), lowest index on ties; continuous: float32
        (N,) clipped to [low, high], as SB3's predict(deterministic=True)."""
        out = self.forward(obs)
        if self.action_kind == "discrete":
            return np.argmax(out, axis=1).astype(np.int64)
        return np.clip(out[:, 0], np.float32(self.low), np.float32(self.high)).astype(np.float32)

    def __repr__(self) -> str:
        where = f" {self.path}" if self.path else ""
        return f"<Policy{where} {self.describe()}>"


# ---------------------------------------------------------------------------
# validation

class _Ctx:
    """Names the file in every message so one line says where and what."""

    def __init__(self, path: Path | str | None):
        self.where = str(path) if path is not None else "<policy>"

    def err(self, fieldname: str, msg: str) -> PolicyError:
        return PolicyError(_one_line(f"{self.where}: {fieldname}: {msg}"))


def _one_line(s: str) -> str:
    return " ".join(s.split())


def _key(k: Any) -> str:
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


def _check_tensor_meta(ctx: _Ctx, fieldname: str, t: Any, ndim: int, width: int) -> int:
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


def _tensor_to_f32(ctx: _Ctx, fieldname: str, t: Any, ndim: int) -> np.ndarray:
    """A float tensor (or, for data made in Python, a float ndarray) -> float32 ndarray.
    Its metadata is checked first (bounded shape), so the copy is bounded too."""
    _check_tensor_meta(ctx, fieldname, t, ndim, LAYER_WIDTH.value())
    if isinstance(t, np.ndarray):
        with np.errstate(over="ignore", invalid="ignore"):
            arr = np.array(t, dtype=np.float32, order="C")
    else:
        import torch

        arr = t.detach().to("cpu", torch.float32).contiguous().numpy().copy()
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ctx.err(fieldname, f"{bad} non-finite value(s) (NaN/inf, or too large for float32)")
    return arr


def _vector(ctx: _Ctx, fieldname: str, v: Any, n: int) -> np.ndarray:
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


def _str_list(ctx: _Ctx, fieldname: str, v: Any, most: int) -> list[str]:
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


def _check_features(ctx: _Ctx, names: list[str]) -> None:
    from .features import parse_feature  # call time: written alongside this module

    for i, name in enumerate(names):
        try:
            parse_feature(name)
        except (FoldgateError, ValueError, KeyError) as exc:
            detail = str(exc).strip() or f"unknown feature {name!r}"
            raise ctx.err(f"features[{i}]", detail) from None


def canonical_symbol(s: str) -> str:
    from .symbols import canonical_symbol as canon  # call time: keeps one definition

    return canon(s)


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
    from .store import canonical_timeframe

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
    """Validate checkpoint fields (design.md 3) and build a `Policy`. Messages name
    `where` (default `path`) and the field; SYMBOL_TIMEFRAME is parsed from the name
    of `name_path` (default `path`) when the fields do not say."""
    ctx = _Ctx(where if where is not None else path)
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
    # Fields beyond design.md 3 (a trainer's step count, optimiser notes, ...) are
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
        n_params += _check_tensor_meta(ctx, f"actor[{2 * j}] (layer {j} weight)", actor[2 * j], 2, width)
        n_params += _check_tensor_meta(ctx, f"actor[{2 * j + 1}] (layer {j} bias)", actor[2 * j + 1], 1, width)
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
            raise ctx.err(f"action.{_key(extra[0])}", "unknown key for a discrete action (known: type, targets)")
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
            raise ctx.err(f"action.{_key(extra[0])}", "unknown key for a continuous action (known: type, low, high)")
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
            raise ctx.err(f"obs_norm.{_key(extra[0])}", "unknown key (known: mean, var, epsilon, clip)")
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
        from .store import canonical_timeframe  # call time: one spelling rule for the store and policies

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


# ---------------------------------------------------------------------------
# reading

def read_policy_bytes(path: Path) -> bytes:
    """The bytes of a policy file, its size bounded before it is read."""
    from .limits import read_bounded

    try:
        if not path.exists():
            raise PolicyError(f"{path}: no such file")
        if path.is_dir():
            raise PolicyError(f"{path}: is a directory, not a policy file")
        return read_bounded(path, POLICY_FILE, PolicyError)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise PolicyError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None


# torch.save stores tensors uncompressed, so a checkpoint inflates by a few bytes at
# most; one that declares far more than it holds is a bomb, refused before torch.load.
_MAX_INFLATION = 16
_MAX_ZIP_ENTRIES = 100_000


def check_zip_sizes(where: Any, zf: zipfile.ZipFile, packed_size: int) -> None:
    """Refuse a zip (a torch checkpoint, an SB3 model) whose entries declare more bytes
    than a policy may hold, or far more than the file's own size: torch allocates the
    declared size of each record it reads."""
    infos = zf.infolist()
    if len(infos) > _MAX_ZIP_ENTRIES:
        raise PolicyError(f"{where}: {len(infos):,} zip entries, more than {_MAX_ZIP_ENTRIES:,}")
    declared = sum(i.file_size for i in infos)
    limit = POLICY_FILE.value()
    if declared > limit:
        raise PolicyError(f"{where}: its zip entries declare {declared:,} bytes, over the bound of {limit:,} "
                          f"bytes per policy file; {POLICY_FILE.advice()}")
    if declared > _MAX_INFLATION * packed_size + (1 << 20):
        raise PolicyError(f"{where}: its zip entries declare {declared:,} bytes in a {packed_size:,}-byte file "
                          f"(a compression bomb); refused before loading")


def _torch_load(path: Path, source: Any) -> Any:
    """torch.load with the weights-only unpickler, and its failures as one line."""
    import pickle

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's protocol chatter is not the user's business
            return torch.load(source, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "Weights only load failed" in msg and (op := re.search(r"Unsupported operand (\d+)", msg)):
            raise PolicyError(
                f"{path}: uses pickle opcode {op.group(1)}, which the safe loader refuses (139 = LONG4, an "
                f"integer of more than 255 bytes); nothing in it was executed"
            ) from None
        if "Weights only load failed" in msg:
            m = re.search(r"GLOBAL ([\w.]+)", msg)
            what = f" (it references {m.group(1)})" if m else " (or pickle opcodes the safe loader refuses)"
            raise PolicyError(
                f"{path}: holds code or Python objects{what} that foldgate will not load: "
                f"a checkpoint may contain only tensors, numbers, strings, lists and dicts; "
                f"nothing in it was executed"
            ) from None
        raise PolicyError(f"{path}: not a torch checkpoint ({_one_line(msg)[:120]}); {SUPPORTED}") from None
    except Exception as exc:  # noqa: BLE001 - garbage can fail inside the unpickler in any way
        # (IndexError, TypeError, MemoryError, ...); nothing from it was executed
        detail = _one_line(str(exc))[:120] or type(exc).__name__
        if isinstance(exc, EOFError):
            detail = "the file is empty or truncated"
        raise PolicyError(f"{path}: not a torch checkpoint ({detail}); {SUPPORTED}") from None


def _zip_kind(path: Path, data: bytes) -> str:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as exc:
        raise PolicyError(f"{path}: a damaged zip archive ({_one_line(str(exc))[:120]})") from None
    check_zip_sizes(path, zf, len(data))
    names = zf.namelist()
    if "data" in names or "policy.pth" in names:
        return "sb3"
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") for n in names):
        return "torch"
    return "other"


def load_policy(path: str | os.PathLike) -> Policy:
    """Load and validate a native checkpoint or an SB3 PPO zip (with its sidecar)."""
    p = Path(path)
    data = read_policy_bytes(p)
    if not data:
        raise PolicyError(f"{p}: the file is empty; {SUPPORTED}")
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        kind = _zip_kind(p, data)
        if kind == "sb3" or (kind == "other" and p.suffix.lower() == ".zip"):
            from .sb3 import load_sb3_policy

            return load_sb3_policy(p)
        if kind == "torchscript":
            raise PolicyError(
                f"{p}: a TorchScript archive; foldgate does not run TorchScript code. "
                f"Save the weights instead; {SUPPORTED}"
            )
        if kind == "other":
            raise PolicyError(f"{p}: a zip archive that is neither a torch checkpoint nor an SB3 model; {SUPPORTED}")
    elif data[:1] != b"\x80":
        # torch.save writes a zip, or (legacy) a pickle that starts with the PROTO opcode
        raise PolicyError(f"{p}: not a torch checkpoint (neither a zip archive nor a pickle); {SUPPORTED}")
    obj = _torch_load(p, io.BytesIO(data))  # the bytes checked and hashed, not a re-read
    sha = hashlib.sha256(data).hexdigest()
    with malformed(p):
        return policy_from_fields(obj, path=p, source_format=FORMAT, sha256=sha)


@contextmanager
def malformed(where: Any):
    """The last line of defence for a hostile file: an exception that no check above
    foresaw becomes one PolicyError line instead of a traceback. (A refusal a check
    words itself is always better; the fuzz suite hunts for the ones that land here.)"""
    try:
        yield
    except FoldgateError:
        raise
    except (TypeError, ValueError, OverflowError, AttributeError, KeyError, IndexError, RecursionError,
            MemoryError, RuntimeError) as exc:
        raise PolicyError(f"{where}: a malformed policy ({type(exc).__name__}: "
                          f"{_one_line(str(exc))[:100]}); {SUPPORTED}") from None


# ---------------------------------------------------------------------------
# writing

def policy_to_checkpoint(policy: Policy) -> dict[str, Any]:
    """The native checkpoint dict of a policy (tensors, floats, strings only)."""
    import torch

    ck: dict[str, Any] = {"format": FORMAT}
    if policy.symbol:
        ck["symbol"] = policy.symbol
    if policy.timeframe:
        ck["timeframe"] = policy.timeframe
    ck["features"] = list(policy.features)
    ck["window"] = int(policy.window)
    ck["state_features"] = list(policy.state_features)
    if policy.obs_norm is not None:
        ck["obs_norm"] = {
            "mean": torch.from_numpy(np.array(policy.obs_norm.mean, dtype=np.float32)),
            "var": torch.from_numpy(np.array(policy.obs_norm.var, dtype=np.float32)),
            "epsilon": float(policy.obs_norm.epsilon),
            "clip": float(policy.obs_norm.clip),
        }
    actor = []
    for w, b in policy.layers:
        actor += [torch.from_numpy(np.array(w, dtype=np.float32)), torch.from_numpy(np.array(b, dtype=np.float32))]
    ck["actor"] = actor
    ck["activation"] = policy.activation
    if policy.action_kind == "discrete":
        ck["action"] = {
            "type": "discrete",
            "targets": [None if math.isnan(t) else float(t) for t in policy.targets],
        }
    else:
        ck["action"] = {"type": "continuous", "low": float(policy.low), "high": float(policy.high)}
    if policy.trained_until is not None:
        ck["trained_until"] = policy.trained_until.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ck


def _storable(v: Any) -> Any:
    """Only what the weights-only unpickler accepts may go into the file: numpy
    arrays become tensors, datetimes ISO strings."""
    import torch

    if isinstance(v, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(v))
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, datetime):
        d = v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)
        return d.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, Mapping):
        return {k: _storable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_storable(x) for x in v]
    return v


def save_policy(path: str | os.PathLike, **fields: Any) -> Path:
    """Validate `fields` as a native checkpoint and write it atomically with
    torch.save. `format` defaults to foldgate.policy/1. Returns the path."""
    import torch

    p = Path(path)
    fields = {k: _storable(v) for k, v in fields.items()}
    fields.setdefault("format", FORMAT)
    policy_from_fields(fields, path=p)  # never write a file load_policy would refuse
    buf = io.BytesIO()
    torch.save(fields, buf)
    atomic_write_bytes(p, buf.getvalue())
    return p
