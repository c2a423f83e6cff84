"""`Policy`: a validated MLP policy and its float32 math (docs/design.md 3), and the
`ObsNorm` statistics; what every policy format is read into."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

FORMAT = "foldgate.policy/1"
STATE_FEATURES = ("position", "unrealized_return", "bars_held")
ACTIVATIONS = ("tanh", "relu")
SUPPORTED = (
    "supported: a foldgate.policy/1 checkpoint (torch.save of a dict, docs/design.md 3) or a "
    "stable-baselines3 PPO MlpPolicy .zip with a MODEL.features.json sidecar"
)
# bar timestamps are int64 ns since 1970 (docs/design.md 2); a date outside cannot be compared with them
TRAINED_UNTIL_RANGE = (datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(2261, 12, 31, 23, 59, 59, tzinfo=timezone.utc))


# ---------------------------------------------------------------------------
# activation used by forward: switchable so that numpy and the Numba kernel agree

def _resolve_tanh() -> Callable[[np.ndarray], np.ndarray]:
    """The fast kernel's vectorised float32 tanh when it is importable and works on
    arrays, so `forward` rounds like the kernel; else np.tanh on float32."""
    try:
        from kernels import activations  # lazy: the Numba kernels, which `foldgate gate` never needs
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
