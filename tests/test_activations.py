"""The kernel's float32 tanh: within 1 ulp of torch.tanh over the float32 range, exact
at the special values, bit-identical to its NumPy twin, and vectorised in float32."""

from __future__ import annotations

import math
import platform
import re

import numpy as np
import pytest
from numba import njit

from kernels.activations import (
    tanh_f32_array_nb,
    tanh_f32_nb,
    tanh_f32_np,
    tanh_inplace_f32_nb,
)

torch = pytest.importorskip("torch")

SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45,
                     1.1754942e-38, 1.1754944e-38, -1.1754944e-38, 3.4028235e38,
                     -3.4028235e38, 1e-20, 2.44e-4, 2.45e-4, 0.5493, 0.55, 0.5, 1.0, 9.0,
                     9.01, 9.011, 10.0, 20.0, 20.5, 88.7, 89.0, -9.01, -0.55],
                    dtype=np.float32)


def _ordered(bits_f32: np.ndarray) -> np.ndarray:
    """float32 -> integers in the order of the reals, so |a - b| counts ulps."""
    i = bits_f32.view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(_ordered(a) - _ordered(b))


def _torch_tanh(x: np.ndarray) -> np.ndarray:
    # One thread: here torch's second intra-op thread, started after a Numba call in
    # the same process, now and then returned a whole chunk of wrong tanh values (up
    # to 1.5e3 ulps, ~1 process in 10); torch on the calling thread never did.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.tanh(torch.from_numpy(x)).numpy()
    finally:
        torch.set_num_threads(threads)


def _compare_with_torch(x: np.ndarray, chunk: int = 1 << 20):
    """((max ulps, x, ours, torch's) at the worst input, share of identical floats),
    a chunk at a time: whole-array temporaries of tens of millions of values raised this
    process's peak RSS past 1 GB, which the children of later tests inherit (Linux
    carries ru_maxrss across fork and exec) and which a memory bound there then sees."""
    worst = (-1, None, None, None)
    n_same = n = 0
    for a in range(0, x.shape[0], chunk):
        xs = x[a:a + chunk]
        got = tanh_f32_array_nb(xs)
        want = _torch_tanh(xs)
        nan = np.isnan(xs)
        assert np.array_equal(np.isnan(got), nan)
        assert np.array_equal(np.isnan(want), nan)
        d = _ulps(got[~nan], want[~nan])
        if d.size:
            k = int(np.argmax(d))
            if d[k] > worst[0]:
                worst = (int(d[k]), xs[~nan][k], got[~nan][k], want[~nan][k])
        n_same += int(np.count_nonzero(d == 0))
        n += d.size
    return worst, n_same / n


