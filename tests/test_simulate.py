"""The batched simulation kernel against the one-trajectory reference in
tests/naive_simulate.py: equity within 1e-9 relative, trades identical."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from engine.batch import Batch
from numba import njit

from kernels.mlp import LANES as _LANES, _forward_nb
from kernels.simulate import simulate
from naive_simulate import naive_forward, naive_simulate

STATE = ("position", "unrealized_return", "bars_held")


# ---------------------------------------------------------------------------------
# stand-ins (the fields of engine.policy.Policy that the packer reads)

def make_policy(rng, n_features=3, hidden=(8,), window=1, state=(), activation="tanh",
                kind="discrete", targets=(-1.0, 0.0, 1.0), norm=False, low=-1.0, high=1.0,
                scale=1.0):
    names = [f"f{k}" for k in range(n_features)]
    dim = n_features * window + len(state)
    n_out = len(targets) if kind == "discrete" else 1
    sizes = [dim, *hidden, n_out]
    layers = []
    for n_in, n_o in zip(sizes[:-1], sizes[1:]):
        w = (scale * rng.standard_normal((n_o, n_in)) / np.sqrt(n_in)).astype(np.float32)
        b = (0.2 * rng.standard_normal(n_o)).astype(np.float32)
        layers.append((w, b))
    obs_norm = None
    if norm:
        obs_norm = SimpleNamespace(mean=(0.3 * rng.standard_normal(dim)).astype(np.float32),
                                   var=rng.uniform(0.2, 3.0, dim).astype(np.float32),
                                   epsilon=1e-8, clip=float(rng.choice([1.5, 5.0, 10.0])))
    return SimpleNamespace(
        features=names, window=window, state_features=list(state), obs_norm=obs_norm,
        layers=layers, activation=activation, action_kind=kind,
        targets=np.array(targets, dtype=np.float64) if kind == "discrete" else None,
        low=low, high=high, obs_dim=dim)


def make_series(rng, n_bars, names, constant=False):
    if constant:
        close = np.full(n_bars, 100.0)
        open_ = close.copy()
    else:
        close = 100.0 * np.exp(np.cumsum(0.02 * rng.standard_normal(n_bars)))
        open_ = close * np.exp(0.005 * rng.standard_normal(n_bars))
    feats = rng.standard_normal((n_bars, len(names)))
    return open_, close, feats


def linear_policy(features, state, weights, bias, targets):
    """One layer, no hidden units: out = W @ obs + b, with W and b given exactly."""
    w = np.array(weights, dtype=np.float32).reshape(len(targets), -1)
    return SimpleNamespace(
        features=list(features), window=1, state_features=list(state), obs_norm=None,
        layers=[(w, np.array(bias, dtype=np.float32))], activation="tanh",
        action_kind="discrete", targets=np.array(targets, dtype=np.float64), low=-1.0,
        high=1.0, obs_dim=w.shape[1])


# ---------------------------------------------------------------------------------
# running both sides

FILL_NAME = {0: "next-open", 1: "close", 2: "next-open-late"}


def run_both(cases, fill, series):
    """cases: (policy, series index, start, end, capital, commission, slippage, long_only).
    series: list of (open, close, feats, names). fill: the batch's fill code, or a list
    of one code per case (each trajectory its own, in the same kernel call). Returns
    [(kernel dict, naive dict)]."""
    per_case = not isinstance(fill, int)
    batch = Batch(fill_mode=0 if per_case else fill)
    sids = [batch.add_series(o, c, f, n) for o, c, f, n in series]
    for i, (pol, s, start, end, cap, com, slip, lo) in enumerate(cases):
        mid = batch.add_model(pol, sids[s])
        batch.add_trajectory(mid, sids[s], start, end, capital=cap, commission=com,
                             slippage=slip, long_only=lo,
                             fill_mode=int(fill[i]) if per_case else None)
    out = batch.run(bars_per_year=8766.0)
    pairs = []
    for i, ((pol, s, start, end, cap, com, slip, lo), k) in enumerate(zip(cases, out)):
        o, c, f, names = series[s]
        cols = [names.index(n) for n in pol.features]
        mode = int(fill[i]) if per_case else fill
        ref = naive_simulate(pol, o, c, f[:, cols], start, end, cap, com, slip, lo,
                             FILL_NAME[mode])
        pairs.append((k, ref))
    return pairs


def assert_same(kernel, ref, capital):
    eq = np.asarray(kernel["equity"])
    ref_eq = np.asarray(ref["equity"])
    assert eq.shape == ref_eq.shape
    np.testing.assert_allclose(eq, ref_eq, rtol=1e-9, atol=1e-9 * capital)
    assert len(kernel["trades"]) == len(ref["trades"])
    for got, want in zip(kernel["trades"], ref["trades"]):
        assert got[:3] == want[:3]
        np.testing.assert_allclose(got[3:5], want[3:5], rtol=1e-12)
        np.testing.assert_allclose(got[5:], want[5:], rtol=1e-9, atol=1e-9 * capital)
    st = kernel["stats"]
    assert st["exposure_bars"] == ref["exposure_bars"]
    assert st["clipped_shorts"] == ref["clipped_shorts"]
    assert st["n_fills"] == ref["n_fills"]
    assert st["traded_notional"] == pytest.approx(ref["traded_notional"], rel=1e-9)
    # every cash flow belongs to a trade, so the final equity is C + total PnL
    pnl = sum(t[5] for t in ref["trades"])
    assert eq[-1] == pytest.approx(capital + pnl, rel=1e-9, abs=1e-9 * capital)
    assert eq[0] == capital


# ---------------------------------------------------------------------------------
# randomised cases

def random_case(seed):
    rng = np.random.default_rng(seed)
    n_series = int(rng.integers(1, 4))
    series = []
    for s in range(n_series):
        names = [f"f{k}" for k in rng.permutation(6)]  # each series lays columns out its own way
        n_bars = int(rng.integers(30, 90))
        o, c, f = make_series(rng, n_bars, names, constant=rng.random() < 0.1)
        series.append((o, c, f, names))
    policies = []
    for _ in range(int(rng.integers(1, 4))):
        kind = "discrete" if rng.random() < 0.7 else "continuous"
        if rng.random() < 0.5:
            targets = (-1.0, 0.0, 1.0)
        else:
            targets = tuple(rng.choice([math.nan, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5],
                                       size=int(rng.integers(2, 6))))
        n_state = int(rng.integers(0, 4))
        policies.append(make_policy(
            rng, n_features=int(rng.integers(1, 7)),
            hidden=tuple(int(h) for h in rng.integers(1, 20, size=int(rng.integers(0, 3)))),
            window=int(rng.integers(1, 4)), state=tuple(rng.permutation(STATE)[:n_state]),
            activation=str(rng.choice(["tanh", "relu"])), kind=kind, targets=targets,
            norm=bool(rng.random() < 0.5), low=-float(rng.uniform(0.2, 1.5)),
            high=float(rng.uniform(0.2, 1.5)), scale=float(rng.uniform(0.5, 4.0))))
    cases = []
    for _ in range(int(rng.integers(1, 7))):
        pol = policies[int(rng.integers(len(policies)))]
        s = int(rng.integers(n_series))
        n_bars = series[s][0].shape[0]
        start = int(rng.integers(pol.window - 1, n_bars - 2))
        end = int(rng.integers(start + 1, n_bars + 1))
        cases.append((pol, s, start, end, float(rng.choice([1.0, 1e4, 1e5])),
                      float(rng.choice([0.0, 0.001, 0.01])), float(rng.choice([0.0, 5e-4, 0.02])),
                      bool(rng.random() < 0.4)))
    return cases, int(rng.integers(0, 3)), series


def test_random_batches_match_the_reference():
    seen = {"flip": 0, "hold": 0, "clipped": 0, "trades": 0}
    for seed in range(60):
        cases, fill, series = random_case(seed)
        for (pol, *_rest), (k, ref) in zip(cases, run_both(cases, fill, series)):
            assert_same(k, ref, _rest[3])
            trades = ref["trades"]
            seen["trades"] += len(trades)
            seen["flip"] += sum(1 for a, b in zip(trades, trades[1:]) if a[1] == b[0])
            seen["clipped"] += ref["clipped_shorts"]
            if pol.action_kind == "discrete" and np.isnan(pol.targets).any():
                seen["hold"] += 1
    # the random cases really exercise the paths they are meant to
    assert seen["trades"] > 300
    assert seen["flip"] > 20
    assert seen["clipped"] > 20
    assert seen["hold"] > 5


def test_mixed_fill_modes_in_one_call_match_single_mode_runs():
    """Each trajectory its own fill mode (a run's stress scenarios, the late fill among
    them, in one call): per trajectory exactly what a batch of that mode alone gives,
    and the naive reference. Every case also runs under all three modes, so lanes of
    one model in lockstep differ in their fill mode."""
    for seed in range(40):
        cases, _, series = random_case(seed)
        rng = np.random.default_rng(1000 + seed)
        cases = cases + cases + cases
        n = len(cases) // 3
        modes = [0] * n + [1] * n + [2] * n
        order = rng.permutation(len(cases))  # the modes interleaved in the list
        cases = [cases[i] for i in order]
        modes = [modes[i] for i in order]
        mixed = run_both(cases, modes, series)
        for (pol, *rest), (k, ref) in zip(cases, mixed):
            assert_same(k, ref, rest[3])
        for mode in (0, 1, 2):
            ids = [i for i, m in enumerate(modes) if m == mode]
            alone = run_both([cases[i] for i in ids], mode, series)
            for i, (single, _) in zip(ids, alone):
                joint = mixed[i][0]
                assert joint["equity"].tobytes() == single["equity"].tobytes()
                assert joint["trades"] == single["trades"]
                assert joint["stats"] == single["stats"]


def test_fill_modes_differ_where_the_orders_do():
    """The mixed-mode test above could pass with a kernel that ignored the per-trajectory
    code if the modes gave equal results: here they do not."""
    cases, _, series = random_case(7)
    pol, s, start, end = cases[0][:4]
    n_bars = series[s][0].shape[0]
    case = (pol, s, pol.window - 1, n_bars, 1e5, 0.001, 0.0005, False)
    outs = [k for k, _ in run_both([case] * 3, [0, 1, 2], series)]
    assert len({o["equity"].tobytes() for o in outs}) == 3


def test_a_trajectory_fill_mode_is_checked_and_overrides_the_batch_default():
    from engine.errors import FoldgateError

    rng = np.random.default_rng(2)
    pol = make_policy(rng)
    batch = Batch(fill_mode="close")
    o, c, f = make_series(rng, 30, pol.features)
    sid = batch.add_series(o, c, f, pol.features)
    mid = batch.add_model(pol, sid)
    for bad in ("at-noon", 3, True):
        with pytest.raises(FoldgateError, match="fill"):
            batch.add_trajectory(mid, sid, 0, 30, capital=1e5, fill_mode=bad)
    ids = [batch.add_trajectory(mid, sid, 0, 30, capital=1e5, fill_mode=m)
           for m in (None, "next-open", 2, "close")]
    assert batch.fill_modes(ids).tolist() == [1, 0, 2, 1]
    assert batch.pack(ids).arrays["fill_mode"].tolist() == [1, 0, 2, 1]


@pytest.mark.parametrize("fill", [0, 1, 2])
def test_several_models_and_series_in_one_call(fill):
    rng = np.random.default_rng(11)
    names_a = ["f0", "f1", "f2", "f3"]
    names_b = ["f3", "f2", "x", "f1", "f0"]
    series = [(*make_series(rng, 120, names_a), names_a),
              (*make_series(rng, 80, names_b), names_b)]
    small = make_policy(rng, n_features=2, hidden=(), state=("position",))
    wide = make_policy(rng, n_features=4, hidden=(32, 16), window=3, state=STATE, norm=True)
    cont = make_policy(rng, n_features=3, hidden=(5,), kind="continuous", activation="relu",
                       state=("unrealized_return",), low=-0.7, high=1.2)
    cases = []
    for pol in (small, wide, cont):
        for s, n in ((0, 120), (1, 80)):
            for start, end in ((pol.window - 1 + 3, n // 2), (n // 2, n)):
                cases.append((pol, s, start, end, 1e5, 0.001, 0.0005, pol is wide))
    for (pol, *rest), (k, ref) in zip(cases, run_both(cases, fill, series)):
        assert_same(k, ref, rest[3])
        assert k["metrics"]["bars"] == rest[2] - rest[1]


# ---------------------------------------------------------------------------------
# edge cases

def _one(pol, fill=0, n_bars=40, start=0, end=None, long_only=False, constant=False,
         commission=0.001, slippage=0.0005, seed=3):
    rng = np.random.default_rng(seed)
    names = list(pol.features)
    series = [(*make_series(rng, n_bars, names, constant=constant), names)]
    case = (pol, 0, start, n_bars if end is None else end, 1e5, commission, slippage, long_only)
    (k, ref), = run_both([case], fill, series)
    assert_same(k, ref, 1e5)
    return k, ref


@pytest.mark.parametrize("fill", [0, 1])
def test_no_trades(fill):
    # the "flat" action always wins by a wide margin
    pol = linear_policy(["f0"], [], [0.0, 0.0, 0.0], [0.0, 5.0, 0.0], [-1.0, 0.0, 1.0])
    k, _ = _one(pol, fill)
    assert k["trades"] == []
    assert np.all(k["equity"] == 1e5)
    assert k["stats"] == {"exposure_bars": 0, "traded_notional": 0.0, "clipped_shorts": 0,
                          "n_fills": 0}


@pytest.mark.parametrize("fill", [0, 1])
def test_a_trade_every_bar(fill):
    # flat -> buy, long -> sell: the position toggles at every decision
    pol = linear_policy([], ["position"], [2.0, 0.0], [-1.0, 0.0], [0.0, 1.0])
    n = 30
    k, _ = _one(pol, fill, n_bars=n)
    trades = k["trades"]
    assert len(trades) == n // 2
    first = 1 if fill == 0 else 0
    assert [t[0] for t in trades] == list(range(first, n, 2))
    assert all(t[1] == min(t[0] + 1, n - 1) for t in trades)
    assert k["stats"]["n_fills"] == 2 * len(trades)


@pytest.mark.parametrize("fill", [0, 1])
def test_a_flip_every_bar(fill):
    # the tie at position 0 goes to the lowest index (short); then always the other side
    pol = linear_policy([], ["position"], [1.0, -1.0], [0.0, 0.0], [-1.0, 1.0])
    n = 25
    k, _ = _one(pol, fill, n_bars=n)
    trades = k["trades"]
    decisions = n - 1
    assert len(trades) == decisions
    assert [t[2] for t in trades[:4]] == [-1, 1, -1, 1]
    assert all(a[1] == b[0] for a, b in zip(trades, trades[1:]))
    assert k["stats"]["n_fills"] == decisions + 1  # the last trade closes at the fold end
    # long-only: every short decision is clipped to flat and counted
    k, ref = _one(pol, fill, n_bars=n, long_only=True)
    assert all(t[2] == 1 for t in k["trades"])
    assert k["stats"]["clipped_shorts"] == ref["clipped_shorts"] > 0


@pytest.mark.parametrize("fill", [0, 1])
def test_fold_of_two_bars(fill):
    pol = linear_policy(["f0"], [], [0.0, 0.0], [0.0, 1.0], [0.0, 1.0])  # always long
    k, _ = _one(pol, fill, n_bars=10, start=4, end=6)
    assert len(k["equity"]) == 3
    entry = 5 if fill == 0 else 4
    assert k["trades"][0][:3] == (entry, 5, 1)
    assert k["stats"]["exposure_bars"] == (1 if fill == 0 else 2)


def test_fold_of_one_bar_has_no_decision():
    pol = linear_policy(["f0"], [], [0.0, 0.0], [0.0, 1.0], [0.0, 1.0])
    k, _ = _one(pol, 0, n_bars=10, start=4, end=5)
    assert list(k["equity"]) == [1e5, 1e5] and k["trades"] == []


@pytest.mark.parametrize("fill", [0, 1])
def test_constant_prices_lose_only_costs(fill):
    pol = linear_policy([], ["position"], [2.0, 0.0], [-1.0, 0.0], [0.0, 1.0])
    k, ref = _one(pol, fill, constant=True, commission=0.001, slippage=0.0)
    cost = sum(t[6] for t in ref["trades"])
    assert k["equity"][-1] == pytest.approx(1e5 - cost, rel=1e-12)
    k, _ = _one(pol, fill, constant=True, commission=0.0, slippage=0.0)
    np.testing.assert_allclose(k["equity"], 1e5, rtol=1e-12)


def test_hold_keeps_the_target():
    # flat: buy; long: hold (action 0) -- one trade from the first fill to the fold end
    pol = linear_policy(["f0"], ["position"], [0.0, 10.0, 0.0, 0.0], [-1.0, 0.0],
                        [math.nan, 1.0])
    k, _ = _one(pol, 0, n_bars=20)
    assert len(k["trades"]) == 1 and k["trades"][0][:2] == (1, 19)


def test_partial_reduce_and_enlarge_average_prices():
    # by bars_held: open at 0.5, enlarge to 1.0 a bar later, reduce to 0.25 two bars
    # after that, close at the fold end: one trade of four fills
    pol = linear_policy([], ["bars_held"], [-100.0, 0.0, 100.0], [1.0, 0.5, -2.4],
                        [0.5, 1.0, 0.25])
    k, _ = _one(pol, 1, n_bars=12, commission=0.001, slippage=0.01)
    assert len(k["trades"]) == 1 and k["stats"]["n_fills"] == 4
    entry_bar, exit_bar, direction, entry_price, exit_price, _, _ = k["trades"][0]
    assert (entry_bar, exit_bar, direction) == (0, 11, 1)
    # the same prices _one drew; fills at the close, buys pay 1%, sells get 1% less
    _, c, _ = make_series(np.random.default_rng(3), 12, [])
    cash, units = 1e5, 0.0
    fills = []
    for t, target in ((0, 0.5), (1, 1.0), (3, 0.25), (11, 0.0)):
        new = target * (cash + units * c[t]) / c[t]
        d = new - units
        fp = c[t] * (1.01 if d > 0 else 0.99)
        cash -= d * fp + 0.001 * abs(d) * fp
        units = new
        fills.append((abs(d), fp))
    (u0, p0), (u1, p1), (u2, p2), (u3, p3) = fills
    assert entry_price == pytest.approx((u0 * p0 + u1 * p1) / (u0 + u1), rel=1e-12)
    assert exit_price == pytest.approx((u2 * p2 + u3 * p3) / (u2 + u3), rel=1e-12)
    assert k["equity"][-1] == pytest.approx(cash, rel=1e-12)


def test_continuous_actions_clip_to_bounds():
    rng = np.random.default_rng(5)
    pol = make_policy(rng, n_features=2, hidden=(4,), kind="continuous", low=-0.3, high=0.4,
                      scale=20.0)
    k, ref = _one(pol, 1, n_bars=60)
    assert len(ref["trades"]) > 3


# ---------------------------------------------------------------------------------
# the forward pass itself

@njit
def forward_from_python(buf, width, n_lanes, l0, l1, layer_in, layer_out, layer_w_off,
                        layer_b_off, weights, biases, act):
    # the kernel's helpers are compiled without a Python wrapper (a cold start compiles
    # less); a jitted caller reaches them
    return _forward_nb(buf, width, n_lanes, l0, l1, layer_in, layer_out, layer_w_off,
                       layer_b_off, weights, biases, act)


def _packed_alone(rng, pol) -> dict:
    """The packed arrays of one 5-bar trajectory of `pol` on a random series."""
    batch = Batch()
    o, c, f = make_series(rng, 5, pol.features)
    sid = batch.add_series(o, c, f, pol.features)
    batch.add_trajectory(batch.add_model(pol, sid), sid, 0, 5, capital=1.0)
    return batch.pack().arrays


def test_mlp_matches_naive_forward_bitwise_and_torch_closely():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    for seed in range(12):
        pol = make_policy(rng, n_features=int(rng.integers(1, 9)),
                          hidden=tuple(int(h) for h in rng.integers(1, 70, size=seed % 3)),
                          activation=("tanh", "relu")[seed % 2], scale=3.0)
        a = _packed_alone(rng, pol)
        width = a["max_width"]
        for _ in range(20):
            x = (3 * rng.standard_normal(pol.obs_dim)).astype(np.float32)
            # the same observation in every lane: the 1-, 2- and 4-lane forms must all
            # give the reference's bits
            buf = np.zeros(3 * _LANES * width, np.float32)
            for lane in range(_LANES):
                buf[lane * width:lane * width + pol.obs_dim] = x
            outs = []
            for n_lanes in (1, 2, 4):
                o = forward_from_python(buf, width, n_lanes, 0, len(pol.layers), a["layer_in"],
                                a["layer_out"], a["layer_w_off"], a["layer_b_off"],
                                a["weights"], a["biases"], a["model_act"][0])
                outs += [buf[o + lane * width:o + lane * width + a["layer_out"][-1]].copy()
                         for lane in range(n_lanes)]
            got = outs[0]
            assert all(g.tobytes() == got.tobytes() for g in outs)
            want = naive_forward(pol, x)
            assert got.tobytes() == want.tobytes()
            h = torch.from_numpy(x)
            for i, (w, b) in enumerate(pol.layers):
                h = torch.from_numpy(w) @ h + torch.from_numpy(b)
                if i < len(pol.layers) - 1:
                    h = torch.tanh(h) if pol.activation == "tanh" else torch.relu(h)
            np.testing.assert_allclose(got, h.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n_in, hidden, n_out", [
    (16, (64, 64), 3),  # the reference shape: 4 x 64 blocks and a 3-column tail
    (5, (96,), 5),  # 64 + 32 outputs; a tail of 5 columns takes two tail blocks
    (33, (48, 17), 7),  # 32 + 16 outputs, 16 + a 1-column tail, a 7-column tail
    (3, (8, 24), 9),  # one 8-wide block; 16 + 8; 8 + a 1-column tail
    (70, (1,), 16),  # a 1-wide hidden layer (tail only), one 16-wide block out
    (2, (65,), 2),  # 64 + a 1-column tail
    (9, (), 33),  # no hidden layer: 32 + 1
])
def test_every_block_shape_matches_naive_forward_in_every_lane(n_in, hidden, n_out):
    """Each lane its own observation, in the 1-, 2- and 4-lane forms: every output of
    every lane is the naive reference's, bit for bit, whatever mix of 16-wide blocks,
    8-wide blocks and lane-vector tail blocks the widths take."""
    rng = np.random.default_rng(n_in * 131 + n_out)
    pol = make_policy(rng, n_features=n_in, hidden=hidden, targets=tuple(range(n_out)),
                      scale=2.0)
    a = _packed_alone(rng, pol)
    width = a["max_width"]
    for _ in range(3):
        xs = [(3 * rng.standard_normal(n_in)).astype(np.float32) for _ in range(_LANES)]
        want = [naive_forward(pol, x) for x in xs]
        for n_lanes in (1, 2, _LANES):
            # garbage where nothing is read, so a block that read it would show
            buf = rng.standard_normal(3 * _LANES * width).astype(np.float32) * 1e3
            for lane in range(_LANES):
                buf[lane * width:lane * width + n_in] = xs[lane]
            out = forward_from_python(buf, width, n_lanes, 0, len(pol.layers), a["layer_in"],
                                      a["layer_out"], a["layer_w_off"], a["layer_b_off"],
                                      a["weights"], a["biases"], a["model_act"][0])
            for lane in range(n_lanes):
                got = buf[out + lane * width:out + lane * width + n_out]
                assert got.tobytes() == want[lane].tobytes(), (n_lanes, lane)


def test_every_block_shape_matches_on_a_cpu_without_avx512(tmp_path):
    """The blocks take 8-wide vectors and at most 2 per lane where the CPU has no
    AVX-512 (kernels/simd.py): the same checks, compiled for Haswell (AVX2), which this
    CPU runs too."""
    import os
    import subprocess
    import sys

    if os.environ.get("NUMBA_CPU_NAME"):  # already run for another target
        pytest.skip("NUMBA_CPU_NAME is set")
    env = dict(os.environ, NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES="",
               NUMBA_CACHE_DIR=str(tmp_path))
    code = ("import kernels.simd as s, sys; sys.exit(0 if (s.VECTOR, s.WIDE_BLOCKS) == (8, False)"
            " else 3)")
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    assert subprocess.run([sys.executable, "-c", code], env=env, cwd=root).returncode == 0
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           os.path.join(here, "test_simulate.py"), "-k",
                           "every_block_shape_matches_naive or lockstep_pairs"],
                          env=env, cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout


# ---------------------------------------------------------------------------------
# the wrapper's checks

def _packed(**over):
    rng = np.random.default_rng(1)
    pol = make_policy(rng, n_features=2, hidden=(3,), window=2, state=("position",),
                      norm=True)
    batch = Batch()
    o, c, f = make_series(rng, 30, pol.features)
    sid = batch.add_series(o, c, f, pol.features)
    batch.add_trajectory(batch.add_model(pol, sid), sid, 1, 30, capital=1e5)
    a = dict(batch.pack().arrays)
    a.update(over)
    return a


def test_wrapper_accepts_the_packed_arrays():
    a = _packed()
    res = simulate(**a)
    assert res.equity.shape == (30,) and res["n_trades"].shape == (1,)
    a.pop("traj_eq_off"), a.pop("traj_trade_off")
    res2 = simulate(**a)
    np.testing.assert_array_equal(res.equity, res2.equity)


@pytest.mark.parametrize("change, message", [
    (lambda a: {"weights": a["weights"].astype(np.float64)}, "weights must be float32"),
    (lambda a: {"traj_start": np.array([0])}, "need 0 <= start - 1"),
    (lambda a: {"traj_end": np.array([31])}, "start < end <= 30"),
    (lambda a: {"traj_end": np.array([1])}, "start < end"),
    (lambda a: {"bar_off": np.array([0, 29])}, "bar_off ends at 29"),
    (lambda a: {"close": np.r_[a["close"][:-1], -1.0]}, "close[29] is not a finite price"),
    (lambda a: {"model_obs_dim": np.array([4])}, "model_obs_dim 4"),
    (lambda a: {"layer_in": np.r_[4, a["layer_in"][1:]]}, "first layer takes 4"),
    (lambda a: {"max_width": 2}, "max_width 2"),
    (lambda a: {"traj_model": np.array([1])}, "traj_model[0] is not a model"),
    (lambda a: {"traj_slippage": np.array([1.5])}, "traj_slippage[0]"),
    (lambda a: {"traj_capital": np.array([0.0])}, "traj_capital[0]"),
    (lambda a: {"fill_mode": 3}, "fill_mode"),
    (lambda a: {"fill_mode": np.array([0, 2])}, "fill_mode has 2 entries, expected 1"),
    (lambda a: {"fill_mode": np.array([5])}, "fill_mode[0] must be 0 (next open)"),
    (lambda a: {"fill_mode": np.array([1.0])}, "fill_mode must be integer codes"),
    (lambda a: {"model_state_code": np.array([3])}, "model_state_code"),
    (lambda a: {"targets": np.array([np.inf, 0.0, 1.0])}, "targets must be finite"),
    (lambda a: {"traj_eq_off": np.array([0, 29])}, "traj_eq_off"),
    (lambda a: {"traj_trade_off": np.array([0, 5])}, "traj_trade_off"),
    (lambda a: {"norm_denom": np.zeros_like(a["norm_denom"])}, "norm_denom must be > 0"),
    (lambda a: {"feats": np.where(np.arange(a["feats"].size) == 0, np.nan, a["feats"])},
     "non-finite feature (column 0) at bar 0"),
])
def test_wrapper_refuses_inconsistent_arrays(change, message):
    a = _packed()
    a.update(change(a))
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        simulate(**a)


def test_features_before_the_window_may_be_nan():
    # rows the observations never read (warm-up) may hold NaN; the first read row may not
    a = _packed(traj_start=np.array([5]), traj_eq_off=None, traj_trade_off=None)
    feats = a["feats"].reshape(30, 2).copy()
    feats[:4] = np.nan
    simulate(**dict(a, feats=feats.ravel()))
    feats[4, 1] = np.nan
    with pytest.raises(ValueError, match="column 1.* at bar 4"):
        simulate(**dict(a, feats=feats.ravel()))


def test_lockstep_pairs_give_the_same_results_as_single_runs():
    # the kernel runs up to four trajectories of one model in lockstep (forward passes
    # of 4, 2 or 1 lanes as the shorter ones end); lengths, series, costs and long-only
    # differ within groups, and the last group is short
    rng = np.random.default_rng(21)
    names = ["f0", "f1", "f2"]
    series = [(*make_series(rng, 90, names), names) for _ in range(2)]
    pol = make_policy(rng, hidden=(9, 7), window=2, state=STATE, norm=True,
                      targets=(-1.0, math.nan, 0.5, 1.0))
    spans = [(1, 90), (5, 40), (40, 42), (60, 61), (1, 89), (10, 80), (30, 31), (2, 88),
             (20, 70)]
    cases = [(pol, k % 2, a, b, 1e5 * (1 + k), 0.001 * (k % 3), 0.0005 * (k % 2), k % 3 == 0)
             for k, (a, b) in enumerate(spans)]
    for fill in (0, 1, 2):
        together = [k for k, _ in run_both(cases, fill, series)]
        for case, joint in zip(cases, together):
            (alone, ref), = run_both([case], fill, series)
            assert joint["equity"].tobytes() == alone["equity"].tobytes()
            assert joint["trades"] == alone["trades"]
            assert joint["stats"] == alone["stats"]
            assert_same(joint, ref, case[4])


def test_blocks_cover_every_unit_once_on_several_threads():
    import numba

    from kernels.simulate import _run_blocks

    rng = np.random.default_rng(3)
    n_units = 300
    starts = np.zeros(4 * n_units, dtype=np.int64)
    ends = rng.integers(1, 20_000, 4 * n_units).astype(np.int64)
    units = np.arange(4 * n_units, dtype=np.int64).reshape(n_units, 4)
    seen = []
    old = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        _run_blocks(lambda u0, u1: seen.append((u0, u1)), units, starts, ends)
    finally:
        numba.set_num_threads(old)
    covered = np.concatenate([np.arange(u0, u1) for u0, u1 in seen])
    assert np.array_equal(np.sort(covered), np.arange(n_units))
    assert len(seen) > 1

    def fail(u0, u1):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _run_blocks(fail, units, starts, ends)


def test_a_run_of_many_blocks_matches_the_reference():
    """Enough trajectories that the driver's threads share them out in blocks."""
    rng = np.random.default_rng(21)
    pol = make_policy(rng, n_features=3, hidden=(16, 16), state=("position",), scale=2.0)
    batch = Batch()
    o, c, f = make_series(rng, 3000, pol.features)
    sid = batch.add_series(o, c, f, pol.features)
    mid = batch.add_model(pol, sid)
    spans = [(int(s), int(s) + int(n)) for s, n in zip(rng.integers(0, 500, 40),
                                                     rng.integers(2, 2500, 40))]
    for s, e in spans:
        batch.add_trajectory(mid, sid, s, e, capital=1e5, commission=0.001, slippage=0.0005)
    out = batch.run()
    for (s, e), k in zip(spans[:8], out):
        assert_same(k, naive_simulate(pol, o, c, f, s, e, 1e5, 0.001, 0.0005), 1e5)
    again = batch.run()
    for a, b in zip(out, again):
        assert np.array_equal(a["equity"], b["equity"])


