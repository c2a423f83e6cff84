"""Pack policies, per-symbol series and (model, fold) trajectories into the flat arrays
of the simulation kernel, run it, and split the results back per trajectory.

    batch = Batch(fill_mode=0)                                  # 0 next open, 1 close
    sid = batch.add_series(bars.open, bars.close, feats, names) # feats (T, F) float64
    mid = batch.add_model(policy, sid)                          # policy on that series
    tid = batch.add_trajectory(mid, sid, start, end, capital=1e5, commission=0.001,
                               slippage=0.0005, long_only=True)
    late = batch.add_trajectory(mid, sid, start, end, capital=1e5,
                                fill_mode="next-open-late")     # its own fill mode
    results = batch.run(bars_per_year=8766.0)                  # one dict per trajectory

A "model" of the kernel is one policy read against one series' feature columns, so
the same policy can run on series whose feature blocks are laid out differently.
Policies are duck-typed: anything with the fields of `engine.policy.Policy`
(features, window, state_features, obs_norm, layers, activation, action_kind,
targets, low, high) packs. The array names and layouts are those of
docs/internals.md, "The simulation kernel".
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from kernels.codes import ACT_NAMES, ACTION_NAMES, FILL_CODES, FILL_NAMES, STATE_NAMES
from kernels.inputs import FILL_DTYPE, KERNEL_INPUTS, validate_inputs
from kernels import jit_cache
from kernels.simulate import SimulationResult, simulate_inputs

from .errors import FoldgateError, PolicyError
from .metrics import metrics_rows, trajectory_metrics, trajectory_returns

DEVICES = ("cpu", "cuda", "auto")


def feature_columns(model_features, series_feature_names) -> np.ndarray:
    """Column of each of the model's feature names in the series' feature block (int64).
    PolicyError names the features the series does not hold."""
    where = {name: col for col, name in enumerate(series_feature_names)}
    missing = [name for name in model_features if name not in where]
    if missing:
        raise PolicyError(f"the series' features lack {', '.join(missing)} "
                          f"(it holds: {', '.join(series_feature_names) or 'none'})")
    return np.array([where[name] for name in model_features], dtype=np.int64)


def _fill_code(fill_mode: int | str) -> int:
    """A fill mode as its FILL_* code, from the code or its name (FILL_NAMES)."""
    if isinstance(fill_mode, str):
        if fill_mode not in FILL_NAMES:
            raise FoldgateError(f"fill must be one of {', '.join(FILL_NAMES)}, "
                                f"got {fill_mode!r}")
        fill_mode = FILL_NAMES[fill_mode]
    if isinstance(fill_mode, bool) or fill_mode not in FILL_CODES:
        raise FoldgateError(f"fill_mode must be 0 (next open), 1 (close) or 2 (next open, "
                            f"one bar late), got {fill_mode!r}")
    return int(fill_mode)


@dataclass
class _Series:
    open_: np.ndarray  # float64 (T,)
    close: np.ndarray  # float64 (T,)
    feats: np.ndarray  # float64 (T, F), C order
    names: list[str]


@dataclass
class _Trajectory:
    model: int
    series: int
    start: int
    end: int
    capital: float
    commission: float
    slippage: float
    long_only: bool
    fill_mode: int | None = None  # a FILL_* code; None: the batch's fill_mode


@dataclass
class PackedBatch:
    """The kernel's input arrays (`arrays`, keyed by KERNEL_INPUTS) and which Batch
    trajectory each packed row is."""

    arrays: dict
    trajectory_ids: list[int]
    capital: np.ndarray  # float64 (n_traj,), for the metrics


class CompileNotice:
    """Says on stderr, once per process, that a cold start compiles the kernels, before
    the pause, and then how long it took:

        foldgate: compiling kernels (once, ~12 s)...
        foldgate: kernels compiled in 11.4 s; later runs load them from the cache

    `start()` runs when the first Batch is made (a run makes it before it computes
    features, the first kernel it calls), `finish()` after a run's kernels ran.
    FOLDGATE_COMPILE_NOTICE=0 silences it."""

    def __init__(self, write=None):
        self._write = write
        self._lock = threading.Lock()
        self._checked = False
        self._t0 = None

    def _say(self, text: str) -> None:
        if self._write is not None:
            self._write(text)
            return
        sys.stderr.write(f"foldgate: {text}\n")
        sys.stderr.flush()

    def start(self) -> None:
        with self._lock:
            if self._checked:
                return
            self._checked = True
            if os.environ.get("FOLDGATE_COMPILE_NOTICE", "1") == "0":
                return
            cold = jit_cache.cold_kernels()
            # the simulation kernel is what every Batch compiles; the others only
            # compile for the callers that compute features or metrics, and a notice
            # that nothing follows would mislead
            if jit_cache.SIMULATE_KERNEL not in {name for name, _ in cold}:
                return
            self._t0 = time.perf_counter()
            self._say(f"compiling kernels (once, ~{sum(s for _, s in cold):.0f} s)...")

    def finish(self) -> None:
        # Whether each kernel got cached is not asked again: a run may not call them
        # all (no metrics without bars_per_year, no CPU kernel with --device cuda), and
        # Numba warns by itself when it cannot write its cache.
        with self._lock:
            if self._t0 is None:
                return
            took = time.perf_counter() - self._t0
            self._t0 = None
            self._say(f"kernels compiled in {took:.1f} s; later runs load them from the cache")


COMPILE_NOTICE = CompileNotice()


class Batch:
    """Collects series, models and trajectories; packs and simulates them in one call."""

    def __init__(self, fill_mode: int | str = 0):
        COMPILE_NOTICE.start()
        self.fill_mode = _fill_code(fill_mode)  # of the trajectories added without their own
        self.series: list[_Series] = []
        self.models: list[tuple[object, int]] = []  # (policy, series id)
        self._model_ids: dict[tuple[int, int], int] = {}
        self.trajectories: list[_Trajectory] = []

    # -- building ------------------------------------------------------------------

    def add_series(self, open_, close, feats, feature_names) -> int:
        """One symbol's bars: open and close (T,), features (T, F) whose column j holds
        feature_names[j]. Returns the series id."""
        open_ = np.ascontiguousarray(open_, dtype=np.float64)
        close = np.ascontiguousarray(close, dtype=np.float64)
        feats = np.ascontiguousarray(feats, dtype=np.float64)
        names = list(feature_names)
        if open_.ndim != 1 or close.shape != open_.shape:
            raise ValueError(f"open and close must be 1-D of equal length, got {open_.shape} "
                             f"and {close.shape}")
        if feats.ndim == 1 and not names and feats.size == 0:
            feats = feats.reshape(open_.shape[0], 0)
        if feats.ndim != 2 or feats.shape != (open_.shape[0], len(names)):
            raise ValueError(f"features must be (T, len(feature_names)) = "
                             f"({open_.shape[0]}, {len(names)}), got {feats.shape}")
        self.series.append(_Series(open_, close, feats, names))
        return len(self.series) - 1

    def add_model(self, policy, series_id: int) -> int:
        """`policy` reading its features from series `series_id`; adding the same pair
        twice returns the same model id."""
        key = (id(policy), int(series_id))
        if key in self._model_ids:
            return self._model_ids[key]
        if not 0 <= series_id < len(self.series):
            raise ValueError(f"no series {series_id}")
        feature_columns(policy.features, self.series[series_id].names)  # fail early
        self.models.append((policy, int(series_id)))
        self._model_ids[key] = len(self.models) - 1
        return len(self.models) - 1

    def add_trajectory(self, model_id: int, series_id: int, start: int, end: int, *,
                       capital: float, commission: float = 0.0, slippage: float = 0.0,
                       long_only: bool = False, fill_mode: int | str | None = None) -> int:
        """Simulate model `model_id` over bars start..end-1 of series `series_id`.
        commission and slippage are rates (bps / 1e4); fill_mode (a code or a name of
        FILL_NAMES) is this trajectory's own, None for the batch's. Trajectories of
        different fill modes run in the same kernel call. Returns the trajectory id."""
        if not 0 <= model_id < len(self.models):
            raise ValueError(f"no model {model_id}")
        if self.models[model_id][1] != series_id:
            raise ValueError(f"model {model_id} was added for series "
                             f"{self.models[model_id][1]}, not {series_id}")
        self.trajectories.append(_Trajectory(int(model_id), int(series_id), int(start),
                                             int(end), float(capital), float(commission),
                                             float(slippage), bool(long_only),
                                             None if fill_mode is None else _fill_code(fill_mode)))
        return len(self.trajectories) - 1

    def fill_modes(self, trajectories) -> np.ndarray:
        """The FILL_* code each of the given trajectory ids runs with (int8)."""
        default = self.fill_mode
        return np.array([default if self.trajectories[t].fill_mode is None
                         else self.trajectories[t].fill_mode for t in trajectories],
                        dtype=FILL_DTYPE)

    # -- packing -------------------------------------------------------------------

    def pack(self, trajectories=None, scratch: dict | None = None) -> PackedBatch:
        """Flat kernel arrays for the given trajectory ids (all, in order, by default).
        Only the series and models those trajectories use are packed. `scratch`: a dict
        the caller keeps across packs whose earlier PackedBatch it no longer uses; the
        market arrays are packed into its buffers (see `_pack_series`)."""
        ids = list(range(len(self.trajectories))) if trajectories is None else [
            int(t) for t in trajectories]
        chosen = [self.trajectories[t] for t in ids]
        series_ids = sorted({t.series for t in chosen})
        model_ids = sorted({t.model for t in chosen})
        series_index = {s: k for k, s in enumerate(series_ids)}
        model_index = {m: k for k, m in enumerate(model_ids)}

        arrays = _pack_series([self.series[s] for s in series_ids], scratch)
        arrays.update(_pack_models([self.models[m][0] for m in model_ids],
                                   [self.series[self.models[m][1]].names for m in model_ids]))

        arrays["traj_model"] = np.array([model_index[t.model] for t in chosen], dtype=np.int64)
        arrays["traj_series"] = np.array([series_index[t.series] for t in chosen],
                                         dtype=np.int64)
        arrays["traj_start"] = np.array([t.start for t in chosen], dtype=np.int64)
        arrays["traj_end"] = np.array([t.end for t in chosen], dtype=np.int64)
        arrays["traj_capital"] = np.array([t.capital for t in chosen], dtype=np.float64)
        arrays["traj_commission"] = np.array([t.commission for t in chosen], dtype=np.float64)
        arrays["traj_slippage"] = np.array([t.slippage for t in chosen], dtype=np.float64)
        arrays["traj_long_only"] = np.array([t.long_only for t in chosen], dtype=np.uint8)
        arrays["fill_mode"] = self.fill_modes(ids)
        bars = arrays["traj_end"] - arrays["traj_start"]
        # equity slot [C, E_s0..E_{e-1}]; a trade needs a fill to close it, so a
        # trajectory of n bars has at most n trades
        arrays["traj_eq_off"] = np.concatenate(([0], np.cumsum(bars + 1))).astype(np.int64)
        arrays["traj_trade_off"] = np.concatenate(([0], np.cumsum(bars))).astype(np.int64)
        return PackedBatch(arrays, ids, arrays["traj_capital"].copy())

    # -- running -------------------------------------------------------------------

    def simulate_packed(self, packed: PackedBatch, device: str = "cpu") -> SimulationResult:
        """Run the kernel on packed arrays: "cpu", "cuda" or "auto" (CUDA when present)."""
        result = self._simulate_packed(packed, device)
        COMPILE_NOTICE.finish()
        return result

    def _simulate_packed(self, packed: PackedBatch, device: str) -> SimulationResult:
        if device not in DEVICES:
            raise FoldgateError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        if device in ("cuda", "auto"):
            # only an explicit "cuda" takes Numba's CUDA simulator (slow, for tests)
            gpu = _gpu_simulate(allow_simulator=device == "cuda")
            if gpu is not None:
                return _as_result(gpu(validate_inputs(packed.arrays)), packed.arrays)
            if device == "cuda":
                raise FoldgateError("--device cuda: no usable CUDA GPU or numba-cuda here; "
                                    "use --device cpu")
        return simulate_inputs(validate_inputs(packed.arrays))

    def run(self, device: str = "cpu", bars_per_year=None, trajectories=None) -> list[dict]:
        """Simulate the given trajectory ids (all by default) in one kernel call and
        return one dict per trajectory, in the order asked:
        equity (float64, [C, E_s0..E_{e-1}]), returns (r_t against the previous value),
        trades (list of (entry_bar, exit_bar, direction, entry_price, exit_price, pnl,
        commission)), stats (exposure_bars, traded_notional, clipped_shorts, n_fills),
        and, when bars_per_year is given (a number or one per trajectory), metrics
        (the names of kernels.metrics.METRIC_NAMES)."""
        packed = self.pack(trajectories)
        result = self._simulate_packed(packed, device)
        out = split_result(result, packed, bars_per_year)
        COMPILE_NOTICE.finish()  # after the metrics, which compile on a cold start too
        return out


def split_result(result: SimulationResult, packed: PackedBatch, bars_per_year=None,
                 trades: bool = True) -> list[dict]:
    """One dict per packed trajectory (see `Batch.run`). trades=False leaves out the
    `trades` tuples (the arrays `trade_int` and `trade_float` hold the same): a 512-
    trajectory chunk has ~40,000 trades, and the pipeline reads the arrays."""
    eq_off = result.traj_eq_off
    tr_off = result.traj_trade_off
    n_traj = len(packed.trajectory_ids)
    returns = trajectory_returns(result.equity, eq_off) if n_traj else []
    rows = None
    if bars_per_year is not None and n_traj:
        bpy = np.broadcast_to(np.asarray(bars_per_year, dtype=np.float64), (n_traj,))
        rows = metrics_rows(trajectory_metrics(result.equity, eq_off, result.n_trades,
                                               result.trade_float, tr_off, result.stats,
                                               packed.capital, np.ascontiguousarray(bpy)))
    # the trades of all trajectories as tuples in one tolist() per column, then a slice
    # per trajectory: numpy scalar indexing and a conversion per trade cost more than
    # the kernel at 30,000 trajectories. Each trajectory's slots are its bars (the most
    # trades it can have), so the used rows are picked out first.
    if trades:
        capacity = np.diff(tr_off)
        used = np.arange(int(tr_off[-1])) - np.repeat(tr_off[:-1], capacity) < np.repeat(result.n_trades, capacity)
        all_trades = list(zip(*result.trade_int[used].T.tolist(), *result.trade_float[used].T.tolist()))
        first = np.concatenate(([0], np.cumsum(result.n_trades))).tolist()
    tr, nt, eo = tr_off.tolist(), result.n_trades.tolist(), eq_off.tolist()
    stats = result.stats.tolist()
    equity, trade_int, trade_float = result.equity, result.trade_int, result.trade_float
    ids = packed.trajectory_ids
    out = []
    for i in range(n_traj):
        a, n = tr[i], nt[i]
        st = stats[i]
        item = {
            "trajectory": ids[i],
            "equity": equity[eo[i]:eo[i + 1]],
            "returns": returns[i],
            "trade_int": trade_int[a:a + n],
            "trade_float": trade_float[a:a + n],
            "stats": {"exposure_bars": int(st[0]), "traded_notional": st[1],
                      "clipped_shorts": int(st[2]), "n_fills": int(st[3])},
        }
        if trades:
            item["trades"] = all_trades[first[i]:first[i + 1]]
        if rows is not None:
            item["metrics"] = rows[i]
        out.append(item)
    return out


# ---------------------------------------------------------------------------------
# packing helpers

def _offsets(sizes) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(np.asarray(sizes, dtype=np.int64)))).astype(np.int64)


def _pack_series(series: list[_Series], scratch: dict | None = None) -> dict:
    """The market arrays of `series`, concatenated. With `scratch` (a dict kept across
    the chunks of one run, each chunk's arrays no longer in use when the next is packed)
    they are written into buffers it holds, grown as needed: a bulk run packs hundreds of
    MB of features, and fresh arrays cost a page fault per 4 KiB, half of the packing."""
    bars = [s.open_.shape[0] for s in series]
    n_feat = [s.feats.shape[1] for s in series]
    return {
        "open_": _joined([s.open_ for s in series], scratch, "open_"),
        "close": _joined([s.close for s in series], scratch, "close"),
        "bar_off": _offsets(bars),
        "feats": _joined([s.feats.ravel() for s in series], scratch, "feats"),
        "feat_off": _offsets([t * f for t, f in zip(bars, n_feat)]),
        "n_feat": np.array(n_feat, dtype=np.int64),
    }


def _joined(parts: list[np.ndarray], scratch: dict | None, name: str) -> np.ndarray:
    if scratch is None:
        return np.concatenate(parts)
    n = sum(p.shape[0] for p in parts)
    buf = scratch.get(name)
    if buf is None or buf.shape[0] < n:
        buf = scratch[name] = np.empty(max(n, 2 * (0 if buf is None else buf.shape[0])), dtype=np.float64)
    return np.concatenate(parts, out=buf[:n])


def _pack_models(policies: list, series_names: list[list[str]]) -> dict:
    feat_cols, state_codes = [], []
    n_feat_cols, n_state, window, obs_dim = [], [], [], []
    norm, norm_off, norm_mean, norm_denom, norm_clip = [], [], [], [], []
    n_layers, layer_in, layer_out, layer_w_off, layer_b_off = [], [], [], [], []
    weights, biases = [], []
    act, action_kind, n_targets, targets, low, high = [], [], [], [], [], []
    w_used = b_used = norm_used = 0
    max_width = 1

    for policy, names in zip(policies, series_names):
        cols = feature_columns(policy.features, names)
        codes = []
        for name in policy.state_features:
            if name not in STATE_NAMES:
                raise PolicyError(f"unknown state feature {name!r} "
                                  f"(known: {', '.join(STATE_NAMES)})")
            codes.append(STATE_NAMES[name])
        dim = int(policy.window) * len(cols) + len(codes)
        feat_cols.append(cols)
        n_feat_cols.append(len(cols))
        state_codes.extend(codes)
        n_state.append(len(codes))
        window.append(int(policy.window))
        obs_dim.append(dim)
        max_width = max(max_width, dim)

        if policy.obs_norm is not None:
            on = policy.obs_norm
            mean = np.asarray(on.mean, dtype=np.float32).reshape(-1)
            var = np.asarray(on.var, dtype=np.float32).reshape(-1)
            if mean.shape != (dim,) or var.shape != (dim,):
                raise PolicyError(f"obs_norm mean and var must have obs_dim = {dim} values")
            # VecNormalize's denominator, computed in float32 as Policy.forward does
            norm_denom.append(np.sqrt(var + np.float32(on.epsilon)).astype(np.float32))
            norm_mean.append(mean)
            norm.append(1)
            norm_off.append(norm_used)
            norm_clip.append(np.float32(on.clip))
            norm_used += dim
        else:
            norm.append(0)
            norm_off.append(0)
            norm_clip.append(np.float32(0.0))

        n_layers.append(len(policy.layers))
        for w, b in policy.layers:
            w = np.asarray(w, dtype=np.float32)
            b = np.asarray(b, dtype=np.float32).reshape(-1)
            n_out, n_in = w.shape
            layer_in.append(n_in)
            layer_out.append(n_out)
            layer_w_off.append(w_used)
            layer_b_off.append(b_used)
            weights.append(np.ascontiguousarray(w.T).ravel())  # (in, out) row-major
            biases.append(b)
            w_used += n_in * n_out
            b_used += n_out
            max_width = max(max_width, n_out)

        if policy.activation not in ACT_NAMES:
            raise PolicyError(f"unknown activation {policy.activation!r}")
        act.append(ACT_NAMES[policy.activation])
        if policy.action_kind not in ACTION_NAMES:
            raise PolicyError(f"unknown action type {policy.action_kind!r}")
        action_kind.append(ACTION_NAMES[policy.action_kind])
        if policy.action_kind == "discrete":
            t = np.asarray(policy.targets, dtype=np.float64).reshape(-1)
            targets.append(t)
            n_targets.append(t.shape[0])
        else:
            n_targets.append(0)
        low.append(float(policy.low) if policy.low is not None else -math.inf)
        high.append(float(policy.high) if policy.high is not None else math.inf)

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    return {
        "model_feat_off": _offsets(n_feat_cols),
        "model_feat_col": cat(feat_cols, np.int64),
        "model_window": np.array(window, dtype=np.int64),
        "model_state_off": _offsets(n_state),
        "model_state_code": np.array(state_codes, dtype=np.int64),
        "model_obs_dim": np.array(obs_dim, dtype=np.int64),
        "model_norm": np.array(norm, dtype=np.uint8),
        "norm_off": np.array(norm_off, dtype=np.int64),
        "norm_mean": cat(norm_mean, np.float32),
        "norm_denom": cat(norm_denom, np.float32),
        "norm_clip": np.array(norm_clip, dtype=np.float32),
        "model_layer_off": _offsets(n_layers),
        "layer_in": np.array(layer_in, dtype=np.int64),
        "layer_out": np.array(layer_out, dtype=np.int64),
        "layer_w_off": np.array(layer_w_off, dtype=np.int64),
        "layer_b_off": np.array(layer_b_off, dtype=np.int64),
        "weights": cat(weights, np.float32),
        "biases": cat(biases, np.float32),
        "model_act": np.array(act, dtype=np.int64),
        "model_action_kind": np.array(action_kind, dtype=np.int64),
        "model_target_off": _offsets(n_targets),
        "targets": cat(targets, np.float64),
        "model_low": np.array(low, dtype=np.float64),
        "model_high": np.array(high, dtype=np.float64),
        "max_width": int(max_width),
    }


def _gpu_simulate(allow_simulator: bool = False):
    """kernels.gpu_simulate.gpu_simulate_inputs (it takes a KernelInputs) when it imports and a CUDA GPU is usable (or,
    with allow_simulator, when NUMBA_ENABLE_CUDASIM=1 selected Numba's simulator)."""
    try:
        from kernels import gpu_simulate as g  # lazy: numba-cuda may be absent or broken
    except Exception:  # numba-cuda absent or no driver: the CPU kernel it is
        return None
    available = getattr(g, "cuda_available", None)
    try:
        if allow_simulator and g.simulator_active():
            return g.gpu_simulate_inputs
        if available is not None and not available():
            return None
    except Exception:
        return None
    return getattr(g, "gpu_simulate_inputs", None)


def _as_result(out, arrays) -> SimulationResult:
    """The GPU twin's outputs (object or dict with the same names) as a SimulationResult."""
    if isinstance(out, SimulationResult):
        return out

    def get(name):
        return out[name] if isinstance(out, dict) else getattr(out, name)

    return SimulationResult(
        np.asarray(get("equity")), np.asarray(get("n_trades")), np.asarray(get("trade_int")),
        np.asarray(get("trade_float")), np.asarray(get("stats")), arrays["traj_eq_off"],
        arrays["traj_trade_off"])


__all__ = ["Batch", "PackedBatch", "feature_columns", "split_result", "KERNEL_INPUTS"]