def _samples(n_random_bits: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts = [
        # every float32 bit pattern is equally likely: the whole range, NaNs included
        rng.integers(0, 2**32, n_random_bits, dtype=np.uint64).astype(np.uint32).view(np.float32),
        # the range where tanh is not 0, x or +-1 in float32, densely
        rng.uniform(-10.0, 10.0, n_random_bits // 2).astype(np.float32),
        rng.uniform(-1.0, 1.0, n_random_bits // 4).astype(np.float32),
        # every subnormal's neighbourhood and the tiny normals
        (rng.integers(1, 2**23, 2**16, dtype=np.int64).astype(np.uint32)
         | rng.choice(np.array([0, 0x80000000], dtype=np.uint32), 2**16)).view(np.float32),
        # consecutive floats around the switch points of the formula
        *[np.nextafter(np.float32(c), np.float32(np.inf)) + np.arange(-2000, 2000, dtype=np.float32)
          * np.spacing(np.float32(c)) for c in (0.5493, 0.5493061, 9.01, 1e-4, 2.4e-4)],
        # where k = round(2|x| / ln2) steps (the exp branch's range reduction)
        *[np.nextafter(np.float32((k + 0.5) * math.log(2) / 2), np.float32(np.inf))
          + np.arange(-300, 300, dtype=np.float32) * np.spacing(np.float32((k + 0.5) * math.log(2) / 2))
          for k in range(1, 27)],
        SPECIALS,
    ]
    x = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts])
    return np.concatenate([x, -x])


def test_within_one_ulp_of_torch_on_millions_of_values():
    x = _samples(8_000_000)
    worst, same = _compare_with_torch(x)
    assert worst[0] <= 1, (f"{worst[0]} ulps at x = {worst[1]!r}: {worst[2]!r} vs torch "
                           f"{worst[3]!r}")
    # mostly the very same float
    assert same > 0.99


def test_special_values_exactly():
    x = SPECIALS
    got = tanh_f32_array_nb(x)
    assert np.isnan(got[np.isnan(x)]).all()
    fin = ~np.isnan(x)
    # sign of zero kept, +-inf -> +-1, tiny x -> x exactly, large |x| -> +-1 exactly
    assert np.array_equal(np.signbit(got[fin]), np.signbit(x[fin]))
    assert got[0] == 0.0 and not np.signbit(got[0]) and np.signbit(got[1])
    assert got[2] == 1.0 and got[3] == -1.0
    tiny = fin & (np.abs(x) < 1e-4)
    assert np.array_equal(got[tiny], x[tiny])
    big = fin & (np.abs(x) >= 9.02)
    assert np.array_equal(got[big], np.sign(x[big]))


def test_numpy_twin_is_bit_identical():
    x = _samples(400_000, seed=1)
    for k in range(0, x.shape[0], 1 << 18):  # chunks: the twin's float64 temporaries
        xs = x[k:k + (1 << 18)]
        a = tanh_f32_array_nb(xs)
        b = tanh_f32_np(xs)
        assert b.dtype == np.float32
        assert a.view(np.uint32).tobytes() == b.view(np.uint32).tobytes()


def test_scalar_inplace_and_array_forms_agree():
    x = _samples(20_000, seed=2)
    buf = x.copy()
    n = buf.shape[0] - 5
    tanh_inplace_f32_nb(buf, n)
    want = tanh_f32_array_nb(x)
    assert buf[:n].tobytes() == want[:n].tobytes()
    assert buf[n:].tobytes() == x[n:].tobytes()  # past n untouched

    @njit
    def scalar(v):
        return tanh_f32_nb(v)

    for v in x[:300]:
        got = np.float32(scalar(v))  # via a Python float: NaN payloads may change
        want = tanh_f32_array_nb(np.array([v]))[0]
        assert (np.isnan(got) and np.isnan(want)) or got.tobytes() == want.tobytes()
    assert tanh_f32_array_nb(x.reshape(-1, 4)[:10]).shape == (10, 4)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="checks x86 vector instructions")
def test_loop_vectorises_without_libm_calls():
    @njit(error_model="numpy")
    def apply(buf, n):
        for j in range(n):
            buf[j] = tanh_f32_nb(buf[j])

    buf = np.zeros(64, dtype=np.float32)
    apply(buf, 64)
    asm = apply.inspect_asm(apply.signatures[0])
    # packed float32 division and fused multiply-adds = the vector loop, all in float32
    # (no double division left); no call to a scalar tanh or fma
    assert "vdivps" in asm or "divps" in asm
    assert "divpd" not in asm and "divsd" not in asm
    assert "tanh" not in asm.lower()
    if "+fma" in _host_features():
        assert re.search(r"vfn?madd\w*ps", asm)


def _host_features() -> list[str]:
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    return llvm.get_host_cpu_features().flatten().split(",")


def _every_float32(start: int, stop: int, step: int) -> np.ndarray:
    return np.arange(start, stop, step, dtype=np.int64).astype(np.uint32).view(np.float32)


