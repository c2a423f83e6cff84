"""The policy's float32 forward pass in the CPU simulation kernel (kernels/simulate.py):
up to four trajectories ("lanes") of one model at once, sharing every weight load.

Weights are stored transposed, (in, out) row-major. Each layer's outputs are computed
in slices by kernels/simd.py's register-blocked blocks: the slice's accumulators of all
lanes stay in vector registers over the whole input loop, starting from the biases, and
take one explicit fused multiply-add per input in index order (kernels/fma.py: one
rounding, twice the throughput of a multiply and an add). The NumPy reference does the
same correctly rounded steps in the same order, so kernel and reference agree bit for
bit. Compiled as kernels/simulate.py's per-bar helpers are (its module doc says why):
no runtime, no wrappers, jitted callers only; the layer functions are inlined into
`_forward_nb`, their one caller.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from .activations import tanh_f32_nb
from .codes import ACT_TANH
from .simd import (TAIL_COLUMNS, VECTOR, WIDE_BLOCKS, block1x1_nb, block1x2_nb, block1x8_nb, block2x1_nb,
                   block2x2_nb, block2x8_nb, block4x1_nb, block4x2_nb, block4x4_nb, block4x8_nb,
                   prefer_wide_vectors_nb, tail1_nb, tail2_nb, tail4_nb)

LANES = 4
"""Trajectories of one model that a unit of the kernel runs in lockstep."""


# The forward pass works in one float32 buffer per unit with integer offsets, never
# in array variables that are reassigned or returned: each such assignment is an
# atomic reference-count update, and at a few per layer and lane those cost more than
# the arithmetic (a quarter of the kernel's time when it did so). Region r (0 = the
# observations, 1 and 2 = hidden activations, alternately) of lane l starts at
# (r * LANES + l) * width.


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _forward_nb(buf, width, n_lanes, l0, l1, layer_in, layer_out, layer_w_off, layer_b_off,
                weights, biases, act):
    """Forward pass of layers l0..l1-1 for lanes 0..n_lanes-1 (n_lanes 1, 2 or 4) of
    `buf`; returns the offset of lane 0's output (lane l's is that + l * width)."""
    prefer_wide_vectors_nb()  # the activation loops below in zmm registers
    src = 0
    for layer in range(l0, l1):
        dst = (1 + (layer - l0) % 2) * LANES * width
        n_in = layer_in[layer]
        n_out = layer_out[layer]
        w0 = layer_w_off[layer]
        b0 = layer_b_off[layer]
        if n_lanes == 4:
            _layer4_nb(buf, src, dst, width, n_in, n_out, w0, weights, biases, b0)
        elif n_lanes == 2:
            _layer2_nb(buf, src, dst, width, n_in, n_out, w0, weights, biases, b0)
        else:
            _layer1_nb(buf, src, dst, n_in, n_out, w0, weights, biases, b0)
        if layer < l1 - 1:
            for l in range(n_lanes):
                o = uint64(dst + l * width)
                if act == ACT_TANH:
                    for j in range(n_out):
                        buf[o + uint64(j)] = tanh_f32_nb(buf[o + uint64(j)])
                else:
                    zero = np.float32(0.0)
                    for j in range(n_out):
                        v = buf[o + uint64(j)]
                        # written so NaN passes through like np.maximum
                        buf[o + uint64(j)] = zero if v < zero else v
        src = dst
    return src


# The layer kernels: dst = bias + src @ W, W stored transposed, (in, out) row-major,
# for the lanes at src + l * width -> dst + l * width. Outputs in slices of 4 (AVX-512
# only), 2 and 1 vectors of VECTOR, then 8, go to kernels/simd.py's register-blocked
# multiply-add blocks, the last n_out % 8 (all of a 3-action output layer) to its tail
# blocks, which vectorise over the lanes instead. Either way one fused multiply-add (one rounding)
# per input, in input order, after the bias: the reference's sequential order, and
# lanes share every weight load.


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True,
      inline="always")
def _layer1_nb(buf, src, dst, n_in, n_out, w_off, weights, biases, b_off):
    j0 = 0
    while j0 + 2 * VECTOR <= n_out:
        block1x2_nb(buf, src, dst, 0, n_in, n_out, w_off, weights, j0, biases, b_off)
        j0 += 2 * VECTOR
    if j0 + VECTOR <= n_out:
        block1x1_nb(buf, src, dst, 0, n_in, n_out, w_off, weights, j0, biases, b_off)
        j0 += VECTOR
    if j0 + 8 <= n_out:
        block1x8_nb(buf, src, dst, 0, n_in, n_out, w_off, weights, j0, biases, b_off)
        j0 += 8
    while j0 < n_out:
        tail1_nb(buf, src, dst, 0, n_in, n_out, w_off, weights, j0, biases, b_off)
        j0 += TAIL_COLUMNS


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True,
      inline="always")
def _layer2_nb(buf, src, dst, width, n_in, n_out, w_off, weights, biases, b_off):
    j0 = 0
    while j0 + 2 * VECTOR <= n_out:
        block2x2_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0, biases, b_off)
        j0 += 2 * VECTOR
    if j0 + VECTOR <= n_out:
        block2x1_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0, biases, b_off)
        j0 += VECTOR
    if j0 + 8 <= n_out:
        block2x8_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0, biases, b_off)
        j0 += 8
    while j0 < n_out:
        tail2_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0, biases, b_off)
        j0 += TAIL_COLUMNS


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True,
      inline="always")
def _layer4_nb(buf, src, dst, width, n_in, n_out, w_off, weights, biases, b_off):
    j0 = 0
    while WIDE_BLOCKS and j0 + 4 * VECTOR <= n_out:
        block4x4_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0, biases, b_off)
        j0 += 4 * VECTOR
    while j0 + 2 * VECTOR <= n_out:
        block4x2_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0, biases, b_off)
        j0 += 2 * VECTOR
    if j0 + VECTOR <= n_out:
        block4x1_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0, biases, b_off)
        j0 += VECTOR
    if j0 + 8 <= n_out:
        block4x8_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0, biases, b_off)
        j0 += 8
    while j0 < n_out:
        tail4_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0, biases, b_off)
        j0 += TAIL_COLUMNS


__all__ = ["LANES"]
