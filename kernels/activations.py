"""Vectorisable float32 tanh for the simulation kernels.

libm's tanhf is a scalar call, so a loop that applies it cannot be vectorised and
the activation ends up costing more than the matrix work around it. `tanh_f32_nb`
is branch-free straight-line arithmetic that LLVM turns into SIMD code when it is
inlined into a loop over an array.

Accuracy is part of the contract (argmax near-ties must come out as torch's would),
so the function works internally in float64 and rounds once at the end:

    tanh(|x|) = q / (q + 2),   q = expm1(2|x|)

expm1 is evaluated as 2^k * p(r) + (2^k - 1) with r = y - k ln2, |r| <= ln2/2, and
p a degree-12 Taylor polynomial of expm1 (truncation error < 1e-14 relative). For
k = 0 this is p(r) alone, so tiny and subnormal inputs keep full relative accuracy
(tanh(x) == x there) instead of cancelling in 1 - 2/(e^2x + 1). The float64 result
is within ~1e-14 relative of the true tanh, so the float32 result is the correctly
rounded one except in rare double-rounding cases (then off by 1 ulp); torch's own
tanhf (Sleef u10) is within 1 ulp, so the two agree within 1 ulp.

2^k is built from exponent bits with a bit cast (an LLVM `bitcast`, which
vectorises), not `ldexp` (a libm call). Inputs are clamped to |x| <= 20 (tanh is
exactly 1.0 in float32 from |x| ~ 9.01 on), which also keeps +-inf finite inside;
NaN is passed through by a final select and +-0 keep their sign via copysign.

The float operations are plain IEEE operations in a fixed order (Numba does not
contract a*b+c into FMA without fastmath), so `tanh_f32_np`, the NumPy twin used by
the tests' reference, gives bit-identical results.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# Taylor coefficients 1/n! for n = 2..12, highest first (Horner order).
_C12 = 1.0 / 479001600.0
_C11 = 1.0 / 39916800.0
_C10 = 1.0 / 3628800.0
_C9 = 1.0 / 362880.0
_C8 = 1.0 / 40320.0
_C7 = 1.0 / 5040.0
_C6 = 1.0 / 720.0
_C5 = 1.0 / 120.0
_C4 = 1.0 / 24.0
_C3 = 1.0 / 6.0
_C2 = 0.5
_LN2 = 0.6931471805599453
_INV_LN2 = 1.4426950408889634
# |x| beyond which float32 tanh is 1.0; the clamp keeps 2^k well inside float64.
_CLAMP = 20.0


@intrinsic
def _int64_bits_as_float64(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64 (no conversion)."""
    if not isinstance(bits, types.Integer):
        return None
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@njit(cache=True, inline="always", error_model="numpy")
def tanh_f32_nb(x):
    """tanh of a float32, returned as float32 (within 1 ulp of torch.tanh)."""
    xd = np.float64(x)
    ax = abs(xd)
    # Written as a select so NaN maps to a finite value and the int conversion
    # below stays defined; the NaN itself is restored at the end.
    y = 2.0 * ax if ax < _CLAMP else 2.0 * _CLAMP
    kf = math.floor(y * _INV_LN2 + 0.5)
    r = y - kf * _LN2
    p = _C12
    p = p * r + _C11
    p = p * r + _C10
    p = p * r + _C9
    p = p * r + _C8
    p = p * r + _C7
    p = p * r + _C6
    p = p * r + _C5
    p = p * r + _C4
    p = p * r + _C3
    p = p * r + _C2
    em1_r = r + (r * r) * p
    scale = _int64_bits_as_float64((np.int64(kf) + 1023) << 52)
    q = scale * em1_r + (scale - 1.0)
    t = math.copysign(q / (q + 2.0), xd)
    res = np.float32(t)
    return res if x == x else x


@njit(cache=True, inline="always", error_model="numpy")
def tanh_inplace_f32_nb(buf, n):
    """buf[:n] = tanh(buf[:n]) for a float32 buffer; vectorises when inlined."""
    for j in range(n):
        buf[j] = tanh_f32_nb(buf[j])


@njit(cache=True, error_model="numpy")
def tanh_f32_array_nb(x):
    """tanh of a float32 array of any shape (a new array)."""
    out = np.empty_like(x)
    flat_in = x.ravel()
    flat_out = out.reshape(-1)
    for j in range(flat_in.size):
        flat_out[j] = tanh_f32_nb(flat_in[j])
    return out


def tanh_f32_np(x):
    """NumPy twin of `tanh_f32_nb`, operation for operation (bit-identical)."""
    x = np.asarray(x, dtype=np.float32)
    # signalling NaNs raise "invalid" on conversion; they come out as NaN all the same
    with np.errstate(invalid="ignore", over="ignore"):
        xd = x.astype(np.float64)
        ax = np.abs(xd)
        y = np.where(ax < _CLAMP, 2.0 * ax, 2.0 * _CLAMP)
        kf = np.floor(y * _INV_LN2 + 0.5)
        r = y - kf * _LN2
        p = np.full_like(r, _C12)
        for c in (_C11, _C10, _C9, _C8, _C7, _C6, _C5, _C4, _C3, _C2):
            p = p * r + c
        em1_r = r + (r * r) * p
        scale = ((kf.astype(np.int64) + 1023) << 52).view(np.float64)
        q = scale * em1_r + (scale - 1.0)
        t = np.copysign(q / (q + 2.0), xd)
        res = t.astype(np.float32)
    return np.where(x == x, res, x)
