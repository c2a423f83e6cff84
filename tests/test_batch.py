"""engine/batch.py: packing policies, series and trajectories into the kernel's flat
arrays, and splitting the results back per trajectory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.batch import Batch, feature_columns
from engine.errors import FoldgateError, PolicyError
from naive_simulate import naive_simulate
from test_simulate import assert_same, linear_policy, make_policy, make_series


def test_feature_columns_maps_names_and_names_what_is_missing():
    cols = feature_columns(["b", "a", "b"], ["a", "b", "c"])
    assert cols.dtype == np.int64 and list(cols) == [1, 0, 1]
    with pytest.raises(PolicyError, match="lack x, y"):
        feature_columns(["a", "x", "y"], ["a", "b"])


def test_pack_lays_out_the_internals_arrays():
    rng = np.random.default_rng(0)
    pol = make_policy(rng, n_features=2, hidden=(5,), window=2, state=("bars_held", "position"),
                      norm=True, targets=(math.nan, 0.0, 1.0))
    names = ["z", "f1", "f0"]
    batch = Batch(fill_mode="close")
    sid = batch.add_series(*make_series(rng, 20, names), names)
    mid = batch.add_model(pol, sid)
    assert batch.add_model(pol, sid) == mid  # one model per (policy, series)
    t0 = batch.add_trajectory(mid, sid, 1, 10, capital=1e5)
    t1 = batch.add_trajectory(mid, sid, 10, 20, capital=5e4, commission=0.001, long_only=True)
    a = batch.pack().arrays
    assert a["fill_mode"].tolist() == [1, 1]  # one code per trajectory, the batch's here
    assert list(a["model_feat_col"]) == [2, 1]
    assert list(a["model_state_code"]) == [2, 0]
    assert list(a["model_obs_dim"]) == [2 * 2 + 2]
    assert list(a["layer_in"]) == [6, 5] and list(a["layer_out"]) == [5, 3]
    w0, _ = pol.layers[0]
    # weights transposed to (in, out) row-major
    np.testing.assert_array_equal(a["weights"][:30].reshape(6, 5), w0.T)
    assert a["weights"].dtype == np.float32 and a["biases"].dtype == np.float32
    var = pol.obs_norm.var
    np.testing.assert_array_equal(a["norm_denom"],
                                  np.sqrt(var + np.float32(1e-8)).astype(np.float32))
    assert np.isnan(a["targets"][0]) and list(a["model_target_off"]) == [0, 3]
    assert list(a["traj_eq_off"]) == [0, 10, 21]
    assert list(a["traj_trade_off"]) == [0, 9, 19]
    assert list(a["traj_long_only"]) == [0, 1]
    assert a["max_width"] == 6
    assert (t0, t1) == (0, 1)


def test_run_splits_results_in_the_order_asked():
    rng = np.random.default_rng(1)
    names = ["f0", "f1", "f2"]
    series = [(*make_series(rng, 60, names), names) for _ in range(2)]
    pols = [make_policy(rng, hidden=(4,), state=("position",)),
            make_policy(rng, hidden=(16, 8), activation="relu", window=2)]
    batch = Batch(fill_mode=0)
    sids = [batch.add_series(o, c, f, n) for o, c, f, n in series]
    plan = []
    for p in pols:
        for s in (0, 1):
            mid = batch.add_model(p, sids[s])
            for start, end in ((2, 30), (30, 60)):
                tid = batch.add_trajectory(mid, sids[s], start, end, capital=1e4,
                                           commission=0.0005, slippage=0.0002)
                plan.append((tid, p, s, start, end))
    order = [5, 0, 7, 2]
    out = batch.run(bars_per_year=[100.0, 200.0, 300.0, 400.0], trajectories=order)
    assert [o["trajectory"] for o in out] == order
    for o in out:
        tid, p, s, start, end = plan[o["trajectory"]]
        op, cl, f, _ = series[s]
        ref = naive_simulate(p, op, cl, f, start, end, 1e4, 0.0005, 0.0002, False)
        assert_same(o, ref, 1e4)
        assert len(o["returns"]) == end - start
        assert o["metrics"]["bars"] == end - start
        assert o["metrics"]["n_trades"] == len(ref["trades"])
        assert o["metrics"]["total_return"] == pytest.approx(ref["equity"][-1] / 1e4 - 1)
        for row in o["trades"]:
            entry_bar, exit_bar, direction, entry_price, exit_price, pnl, commission = row
            assert start <= entry_bar <= exit_bar < end and direction in (-1, 1)
    # without bars_per_year there are no metrics, the rest is the same
    plain = batch.run(trajectories=[0])
    assert "metrics" not in plain[0] and len(plain[0]["equity"]) == 29


def test_same_policy_on_series_with_different_layouts():
    rng = np.random.default_rng(2)
    pol = make_policy(rng, n_features=3, hidden=(6,), state=("unrealized_return",))
    layouts = [["f0", "f1", "f2"], ["f2", "q", "f0", "f1"]]
    batch = Batch()
    data = []
    for names in layouts:
        o, c, f = make_series(rng, 50, names)
        sid = batch.add_series(o, c, f, names)
        batch.add_trajectory(batch.add_model(pol, sid), sid, 0, 50, capital=1e5,
                             commission=0.001)
        data.append((o, c, f[:, [names.index(n) for n in pol.features]]))
    assert len(batch.models) == 2
    for out, (o, c, f) in zip(batch.run(), data):
        assert_same(out, naive_simulate(pol, o, c, f, 0, 50, 1e5, 0.001), 1e5)


def test_refusals():
    rng = np.random.default_rng(3)
    pol = linear_policy(["f0"], [], [0.0, 0.0], [0.0, 1.0], [0.0, 1.0])
    batch = Batch()
    o, c, f = make_series(rng, 10, ["g"])
    sid = batch.add_series(o, c, f, ["g"])
    with pytest.raises(PolicyError, match="lack f0"):
        batch.add_model(pol, sid)
    with pytest.raises(ValueError, match=r"\(T, len\(feature_names\)\)"):
        batch.add_series(o, c, f, ["g", "h"])
    with pytest.raises(FoldgateError, match="fill must be one of"):
        Batch(fill_mode="at-noon")
    sid2 = batch.add_series(o, c, f, ["f0"])
    mid = batch.add_model(pol, sid2)
    with pytest.raises(ValueError, match="was added for series 1, not 0"):
        batch.add_trajectory(mid, sid, 0, 10, capital=1.0)
    weird = linear_policy(["f0"], ["position"], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0], [0.0, 1.0])
    weird.state_features = ["leverage"]
    batch.add_trajectory(batch.add_model(weird, sid2), sid2, 0, 10, capital=1.0)
    with pytest.raises(PolicyError, match="unknown state feature 'leverage'"):
        batch.pack()
    with pytest.raises(FoldgateError, match="device must be one of"):
        batch.simulate_packed(None, device="tpu")


def test_real_policy_objects_pack_and_match_their_forward():
    policy_mod = pytest.importorskip("engine.policy")
    rng = np.random.default_rng(4)
    stand_in = make_policy(rng, n_features=3, hidden=(7, 5), state=("position",), norm=True,
                           targets=(-1.0, math.nan, 1.0))
    try:
        pol = policy_mod.Policy(
            path=None, sha256="", source_format="test", symbol="T", timeframe="1Hour",
            features=stand_in.features, window=1, state_features=["position"],
            obs_norm=policy_mod.ObsNorm(stand_in.obs_norm.mean, stand_in.obs_norm.var,
                                        stand_in.obs_norm.epsilon, stand_in.obs_norm.clip),
            layers=stand_in.layers, activation="tanh", action_kind="discrete",
            targets=stand_in.targets, low=-1.0, high=1.0, trained_until=None)
    except TypeError as exc:  # the Policy constructor changed: not this module's concern
        pytest.skip(f"engine.policy.Policy signature: {exc}")
    names = stand_in.features
    o, c, f = make_series(rng, 80, names)
    batch = Batch()
    sid = batch.add_series(o, c, f, names)
    batch.add_trajectory(batch.add_model(pol, sid), sid, 0, 80, capital=1e5, commission=0.001)
    out, = batch.run()
    ref = naive_simulate(stand_in, o, c, f, 0, 80, 1e5, 0.001)
    assert_same(out, ref, 1e5)
    # the engine's forward takes the kernel's decisions on the same observations
    obs = np.column_stack([f, rng.choice([-1.0, 0.0, 1.0], size=80)]).astype(np.float32)
    from naive_simulate import naive_forward
    want = np.stack([naive_forward(stand_in, x) for x in obs])
    got = pol.forward(obs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert np.array_equal(pol.act(obs), np.argmax(want, axis=1))


def test_packing_into_scratch_buffers_gives_the_same_arrays_and_reuses_them():
    """Batch.pack(ids, scratch): the market arrays written into buffers kept across
    chunks equal a fresh pack's, for chunks of different sizes in turn, and the buffers
    are reused once they are large enough (the local executor's page faults)."""
    rng = np.random.default_rng(3)
    batch = Batch()
    for k in range(3):
        names = ["f0", "f1"][: k % 2 + 1]
        sid = batch.add_series(*make_series(rng, 30 + 10 * k, names), names)
        mid = batch.add_model(make_policy(rng, n_features=len(names), hidden=(4,)), sid)
        batch.add_trajectory(mid, sid, 2, 20 + 5 * k, capital=1e5)
    n = len(batch.trajectories)
    scratch: dict = {}
    bases = []
    for ids in ([0, 1], list(range(n)), [n - 1], list(range(n))[::-1]):
        got = batch.pack(ids, scratch).arrays
        want = batch.pack(ids).arrays
        assert set(got) == set(want)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        assert got["feats"].base is scratch["feats"]
        bases.append(scratch["feats"])
    assert bases[2] is bases[1] and bases[3] is bases[1]
