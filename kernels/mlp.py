"""The policy's float32 forward pass in the CPU simulation kernel (kernels/simulate.py):
up to four trajectories ("lanes") of one model at once, sharing every weight load.

Weights are stored transposed, (in, out) row-major, and each layer is an
outer-product update: for every input, add input * weight row to a contiguous
accumulator over the outputs. That inner loop vectorises; a dot product per output
would not (LLVM may not reorder a float reduction). Each step is an explicit fused
multiply-add (kernels/fma.py: one rounding, twice the throughput of a multiply and an
add), bias first, then inputs in index order: the NumPy reference does the same
correctly rounded steps in the same order, so kernel and reference agree bit for bit.
Compiled as kernels/simulate.py's per-bar helpers are (its module doc says why): no
runtime, no wrappers, jitted callers only.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from .activations import tanh_f32_nb
from .codes import ACT_TANH
from .fma import fma_f32_nb as fma
from .simd import (prefer_wide_vectors_nb, block1x1_nb, block1x2_nb, block1x8_nb, block2x1_nb, block2x2_nb,
                   block2x8_nb, block4x1_nb, block4x2_nb, block4x8_nb)

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
        b0 = uint64(layer_b_off[layer])
        for l in range(n_lanes):
            o = uint64(dst + l * width)
            for j in range(n_out):
                buf[o + uint64(j)] = biases[b0 + uint64(j)]
        if n_lanes == 4:
            _layer4_nb(buf, src, dst, width, n_in, n_out, layer_w_off[layer], weights)
        elif n_lanes == 2:
            _layer2_nb(buf, src, dst, width, n_in, n_out, layer_w_off[layer], weights)
        else:
            _layer1_nb(buf, src, dst, n_in, n_out, layer_w_off[layer], weights)
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


# The layer kernels: dst (bias already in place) += src @ W, W stored transposed,
# (in, out) row-major. Outputs in slices of 32, 16 and 8 go to kernels/simd.py's
# register-blocked multiply-add blocks; the last n_out % 8 (all of a 3-action output
# layer) to the loops below, an outer-product update: for every input, add input *
# weight row to a contiguous accumulator over those outputs. Either way one fused
# multiply-add (one rounding) per input, in input order, after the bias: the
# reference's sequential order. Lanes share every weight load. Offsets are unsigned:
# a signed index gets Numba's negative-index wraparound select, which turns the
# contiguous row loads into gathers.


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _layer1_nb(buf, src, dst, n_in, n_out, w_off, weights):
    j0 = 0
    while j0 + 32 <= n_out:
        block1x2_nb(buf, src, dst, 0, n_in, n_out, w_off, weights, j0)
        j0 += 32
    if j0 + 16 <= n_out:
        block1x1_nb(buf, src, dst, 0, n_in, n_out, w_off, weights, j0)
        j0 += 16
    if j0 + 8 <= n_out:
        block1x8_nb(buf, src, dst, 0, n_in, n_out, w_off, weights, j0)
        j0 += 8
    if j0 == n_out:
        return
    stride = uint64(n_out)
    a0 = uint64(dst)
    k = 0
    while k + 4 <= n_in:
        i = uint64(src + k)
        h0 = buf[i]
        h1 = buf[i + uint64(1)]
        h2 = buf[i + uint64(2)]
        h3 = buf[i + uint64(3)]
        r0 = uint64(w_off + k * n_out)
        r1 = r0 + stride
        r2 = r1 + stride
        r3 = r2 + stride
        for j in range(j0, n_out):
            u = uint64(j)
            buf[a0 + u] = fma(h3, weights[r3 + u], fma(h2, weights[r2 + u], fma(h1, weights[r1 + u], fma(h0, weights[r0 + u], buf[a0 + u]))))
        k += 4
    while k < n_in:
        h = buf[uint64(src + k)]
        r = uint64(w_off + k * n_out)
        for j in range(j0, n_out):
            u = uint64(j)
            buf[a0 + u] = fma(h, weights[r + u], buf[a0 + u])
        k += 1


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _layer2_nb(buf, src, dst, width, n_in, n_out, w_off, weights):
    j0 = 0
    while j0 + 32 <= n_out:
        block2x2_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0)
        j0 += 32
    if j0 + 16 <= n_out:
        block2x1_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0)
        j0 += 16
    if j0 + 8 <= n_out:
        block2x8_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0)
        j0 += 8
    if j0 == n_out:
        return
    stride = uint64(n_out)
    a0 = uint64(dst)
    a1 = uint64(dst + width)
    k = 0
    while k + 4 <= n_in:
        i = uint64(src + k)
        p0 = buf[i]
        p1 = buf[i + uint64(1)]
        p2 = buf[i + uint64(2)]
        p3 = buf[i + uint64(3)]
        i += uint64(width)
        q0 = buf[i]
        q1 = buf[i + uint64(1)]
        q2 = buf[i + uint64(2)]
        q3 = buf[i + uint64(3)]
        r0 = uint64(w_off + k * n_out)
        r1 = r0 + stride
        r2 = r1 + stride
        r3 = r2 + stride
        for j in range(j0, n_out):
            u = uint64(j)
            w_0 = weights[r0 + u]
            w_1 = weights[r1 + u]
            w_2 = weights[r2 + u]
            w_3 = weights[r3 + u]
            buf[a0 + u] = fma(p3, w_3, fma(p2, w_2, fma(p1, w_1, fma(p0, w_0, buf[a0 + u]))))
            buf[a1 + u] = fma(q3, w_3, fma(q2, w_2, fma(q1, w_1, fma(q0, w_0, buf[a1 + u]))))
        k += 4
    while k < n_in:
        i = uint64(src + k)
        p = buf[i]
        q = buf[i + uint64(width)]
        r = uint64(w_off + k * n_out)
        for j in range(j0, n_out):
            u = uint64(j)
            w = weights[r + u]
            buf[a0 + u] = fma(p, w, buf[a0 + u])
            buf[a1 + u] = fma(q, w, buf[a1 + u])
        k += 1


@njit(cache=True, error_model="numpy", _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _layer4_nb(buf, src, dst, width, n_in, n_out, w_off, weights):
    j0 = 0
    while j0 + 32 <= n_out:
        block4x2_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0)
        j0 += 32
    if j0 + 16 <= n_out:
        block4x1_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0)
        j0 += 16
    if j0 + 8 <= n_out:
        block4x8_nb(buf, src, dst, width, n_in, n_out, w_off, weights, j0)
        j0 += 8
    if j0 == n_out:
        return
    stride = uint64(n_out)
    wd = uint64(width)
    a0 = uint64(dst)
    a1 = a0 + wd
    a2 = a1 + wd
    a3 = a2 + wd
    k = 0
    while k + 4 <= n_in:
        i = uint64(src + k)
        p0 = buf[i]
        p1 = buf[i + uint64(1)]
        p2 = buf[i + uint64(2)]
        p3 = buf[i + uint64(3)]
        i += wd
        q0 = buf[i]
        q1 = buf[i + uint64(1)]
        q2 = buf[i + uint64(2)]
        q3 = buf[i + uint64(3)]
        i += wd
        e0 = buf[i]
        e1 = buf[i + uint64(1)]
        e2 = buf[i + uint64(2)]
        e3 = buf[i + uint64(3)]
        i += wd
        f0 = buf[i]
        f1 = buf[i + uint64(1)]
        f2 = buf[i + uint64(2)]
        f3 = buf[i + uint64(3)]
        r0 = uint64(w_off + k * n_out)
        r1 = r0 + stride
        r2 = r1 + stride
        r3 = r2 + stride
        for j in range(j0, n_out):
            u = uint64(j)
            w_0 = weights[r0 + u]
            w_1 = weights[r1 + u]
            w_2 = weights[r2 + u]
            w_3 = weights[r3 + u]
            buf[a0 + u] = fma(p3, w_3, fma(p2, w_2, fma(p1, w_1, fma(p0, w_0, buf[a0 + u]))))
            buf[a1 + u] = fma(q3, w_3, fma(q2, w_2, fma(q1, w_1, fma(q0, w_0, buf[a1 + u]))))
            buf[a2 + u] = fma(e3, w_3, fma(e2, w_2, fma(e1, w_1, fma(e0, w_0, buf[a2 + u]))))
            buf[a3 + u] = fma(f3, w_3, fma(f2, w_2, fma(f1, w_1, fma(f0, w_0, buf[a3 + u]))))
        k += 4
    while k < n_in:
        i = uint64(src + k)
        p = buf[i]
        q = buf[i + wd]
        e = buf[i + wd + wd]
        f = buf[i + wd + wd + wd]
        r = uint64(w_off + k * n_out)
        for j in range(j0, n_out):
            u = uint64(j)
            w = weights[r + u]
            buf[a0 + u] = fma(p, w, buf[a0 + u])
            buf[a1 + u] = fma(q, w, buf[a1 + u])
            buf[a2 + u] = fma(e, w, buf[a2 + u])
            buf[a3 + u] = fma(f, w, buf[a3 + u])
        k += 1


__all__ = ["LANES"]
