"""Batched CPU simulation of trading policies (docs/design.md 5, docs/internals.md).

One call runs a flat list of trajectories, each one (model, fold): per bar it builds
the model's observation, runs the float32 MLP, maps the action to a target position,
fills orders with slippage and commission, and records equity and trades in float64.

Layout, three layers as everywhere in kernels/:
- `_simulate_nb`: the nogil kernel over a block of units; arrays in, arrays out. Its unit of work is up
  to four trajectories of the same model run in lockstep ("lanes"), so that their
  forward passes share every weight load (`_forward_nb`); the driver groups them.
- `_simulate`: the private driver; groups trajectories, allocates outputs, calls.
- `simulate`: the public wrapper; kernels/inputs.py checks shapes, dtypes and
  offsets so that the kernel (which does no bounds checks) never reads or writes
  out of range.

Speed comes from the layer loop of the forward pass (kernels/mlp.py says how it
vectorises and why it agrees with the NumPy reference bit for bit). No fastmath: it
would let LLVM fuse or reorder float32 operations on its own. `error_model="numpy"`
drops Python's zero-division checks, which would otherwise keep loops from
vectorising.

The unit and everything it calls per bar are compiled with `_nrt=False` (the driver
allocates their scratch): they allocate nothing, and with the runtime every call
increments and decrements the reference count of each array argument -- atomic
instructions that took a fifth of the kernel's time. They are called once per bar for
all lanes (a call passes each array as seven flattened fields, so per-lane calls cost
a sixth of the time), and only helpers with a single call site are inlined: Numba's
IR inlining of four lanes' worth of calls added 3 s to the cold compile. The helpers
get no Python or C wrappers (no_cpython_wrapper, no_cfunc_wrapper: 1.5 s of every cold
compile); call them from jitted code only.

Numba's cache is keyed on this file only: after editing kernels/mlp.py, kernels/simd.py,
kernels/activations.py, kernels/fma.py or kernels/codes.py, delete
kernels/__pycache__/simulate.*.nb[ic] (an install writes fresh files anyway).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, uint64


# the codes are re-exported (see __all__): callers written against this module keep working
from .codes import (ACT_RELU, ACT_TANH, ACTION_CONTINUOUS, ACTION_DISCRETE, FILL_CLOSE,
                    FILL_NEXT_OPEN, FILL_NEXT_OPEN_LATE, STATE_BARS_HELD, STATE_POSITION,
                    STATE_UNREALIZED)
from .codes import (A_CASH, A_ENTRY_BAR, A_ENTRY_UNITS, A_ENTRY_VALUE, A_EXIT_UNITS,
                    A_EXIT_VALUE, A_N_FILLS, A_N_TRADES, A_TRADE_COMMISSION, A_TRADE_PNL,
                    A_TRADED_NOTIONAL, A_UNITS, ACCOUNT_SIZE, BARS_HELD_SCALE, S_CLIPPED_SHORTS,
                    S_EXPOSURE_BARS, S_N_FILLS, S_TRADED_NOTIONAL, STATS_COLS, T_COMMISSION,
                    T_DIRECTION, T_ENTRY_BAR, T_ENTRY_PRICE, T_EXIT_BAR, T_EXIT_PRICE, T_PNL,
                    TRADE_FLOAT_COLS, TRADE_INT_COLS)
from .inputs import KERNEL_INPUTS, KernelInputs, validate_inputs
from .mlp import LANES, _forward_nb


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _fill_nb(t, p, target, s, tr_i, tr_f, row0, commission, slippage):
    """Trade units to `target` * equity at raw price p on bar t; book the trade(s).

    `s` is the float64 account state of the trajectory, slots A_* (kernels/codes.py).
    A flip is one fill split into a closing part (|old| units) and an opening part
    (|new| units); its commission and cash flows split by units.
    """
    cash = s[A_CASH]
    old = s[A_UNITS]
    equity = cash + old * p
    new = target * equity / p
    d = new - old
    if d == 0.0:
        return
    if d > 0.0:
        fp = p * (1.0 + slippage)
    else:
        fp = p * (1.0 - slippage)
    ad = abs(d)
    comm = commission * ad * fp
    s[A_CASH] = cash - (d * fp + comm)
    s[A_UNITS] = new
    s[A_TRADED_NOTIONAL] += ad * fp
    s[A_N_FILLS] += 1.0
    if old == 0.0:
        _open_trade_nb(t, new, fp, -(new * fp) - comm, comm, s)
    elif new == 0.0:
        s[A_EXIT_UNITS] += ad
        s[A_EXIT_VALUE] += ad * fp
        s[A_TRADE_PNL] += -(d * fp) - comm
        s[A_TRADE_COMMISSION] += comm
        _close_trade_nb(t, old, s, tr_i, tr_f, row0)
    elif (old > 0.0) == (new > 0.0):
        if abs(new) > abs(old):
            s[A_ENTRY_UNITS] += ad
            s[A_ENTRY_VALUE] += ad * fp
        else:
            s[A_EXIT_UNITS] += ad
            s[A_EXIT_VALUE] += ad * fp
        s[A_TRADE_PNL] += -(d * fp) - comm
        s[A_TRADE_COMMISSION] += comm
    else:
        a_old = abs(old)
        comm_close = comm * a_old / (a_old + abs(new))
        comm_open = comm - comm_close
        s[A_EXIT_UNITS] += a_old
        s[A_EXIT_VALUE] += a_old * fp
        s[A_TRADE_PNL] += old * fp - comm_close
        s[A_TRADE_COMMISSION] += comm_close
        _close_trade_nb(t, old, s, tr_i, tr_f, row0)
        _open_trade_nb(t, new, fp, -(new * fp) - comm_open, comm_open, s)


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _open_trade_nb(t, units, fp, pnl, comm, s):
    au = abs(units)
    s[A_ENTRY_UNITS] = au
    s[A_ENTRY_VALUE] = au * fp
    s[A_EXIT_UNITS] = 0.0
    s[A_EXIT_VALUE] = 0.0
    s[A_TRADE_PNL] = pnl
    s[A_TRADE_COMMISSION] = comm
    s[A_ENTRY_BAR] = t


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _close_trade_nb(t, old_units, s, tr_i, tr_f, row0):
    row = row0 + np.int64(s[A_N_TRADES])
    tr_i[row, T_ENTRY_BAR] = np.int64(s[A_ENTRY_BAR])
    tr_i[row, T_EXIT_BAR] = t
    tr_i[row, T_DIRECTION] = 1 if old_units > 0.0 else -1
    tr_f[row, T_ENTRY_PRICE] = s[A_ENTRY_VALUE] / s[A_ENTRY_UNITS]
    tr_f[row, T_EXIT_PRICE] = s[A_EXIT_VALUE] / s[A_EXIT_UNITS]
    tr_f[row, T_PNL] = s[A_TRADE_PNL]
    tr_f[row, T_COMMISSION] = s[A_TRADE_COMMISSION]
    s[A_N_TRADES] += 1.0


# Per-trajectory ("lane") account state, float64: the slots _fill_nb books into, then
# the order state of the decision loop. _HELD is the target last ordered (orders are
# sent against it); _POS the target of the last order filled, which the `position`
# state feature reads: the two differ only while a late order is in flight.
(_HELD, _PENDING, _PENDING_TARGET, _EXPOSURE, _CLIPPED, _PENDING2, _PENDING2_TARGET,
 _POS) = range(ACCOUNT_SIZE, ACCOUNT_SIZE + 8)
_STATE_SIZE = ACCOUNT_SIZE + 8
# per-lane integer constants of a unit (columns of its `lc` table)
(_L_START, _L_END, _L_BARS, _L_FEATS, _L_NFEAT, _L_ROW, _L_EQ, _L_LONG_ONLY, _L_STEPS,
 _L_FILL) = range(10)
_L_SIZE = 10


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True,
      inline="always")
def _observe_nb(x, xo, t, c, s, feats, f_off, nf, model_feat_col, fc0, fc1, col0, window,
                model_state_code, sc0, sc1, norm, norm_mean, norm_denom, no, nclip, obs_dim):
    """x[xo:xo + obs_dim] = [features at t, t-1, ..., t-window+1] + state features,
    normalised. col0 >= 0: the model's feature columns are col0, col0 + 1, ... (the
    usual case), read as one contiguous run that vectorises; -1: gathered."""
    k = xo
    n_cols = fc1 - fc0
    for lag in range(window):
        row = uint64(f_off + (t - lag) * nf)
        if col0 >= 0:
            src = row + uint64(col0)
            dst = uint64(k)
            for q in range(n_cols):
                x[dst + uint64(q)] = np.float32(feats[src + uint64(q)])
        else:
            for q in range(n_cols):
                x[uint64(k + q)] = np.float32(feats[row + uint64(model_feat_col[uint64(fc0 + q)])])
        k += n_cols
    units = s[A_UNITS]
    for q in range(sc0, sc1):
        code = model_state_code[q]
        if code == STATE_POSITION:
            v = s[_POS]
        elif code == STATE_UNREALIZED:
            if units == 0.0:
                v = 0.0
            else:
                v = c / (s[A_ENTRY_VALUE] / s[A_ENTRY_UNITS]) - 1.0
                if units < 0.0:
                    v = -v
        else:
            v = 0.0 if units == 0.0 else (t - s[A_ENTRY_BAR]) / BARS_HELD_SCALE
        x[k] = np.float32(v)
        k += 1
    if norm:
        # unsigned offsets: signed ones get a wraparound select that LLVM vectorises
        # as gathers
        ux = uint64(xo)
        un = uint64(no)
        for j in range(obs_dim):
            u = uint64(j)
            v32 = (x[ux + u] - norm_mean[un + u]) / norm_denom[un + u]
            if v32 < -nclip:
                v32 = -nclip
            elif v32 > nclip:
                v32 = nclip
            x[ux + u] = v32


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True,
      inline="always")
def _decide_nb(t, c, out, oo, n_out, kind, targets, tg0, low32, high32, long_only, fill_mode,
               s, tr_i, tr_f, row0, commission, slippage):
    """Action -> target; an order when it differs from the target held."""
    held = s[_HELD]
    if kind == ACTION_DISCRETE:
        best = 0
        best_v = out[oo]
        for j in range(1, n_out):
            if out[oo + j] > best_v:  # strictly: the lowest index wins ties
                best_v = out[oo + j]
                best = j
        target = targets[tg0 + best]
        if target != target:  # NaN = hold
            target = held
    else:
        a32 = out[oo]
        if a32 < low32:
            a32 = low32
        elif a32 > high32:
            a32 = high32
        target = np.float64(a32)
    if long_only and target < 0.0:
        target = 0.0
        s[_CLIPPED] += 1.0
    if target != held:
        s[_HELD] = target
        if fill_mode == FILL_NEXT_OPEN:
            s[_PENDING] = 1.0
            s[_PENDING_TARGET] = target
        elif fill_mode == FILL_NEXT_OPEN_LATE:
            s[_PENDING2] = 1.0
            s[_PENDING2_TARGET] = target
        else:
            _fill_nb(t, c, target, s, tr_i, tr_f, row0, commission, slippage)
            s[_POS] = target


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True,
      inline="always")
def _close_bar_nb(t, e, c, s, tr_i, tr_f, row0, commission, slippage):
    """Exposure at this close, the fold-end close-out; returns the equity E_t."""
    if s[A_UNITS] != 0.0:
        s[_EXPOSURE] += 1.0
        if t == e - 1:
            _fill_nb(t, c, 0.0, s, tr_i, tr_f, row0, commission, slippage)
    return s[A_CASH] + s[A_UNITS] * c


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _unit_nb(unit, open_, close, bar_off, feats, feat_off, n_feat,
             model_feat_off, model_feat_col, model_window, model_state_off,
             model_state_code, model_obs_dim, model_norm, norm_off, norm_mean,
             norm_denom, norm_clip, model_layer_off, layer_in, layer_out, layer_w_off,
             layer_b_off, weights, biases, model_act, model_action_kind,
             model_target_off, targets, model_low, model_high, max_width,
             traj_model, traj_series, traj_start, traj_end, traj_capital,
             traj_commission, traj_slippage, traj_long_only, fill_mode, traj_eq_off,
             traj_trade_off, equity, n_trades, trade_int, trade_float, stats, buf, state,
             lc, lf):
    """Up to four trajectories of one model in lockstep ("lanes"); unit[l] < 0 marks
    an absent lane. Lanes come longest first, so the lanes still deciding at a step
    are always a prefix 0..n_dec-1, and the forward pass takes the 4-, 2- or 1-lane
    form that covers them.

    buf, state, lc and lf are this unit's scratch, allocated by the driver: with no
    allocation here the unit runs without the reference-counting runtime (_nrt=False),
    so the per-bar functions can be inlined into its loop without it."""
    n_lanes = 0
    for l in range(4):
        if unit[l] >= 0:
            n_lanes += 1
    ia = unit[0]
    m = traj_model[ia]
    fc0 = model_feat_off[m]
    fc1 = model_feat_off[m + 1]
    col0 = model_feat_col[fc0] if fc1 > fc0 else 0
    for q in range(fc0, fc1):
        if model_feat_col[q] != col0 + (q - fc0):
            col0 = -1  # not one contiguous run of columns: gathered
            break
    sc0 = model_state_off[m]
    sc1 = model_state_off[m + 1]
    window = model_window[m]
    obs_dim = model_obs_dim[m]
    norm = model_norm[m] != 0
    no = norm_off[m]
    nclip = norm_clip[m]
    l0 = model_layer_off[m]
    l1 = model_layer_off[m + 1]
    n_out = layer_out[l1 - 1]
    act = model_act[m]
    kind = model_action_kind[m]
    tg0 = model_target_off[m]
    low32 = np.float32(model_low[m])
    high32 = np.float32(model_high[m])

    # per-lane state, one named row each. buf holds the observations and activations
    # of all lanes (see _forward_nb); zeros, so that a lane computed but not used (3 of
    # 4 deciding) holds ordinary numbers
    width = max(max_width, obs_dim, 1)
    for j in range(3 * LANES * width):
        buf[j] = np.float32(0.0)
    for l in range(4):
        for j in range(_STATE_SIZE):
            state[l, j] = 0.0
    s0 = state[0]
    s1 = state[1]
    s2 = state[2]
    s3 = state[3]

    # per-lane constants, by lane number
    n_steps = lc[:, _L_STEPS]
    com = lf[0]
    sli = lf[1]
    c = lf[2]
    for l in range(4):
        n_steps[l] = 0
    for l in range(n_lanes):
        i = unit[l]
        n_steps[l] = traj_end[i] - traj_start[i]
        lc[l, _L_START] = traj_start[i]
        lc[l, _L_END] = traj_end[i]
        lc[l, _L_BARS] = bar_off[traj_series[i]]
        lc[l, _L_FEATS] = feat_off[traj_series[i]]
        lc[l, _L_NFEAT] = n_feat[traj_series[i]]
        lc[l, _L_ROW] = traj_trade_off[i]
        lc[l, _L_EQ] = traj_eq_off[i]
        lc[l, _L_LONG_ONLY] = traj_long_only[i]
        lc[l, _L_FILL] = fill_mode[i]
        com[l] = traj_commission[i]
        sli[l] = traj_slippage[i]
        c[l] = 0.0
        equity[traj_eq_off[i]] = traj_capital[i]
    s0[A_CASH] = traj_capital[unit[0]]
    if n_lanes > 1:
        s1[A_CASH] = traj_capital[unit[1]]
    if n_lanes > 2:
        s2[A_CASH] = traj_capital[unit[2]]
    if n_lanes > 3:
        s3[A_CASH] = traj_capital[unit[3]]

    out = 0
    for step in range(n_steps[0]):
        n_live = 0
        n_dec = 0
        for l in range(n_lanes):
            if step < n_steps[l]:
                n_live += 1
            if step < n_steps[l] - 1:
                n_dec += 1
        # pending fills at this open, then the observations of the deciding lanes
        _begin_nb(step, n_live, n_dec, state, buf, width, lc, com, sli, c, open_, close,
                  feats, trade_int, trade_float, model_feat_col, fc0, fc1, col0, window,
                  model_state_code, sc0, sc1, norm, norm_mean, norm_denom, no, nclip,
                  obs_dim)
        if n_dec > 0:
            out = _forward_nb(buf, width, 4 if n_dec > 2 else n_dec, l0, l1, layer_in,
                              layer_out, layer_w_off, layer_b_off, weights, biases, act)
        # decisions, then the close of the bar
        _end_nb(step, n_live, n_dec, state, buf, out, width, lc, com, sli, c, equity,
                trade_int, trade_float, n_out, kind, targets, tg0, low32, high32)
    _finish_nb(unit[0], s0, n_trades, stats)
    if n_lanes > 1:
        _finish_nb(unit[1], s1, n_trades, stats)
    if n_lanes > 2:
        _finish_nb(unit[2], s2, n_trades, stats)
    if n_lanes > 3:
        _finish_nb(unit[3], s3, n_trades, stats)


# One call per bar for all lanes, not one per lane: a call passes every array as its
# seven flattened fields, and the per-lane calls' arguments were a sixth of the time.
# These two, the observation and the decision are inlined at their one call site each:
# faster, and cheaper to compile than a call (unlike inlining per lane, which added 3 s).

@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True,
      inline="always")
def _begin_nb(step, n_live, n_dec, state, x, width, lc, com, sli, c, open_, close, feats,
              trade_int, trade_float, model_feat_col, fc0, fc1, col0, window, model_state_code,
              sc0, sc1, norm, norm_mean, norm_denom, no, nclip, obs_dim):
    """Lanes 0..n_live-1 at the open of their bar: fill a pending order; the
    observations of the lanes that decide at this close (0..n_dec-1)."""
    for l in range(n_live):
        s = state[l]
        t = lc[l, _L_START] + step
        if s[_PENDING] != 0.0:
            _fill_nb(t, open_[lc[l, _L_BARS] + t], s[_PENDING_TARGET], s, trade_int,
                     trade_float, lc[l, _L_ROW], com[l], sli[l])
            s[_POS] = s[_PENDING_TARGET]
            s[_PENDING] = 0.0
        if s[_PENDING2] != 0.0:
            # the late order decided at the last close fills at the next open
            s[_PENDING] = 1.0
            s[_PENDING_TARGET] = s[_PENDING2_TARGET]
            s[_PENDING2] = 0.0
        c[l] = close[lc[l, _L_BARS] + t]
        if l < n_dec:
            _observe_nb(x, l * width, t, c[l], s, feats, lc[l, _L_FEATS], lc[l, _L_NFEAT],
                        model_feat_col, fc0, fc1, col0, window, model_state_code, sc0, sc1, norm,
                        norm_mean, norm_denom, no, nclip, obs_dim)


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True,
      inline="always")
def _end_nb(step, n_live, n_dec, state, out, oo, width, lc, com, sli, c, equity, trade_int,
            trade_float, n_out, kind, targets, tg0, low32, high32):
    """Lanes 0..n_live-1 at the close of their bar: the deciding ones act on the
    policy's output (lane l's at oo + l * width), then each books E_t."""
    for l in range(n_live):
        s = state[l]
        t = lc[l, _L_START] + step
        if l < n_dec:
            _decide_nb(t, c[l], out, oo + l * width, n_out, kind, targets, tg0, low32,
                       high32, lc[l, _L_LONG_ONLY] != 0, lc[l, _L_FILL], s, trade_int,
                       trade_float, lc[l, _L_ROW], com[l], sli[l])
        equity[lc[l, _L_EQ] + 1 + step] = _close_bar_nb(t, lc[l, _L_END], c[l], s,
                                                        trade_int, trade_float,
                                                        lc[l, _L_ROW], com[l], sli[l])


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _finish_nb(i, s, n_trades, stats):
    n_trades[i] = np.int64(s[A_N_TRADES])
    stats[i, S_EXPOSURE_BARS] = s[_EXPOSURE]
    stats[i, S_TRADED_NOTIONAL] = s[A_TRADED_NOTIONAL]
    stats[i, S_CLIPPED_SHORTS] = s[_CLIPPED]
    stats[i, S_N_FILLS] = s[A_N_FILLS]


@njit(cache=True, nogil=True, error_model="numpy")
def _simulate_nb(open_, close, bar_off, feats, feat_off, n_feat,
                 model_feat_off, model_feat_col, model_window, model_state_off,
                 model_state_code, model_obs_dim, model_norm, norm_off, norm_mean, norm_denom,
                 norm_clip, model_layer_off, layer_in, layer_out, layer_w_off, layer_b_off,
                 weights, biases, model_act, model_action_kind, model_target_off, targets,
                 model_low, model_high, max_width,
                 traj_model, traj_series, traj_start, traj_end, traj_capital,
                 traj_commission, traj_slippage, traj_long_only, fill_mode, traj_eq_off,
                 traj_trade_off, units, u0, u1, equity, n_trades, trade_int, trade_float, stats,
                 work_buf, work_state, work_lc, work_lf):
    """Units u0..u1-1: up to four trajectories of the same model run in lockstep
    (units[u] = their indices, -1 where absent) so that their forward passes share
    the weight loads. Without the GIL: the driver's threads each run blocks of units."""
    for u in range(u0, u1):
        _unit_nb(units[u], open_, close, bar_off, feats, feat_off, n_feat,
                 model_feat_off, model_feat_col, model_window, model_state_off,
                 model_state_code, model_obs_dim, model_norm, norm_off, norm_mean,
                 norm_denom, norm_clip, model_layer_off, layer_in, layer_out, layer_w_off,
                 layer_b_off, weights, biases, model_act, model_action_kind,
                 model_target_off, targets, model_low, model_high, max_width,
                 traj_model, traj_series, traj_start, traj_end, traj_capital,
                 traj_commission, traj_slippage, traj_long_only, fill_mode, traj_eq_off,
                 traj_trade_off, equity, n_trades, trade_int, trade_float, stats,
                 work_buf[u], work_state[u], work_lc[u], work_lf[u])



