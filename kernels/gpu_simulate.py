"""Numba CUDA twin of kernels/simulate.py (docs/design.md 5, docs/internals.md).

Same flat arrays in, same `SimulationResult` out, the same semantics bit for bit:
`gpu_simulate(**arrays)` is a drop-in for `simulate(**arrays)` on a machine with an
NVIDIA GPU and NVIDIA's `numba-cuda` package (the `foldgate[cuda]` extra).

STATUS: tested under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1), where it
matches the CPU kernel bit for bit; during development its PTX was also built for
sm_90 with libNVVM and ptxas (~200 registers, 1 KiB local memory a thread). It has NOT yet run on real GPU hardware, so nothing here claims a GPU speed.

Layout, as beside every CPU kernel (stumpy style, gpu_stump.py beside stump.py):
- `_gpu_simulate_kernel`: the `@cuda.jit` kernel, one thread per trajectory.
- `_gpu_simulate`: the private driver (plan in kernels/gpu_plan.py, host->device,
  launch, device->host, timings).
- `gpu_simulate`: the public wrapper, same keyword signature as `simulate`; it runs
  the same checks (kernels/inputs.py), so both accept and refuse exactly the same inputs.

Design choices, and why:
- One thread per (model, fold) trajectory, as the CPU kernel has one prange
  iteration per trajectory. A warp per trajectory could only spread the outputs of a
  layer over lanes (spreading a dot product would change the float32 summation order
  and break parity); the last layer of a policy has 1 to 3 outputs, so most lanes
  would idle there, and every lane would repeat the scalar accounting. One thread
  keeps the kernel a line-for-line twin of the CPU one; a run needs some 10,000+
  trajectories to fill a large GPU.
- Trajectories are sorted on the host by model (longest first within a model), so a
  warp's threads mostly read the same weight at the same time (one broadcast load
  instead of 32) and finish together. Then, per block, the weights and biases of the
  models the block uses are staged in dynamic shared memory when they fit in
  `_SHARED_CAP_BYTES` (48 KiB, the limit without an opt-in); blocks whose models do
  not fit read them from global memory (cached in L1/L2), so no model is refused for
  its size. The reference 2x64 MLP on 16 inputs holds 22 KiB.
- Per-thread scratch is `cuda.local.array` of compile-time size: two halves of
  `GPU_MAX_WIDTH` (128) float32 for the ping-pong layer buffers, ACCOUNT_SIZE
  (12) float64 for the account. `gpu_simulate` refuses a wider model with `GpuUnsupportedError`, so the
  caller can use the CPU kernel, which has no such limit.
- Layers are computed output by output (bias, then inputs in index order) with four
  accumulators in registers: the same sequence of roundings per output as the CPU
  kernel's outer-product loop, without a local-memory round trip per multiply-add.
- The policy's multiply-adds are explicit fused ones (`libdevice.fmaf_rn`), as the
  CPU kernel's are (kernels/fma.py): one rounding each, in the same order. libNVVM
  also contracts any other a*b+c into a fused multiply-add by default (-fma=1, which
  numba-cuda does not let a kernel switch off), where the CPU rounds twice; every
  other product that feeds a sum is therefore `libdevice.fmul_rn` / `dmul_rn` (PTX
  mul.rn, which is never fused). Division and the float32 <-> float64
  conversions are IEEE round-to-nearest without fastmath, as on the CPU.
- The tanh is the float32 formula of kernels/activations.py with its constants, in
  the same order; its powers of two come from `ldexp` instead of a bit cast (both
  exact). Under the simulator the fused multiply-add is kernels/fma.py's exact NumPy
  emulation, so the simulator gives the CPU kernel's bits.

Transfer time is measured apart from kernel time (`GpuSimulationResult.timings`). The
first launch in a process compiles the kernel (or loads it from Numba's cache: the
kernel is jitted with cache=True) and counts in `kernel_s`; `timings["compiled"]`
says when that happened.

numba.cuda is imported on first use, not at import (kernels/cuda_env.py says why).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from numba import float32 as nb_float32, float64 as nb_float64

from . import gpu_plan
from .activations import (INV_LN2, LN2_HI, LN2_LO, SHIFTER, TANH_CLAMP, TANH_P, TANH_Q,
                          TANH_SMALL)
from .codes import (A_CASH, A_ENTRY_BAR, A_ENTRY_UNITS, A_ENTRY_VALUE, A_EXIT_UNITS,
                    A_EXIT_VALUE, A_N_FILLS, A_N_TRADES, A_TRADE_COMMISSION, A_TRADE_PNL,
                    A_TRADED_NOTIONAL, A_UNITS, ACCOUNT_SIZE, ACT_TANH, ACTION_DISCRETE,
                    BARS_HELD_SCALE, FILL_NEXT_OPEN, FILL_NEXT_OPEN_LATE, S_CLIPPED_SHORTS,
                    S_EXPOSURE_BARS, S_N_FILLS, S_TRADED_NOTIONAL, STATE_POSITION,
                    STATE_UNREALIZED, STATS_COLS, T_COMMISSION, T_DIRECTION, T_ENTRY_BAR,
                    T_ENTRY_PRICE, T_EXIT_BAR, T_EXIT_PRICE, T_PNL, TRADE_FLOAT_COLS,
                    TRADE_INT_COLS)
from .cuda_env import (cuda_available, device_name, import_cuda, simulating, simulator_active,
                       sm_count)
from .fma import fma_f32_py
from .inputs import KERNEL_INPUTS, KernelInputs, validate_inputs
from .jit_cache import stamp_kernel_caches
from .simulate import SimulationResult

GPU_MAX_WIDTH = 128
"""Widest layer (or observation) the CUDA kernel takes; wider models use the CPU."""

_H_LEN = 2 * GPU_MAX_WIDTH  # the two ping-pong halves of a thread's layer buffer
_SHARED_CAP_BYTES = 48 * 1024

# Bound on first use by _gpu_kernel(): numba.cuda and its libdevice module.
cuda = libdevice = None
_build_lock = threading.Lock()
_kernel = None


class GpuUnsupportedError(ValueError):
    """The inputs are valid, but this CUDA kernel cannot take them (use the CPU one)."""


class GpuUnavailableError(RuntimeError):
    """No usable CUDA device (or numba-cuda is not installed)."""


@dataclass(frozen=True)
class GpuSimulationResult(SimulationResult):
    """`SimulationResult` plus `timings`: h2d_s, kernel_s, d2h_s, transfer_s (seconds,
    host clock around synchronised phases), compiled (the launch compiled or loaded
    the kernel), threads_per_block, blocks, staged_blocks, shared_bytes, device."""

    timings: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------
# device code. Plain Python functions here; _gpu_kernel() rebinds each name to its
# cuda.jit version, so the kernel resolves its callees as module globals (which keeps
# it cacheable) and the module imports without numba-cuda.

def _gpu_fmul(a, b):
    # mul.rn is never contracted with a following add into an FMA
    return libdevice.fmul_rn(a, b)


def _gpu_dmul(a, b):
    return libdevice.dmul_rn(a, b)


def _gpu_pow2(k):
    return np.float32(math.ldexp(1.0, k))


def _gpu_ffma(a, b, c):
    # one rounding, as kernels/fma.py's llvm.fma.f32 on the CPU
    return libdevice.fmaf_rn(a, b, c)


# The simulator runs the kernel as Python, where libdevice is a stub and a product
# is rounded on its own anyway; ldexp wants a Python int there, and the fused
# multiply-add is kernels/fma.py's exact emulation.
def _gpu_fmul_sim(a, b):
    return a * b


def _gpu_dmul_sim(a, b):
    return a * b


def _gpu_pow2_sim(k):
    return np.float32(math.ldexp(1.0, int(k)))


def _gpu_ffma_sim(a, b, c):
    return fma_f32_py(a, b, c)


_TQ5, _TQ4, _TQ3, _TQ2, _TQ1, _TQ0 = TANH_Q
_TP5, _TP4, _TP3, _TP2, _TP1, _TP0 = TANH_P
_F1 = np.float32(1.0)
_F2 = np.float32(2.0)


def _gpu_tanh_f32(x):
    """kernels.activations.tanh_f32_nb, operation for operation (the powers of two
    from ldexp, exact, where the CPU reinterprets bits)."""
    a = abs(x)
    s = _gpu_fmul(a, a)
    q = _gpu_ffma(_gpu_ffma(_gpu_ffma(_gpu_ffma(_gpu_ffma(_TQ5, s, _TQ4), s, _TQ3), s, _TQ2), s, _TQ1), s, _TQ0)
    small = _gpu_ffma(_gpu_fmul(a, s), q, a)
    y = _gpu_fmul(_F2, a if a < TANH_CLAMP else TANH_CLAMP)
    z = _gpu_ffma(y, INV_LN2, SHIFTER)
    kf = z - SHIFTER
    r = _gpu_ffma(-kf, LN2_LO, _gpu_ffma(-kf, LN2_HI, y))
    pr = _gpu_ffma(_gpu_ffma(_gpu_ffma(_gpu_ffma(_gpu_ffma(_TP5, r, _TP4), r, _TP3), r, _TP2), r, _TP1), r, _TP0)
    p = _gpu_ffma(_gpu_fmul(r, r), pr, r)
    k = np.int32(kf)
    two_sc = _gpu_pow2(np.int32(1 - k))
    c = _F1 + _gpu_pow2(np.int32(-k))
    d = c + p
    d_lo = p - (d - c)  # Fast2Sum, as kernels/activations.py
    u = two_sc / d
    u_lo = _gpu_fmul(_gpu_ffma(-u, d_lo, _gpu_ffma(-u, d, two_sc)), _gpu_fmul(u, _gpu_pow2(np.int32(k - 1))))
    t_hi = _F1 - u
    t_lo = ((_F1 - t_hi) - u) - u_lo
    large = t_hi + t_lo
    t = math.copysign(small if a < TANH_SMALL else large, x)
    return np.float32(t) if x == x else x


def _gpu_activate(v, act):
    if act == ACT_TANH:
        return _gpu_tanh_f32(v)
    zero = np.float32(0.0)
    # NaN passes through, as np.maximum and the CPU kernel do
    return zero if v < zero else v


def _gpu_mlp(h, l0, l1, layer_in, layer_out, layer_w_off, layer_b_off, w, w_shift, b,
             b_shift, act):
    """Layers l0..l1-1 on h[0:obs_dim]; returns where in h the outputs start.

    h holds two halves of GPU_MAX_WIDTH; each layer reads one and writes the other.
    w / b are the global weight and bias arrays (shift 0) or the block's shared copy
    (shift = the global offset of its first element).
    """
    src = 0
    for layer in range(l0, l1):
        n_in = layer_in[layer]
        n_out = layer_out[layer]
        w0 = layer_w_off[layer] - w_shift
        b0 = layer_b_off[layer] - b_shift
        dst = GPU_MAX_WIDTH - src
        hidden = layer < l1 - 1
        j = 0
        while j + 4 <= n_out:
            a0 = b[b0 + j]
            a1 = b[b0 + j + 1]
            a2 = b[b0 + j + 2]
            a3 = b[b0 + j + 3]
            row = w0 + j
            for k in range(n_in):
                xk = h[src + k]
                a0 = _gpu_ffma(xk, w[row], a0)
                a1 = _gpu_ffma(xk, w[row + 1], a1)
                a2 = _gpu_ffma(xk, w[row + 2], a2)
                a3 = _gpu_ffma(xk, w[row + 3], a3)
                row += n_out
            if hidden:
                a0 = _gpu_activate(a0, act)
                a1 = _gpu_activate(a1, act)
                a2 = _gpu_activate(a2, act)
                a3 = _gpu_activate(a3, act)
            h[dst + j] = a0
            h[dst + j + 1] = a1
            h[dst + j + 2] = a2
            h[dst + j + 3] = a3
            j += 4
        while j < n_out:
            a0 = b[b0 + j]
            row = w0 + j
            for k in range(n_in):
                a0 = _gpu_ffma(h[src + k], w[row], a0)
                row += n_out
            if hidden:
                a0 = _gpu_activate(a0, act)
            h[dst + j] = a0
            j += 1
        src = dst
    return src


def _gpu_open_trade(t, units, fp, pnl, comm, s):
    au = abs(units)
    s[A_ENTRY_UNITS] = au
    s[A_ENTRY_VALUE] = _gpu_dmul(au, fp)
    s[A_EXIT_UNITS] = 0.0
    s[A_EXIT_VALUE] = 0.0
    s[A_TRADE_PNL] = pnl
    s[A_TRADE_COMMISSION] = comm
    s[A_ENTRY_BAR] = t


def _gpu_close_trade(t, old_units, s, tr_i, tr_f, row0):
    row = row0 + np.int64(s[A_N_TRADES])
    tr_i[row, T_ENTRY_BAR] = np.int64(s[A_ENTRY_BAR])
    tr_i[row, T_EXIT_BAR] = t
    tr_i[row, T_DIRECTION] = 1 if old_units > 0.0 else -1
    tr_f[row, T_ENTRY_PRICE] = s[A_ENTRY_VALUE] / s[A_ENTRY_UNITS]
    tr_f[row, T_EXIT_PRICE] = s[A_EXIT_VALUE] / s[A_EXIT_UNITS]
    tr_f[row, T_PNL] = s[A_TRADE_PNL]
    tr_f[row, T_COMMISSION] = s[A_TRADE_COMMISSION]
    s[A_N_TRADES] += 1.0


def _gpu_fill(t, p, target, s, tr_i, tr_f, row0, commission, slippage):
    """kernels.simulate._fill_nb: the same account slots, the same operations."""
    cash = s[A_CASH]
    old = s[A_UNITS]
    equity = cash + _gpu_dmul(old, p)
    new = _gpu_dmul(target, equity) / p
    d = new - old
    if d == 0.0:
        return
    if d > 0.0:
        fp = _gpu_dmul(p, 1.0 + slippage)
    else:
        fp = _gpu_dmul(p, 1.0 - slippage)
    ad = abs(d)
    comm = _gpu_dmul(_gpu_dmul(commission, ad), fp)
    s[A_CASH] = cash - (_gpu_dmul(d, fp) + comm)
    s[A_UNITS] = new
    s[A_TRADED_NOTIONAL] += _gpu_dmul(ad, fp)
    s[A_N_FILLS] += 1.0
    if old == 0.0:
        _gpu_open_trade(t, new, fp, -_gpu_dmul(new, fp) - comm, comm, s)
    elif new == 0.0:
        s[A_EXIT_UNITS] += ad
        s[A_EXIT_VALUE] += _gpu_dmul(ad, fp)
        s[A_TRADE_PNL] += -_gpu_dmul(d, fp) - comm
        s[A_TRADE_COMMISSION] += comm
        _gpu_close_trade(t, old, s, tr_i, tr_f, row0)
    elif (old > 0.0) == (new > 0.0):
        if abs(new) > abs(old):
            s[A_ENTRY_UNITS] += ad
            s[A_ENTRY_VALUE] += _gpu_dmul(ad, fp)
        else:
            s[A_EXIT_UNITS] += ad
            s[A_EXIT_VALUE] += _gpu_dmul(ad, fp)
        s[A_TRADE_PNL] += -_gpu_dmul(d, fp) - comm
        s[A_TRADE_COMMISSION] += comm
    else:
        a_old = abs(old)
        comm_close = _gpu_dmul(comm, a_old) / (a_old + abs(new))
        comm_open = comm - comm_close
        s[A_EXIT_UNITS] += a_old
        s[A_EXIT_VALUE] += _gpu_dmul(a_old, fp)
        s[A_TRADE_PNL] += _gpu_dmul(old, fp) - comm_close
        s[A_TRADE_COMMISSION] += comm_close
        _gpu_close_trade(t, old, s, tr_i, tr_f, row0)
        _gpu_open_trade(t, new, fp, -_gpu_dmul(new, fp) - comm_open, comm_open, s)


def _gpu_trajectory(i, open_, close, bar_off, feats, feat_off, n_feat,
                    model_feat_off, model_feat_col, model_window, model_state_off,
                    model_state_code, model_obs_dim, model_norm, norm_off, norm_mean,
                    norm_denom, norm_clip, model_layer_off, layer_in, layer_out,
                    layer_w_off, layer_b_off, w, w_shift, b, b_shift, model_act,
                    model_action_kind, model_target_off, targets, model_low, model_high,
                    traj_model, traj_series, traj_start, traj_end, traj_capital,
                    traj_commission, traj_slippage, traj_long_only, fill_mode,
                    traj_eq_off, traj_trade_off, equity, n_trades, trade_int,
                    trade_float, stats):
    """Trajectory i, as kernels.simulate._unit_nb runs one lane: the same operations
    in the same order."""
    m = traj_model[i]
    ser = traj_series[i]
    s0 = traj_start[i]
    e = traj_end[i]
    b_off = bar_off[ser]
    f_off = feat_off[ser]
    nf = n_feat[ser]
    fc0 = model_feat_off[m]
    fc1 = model_feat_off[m + 1]
    sc0 = model_state_off[m]
    sc1 = model_state_off[m + 1]
    window = model_window[m]
    obs_dim = model_obs_dim[m]
    norm = model_norm[m] != 0
    no = norm_off[m]
    nclip = norm_clip[m]
    l0 = model_layer_off[m]
    l1 = model_layer_off[m + 1]
    n_last = layer_out[l1 - 1]
    act = model_act[m]
    kind = model_action_kind[m]
    tg0 = model_target_off[m]
    low32 = np.float32(model_low[m])
    high32 = np.float32(model_high[m])
    commission = traj_commission[i]
    slippage = traj_slippage[i]
    long_only = traj_long_only[i] != 0
    fill = fill_mode[i]
    eq0 = traj_eq_off[i]
    row0 = traj_trade_off[i]

    h = cuda.local.array(_H_LEN, nb_float32)
    s = cuda.local.array(ACCOUNT_SIZE, nb_float64)
    for q in range(ACCOUNT_SIZE):
        s[q] = 0.0
    s[A_CASH] = traj_capital[i]
    equity[eq0] = traj_capital[i]

    held = 0.0  # the target last ordered
    pos = 0.0  # the target of the last order filled (the `position` state feature)
    pending = False
    pending_target = 0.0
    late = False  # FILL_NEXT_OPEN_LATE: the order decided at the last close
    late_target = 0.0
    exposure = 0
    clipped = 0
    for t in range(s0, e):
        if pending:
            _gpu_fill(t, open_[b_off + t], pending_target, s, trade_int, trade_float,
                      row0, commission, slippage)
            pos = pending_target
            pending = False
        if late:
            pending = True
            pending_target = late_target
            late = False
        c = close[b_off + t]
        if t <= e - 2:
            k = 0
            for lag in range(window):
                row = f_off + (t - lag) * nf
                for q in range(fc0, fc1):
                    h[k] = np.float32(feats[row + model_feat_col[q]])
                    k += 1
            for q in range(sc0, sc1):
                code = model_state_code[q]
                units = s[A_UNITS]
                if code == STATE_POSITION:
                    v = pos
                elif code == STATE_UNREALIZED:
                    if units == 0.0:
                        v = 0.0
                    else:
                        v = c / (s[A_ENTRY_VALUE] / s[A_ENTRY_UNITS]) - 1.0
                        if units < 0.0:
                            v = -v
                else:
                    v = 0.0 if units == 0.0 else (t - s[A_ENTRY_BAR]) / BARS_HELD_SCALE
                h[k] = np.float32(v)
                k += 1
            if norm:
                for j in range(obs_dim):
                    v32 = (h[j] - norm_mean[no + j]) / norm_denom[no + j]
                    if v32 < -nclip:
                        v32 = -nclip
                    elif v32 > nclip:
                        v32 = nclip
                    h[j] = v32
            out = _gpu_mlp(h, l0, l1, layer_in, layer_out, layer_w_off, layer_b_off, w,
                           w_shift, b, b_shift, act)
            if kind == ACTION_DISCRETE:
                best = 0
                best_v = h[out]
                for j in range(1, n_last):
                    if h[out + j] > best_v:
                        best_v = h[out + j]
                        best = j
                target = targets[tg0 + best]
                if target != target:
                    target = held
            else:
                a32 = h[out]
                if a32 < low32:
                    a32 = low32
                elif a32 > high32:
                    a32 = high32
                target = np.float64(a32)
            if long_only and target < 0.0:
                target = 0.0
                clipped += 1
            if target != held:
                held = target
                if fill == FILL_NEXT_OPEN:
                    pending = True
                    pending_target = target
                elif fill == FILL_NEXT_OPEN_LATE:
                    late = True
                    late_target = target
                else:
                    _gpu_fill(t, c, target, s, trade_int, trade_float, row0,
                              commission, slippage)
                    pos = target
        if s[A_UNITS] != 0.0:
            exposure += 1
            if t == e - 1:
                _gpu_fill(t, c, 0.0, s, trade_int, trade_float, row0, commission,
                          slippage)
        equity[eq0 + 1 + (t - s0)] = s[A_CASH] + _gpu_dmul(s[A_UNITS], c)
    n_done = np.int64(s[A_N_TRADES])
    n_trades[i] = n_done
    stats[i, S_EXPOSURE_BARS] = exposure
    stats[i, S_TRADED_NOTIONAL] = s[A_TRADED_NOTIONAL]
    stats[i, S_CLIPPED_SHORTS] = clipped
    stats[i, S_N_FILLS] = s[A_N_FILLS]
    # The outputs are allocated on the device without initialising them (a host
    # array of zeros would cost a transfer as large as the trade table); the CPU
    # driver hands back zeros past n_trades, so each thread clears its own rows.
    for r in range(row0 + n_done, traj_trade_off[i + 1]):
        trade_int[r, 0] = 0
        trade_int[r, 1] = 0
        trade_int[r, 2] = 0
        trade_float[r, 0] = 0.0
        trade_float[r, 1] = 0.0
        trade_float[r, 2] = 0.0
        trade_float[r, 3] = 0.0


def _gpu_simulate_kernel(open_, close, bar_off, feats, feat_off, n_feat,
                         model_feat_off, model_feat_col, model_window, model_state_off,
                         model_state_code, model_obs_dim, model_norm, norm_off,
                         norm_mean, norm_denom, norm_clip, model_layer_off, layer_in,
                         layer_out, layer_w_off, layer_b_off, weights, biases,
                         model_act, model_action_kind, model_target_off, targets,
                         model_low, model_high, traj_model, traj_series, traj_start,
                         traj_end, traj_capital, traj_commission, traj_slippage,
                         traj_long_only, fill_mode, traj_eq_off, traj_trade_off,
                         order, block_plan, equity, n_trades, trade_int, trade_float,
                         stats):
    """Thread k of the grid runs trajectory order[k].

    block_plan[blk] = (staged, w_lo, n_w, b_lo, n_b): when staged, the block first
    copies weights[w_lo:w_lo+n_w] and biases[b_lo:b_lo+n_b] (covering every model its
    trajectories use) into dynamic shared memory. `staged` is uniform over the block,
    so every thread reaches the barrier.
    """
    tid = cuda.threadIdx.x
    tpb = cuda.blockDim.x
    blk = cuda.blockIdx.x
    k = blk * tpb + tid
    n = order.shape[0]
    sh = cuda.shared.array(0, nb_float32)
    if block_plan[blk, 0] != 0:
        w_lo = block_plan[blk, 1]
        n_w = block_plan[blk, 2]
        b_lo = block_plan[blk, 3]
        n_b = block_plan[blk, 4]
        for q in range(tid, n_w, tpb):
            sh[q] = weights[w_lo + q]
        for q in range(tid, n_b, tpb):
            sh[n_w + q] = biases[b_lo + q]
        cuda.syncthreads()
        if k < n:
            _gpu_trajectory(order[k], open_, close, bar_off, feats, feat_off, n_feat,
                            model_feat_off, model_feat_col, model_window,
                            model_state_off, model_state_code, model_obs_dim, model_norm,
                            norm_off, norm_mean, norm_denom, norm_clip, model_layer_off,
                            layer_in, layer_out, layer_w_off, layer_b_off, sh, w_lo, sh,
                            b_lo - n_w, model_act, model_action_kind, model_target_off,
                            targets, model_low, model_high, traj_model, traj_series,
                            traj_start, traj_end, traj_capital, traj_commission,
                            traj_slippage, traj_long_only, fill_mode, traj_eq_off,
                            traj_trade_off, equity, n_trades, trade_int, trade_float,
                            stats)
    elif k < n:
        _gpu_trajectory(order[k], open_, close, bar_off, feats, feat_off, n_feat,
                        model_feat_off, model_feat_col, model_window, model_state_off,
                        model_state_code, model_obs_dim, model_norm, norm_off, norm_mean,
                        norm_denom, norm_clip, model_layer_off, layer_in, layer_out,
                        layer_w_off, layer_b_off, weights, 0, biases, 0, model_act,
                        model_action_kind, model_target_off, targets, model_low,
                        model_high, traj_model, traj_series, traj_start, traj_end,
                        traj_capital, traj_commission, traj_slippage, traj_long_only,
                        fill_mode, traj_eq_off, traj_trade_off, equity, n_trades,
                        trade_int, trade_float, stats)


_DEVICE_FUNCTIONS = ("_gpu_tanh_f32", "_gpu_activate", "_gpu_mlp", "_gpu_open_trade",
                     "_gpu_close_trade", "_gpu_fill", "_gpu_trajectory")

# The kernel's arguments before order/block_plan/outputs: KERNEL_INPUTS less
# max_width (the scratch size is GPU_MAX_WIDTH, fixed at compile time).
_KERNEL_ARGS = tuple(name for name in KERNEL_INPUTS if name != "max_width")


def _gpu_kernel():
    """The launchable kernel, built on first use (GpuUnavailableError without numba-cuda)."""
    global _kernel, cuda, libdevice
    if _kernel is not None:
        return _kernel
    with _build_lock:
        if _kernel is not None:
            return _kernel
        c = import_cuda()
        if c is None:
            raise GpuUnavailableError("numba-cuda is not installed (pip install "
                                      "'foldgate[cuda]'); use the CPU kernel")
        from numba.cuda import libdevice as ld  # lazy: numba.cuda, only once a GPU kernel is built
        cuda, libdevice = c, ld
        g = globals()
        if simulating(c):
            # The simulator runs device functions as the Python they are; wrapping
            # them would only add a lock per call (per multiply, here). The kernel's
            # wrapper swaps in the fake `cuda` for this module's globals, which
            # covers the functions it calls.
            g["_gpu_fmul"] = _gpu_fmul_sim
            g["_gpu_dmul"] = _gpu_dmul_sim
            g["_gpu_pow2"] = _gpu_pow2_sim
            g["_gpu_ffma"] = _gpu_ffma_sim
        else:
            for name in ("_gpu_fmul", "_gpu_dmul", "_gpu_pow2", "_gpu_ffma") + _DEVICE_FUNCTIONS:
                g[name] = c.jit(device=True)(g[name])
        # numba-cuda keeps its own copy of Numba's cache locators: stamp those too, so
        # the cached GPU code goes stale with any kernels/*.py (kernels/jit_cache.py)
        from numba.cuda.core import caching as cuda_caching  # lazy: numba.cuda, as above

        stamp_kernel_caches(cuda_caching)
        _kernel = c.jit(cache=True)(_gpu_simulate_kernel)
        return _kernel


# ---------------------------------------------------------------------------------
# driver

def _device_copy(c, x):
    # Zero-length arrays (no targets, no state features, ...) are never read; a
    # one-element stand-in avoids relying on zero-size device allocations.
    if x.size == 0:
        x = np.zeros(1, dtype=x.dtype)
    return c.to_device(x)


def _gpu_simulate(a: KernelInputs, threads_per_block: int | None = None,
                  shared_cap_bytes: int = _SHARED_CAP_BYTES) -> GpuSimulationResult:
    """Run the CUDA kernel on arrays already validated by `gpu_simulate`.

    threads_per_block and shared_cap_bytes exist for the tests, which use them to
    make small runs take several blocks and both the shared and the global path.
    """
    kernel = _gpu_kernel()
    c = cuda
    if not simulating(c) and not cuda_available():
        raise GpuUnavailableError("no usable CUDA GPU here (numba-cuda found no device "
                                  "or driver); use the CPU kernel")
    n_traj = a.traj_model.shape[0]
    cap = int(a.traj_trade_off[-1])
    n_eq = int(a.traj_eq_off[-1])
    timings = {"h2d_s": 0.0, "kernel_s": 0.0, "d2h_s": 0.0, "transfer_s": 0.0,
               "compiled": False, "threads_per_block": 0, "blocks": 0, "staged_blocks": 0,
               "shared_bytes": 0, "device": device_name()}
    if n_traj == 0:
        return GpuSimulationResult(
            np.empty(n_eq, dtype=np.float64), np.zeros(0, dtype=np.int64),
            np.zeros((cap, TRADE_INT_COLS), dtype=np.int64), np.zeros((cap, TRADE_FLOAT_COLS), dtype=np.float64),
            np.zeros((0, STATS_COLS), dtype=np.float64), a.traj_eq_off, a.traj_trade_off,
            timings)

    order = gpu_plan.launch_order(a)
    tpb = int(threads_per_block or gpu_plan.threads_per_block_for(n_traj, sm_count(c)))
    plan, need = gpu_plan.block_plan(a, order, tpb, shared_cap_bytes // 4)
    shared_bytes = 4 * need
    n_blocks = plan.shape[0]

    c.synchronize()
    t0 = time.perf_counter()
    args = []
    for name in _KERNEL_ARGS:
        x = getattr(a, name)
        args.append(_device_copy(c, x) if isinstance(x, np.ndarray) else x)
    args.append(c.to_device(order))
    args.append(c.to_device(plan))
    d_equity = c.device_array(n_eq, dtype=np.float64)
    d_n_trades = c.device_array(n_traj, dtype=np.int64)
    d_trade_int = c.device_array((cap, TRADE_INT_COLS), dtype=np.int64)
    d_trade_float = c.device_array((cap, TRADE_FLOAT_COLS), dtype=np.float64)
    d_stats = c.device_array((n_traj, STATS_COLS), dtype=np.float64)
    c.synchronize()
    t1 = time.perf_counter()

    before = len(kernel.overloads)
    kernel[n_blocks, tpb, 0, shared_bytes](*args, d_equity, d_n_trades, d_trade_int,
                                           d_trade_float, d_stats)
    c.synchronize()
    t2 = time.perf_counter()

    equity = d_equity.copy_to_host()
    n_trades = d_n_trades.copy_to_host()
    trade_int = d_trade_int.copy_to_host()
    trade_float = d_trade_float.copy_to_host()
    stats = d_stats.copy_to_host()
    t3 = time.perf_counter()

    timings.update(h2d_s=t1 - t0, kernel_s=t2 - t1, d2h_s=t3 - t2,
                   transfer_s=(t1 - t0) + (t3 - t2),
                   compiled=len(kernel.overloads) > before, threads_per_block=tpb,
                   blocks=n_blocks, staged_blocks=int(plan[:, 0].sum()),
                   shared_bytes=shared_bytes)
    return GpuSimulationResult(equity, n_trades, trade_int, trade_float, stats,
                               a.traj_eq_off, a.traj_trade_off, timings)


def _supported(a: KernelInputs) -> KernelInputs:
    """`a`, once it is within the CUDA kernel's own limit (GPU_MAX_WIDTH)."""
    widest_layer = gpu_plan.widest(a) if a.traj_model.shape[0] else 0
    if widest_layer > GPU_MAX_WIDTH:
        raise GpuUnsupportedError(f"a model is {widest_layer} wide (observation or layer); the "
                                  f"CUDA kernel takes at most {GPU_MAX_WIDTH}: simulate it on the CPU")
    return a


