"""Vectorisable float32 tanh for the simulation kernels.

libm's tanhf is a scalar call, so a loop that applies it cannot be vectorised and
the activation ends up costing more than the matrix work around it. `tanh_f32_nb`
is branch-free straight-line float32 arithmetic that LLVM turns into SIMD code when it
is inlined into a loop over an array (compile that loop with error_model="numpy": the
Python error model's zero-division check on `/` keeps it scalar). It works in float32
only: an earlier float64 form was as accurate but ran at half the vector width with a
float64 divide, and was a third of the kernel's time.

Accuracy is part of the contract (argmax near-ties must come out as torch's would):
within 1 ulp of torch.tanh on every float32 input, the very same float on 99.9% of
them (checked on all 2^31 positive inputs; tanh is computed on |x| and given x's sign,
so negative inputs mirror them). Both branches are computed and one is selected, with
a = |x|:

- a < atanh(1/2): tanh(a) = a + a^3 Q(a^2), Q a degree-5 least-squares fit on
  Chebyshev nodes of (tanh(a) - a) / a^3 (relative error 3e-8 with float32
  coefficients). The correction is at most an eighth of the result, so its rounding
  errors stay far below half an ulp, and tiny and subnormal x give x exactly.
- otherwise: tanh(a) = 1 - 2/(1 + e^2a), e^2a = 2^k (1 + p(r)), k = round(2a / ln2),
  r = 2a - k ln2 (Cody-Waite, two FMAs), p(r) = r + r^2 P(r) ~ expm1(r), P of degree
  5. The three roundings that would each cost up to half an ulp are compensated:
  d = (1 + 2^-k) + p keeps its rounding error (Fast2Sum: exact, as 1 + 2^-k >= 1 >
  |p|, and two operations fewer than TwoSum, which gives the same bits here),
  u = 2^(1-k) / d keeps the division's exact residual (one FMA), and 1 - u keeps its
  own (Fast2Sum), so the one rounding that matters is the last addition.

k and the powers of two come from the bits of z = 2a/ln2 + 1.5*2^23 (the addition
rounds to the nearest integer, which lands in z's low mantissa bits), reinterpreted as
float32 bit patterns: LLVM `bitcast`s, which vectorise, unlike `ldexp`. a is clamped
to 10 (tanh is exactly 1.0 in float32 from |x| ~ 9.01 on), which keeps +-inf finite
inside; NaN is passed through by a final select and +-0 keep their sign via copysign.

Every multiply-add is an explicit fused one (kernels/fma.py) and every other
operation a plain IEEE float32 one in a fixed order (Numba does not contract or
reorder without fastmath), so `tanh_f32_np`, the NumPy twin used by the tests'
reference and by engine.policy, gives bit-identical results, and so does the CUDA
twin in kernels/gpu_simulate.py, which uses these constants.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .fma import fma_f32_nb as _fma
from .fma import fma_f32_np

_f32 = np.float32
# Q(s) ~ (tanh(a) - a) / a^3, s = a^2 <= atanh(1/2)^2, highest degree first
TANH_Q = tuple(_f32(v) for v in (0.0025306433, -0.00852939, 0.021819217, -0.05396478,
                                 0.13333325, -0.33333334))
# P(r) ~ (expm1(r) - r) / r^2 on |r| <= ln2/2, highest degree first
TANH_P = tuple(_f32(v) for v in (0.00019899277, 0.0013933644, 0.008333298, 0.041666467,
                                 0.16666667, 0.5))
TANH_SMALL = _f32(0.5493061443340549)  # atanh(1/2): the polynomial below, the exp above
TANH_CLAMP = _f32(10.0)  # |x| beyond which float32 tanh is 1.0
INV_LN2 = _f32(1.4426950408889634)
LN2_HI = _f32(0.693145751953125)  # ln2 in 16 bits: kf * LN2_HI is exact
LN2_LO = _f32(1.428606765330187e-06)
SHIFTER = _f32(12582912.0)  # 1.5 * 2^23: adding it rounds to an integer
SHIFTER_BITS = int(np.array(SHIFTER).view(np.int32))
_Q5, _Q4, _Q3, _Q2, _Q1, _Q0 = TANH_Q
_P5, _P4, _P3, _P2, _P1, _P0 = TANH_P
_ONE = _f32(1.0)
_TWO = _f32(2.0)
_SB = np.int32(SHIFTER_BITS)
_I23 = np.int32(23)
_E_M1 = np.int32(127)  # exponent bias: 2^-k has the biased exponent 127 - k
_E_M2 = np.int32(128)  # 2^(1-k)
_E_M3 = np.int32(126)  # 2^(k-1) = 127 + k - 1


@intrinsic
def _int32_bits_as_float32(typingctx, bits):
    """Reinterpret the 32 bits of an int32 as a float32 (no conversion)."""
    if not isinstance(bits, types.Integer):
        return None
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        v = context.cast(builder, args[0], signature.args[0], types.int32)
        return builder.bitcast(v, ir.FloatType())

    return sig, codegen


@intrinsic
def _float32_bits_as_int32(typingctx, value):
    """Reinterpret the 32 bits of a float32 as an int32 (no conversion)."""
    if not isinstance(value, types.Float):
        return None
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        v = context.cast(builder, args[0], signature.args[0], types.float32)
        return builder.bitcast(v, ir.IntType(32))

    return sig, codegen


@njit(cache=True, inline="always", error_model="numpy")
def tanh_f32_nb(x):
    """tanh of a float32, returned as float32 (within 1 ulp of torch.tanh)."""
    x = np.float32(x)
    a = abs(x)
    s = a * a
    q = _fma(_fma(_fma(_fma(_fma(_Q5, s, _Q4), s, _Q3), s, _Q2), s, _Q1), s, _Q0)
    small = _fma(a * s, q, a)
    # a select, so NaN and inf map to finite values and the bit tricks stay defined
    y = _TWO * (a if a < TANH_CLAMP else TANH_CLAMP)
    z = _fma(y, INV_LN2, SHIFTER)
    kf = z - SHIFTER
    r = _fma(-kf, LN2_LO, _fma(-kf, LN2_HI, y))
    pr = _fma(_fma(_fma(_fma(_fma(_P5, r, _P4), r, _P3), r, _P2), r, _P1), r, _P0)
    p = _fma(r * r, pr, r)
    k = _float32_bits_as_int32(z) - _SB
    two_sc = _int32_bits_as_float32((_E_M2 - k) << _I23)
    c = _ONE + _int32_bits_as_float32((_E_M1 - k) << _I23)
    d = c + p
    d_lo = p - (d - c)  # Fast2Sum: c >= 1 > |p|
    u = two_sc / d
    u_lo = _fma(-u, d_lo, _fma(-u, d, two_sc)) * (u * _int32_bits_as_float32((_E_M3 + k) << _I23))
    t_hi = _ONE - u
    t_lo = ((_ONE - t_hi) - u) - u_lo
    large = t_hi + t_lo
    t = math.copysign(small if a < TANH_SMALL else large, x)
    return t if x == x else x


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
    fma = fma_f32_np
    # signalling NaNs raise "invalid"; they come out as NaN all the same
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        a = np.abs(x)
        s = a * a
        q = np.full_like(a, _Q5)
        for coef in (_Q4, _Q3, _Q2, _Q1, _Q0):
            q = fma(q, s, coef)
        small = fma(a * s, q, a)
        y = _TWO * np.where(a < TANH_CLAMP, a, TANH_CLAMP)
        z = fma(y, INV_LN2, SHIFTER)
        kf = z - SHIFTER
        r = fma(-kf, LN2_LO, fma(-kf, LN2_HI, y))
        pr = np.full_like(r, _P5)
        for coef in (_P4, _P3, _P2, _P1, _P0):
            pr = fma(pr, r, coef)
        p = fma(r * r, pr, r)
        k = z.view(np.int32) - _SB
        two_sc = ((_E_M2 - k) << _I23).astype(np.int32).view(np.float32)
        c = _ONE + ((_E_M1 - k) << _I23).astype(np.int32).view(np.float32)
        d = c + p
        d_lo = p - (d - c)
        u = two_sc / d
        inv = ((_E_M3 + k) << _I23).astype(np.int32).view(np.float32)
        u_lo = fma(-u, d_lo, fma(-u, d, two_sc)) * (u * inv)
        t_hi = _ONE - u
        t_lo = ((_ONE - t_hi) - u) - u_lo
        large = t_hi + t_lo
        t = np.copysign(np.where(a < TANH_SMALL, small, large), x).astype(np.float32)
    return np.where(x == x, t, x)
