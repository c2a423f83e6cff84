"""Explicit SIMD for the forward pass (kernels/mlp.py): register-blocked multiply-add
blocks written as LLVM vector IR, and the 512-bit vector preference of a function.

Why explicit IR: Numba has no vector types, and the loop LLVM vectorises from plain
Numba code (for every input, add input * weight row to the accumulator over the
outputs) loads and stores the accumulator once per input, and checks at run time,
per input, that the buffers it reads and writes do not overlap. At 64 outputs that
bookkeeping costs three times the multiply-adds themselves. A block here keeps
`lanes` x `n_vec` vectors of 16 outputs in registers over the whole input loop: per
input, one load of each 16-wide weight slice, one broadcast of each lane's input, and
a fused multiply-add per accumulator; the accumulators are loaded (they hold the bias)
and stored once per layer.

The arithmetic per output is exactly kernels/mlp.py's and the NumPy reference's: the
bias, then one correctly rounded fused multiply-add (llvm.fma) per input in index
order. Vector width changes which instruction computes an element, never its value,
so kernel, reference and CUDA twin still agree bit for bit.

LLVM's x86 tuning prefers 256-bit vectors on most AVX-512 cores (the "prefer-256-bit"
flag), which halves the width of the loops it vectorises itself (the tanh, the
observation). `prefer_wide_vectors_nb()` tags the one function it is called from with
"prefer-vector-width"="512", and nothing else: Numba's process-wide target and every
other kernel stay as they are. On a CPU without AVX-512 both have no effect beyond
LLVM splitting the 16-wide vectors into the widths the CPU has.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

VECTOR = 16
"""float32 elements of one vector of a block (a zmm register)."""
PREFER_WIDTH_ATTR = '"prefer-vector-width"="512"'


@intrinsic
def prefer_wide_vectors_nb(typingctx):
    """Call at the top of a jitted function: tags the LLVM function it is compiled
    into with prefer-vector-width=512. Returns an int32 0."""
    sig = types.int32()

    def codegen(context, builder, signature, args):
        # llvmlite knows only keyword attributes; a string attribute goes into the
        # underlying set directly and is printed as is in the function's definition
        set.add(builder.function.attributes, PREFER_WIDTH_ATTR)
        return context.get_constant(types.int32, 0)

    return sig, codegen


def _make_block(lanes: int, n_vec: int, width: int = VECTOR):
    """An intrinsic fn(buf, src, dst, stride, n_in, n_out, w_off, weights, j0): for
    lanes l < `lanes` and outputs j in j0 .. j0 + n_vec * width - 1,
    buf[dst + l*stride + j] = fma over k < n_in of (buf[src + l*stride + k],
    weights[w_off + k*n_out + j]), starting from the value there (the bias), k in
    order. The caller guarantees every index is in range (kernels/inputs.py checks
    the layer tables once per call)."""

    @intrinsic
    def block(typingctx, buf, src, dst, stride, n_in, n_out, w_off, weights, j0):
        f32_array = (isinstance(buf, types.Array) and buf.dtype == types.float32
                     and isinstance(weights, types.Array) and weights.dtype == types.float32)
        ints = (src, dst, stride, n_in, n_out, w_off, j0)
        if not f32_array or not all(isinstance(t, types.Integer) for t in ints):
            return None
        sig = types.none(buf, src, dst, stride, n_in, n_out, w_off, weights, j0)

        def codegen(context, builder, signature, args):
            (buf_v, src_v, dst_v, stride_v, n_in_v, n_out_v, w_off_v, weights_v,
             j0_v) = args
            aty = signature.args
            i64 = ir.IntType(64)
            f32 = ir.FloatType()
            vty = ir.VectorType(f32, width)
            vptr = vty.as_pointer()

            def as_i64(value, ty):
                return context.cast(builder, value, ty, types.int64)

            src_i, dst_i, stride_i, n_in_i, n_out_i, w_off_i, j0_i = (
                as_i64(v, t) for v, t in zip(
                    (src_v, dst_v, stride_v, n_in_v, n_out_v, w_off_v, j0_v),
                    (aty[1], aty[2], aty[3], aty[4], aty[5], aty[6], aty[8])))
            bufp = context.make_array(aty[0])(context, builder, buf_v).data
            wp = context.make_array(aty[7])(context, builder, weights_v).data
            # llvmlite's declare_intrinsic cannot mangle vector types: named here
            fma = cgutils.get_or_insert_function(builder.module,
                                                 ir.FunctionType(vty, [vty, vty, vty]),
                                                 f"llvm.fma.v{width}f32")

            def vec_at(base, index):
                return builder.bitcast(builder.gep(base, [index]), vptr)

            def lane_base(l):
                return builder.mul(stride_i, ir.Constant(i64, l))

            accs = []
            for l in range(lanes):
                row = []
                for b in range(n_vec):
                    at = builder.add(builder.add(dst_i, lane_base(l)),
                                     builder.add(j0_i, ir.Constant(i64, b * width)))
                    slot = cgutils.alloca_once(builder, vty)
                    builder.store(builder.load(vec_at(bufp, at), align=4), slot)
                    row.append((slot, at))
                accs.append(row)
            undef = ir.Constant(vty, ir.Undefined)
            zeros = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
            with cgutils.for_range(builder, n_in_i) as loop:
                k = loop.index
                wrow = builder.add(builder.add(w_off_i, builder.mul(k, n_out_i)), j0_i)
                w = [builder.load(vec_at(wp, builder.add(wrow, ir.Constant(i64, b * width))),
                                  align=4) for b in range(n_vec)]
                for l in range(lanes):
                    at = builder.add(builder.add(src_i, lane_base(l)), k)
                    h = builder.load(builder.gep(bufp, [at]))
                    hv = builder.shuffle_vector(
                        builder.insert_element(undef, h, ir.Constant(ir.IntType(32), 0)),
                        undef, zeros)
                    for b in range(n_vec):
                        slot = accs[l][b][0]
                        builder.store(builder.call(fma, [hv, w[b], builder.load(slot)]), slot)
            for l in range(lanes):
                for b in range(n_vec):
                    slot, at = accs[l][b]
                    builder.store(builder.load(slot), vec_at(bufp, at), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return block


# (lanes, 16-wide vectors) blocks the layer loops of kernels/mlp.py use
block4x2_nb = _make_block(4, 2)
block4x1_nb = _make_block(4, 1)
block2x2_nb = _make_block(2, 2)
block2x1_nb = _make_block(2, 1)
block1x2_nb = _make_block(1, 2)
block1x1_nb = _make_block(1, 1)
block4x8_nb = _make_block(4, 1, 8)
block2x8_nb = _make_block(2, 1, 8)
block1x8_nb = _make_block(1, 1, 8)

__all__ = ["VECTOR", "prefer_wide_vectors_nb", "block4x2_nb", "block4x1_nb", "block2x2_nb",
           "block2x1_nb", "block1x2_nb", "block1x1_nb", "block4x8_nb", "block2x8_nb",
           "block1x8_nb"]
