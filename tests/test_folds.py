"""engine/folds.py: the --days window, fold cutting, warm-up, bars_per_year, in-sample."""

import datetime as dt

import numpy as np
import pytest

from engine.errors import DataError, FoldgateError
from engine.folds import (
    NS_PER_DAY,
    Fold,
    FoldCountError,
    Window,
    bars_per_year,
    end_past_last_bar,
    iso,
    make_folds,
    make_window,
    mark_in_sample,
    to_ns,
)
from naive_metrics import naive_bars_per_year, naive_make_folds, naive_mark_in_sample

H = 3600 * 10**9
T0 = to_ns("2024-01-01T00:00:00Z")


def hourly(n, start=T0):
    return start + H * np.arange(n, dtype=np.int64)


def spans(folds):
    return [(f.start, f.end) for f in folds]


def test_days_exactly_spanning_all_bars():
    ts = hourly(48)  # two full days, last bar at T0 + 47h
    w = make_window(ts, 2)
    assert isinstance(w, Window) and (w.start, w.end, w.bars) == (0, 48, 48)
    assert w.first_ts == ts[0] and w.last_ts == ts[-1] and w.end_ts == ts[-1]
    folds = make_folds(ts, 2, 4)
    assert spans(folds) == [(0, 12), (12, 24), (24, 36), (36, 48)]
    assert all(isinstance(f, Fold) for f in folds) and [f.index for f in folds] == [0, 1, 2, 3]
    assert folds[1].first_ts == ts[12] and folds[1].last_ts == ts[23]


def test_window_start_is_exclusive():
    ts = hourly(49)  # ts[0] is exactly end - 2 days: outside the window
    w = make_window(ts, 2)
    assert (w.start, w.end) == (1, 49)


def test_one_bar_short_says_how_many():
    ts = hourly(47, start=T0 + H)  # the window's first hour is missing
    with pytest.raises(DataError, match=r"has 47 bars .* needs about 48"):
        make_folds(ts, 2, 4, end=T0 + 48 * H - H)


def test_far_too_few_bars():
    ts = hourly(30 * 24)
    with pytest.raises(DataError) as err:
        make_folds(ts, 180, 5)
    msg = str(err.value)
    assert "720 bars" in msg and "about 4320" in msg and "\n" not in msg


def test_remainder_goes_to_last_fold():
    ts = hourly(200)
    folds = make_folds(ts, 23 / 24, 5)  # 23 bars
    assert [f.bars for f in folds] == [4, 4, 4, 4, 7]
    assert folds[0].start == 177 and folds[-1].end == 200
    assert all(a.end == b.start for a, b in zip(folds, folds[1:]))