def test_iso_list_is_numpys_iso_text_with_a_z():
    """engine.simulation.iso_list builds the text from a day and a time-of-day table:
    the same as numpy's one string per time, on random seconds across 1900-2200 (before
    1970, leap days, the last second of a day) and sub-second times (truncated)."""
    from engine.simulation import iso_list

    rng = np.random.default_rng(4)
    secs = np.concatenate([rng.integers(-2_208_988_800, 7_258_118_400, 5000),
                           [0, -1, 86_399, 86_400, 951_782_399, 951_782_400, 4_107_542_399]])
    for times in (secs.astype("datetime64[s]"), (secs * 1000 + rng.integers(0, 1000, secs.size)).astype("datetime64[ms]"),
                  secs[:0].astype("datetime64[s]")):
        want = [t + "Z" for t in np.datetime_as_string(times.astype("datetime64[s]"), unit="s").tolist()]
        assert iso_list(times) == want


def test_window_records_trades_are_the_schemas_fields_in_its_order():
    """engine.simulation._window_record writes each trade as a dict display: its keys
    are TRADE_FIELDS, the schema's trade properties in their order, with the kernel's
    values (bars as ISO times, the direction an int)."""
    from types import SimpleNamespace

    from engine.report.schema_file import load_schema
    from engine.simulation import TRADE_FIELDS, _window_record

    schema = load_schema()
    assert tuple(schema["$defs"]["trade"]["properties"]) == TRADE_FIELDS
    times = (np.datetime64("2024-03-01T00:00:00") + np.arange(10) * np.timedelta64(1, "h")).astype("datetime64[s]")
    out = {"trade_int": np.array([[2, 4, 1], [5, 9, -1]], dtype=np.int64),
           "trade_float": np.array([[10.0, 11.0, 0.9, 0.05], [11.5, 10.5, 0.95, 0.04]]),
           "metrics": {"n_trades": np.float64(2), "sharpe": np.float64(np.nan)}, "equity": np.ones(11)}
    rec = _window_record(SimpleNamespace(start=0, end=10), False, out, times)
    assert [list(t) for t in rec["trades"]] == [list(TRADE_FIELDS)] * 2
    assert rec["trades"][1] == {"entry_time": "2024-03-01T05:00:00Z", "exit_time": "2024-03-01T09:00:00Z",
                                "direction": -1, "entry_price": 11.5, "exit_price": 10.5, "pnl": 0.95,
                                "commission": 0.04}
    assert type(rec["trades"][1]["direction"]) is int and rec["metrics"] == {"n_trades": 2, "sharpe": None}
