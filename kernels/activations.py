"""Vectorisable float32 tanh for the simulation kernels.

libm's tanhf is a scalar call, so a loop that applies it cannot be vectorised and
the activation ends up costing more than the matrix work around it. `tanh_f32_nb`
is branch-free straight-line arithmetic that LLVM turns into SIMD code when it is
inlined into a loop over an array (compile that loop with error_model="numpy": the
Python error model's zero-division check on `/` keeps it scalar).

Accuracy is part of the contract (argmax near-ties must come out as torch's would),
so the function works internally in float64 and rounds once at the end:

    tanh(|x|) = q / (q + 2),   q = expm1(2|x|)

expm1(y) is evaluated as 2^k * p(r) + (2^k - 1) with k = round(y / ln2),
r = y - k ln2 (|r| <= ln2/2), and p(r) = r + r^2 P(r), P a degree-8 least-squares
fit on Chebyshev nodes (relative error of p < 2e-15). For k = 0 this is p(r) alone,
so tiny and subnormal inputs keep full relative accuracy (tanh(x) == x there)
instead of cancelling in 1 - 2/(e^2x + 1). The float64 result is within ~1e-14
relative of the true tanh, so the float32 result is the correctly rounded one except
in rare double-rounding cases (then 1 ulp off). Checked on all 2^32 float32 inputs:
within 1 ulp of torch.tanh (Sleef, itself within 1 ulp), identical for 99.96%.

k and 2^k come from the bits of z = y/ln2 + 1.5*2^52 (the addition rounds to the
nearest integer, which lands in z's low mantissa bits); 2^k is those bits shifted
into the exponent field and reinterpreted: LLVM `bitcast`s, which vectorise, unlike
`ldexp` or an int conversion chain. Inputs are clamped to |x| <= 20 (tanh is exactly
1.0 in float32 from |x| ~ 9.01 on), which also keeps +-inf finite inside; NaN is
passed through by a final select and +-0 keep their sign via copysign.

The float operations are plain IEEE operations in a fixed order (Numba does not
contract a*b+c into FMA without fastmath), so `tanh_f32_np`, the NumPy twin used by
the tests' reference and by engine.policy, gives bit-identical results.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# p(r) = r + r^2 * (P0 + P1 r + ... + P8 r^8) ~ expm1(r) on |r| <= ln2/2
_P0 = 0.4999999999999939
_P1 = 0.16666666666629654
_P2 = 0.04166666666731524
_P3 = 0.008333333363033255
_P4 = 0.001388888870972277
_P5 = 0.00019841195460564796
_P6 = 2.4801751905661176e-05
_P7 = 2.7630842045245206e-06
_P8 = 2.753467912600059e-07
_LN2 = 0.6931471805599453
_INV_LN2 = 1.4426950408889634
_SHIFTER = 6755399441055744.0  # 1.5 * 2^52: adding it rounds to an integer
# |x| beyond which float32 tanh is 1.0; the clamp keeps 2^k well inside float64.
_CLAMP = 20.0

# The first form of this function: p's Taylor coefficients 1/n!, n = 2..12, with
# k = floor(y/ln2 + 0.5). kernels/gpu_simulate.py still mirrors that form with these
# names; on every one of the 2^32 float32 inputs both forms round to the same float32.
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


@intrinsic
def _int64_bits_as_float64(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64 (no conversion)."""
    if not isinstance(bits, types.Integer):
        return None
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _float64_bits_as_int64(typingctx, value):
    """Reinterpret the 64 bits of a float64 as an int64 (no conversion)."""
    if not isinstance(value, types.Float):
        return None
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@njit(cache=True, inline="always", error_model="numpy")
def tanh_f32_nb(x):
    """tanh of a float32, returned as float32 (within 1 ulp of torch.tanh)."""
    xd = np.float64(x)
    ax = abs(xd)
    # a select, so NaN maps to a finite value and the bit tricks below stay defined;
    # the NaN itself is restored at the end
    y = 2.0 * ax if ax < _CLAMP else 2.0 * _CLAMP
    z = y * _INV_LN2 + _SHIFTER
    kf = z - _SHIFTER
    r = y - kf * _LN2
    p = _P8
    p = p * r + _P7
    p = p * r + _P6
    p = p * r + _P5
    p = p * r + _P4
    p = p * r + _P3
    p = p * r + _P2
    p = p * r + _P1
    p = p * r + _P0
    em1_r = r + (r * r) * p
    # low bits of z hold k; the shift drops z's own exponent and sign bits
    scale = _int64_bits_as_float64((_float64_bits_as_int64(z) + 1023) << 52)
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
        z = y * _INV_LN2 + _SHIFTER
        kf = z - _SHIFTER
        r = y - kf * _LN2
        p = np.full_like(r, _P8)
        for c in (_P7, _P6, _P5, _P4, _P3, _P2, _P1, _P0):
            p = p * r + c
        em1_r = r + (r * r) * p
        # unsigned, so the shift that drops z's exponent bits is well defined
        scale = ((z.view(np.uint64) + np.uint64(1023)) << np.uint64(52)).view(np.float64)
        q = scale * em1_r + (scale - 1.0)
        t = np.copysign(q / (q + 2.0), xd)
        res = t.astype(np.float32)
    return np.where(x == x, res, x)