def _group_units(traj_model, traj_start, traj_end):
    """(n_units, 4) trajectory indices: trajectories of the same model in groups of
    four, longest first within a group and grouped longest with longest, so lockstep
    wastes little; -1 fills a short last group. Units come longest first, so the last
    ones handed to the threads are the short ones."""
    lengths = traj_end - traj_start
    units, unit_len = [], []
    for m in np.unique(traj_model):
        idx = np.flatnonzero(traj_model == m)
        idx = idx[np.argsort(-lengths[idx], kind="stable")]
        for k in range(0, idx.shape[0], LANES):
            group = list(idx[k:k + LANES])
            units.append(group + [-1] * (LANES - len(group)))
            unit_len.append(lengths[idx[k]])
    order = np.argsort(-np.asarray(unit_len, dtype=np.int64), kind="stable")
    return np.asarray(units, dtype=np.int64).reshape(-1, LANES)[order]


# ---------------------------------------------------------------------------------
# driver and public wrapper

@dataclass(frozen=True)
class SimulationResult:
    """Outputs of one `simulate` call (docs/internals.md, "The simulation kernel").

    equity: float64 (traj_eq_off[-1],); slot i = [C, E_s0, ..., E_{e-1}].
    n_trades: int64 (n_traj,); trades of i are rows traj_trade_off[i] + 0..n_trades[i]-1.
    trade_int: int64 (cap, 3): entry_bar, exit_bar, direction (+1 / -1).
    trade_float: float64 (cap, 4): entry_price, exit_price, pnl, commission.
    stats: float64 (n_traj, 4): exposure_bars, traded_notional, clipped_shorts, n_fills.
    """

    equity: np.ndarray
    n_trades: np.ndarray
    trade_int: np.ndarray
    trade_float: np.ndarray
    stats: np.ndarray
    traj_eq_off: np.ndarray
    traj_trade_off: np.ndarray

    def __getitem__(self, name):
        # dict-style access, so callers written against "a dict of arrays" work too
        return getattr(self, name)


