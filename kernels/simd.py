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
from numba.core import cgutils, config
from numba.core.codegen import get_host_cpu_features
from numba.extending import intrinsic


def _avx512_target() -> bool:
    """Whether Numba compiles for a CPU with AVX-512 (its features, as Numba's own
    target machine takes them: NUMBA_CPU_FEATURES, else the host's)."""
    features = config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()
    return "+avx512f" in str(features).split(",")


AVX512 = _avx512_target()
VECTOR = 16 if AVX512 else 8
"""float32 elements of one vector of a block: a zmm register with AVX-512, else a ymm
one (Numba's cache is keyed on the CPU and its features, so each CPU gets its own)."""
WIDE_BLOCKS = AVX512
"""Blocks of 4 lanes x 4 vectors (16 accumulators) fit AVX-512's 32 vector registers;
with AVX2's 16 they spilled to the stack and ran at half speed, so there the widest
block is 4 lanes x 2 vectors."""
PREFER_WIDTH_ATTR = '"prefer-vector-width"="512"'


@intrinsic
def prefer_wide_vectors_nb(typingctx):
    """Call at the top of a jitted function: tags the LLVM function it is compiled
    into with prefer-vector-width=512. Returns an int32 0."""
    sig = types.int32()

    def codegen(context, builder, signature, args):
        # llvmlite knows only keyword attributes; a string attribute goes into the
        # underlying set directly and is printed as is in the function's definition.
        # A hint only: an llvmlite that stores attributes otherwise just goes without.
        try:
            set.add(builder.function.attributes, PREFER_WIDTH_ATTR)
        except TypeError:
            pass
        return context.get_constant(types.int32, 0)

    return sig, codegen


def _operands_ok(buf, weights, biases, ints) -> bool:
    """The typing of a block's or tail's call: float32 arrays and integer offsets."""
    arrays = (buf, weights, biases)
    return (all(isinstance(a, types.Array) and a.dtype == types.float32 for a in arrays)
            and all(isinstance(t, types.Integer) for t in ints))


def _make_block(lanes: int, n_vec: int, width: int = VECTOR):
    """An intrinsic fn(buf, src, dst, stride, n_in, n_out, w_off, weights, j0, biases,
    b_off): for lanes l < `lanes` and outputs j in j0 .. j0 + n_vec * width - 1,
    buf[dst + l*stride + j] = biases[b_off + j], then one fma per k < n_in, in order,
    of buf[src + l*stride + k] and weights[w_off + k*n_out + j]. The caller
    guarantees every index is in range (kernels/inputs.py checks the layer tables
    once per call)."""

    @intrinsic
    def block(typingctx, buf, src, dst, stride, n_in, n_out, w_off, weights, j0, biases,
              b_off):
        if not _operands_ok(buf, weights, biases, (src, dst, stride, n_in, n_out, w_off, j0,
                                                   b_off)):
            return None
        sig = types.none(buf, src, dst, stride, n_in, n_out, w_off, weights, j0, biases,
                         b_off)

        def codegen(context, builder, signature, args):
            (buf_v, src_v, dst_v, stride_v, n_in_v, n_out_v, w_off_v, weights_v,
             j0_v, biases_v, b_off_v) = args
            aty = signature.args
            i64 = ir.IntType(64)
            f32 = ir.FloatType()
            vty = ir.VectorType(f32, width)
            vptr = vty.as_pointer()

            def as_i64(value, ty):
                return context.cast(builder, value, ty, types.int64)

            src_i, dst_i, stride_i, n_in_i, n_out_i, w_off_i, j0_i, b_off_i = (
                as_i64(v, t) for v, t in zip(
                    (src_v, dst_v, stride_v, n_in_v, n_out_v, w_off_v, j0_v, b_off_v),
                    (aty[1], aty[2], aty[3], aty[4], aty[5], aty[6], aty[8], aty[10])))
            bufp = context.make_array(aty[0])(context, builder, buf_v).data
            wp = context.make_array(aty[7])(context, builder, weights_v).data
            bp = context.make_array(aty[9])(context, builder, biases_v).data
            # llvmlite's declare_intrinsic cannot mangle vector types: named here
            fma = cgutils.get_or_insert_function(builder.module,
                                                 ir.FunctionType(vty, [vty, vty, vty]),
                                                 f"llvm.fma.v{width}f32")

            def vec_at(base, index):
                return builder.bitcast(builder.gep(base, [index]), vptr)

            def lane_base(l):
                return builder.mul(stride_i, ir.Constant(i64, l))

            bias = [builder.load(vec_at(bp, builder.add(builder.add(b_off_i, j0_i),
                                                        ir.Constant(i64, b * width))), align=4)
                    for b in range(n_vec)]
            accs = []
            for l in range(lanes):
                row = []
                for b in range(n_vec):
                    at = builder.add(builder.add(dst_i, lane_base(l)),
                                     builder.add(j0_i, ir.Constant(i64, b * width)))
                    slot = cgutils.alloca_once(builder, vty)
                    builder.store(bias[b], slot)
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


TAIL_COLUMNS = 4
"""Output columns one tail block computes (kernels/mlp.py calls it twice for 5..7)."""