def test_end_in_the_middle_is_inclusive():
    ts = hourly(200)
    folds = make_folds(ts, 1, 3, end=ts[100])
    assert folds[-1].end == 101 and folds[0].start == 77
    assert spans(folds) == [(77, 85), (85, 93), (93, 101)]
    # between bars: bar 100 is the last; the window start moves half an hour, past no bar
    folds = make_folds(ts, 1, 3, end=int(ts[100]) + H // 2)
    assert spans(folds) == [(77, 85), (85, 93), (93, 101)]
    # one ns before bar 100: bar 100 leaves the window and bar 76 comes in
    folds = make_folds(ts, 1, 3, end=int(ts[100]) - 1)
    assert spans(folds) == [(76, 84), (84, 92), (92, 100)]
    # other spellings of the same moment
    for end in (iso(ts[100]), dt.datetime(2024, 1, 5, 4, tzinfo=dt.timezone.utc),
                np.datetime64(int(ts[100]), "ns")):
        assert spans(make_folds(ts, 1, 3, end=end)) == [(77, 85), (85, 93), (93, 101)]


def test_end_after_last_bar_and_before_first_bar():
    ts = hourly(100)
    folds = make_folds(ts, 1, 2, end=int(ts[-1]) + 5 * H)
    assert folds[-1].end == 100 and folds[0].start == 81  # 19 bars in the last 24h
    with pytest.raises(DataError, match="before the first bar"):
        make_folds(ts, 1, 2, end=int(ts[0]) - 1)
    with pytest.raises(DataError, match="no bars in the"):
        make_folds(np.array([T0, T0 + 10 * NS_PER_DAY]), 1, 1, end=T0 + 5 * NS_PER_DAY)


def test_end_past_the_last_bar_is_said_with_the_empty_hours():
    ts = hourly(100)
    last = int(ts[-1])
    assert end_past_last_bar(ts, 1, None) is None
    assert end_past_last_bar(ts, 1, last) is None  # exactly at the last bar: nothing to say
    assert end_past_last_bar(ts, 1, last - H) is None
    msg = end_past_last_bar(ts, 1, last + 5 * H)
    assert "past the last stored bar" in msg and "last 5 hours hold no bars" in msg
    assert iso(last) in msg
    # an end far past the data: the empty hours are capped at the window's length
    assert "last 24 hours" in end_past_last_bar(ts, 1, last + 100 * H)


def test_warmup_exactly_enough_and_one_short():
    ts = hourly(72)
    folds = make_folds(ts, 1, 4, warmup=48)  # window starts at bar 48
    assert folds[0].start == 48
    with pytest.raises(DataError) as err:
        make_folds(ts, 1, 4, warmup=49)
    msg = str(err.value)
    assert "48 bars before it" in msg and "need 49" in msg
    assert "fold 1 starts" in msg  # folds count from 1 in messages, as in the tables
    assert make_window(ts, 1, warmup=48).start == 48
    with pytest.raises(DataError, match="need 49"):
        make_window(ts, 1, warmup=49)


def test_fold_count_errors():
    ts = hourly(48)
    for k in (0, -1):
        with pytest.raises(FoldCountError) as err:
            make_folds(ts, 1, k)
        assert isinstance(err.value, ValueError) and isinstance(err.value, FoldgateError)
    with pytest.raises(DataError, match=r"more folds \(25\) than bars \(24\)"):
        make_folds(ts, 1, 25)
    with pytest.raises(DataError, match="need 26"):
        make_folds(ts, 1, 13)  # folds of 1 bar
    assert [f.bars for f in make_folds(ts, 1, 12)] == [2] * 12
    with pytest.raises(FoldCountError):
        make_folds(ts, 0, 1)


def test_weekend_before_first_bar_is_not_missing_data():
    # Weekdays 14:00-20:00 UTC only, Mon 8 to Fri 19 January; the window starts on a
    # Saturday and the first bar is the next Monday: no bar is missing.
    days = [dt.date(2024, 1, 8) + dt.timedelta(d) for d in range(12)]
    ts = np.array([to_ns(dt.datetime(d.year, d.month, d.day, h)) for d in days
                   if d.weekday() < 5 for h in range(14, 21)], dtype=np.int64)
    end = to_ns("2024-01-20T00:00:00")  # Saturday; the window begins Saturday 6 January
    w = make_window(ts, 14, end=end)
    assert (w.start, w.bars) == (0, 70)
    # a missing Monday and Tuesday before the first bar is refused
    with pytest.raises(DataError, match="too few bars"):
        make_window(ts[ts >= to_ns("2024-01-10")], 14, end=end)


def test_matches_naive_on_random_gappy_series():
    rng = np.random.default_rng(11)
    for _ in range(40):
        steps = rng.choice([H, H, H, 2 * H, 30 * H], size=int(rng.integers(50, 400)))
        ts = T0 + np.cumsum(steps).astype(np.int64)
        end = None if rng.random() < 0.5 else int(ts[int(rng.integers(10, ts.size))]) + int(
            rng.integers(0, H))
        days = float(rng.uniform(1, 10))
        k = int(rng.integers(1, 8))
        try:
            folds = make_folds(ts, days, k, end=end)
        except DataError:
            continue
        assert spans(folds) == naive_make_folds(list(ts), days, k, end)


def test_bars_per_year():
    ts = hourly(101)
    assert bars_per_year(ts) == pytest.approx(101 / (100 / 24 / 365.25))
    assert bars_per_year(ts) == pytest.approx(naive_bars_per_year(list(ts)))
    assert bars_per_year(ts.astype("datetime64[ns]")) == pytest.approx(bars_per_year(ts))
    with pytest.raises(ValueError):
        bars_per_year(ts[:1])


def test_in_sample_marking_at_the_boundary():
    ts = hourly(40)
    folds = make_folds(ts, 40 / 24, 4)  # bars 0-9, 10-19, 20-29, 30-39
    assert mark_in_sample(folds) == [False] * 4
    # trained_until on fold 2's first bar: folds 0-2 overlap it
    assert mark_in_sample(folds, int(ts[20])) == [True, True, True, False]
    # one ns earlier: fold 2 starts after the last training bar
    assert mark_in_sample(folds, int(ts[20]) - 1) == [True, True, False, False]
    # a training period touching fold 3's last bar, and one ending just before fold 1
    assert mark_in_sample(folds, None, [(int(ts[39]), int(ts[39]) + H)]) == [False] * 3 + [True]
    assert mark_in_sample(folds, None, [(int(ts[0]) - H, int(ts[10]) - 1)]) == [True] + [False] * 3
    assert mark_in_sample(folds, None, [(None, int(ts[10]))]) == [True, True, False, False]
    assert mark_in_sample(folds, iso(ts[5]), [(iso(ts[31]), None)]) == [True, False, False, True]
    fl = [(f.first_ts, f.last_ts) for f in folds]
    for tu in (None, int(ts[0]), int(ts[25])):
        periods = [(int(ts[12]), int(ts[14]))]
        assert mark_in_sample(folds, tu, periods) == naive_mark_in_sample(fl, tu, periods)


def test_to_ns_and_iso():
    assert to_ns("2024-01-01T00:00:00Z") == to_ns(dt.datetime(2024, 1, 1)) == T0
    assert to_ns("2024-01-01") == T0 and to_ns(dt.date(2024, 1, 1)) == T0
    assert to_ns("2024-01-01T01:00:00+01:00") == T0
    assert iso(T0) == "2024-01-01T00:00:00Z" and iso(T0 + 5) == "2024-01-01T00:00:00.000000005Z"
    with pytest.raises(ValueError):
        to_ns("yesterday")