def _run_blocks(run, units, traj_start, traj_end):
    """run(u0, u1) over all units, on numba.get_num_threads() threads.

    The kernel is a plain nogil function, and Python threads hand its blocks out: a
    `parallel=True` kernel cost 3 s more to compile on every cold start, for the same
    speed. Units come longest first and differ in length, so threads claim blocks
    from a shared counter as they finish (a thread that other work slows down takes
    fewer), each block about 1/16 of a thread's share of the work and at least 16k
    bar-steps, so that the ~50 us of a call stay under 1%."""
    n_units = units.shape[0]
    n_threads = max(1, min(numba.get_num_threads(), n_units))
    lengths = (traj_end - traj_start)[units[:, 0]]
    total = int(lengths.sum())
    target = max(total // (16 * n_threads), 16_384 // LANES)
    # block boundaries: cut whenever a block's bars reach the target
    bounds = [0]
    acc = 0
    for u in range(n_units):
        acc += int(lengths[u])
        if acc >= target:
            bounds.append(u + 1)
            acc = 0
    if bounds[-1] != n_units:
        bounds.append(n_units)
    blocks = list(zip(bounds[:-1], bounds[1:]))
    if n_threads == 1 or len(blocks) == 1:
        for u0, u1 in blocks:
            run(u0, u1)
        return
    claim = itertools.count()  # next() on a count is atomic under the GIL
    errors = []

    def worker():
        try:
            while True:
                b = next(claim)
                if b >= len(blocks):
                    return
                run(*blocks[b])
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n_threads - 1)]
    for t in threads:
        t.start()
    worker()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def simulate_inputs(arrays: KernelInputs) -> SimulationResult:
    """`simulate` on inputs `validate_inputs` has already checked (engine/batch.py
    validates once for either twin): allocate the outputs and run the kernel."""
    n_traj = arrays.traj_model.shape[0]
    cap = int(arrays.traj_trade_off[-1])
    equity = np.empty(int(arrays.traj_eq_off[-1]), dtype=np.float64)
    n_trades = np.zeros(n_traj, dtype=np.int64)
    # zeros, not empty: rows past n_trades[i] stay defined, and calloc'd pages cost
    # nothing until the kernel touches them
    trade_int = np.zeros((cap, TRADE_INT_COLS), dtype=np.int64)
    trade_float = np.zeros((cap, TRADE_FLOAT_COLS), dtype=np.float64)
    stats = np.zeros((n_traj, STATS_COLS), dtype=np.float64)
    if n_traj:
        units = _group_units(arrays.traj_model, arrays.traj_start, arrays.traj_end)
        # each unit's scratch, so that the unit itself allocates nothing
        n_units = units.shape[0]
        width = max(int(arrays.max_width), int(arrays.model_obs_dim.max()), 1)
        work_buf = np.empty((n_units, 3 * LANES * width), dtype=np.float32)
        work_state = np.empty((n_units, LANES, _STATE_SIZE), dtype=np.float64)
        work_lc = np.empty((n_units, LANES, _L_SIZE), dtype=np.int64)
        work_lf = np.empty((n_units, 3, LANES), dtype=np.float64)
        inputs = arrays.args()
        outputs = (equity, n_trades, trade_int, trade_float, stats, work_buf, work_state,
                   work_lc, work_lf)

        def run(u0, u1):
            _simulate_nb(*inputs, units, u0, u1, *outputs)

        _run_blocks(run, units, arrays.traj_start, arrays.traj_end)
    return SimulationResult(equity, n_trades, trade_int, trade_float, stats,
                            arrays.traj_eq_off, arrays.traj_trade_off)