def test_within_one_ulp_of_torch_on_a_dense_sweep_of_every_exponent():
    """The whole float32 range: for each of the 256 exponents of each sign, 2^13
    mantissas spread evenly over the binade (plus its first and last few), so every
    binade's rounding regime is covered, not only the ranges random sampling hits. The
    full 2^32 sweep (benchmarks/tanh_ulps.py --all) found 1 ulp at most, the same
    float on 99.90%."""
    per = 1 << 13
    parts = []
    for sign in (0, 0x80000000):
        for e in range(256):
            lo = sign | (e << 23)
            parts.append(_every_float32(lo, lo + (1 << 23), (1 << 23) // per))
            parts.append(_every_float32(lo, lo + 16, 1))
            parts.append(_every_float32(lo + (1 << 23) - 16, lo + (1 << 23), 1))
    x = np.concatenate(parts)
    worst, same = _compare_with_torch(x)
    assert worst[0] <= 1, f"{worst[0]} ulps at x = {worst[1]!r}: {worst[2]!r} vs {worst[3]!r}"
    assert same > 0.995


# ---------------------------------------------------------------------------------
# the fused multiply-add of the layer loops (kernels/fma.py) and its twins

def _exact_fma_f32(a, b, c):
    """Correctly rounded float32 of a*b + c, by exact rational arithmetic."""
    from fractions import Fraction

    x = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    # past the largest float32 by half an ulp (2^103) or more, IEEE rounds to infinity
    if abs(x) >= Fraction(float(np.finfo(np.float32).max)) + 2 ** 103:
        return np.float32(np.inf if x > 0 else -np.inf)
    y = np.float32(float(x))  # within an ulp; pick the nearest of it and its neighbours
    cands = [np.nextafter(y, np.float32(-np.inf)), y, np.nextafter(y, np.float32(np.inf))]
    cands = [v for v in cands if np.isfinite(v)]
    return min(cands, key=lambda v: (abs(Fraction(float(v)) - x),
                                     int(np.array(v).view(np.uint32)) & 1))


def _fma_cases(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    c = rng.standard_normal(n).astype(np.float32)
    # cancellation: c ~ -a*b, where a separate multiply and add lose most bits
    k = n // 3
    c[:k] = (-(a[:k].astype(np.float64) * b[:k]) * (1 + 1e-7 * rng.standard_normal(k))).astype(np.float32)
    # tiny addends: the product decides, c only breaks ties
    c[k:2 * k] *= np.float32(1e-8)
    # subnormal and huge magnitudes
    a[-8:] = np.float32(1e-30)
    b[-8:] = np.float32(1e-15)
    a[-16:-8] = np.float32(3e38)
    return a, b, c


def test_fma_is_correctly_rounded_and_its_twins_agree():
    from numba import njit

    from kernels.fma import fma_f32_nb, fma_f32_np, fma_f32_py

    @njit
    def apply(a, b, c, out):
        for i in range(a.size):
            out[i] = fma_f32_nb(a[i], b[i], c[i])

    a, b, c = _fma_cases(200_000, 4)
    got = np.empty_like(a)
    apply(a, b, c, got)
    twin = fma_f32_np(a, b, c)
    assert got.view(np.uint32).tobytes() == twin.view(np.uint32).tobytes()
    # a separate multiply and add differs on many of these: the test can tell them apart
    with np.errstate(over="ignore"):
        assert np.count_nonzero(a * b + c != got) > 1000
    for i in list(range(0, a.size, 97)) + list(range(a.size - 16, a.size)):
        want = _exact_fma_f32(a[i], b[i], c[i])
        assert got[i] == want, (a[i], b[i], c[i])
        assert fma_f32_py(a[i], b[i], c[i]).tobytes() == got[i].tobytes()


def test_layer_loops_use_fused_multiply_adds():
    from kernels.mlp import _layer4_nb

    if "+fma" not in _host_features():
        pytest.skip("no FMA on this CPU")
    # a jitted caller compiles the helper into its own code (it has no Python wrapper)
    from numba import njit

    @njit
    def call(buf, w, b):
        _layer4_nb(buf, 0, 64, 16, 16, 16, 0, w, b, 0)

    buf = np.zeros(64 + 4 * 16, np.float32)
    w = np.zeros(256, np.float32)
    call(buf, w, np.zeros(16, np.float32))
    asm = call.inspect_asm(call.signatures[0])
    assert re.search(r"vfn?madd\w*ps", asm)
