"""The --stress delay fill (FILL_NEXT_OPEN_LATE, docs/design.md 11): a decision at the close
of t fills at the open of t+2; the one at e-2 never fills; `position` reads the target
last filled. The kernel is compared with tests/naive_simulate.py on randomised cases in
tests/test_simulate.py; these pin the rule itself."""

import numpy as np
import pytest

from tests.test_simulate import _one, linear_policy, make_series, run_both

LATE = 2


def test_two_bar_fold_drops_its_only_decision():
    pol = linear_policy(["f0"], [], [0.0, 0.0], [0.0, 1.0], [0.0, 1.0])  # always long
    k, ref = _one(pol, LATE, n_bars=10, start=4, end=6)
    assert k["trades"] == [] and ref["trades"] == []
    assert k["stats"]["n_fills"] == 0


def test_three_bar_fold_fills_two_bars_after_the_decision():
    pol = linear_policy(["f0"], [], [0.0, 0.0], [0.0, 1.0], [0.0, 1.0])
    k, _ = _one(pol, LATE, n_bars=10, start=4, end=7)
    assert k["trades"][0][:3] == (6, 6, 1)  # decided at 4, filled at the open of 6
    assert k["stats"]["exposure_bars"] == 1


def test_stateless_policy_trades_one_bar_later_than_next_open():
    rng = np.random.default_rng(7)
    names = ["f0", "f1"]
    o, c, f = make_series(rng, 80, names)
    pol = linear_policy(names, [], [3.0, -2.0, -3.0, 2.0, 0.5, 0.5], [0.0, 0.1, -0.1],
                        [-1.0, 0.0, 1.0])
    case = (pol, 0, 1, 80, 1e5, 0.0, 0.0, False)
    (base, _), = run_both([case], 0, [(o, c, f, names)])
    (late, _), = run_both([case], LATE, [(o, c, f, names)])
    assert len(base["trades"]) > 5
    # without state features the decisions are the same: every fill moves one bar on,
    # and a trade that ends at the fold's close-out still ends there
    shifted = [(a + 1, min(b + 1, 79), d) for a, b, d, *_ in base["trades"] if a + 1 <= 79]
    assert [t[:3] for t in late["trades"]] == shifted


def test_position_feature_reads_the_filled_target_while_an_order_is_in_flight():
    # long while flat, flat while long: with fills a bar late the order sent at t is not
    # yet filled at t+1, so `position` still reads 0 there and no second order goes out
    pol = linear_policy(["f0"], ["position"], [0.0, 0.0, 0.0, 10.0], [5.0, 0.0],
                        [1.0, 0.0])
    k, ref = _one(pol, LATE, n_bars=30, start=0, end=30)
    assert [t[:2] for t in k["trades"]] == [t[:2] for t in ref["trades"]]
    # decided long at 0 (filled at 2); at 1 position is still 0 -> long again, no new
    # order; at 2 the fill shows -> flat, filled at 4: trades of two bars, every 4 bars
    assert [t[:2] for t in k["trades"]][:3] == [(2, 4), (6, 8), (10, 12)]