def gpu_simulate_inputs(a: KernelInputs) -> GpuSimulationResult:
    """`gpu_simulate` on inputs `validate_inputs` has already checked."""
    return _gpu_simulate(_supported(a))


def gpu_simulate(*, open_, close, bar_off, feats, feat_off, n_feat,
                 model_feat_off, model_feat_col, model_window, model_state_off,
                 model_state_code, model_obs_dim, model_norm, norm_off, norm_mean,
                 norm_denom, norm_clip, model_layer_off, layer_in, layer_out, layer_w_off,
                 layer_b_off, weights, biases, model_act, model_action_kind,
                 model_target_off, targets, model_low, model_high, max_width,
                 traj_model, traj_series, traj_start, traj_end, traj_capital,
                 traj_commission, traj_slippage, traj_long_only, fill_mode,
                 traj_eq_off=None, traj_trade_off=None) -> GpuSimulationResult:
    """`kernels.simulate.simulate` on a CUDA GPU: same arguments, same results.

    Raises what `simulate` raises for bad inputs (ValueError / TypeError naming the
    array), GpuUnsupportedError (a ValueError) for a model wider than GPU_MAX_WIDTH,
    and GpuUnavailableError (a RuntimeError) where numba-cuda or a GPU is missing; the
    last two mean "use the CPU kernel". Under NUMBA_ENABLE_CUDASIM=1 it runs on Numba's
    simulator (slow; for tests). The result's `timings` holds transfer and kernel
    times. Not yet run on real hardware (see the module doc).
    """
    return gpu_simulate_inputs(validate_inputs(dict(locals())))


__all__ = ["gpu_simulate", "gpu_simulate_inputs", "cuda_available", "device_name",
           "simulator_active", "GpuSimulationResult", "GpuUnsupportedError",
           "GpuUnavailableError", "GPU_MAX_WIDTH"]