def simulate(*, open_, close, bar_off, feats, feat_off, n_feat,
             model_feat_off, model_feat_col, model_window, model_state_off,
             model_state_code, model_obs_dim, model_norm, norm_off, norm_mean, norm_denom,
             norm_clip, model_layer_off, layer_in, layer_out, layer_w_off, layer_b_off,
             weights, biases, model_act, model_action_kind, model_target_off, targets,
             model_low, model_high, max_width,
             traj_model, traj_series, traj_start, traj_end, traj_capital, traj_commission,
             traj_slippage, traj_long_only, fill_mode, traj_eq_off=None,
             traj_trade_off=None) -> SimulationResult:
    """Simulate every trajectory; the arrays are those of docs/internals.md.

    Checks every shape, dtype, offset and index the kernel relies on, and raises
    ValueError / TypeError naming the array at fault. Integer arrays are int64 (bool
    flags uint8), prices and accounting float64, policy tables float32; arrays of a
    narrower type are converted. fill_mode is each trajectory's FILL_* code (int8), or
    one code for all of them, so one call can mix the fill modes of a run's scenarios.
    traj_eq_off and traj_trade_off may be left None: they then get the contiguous layout
    (slots of end - start + 1, trade capacity end - start).
    """
    return simulate_inputs(validate_inputs(dict(locals())))


__all__ = ["simulate", "simulate_inputs", "SimulationResult", "KERNEL_INPUTS", "STATE_POSITION",
           "STATE_UNREALIZED", "STATE_BARS_HELD", "ACT_TANH", "ACT_RELU", "ACTION_DISCRETE",
           "ACTION_CONTINUOUS", "FILL_NEXT_OPEN", "FILL_CLOSE", "FILL_NEXT_OPEN_LATE"]