def _make_tail(lanes: int):
    """An intrinsic fn(buf, src, dst, stride, n_in, n_out, w_off, weights, j0, biases,
    b_off): what a block computes, for the TAIL_COLUMNS outputs j0 .. j0 + 3 (the ones past n_out - 1
    recompute and store output n_out - 1, the same value to the same place), with the
    lanes as the vector: a 3-action output layer gives only 3 outputs per lane, too few
    to fill a vector, and as 12 scalar chains of n_in dependent multiply-adds each it
    was a fifth of the forward pass. Here one vector per output holds all lanes."""

    @intrinsic
    def tail(typingctx, buf, src, dst, stride, n_in, n_out, w_off, weights, j0, biases, b_off):
        if not _operands_ok(buf, weights, biases, (src, dst, stride, n_in, n_out, w_off, j0,
                                                   b_off)):
            return None
        sig = types.none(buf, src, dst, stride, n_in, n_out, w_off, weights, j0, biases,
                         b_off)

        def codegen(context, builder, signature, args):
            aty = signature.args
            i64 = ir.IntType(64)
            i32 = ir.IntType(32)
            f32 = ir.FloatType()
            vty = ir.VectorType(f32, lanes)
            src_i, dst_i, stride_i, n_in_i, n_out_i, w_off_i, j0_i, b_off_i = (
                context.cast(builder, args[i], aty[i], types.int64)
                for i in (1, 2, 3, 4, 5, 6, 8, 10))
            bufp = context.make_array(aty[0])(context, builder, args[0]).data
            wp = context.make_array(aty[7])(context, builder, args[7]).data
            bp = context.make_array(aty[9])(context, builder, args[9]).data
            fma = cgutils.get_or_insert_function(builder.module,
                                                 ir.FunctionType(vty, [vty, vty, vty]),
                                                 f"llvm.fma.v{lanes}f32")
            undef = ir.Constant(vty, ir.Undefined)
            zeros = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
            last = builder.sub(n_out_i, ir.Constant(i64, 1))
            cols = []
            for c in range(TAIL_COLUMNS):
                j = builder.add(j0_i, ir.Constant(i64, c))
                cols.append(builder.select(builder.icmp_signed("<", j, n_out_i), j, last))
            lane_off = [builder.mul(stride_i, ir.Constant(i64, l)) for l in range(lanes)]

            def gather(base, col):
                v = undef
                for l in range(lanes):
                    at = builder.add(builder.add(base, lane_off[l]), col)
                    v = builder.insert_element(v, builder.load(builder.gep(bufp, [at])),
                                               ir.Constant(i32, l))
                return v

            def splat(value):
                return builder.shuffle_vector(
                    builder.insert_element(undef, value, ir.Constant(i32, 0)), undef, zeros)

            slots = []
            for c in range(TAIL_COLUMNS):
                slot = cgutils.alloca_once(builder, vty)
                builder.store(splat(builder.load(builder.gep(bp, [builder.add(b_off_i, cols[c])]))),
                              slot)
                slots.append(slot)
            with cgutils.for_range(builder, n_in_i) as loop:
                k = loop.index
                hv = gather(src_i, k)
                row = builder.add(w_off_i, builder.mul(k, n_out_i))
                for c in range(TAIL_COLUMNS):
                    wv = splat(builder.load(builder.gep(wp, [builder.add(row, cols[c])])))
                    builder.store(builder.call(fma, [hv, wv, builder.load(slots[c])]), slots[c])
            for c in range(TAIL_COLUMNS):
                acc = builder.load(slots[c])
                for l in range(lanes):
                    at = builder.add(builder.add(dst_i, lane_off[l]), cols[c])
                    builder.store(builder.extract_element(acc, ir.Constant(i32, l)),
                                  builder.gep(bufp, [at]))
            return context.get_dummy_value()

        return sig, codegen

    return tail


tail4_nb = _make_tail(4)
tail2_nb = _make_tail(2)
tail1_nb = _make_tail(1)

# (lanes, vectors of VECTOR) blocks the layer loops of kernels/mlp.py use, and 8-wide ones
# for the last 8..15 outputs where VECTOR is 16
block4x4_nb = _make_block(4, 4)
block4x2_nb = _make_block(4, 2)
block4x1_nb = _make_block(4, 1)
block2x2_nb = _make_block(2, 2)
block2x1_nb = _make_block(2, 1)
block1x2_nb = _make_block(1, 2)
block1x1_nb = _make_block(1, 1)
block4x8_nb = _make_block(4, 1, 8)
block2x8_nb = _make_block(2, 1, 8)
block1x8_nb = _make_block(1, 1, 8)

__all__ = ["VECTOR", "AVX512", "WIDE_BLOCKS", "TAIL_COLUMNS", "tail4_nb", "tail2_nb", "tail1_nb", "prefer_wide_vectors_nb", "block4x2_nb", "block4x1_nb", "block2x2_nb",
           "block2x1_nb", "block1x2_nb", "block1x1_nb", "block4x8_nb", "block2x8_nb",
           "block1x8_nb"]
