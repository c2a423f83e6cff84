"""How the CUDA kernel's launch is laid out on the host (kernels/gpu_simulate.py's
module doc says why): the order of the trajectories, the block size, and which
blocks stage their models' weights in shared memory.
"""

from __future__ import annotations

import numpy as np

_THREADS_PER_BLOCK = (128, 64, 32)


def widest(a) -> int:
    """The widest observation or layer among the models the trajectories use."""
    widest = 1
    for m in np.unique(a.traj_model):
        l0, l1 = a.model_layer_off[m], a.model_layer_off[m + 1]
        widest = max(widest, int(a.model_obs_dim[m]), int(a.layer_out[l0:l1].max()))
    return widest


def launch_order(a) -> np.ndarray:
    """Trajectories by model, the longest first within a model (kernels/gpu_simulate.py's module doc)."""
    length = a.traj_end - a.traj_start
    return np.lexsort((-length, a.traj_model)).astype(np.int64)


def threads_per_block_for(n_traj: int, n_sm: int) -> int:
    # The largest block that still gives every SM two blocks: a run of ~10,000
    # trajectories has few threads for a big GPU, and they are better spread thin.
    for tpb in _THREADS_PER_BLOCK:
        if -(-n_traj // tpb) >= 2 * n_sm:
            return tpb
    return _THREADS_PER_BLOCK[-1]


def block_plan(a, order, tpb, cap_floats):
    """(n_blocks, 5) int64 rows (staged, w_lo, n_w, b_lo, n_b), and the dynamic shared
    memory the staged blocks need, in float32 elements."""
    n = order.shape[0]
    n_blocks = -(-n // tpb)
    plan = np.zeros((n_blocks, 5), dtype=np.int64)
    lw, lb = a.layer_w_off, a.layer_b_off
    w_end = lw + a.layer_in * a.layer_out
    b_end = lb + a.layer_out
    m_layer = a.model_layer_off
    need = 0
    for blk in range(n_blocks):
        models = np.unique(a.traj_model[order[blk * tpb:(blk + 1) * tpb]])
        layers = np.concatenate([np.arange(m_layer[m], m_layer[m + 1]) for m in models])
        w_lo, w_hi = int(lw[layers].min()), int(w_end[layers].max())
        b_lo, b_hi = int(lb[layers].min()), int(b_end[layers].max())
        size = (w_hi - w_lo) + (b_hi - b_lo)
        if size <= cap_floats:
            plan[blk] = (1, w_lo, w_hi - w_lo, b_lo, b_hi - b_lo)
            need = max(need, size)
    return plan, need


__all__ = ["block_plan", "launch_order", "threads_per_block_for", "widest"]
