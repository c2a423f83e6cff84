"""Fused multiply-add of float32, rounded once: `fma_f32_nb` for the kernels and
`fma_f32_np`, its NumPy twin, for the references.

The layer loops of kernels/simulate.py are multiply-adds. Written as a*b + c they round
twice, and Numba without fastmath never contracts them, so they run as a separate
multiply and add: half the multiply-add peak of a CPU with FMA units. Contracting by
fastmath would let LLVM choose which products to fuse, and no reference could follow.
An explicit `llvm.fma.f32` is one IEEE operation with one rounding: it vectorises
(vfmadd on x86 with FMA, a correctly rounded libm call elsewhere), and a reference that
computes the same correctly rounded value per step reproduces the kernel bit for bit.

`fma_f32_np` gets that value without an FMA instruction: a float32 product is exact in
float64 (24 + 24 bits < 53), so p + c is the only inexact step; computed in float64
with round-to-odd (the sum, nudged to its odd neighbour when the sum was inexact), it
rounds to float32 exactly as the exact p + c would (53 >= 24 + 2 bits: Boldo and
Melquiond, "Emulation of FMA and correctly rounded sums", 2008).
"""

import math
import struct

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_F64 = struct.Struct("<d")
_F64_BITS = struct.Struct("<Q")
# the largest float32 plus half its ulp: from here on, IEEE rounding gives infinity
_F32_OVERFLOW = float(np.finfo(np.float32).max) + 2.0 ** 103


@intrinsic
def fma_f32_nb(typingctx, a, b, c):
    """a * b + c of float32 values, rounded once (llvm.fma.f32)."""
    if not all(isinstance(t, (types.Float, types.Integer)) for t in (a, b, c)):
        return None
    sig = types.float32(a, b, c)

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        vals = [context.cast(builder, v, t, types.float32)
                for v, t in zip(args, signature.args)]
        fn = builder.module.declare_intrinsic("llvm.fma", [f32], ir.FunctionType(f32, [f32, f32, f32]))
        return builder.call(fn, vals)

    return sig, codegen


def fma_f32_np(a, b, c):
    """NumPy twin of `fma_f32_nb`, elementwise with broadcasting: float32 results equal
    to the correctly rounded a * b + c."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    c = np.asarray(c, dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        p = a.astype(np.float64) * b.astype(np.float64)  # exact
        cd = c.astype(np.float64)
        s = p + cd
        # TwoSum: err is exactly (p + cd) - s
        bv = s - p
        err = (p - (s - bv)) + (cd - bv)
        s = np.atleast_1d(s)
        err = np.atleast_1d(err)
        even = (s.view(np.uint64) & np.uint64(1)) == 0
        nudge = even & (err != 0) & np.isfinite(s)
        toward = np.where(err > 0, np.inf, -np.inf)
        s = np.where(nudge, np.nextafter(s, toward), s)
        out = s.astype(np.float32).reshape(np.shape(p))
    return out


def fma_f32_py(a, b, c):
    """Scalar form of `fma_f32_np` in plain Python floats (float32 result): ~20x
    quicker per call than NumPy on 0-d arrays, for the CUDA simulator, which runs the
    GPU kernel one multiply-add at a time."""
    p = float(a) * float(b)  # exact
    cd = float(c)
    s = p + cd
    bv = s - p
    err = (p - (s - bv)) + (cd - bv)
    if err != 0.0 and math.isfinite(s) and not _F64_BITS.unpack(_F64.pack(s))[0] & 1:
        s = math.nextafter(s, math.inf if err > 0.0 else -math.inf)
    if abs(s) >= _F32_OVERFLOW:  # what the cast would round to, without its warning
        return np.float32(math.copysign(math.inf, s))
    return np.float32(s)
