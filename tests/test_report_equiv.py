"""The fast report writers against the plain references of tests/naive_report.py:
the JSON text (values, their types, key order and line layout) on randomised reports
full of edge cases, the HTML page, and the terminal tables."""

from __future__ import annotations

import enum
import io
import json
import math
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from engine import report as R
from naive_report import naive_print_validate, naive_render_html, naive_report_to_json, naive_table, naive_to_jsonable
from report_fixtures import add_stress, make_report


class Colour(str, enum.Enum):
    RED = "red"


class Level(enum.Enum):
    HIGH = 2


# --- strict comparison -----------------------------------------------------------------


def _refuse(name):
    raise AssertionError(f"non-JSON constant {name} in the report")


def parse(text: str):
    """JSON with objects as lists of pairs (so key order counts) and NaN refused."""
    return json.loads(text, object_pairs_hook=list, parse_constant=_refuse)


def strict_equal(a, b, where="report") -> None:
    """Equal values of equal types: 1 is not 1.0, True is not 1, and key order counts."""
    assert type(a) is type(b), f"{where}: {a!r} ({type(a).__name__}) vs {b!r} ({type(b).__name__})"
    if isinstance(a, list):
        assert len(a) == len(b), f"{where}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            strict_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, tuple):  # a (key, value) pair
        assert a[0] == b[0], f"{where}: key {a[0]!r} vs {b[0]!r}"
        strict_equal(a[1], b[1], f"{where}.{a[0]}")
    elif isinstance(a, float):
        assert a == b or (math.copysign(1, a) == math.copysign(1, b) and a == b), f"{where}: {a!r} vs {b!r}"
        assert math.copysign(1, a) == math.copysign(1, b), f"{where}: sign of {a!r} vs {b!r}"
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def _pairs_hook(pairs):
    return [tuple(p) for p in pairs]


def parse_pairs(text: str):
    return json.loads(text, object_pairs_hook=_pairs_hook, parse_constant=_refuse)


def same_layout(old: str, new: str) -> None:
    """Line for line the same: each line is either identical or holds the same key and a
    value that parses to the same thing (a float may be spelled 1e-07 or 1e-7)."""
    a, b = old.splitlines(), new.splitlines()
    assert len(a) == len(b), f"{len(a)} lines vs {len(b)}"
    for n, (x, y) in enumerate(zip(a, b)):
        if x == y:
            continue
        assert len(x) - len(x.lstrip()) == len(y) - len(y.lstrip()), f"line {n}: indent differs\n{x}\n{y}"
        x, y = x.strip().rstrip(","), y.strip().rstrip(",")
        key = re.compile(r'("(?:[^"\\]|\\.)*"): (.+)$')
        m, k = key.match(x), key.match(y)
        if m or k:
            assert m and k and m.group(1) == k.group(1), f"line {n}: keys differ\n{x}\n{y}"
            x, y = m.group(2), k.group(2)
        strict_equal(parse_pairs(x), parse_pairs(y), f"line {n}")


def test_strict_comparison_catches_what_it_must():
    with pytest.raises(AssertionError):
        strict_equal(parse_pairs('{"a": 1}'), parse_pairs('{"a": 1.0}'))
    with pytest.raises(AssertionError):
        strict_equal(parse_pairs('{"a": 1, "b": 2}'), parse_pairs('{"b": 2, "a": 1}'))
    with pytest.raises(AssertionError):
        strict_equal(parse_pairs('{"a": null}'), parse_pairs('{"a": 0.0}'))
    with pytest.raises(AssertionError):
        strict_equal(parse_pairs("[0.0]"), parse_pairs("[-0.0]"))
    with pytest.raises(AssertionError):
        same_layout('{\n  "a": [1, 2]\n}', '{\n  "a": [\n    1,\n    2\n  ]\n}')
    same_layout('{\n  "a": [1e-07, 2.0]\n}', '{\n  "a": [1e-7, 2.0]\n}')


# --- randomised reports -----------------------------------------------------------------


FLOAT_EDGES = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1.7976931348623157e308, 5e-324, 2.2250738585072014e-308,
               1e-7, 1.5e-5, 1e16, 1e22, 123456789012345678.0, 0.1, 1 / 3, 2.0, -3.0, 1e-300]


def _float(rng: np.random.Generator):
    pick = rng.integers(0, 6)
    if pick == 0:
        return FLOAT_EDGES[rng.integers(0, len(FLOAT_EDGES))]
    if pick == 1:
        return np.float64(FLOAT_EDGES[rng.integers(0, len(FLOAT_EDGES))])
    if pick == 2:
        return np.float32(rng.standard_normal())
    if pick == 3:
        return float(rng.integers(-5, 5))  # int-valued float: an int in an int field, a float elsewhere
    if pick == 4:
        return float(10.0 ** rng.uniform(-12, 20) * rng.choice([-1, 1]))
    return float(rng.standard_normal())


def _curve(rng: np.random.Generator, n: int) -> np.ndarray:
    a = 1e5 * np.cumprod(1 + 0.01 * rng.standard_normal(n))
    pick = rng.integers(0, 7)
    if pick == 0:
        a[rng.integers(0, n, size=3)] = [np.nan, np.inf, -np.inf]
    elif pick == 1:
        a = a.astype(np.float32)
    elif pick == 2:
        a = a.astype(">f8")  # not native-endian
    elif pick == 3:
        a = np.repeat(a, 2)[::2]  # not contiguous
    elif pick == 4:
        a = np.round(a)  # integer-valued floats in a float field stay floats
    elif pick == 5:
        a = np.array(rng.choice(FLOAT_EDGES, size=n))
    return a


TIME_UNITS = ["s", "ms", "us", "ns", "m", "h", "D"]


def _times(rng: np.random.Generator, n: int) -> np.ndarray:
    unit = TIME_UNITS[rng.integers(0, len(TIME_UNITS))]
    start = np.datetime64(["1970-01-01T00:00:00", "2025-05-02T13:00:00", "1999-12-31T23:59:59",
                           "2262-04-11T00:00:00"][rng.integers(0, 4)], unit if unit not in ("ns",) else "s")
    if unit == "ns":
        start = np.datetime64("2025-05-02T13:00:00.123456789", "ns")
    t = start + np.arange(n).astype(f"timedelta64[{unit}]")
    if rng.random() < 0.2:
        t = t.copy()
        t[rng.integers(0, n)] = np.datetime64("NaT")
    return t


NASTY_STRINGS = ['he said "hi"', "back\\slash", "tab\there", "line\nbreak", "comma, colon: 50% %s %%",
                 "東京 ünïcödé", "\u2028\u2029", "\x00\x1f", "</script>", ""]


def _string(rng):
    return NASTY_STRINGS[rng.integers(0, len(NASTY_STRINGS))]


def _trade(rng: np.random.Generator) -> dict:
    t = {"entry_time": "2025-05-02T13:00:00Z", "exit_time": "2025-05-02T15:00:00Z",
         "direction": [1, -1, np.int64(1), np.int32(-1), 1.0][rng.integers(0, 5)],
         "entry_price": _float(rng), "exit_price": float(rng.uniform(1, 100)), "pnl": _float(rng),
         "commission": float(rng.uniform(0, 1))}
    if rng.random() < 0.05:
        t["pnl"] = None
    if rng.random() < 0.05:
        t["note"] = _string(rng)  # a key the schema does not list: after the others, sorted
    return t


def randomised_report(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    r = make_report(n_models=int(rng.integers(0, 9)), n_folds=int(rng.integers(0, 4)),
                    bars_per_fold=int(rng.integers(2, 40)), backtest_bars=int(rng.integers(2, 40)), seed=seed,
                    command=["validate", "backtest"][rng.integers(0, 2)])
    s = r["settings"]
    s["capital"] = _float(rng)
    s["walk_forward"] = [s["walk_forward"], float(s["walk_forward"] or 0), np.int64(3)][rng.integers(0, 3)]
    s["zz_extra"] = {"b": (1, 2.0, None), "a": [_float(rng) for _ in range(3)], 3: _string(rng),
                     "grid": np.arange(6.0).reshape(2, 3), "when": datetime(2025, 1, 2, 3, 4, 5, 6)}
    s["path"] = Path("reports") / "x.json"
    s["colour"] = Colour.RED
    s["level"] = Level.HIGH
    s["day"] = date(2025, 5, 2)
    s["stamp"] = np.datetime64("2025-05-02T13:00:00.250", "ms")
    s["tz"] = datetime(2025, 4, 12, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    s["labels"] = np.array(["a", "b,c", 'd"e'])
    s["flags"] = np.array([True, False])
    s["counts"] = np.array([1, 2, 3], dtype=np.uint8)
    s["big"] = np.array([2**63 - 1], dtype=np.int64)
    s["huge_int"] = 2**70
    s["empty"] = []
    s["empty_obj"] = {}
    s["zero_d"] = np.array(2.5)
    for m in r["models"]:
        m["reasons"] = m["reasons"] + [_string(rng) for _ in range(rng.integers(0, 3))]
        m["flags"] = [{"code": "X", "message": _string(rng)} for _ in range(rng.integers(0, 3))]
        if m.get("gating"):
            m["gating"]["checkpoint_index"] = [None, 3, 3.0, np.int64(4)][rng.integers(0, 4)]
        periods = ([m["backtest"]] if m.get("backtest") else []) + list(m.get("folds") or [])
        for p in periods:
            n = len(p["equity"]) - 1
            p["equity"] = _curve(rng, n + 1)
            p["timestamps"] = _times(rng, n) if rng.random() < 0.9 else np.array([], dtype="datetime64[s]")
            p["bars"] = [p["bars"], float(p["bars"]), np.float64(p["bars"])][rng.integers(0, 3)]
            p["trades"] = [_trade(rng) for _ in range(int(rng.choice([0, 1, 7, 8, 9, 30])))]
            for key in list(p["metrics"]):
                if rng.random() < 0.5:
                    p["metrics"][key] = _float(rng)
            if p.get("buy_and_hold") and rng.random() < 0.3:
                p["buy_and_hold"]["equity"] = list(_curve(rng, n + 1))  # a list of numpy floats
        if m.get("summary"):
            m["summary"]["positive_folds"] = float(m["summary"]["positive_folds"])
            e = m["summary"].get("evidence") or {}
            for key in list(e):
                if isinstance(e[key], float) and rng.random() < 0.5:
                    e[key] = _float(rng)
    return r


@pytest.mark.parametrize("seed", range(40))
def test_json_matches_the_plain_writer_on_randomised_reports(seed):
    r = randomised_report(seed)
    old, new = naive_report_to_json(r), R.report_to_json(r)
    strict_equal(parse_pairs(old), parse_pairs(new))
    same_layout(old, new)
    assert "".join(R.iter_report_json(r)) == new
    strict_equal(R.to_jsonable(r), naive_to_jsonable(r))


def test_json_is_byte_identical_where_no_float_needs_an_exponent():
    r = make_report(n_models=9, n_folds=3, bars_per_fold=60, backtest_bars=48, seed=11)
    assert R.report_to_json(r) == naive_report_to_json(r)


def test_floats_round_trip_to_the_same_float64():
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**63, size=20_000, dtype=np.int64).view(np.float64)
    values = np.concatenate((bits[np.isfinite(bits)], np.array(FLOAT_EDGES[3:]), rng.standard_normal(5000),
                             np.nextafter(np.float64(1), 2) + np.zeros(1)))
    r = make_report(n_models=1, n_folds=1, bars_per_fold=values.size, backtest_bars=2, seed=1)
    r["models"][0]["folds"][0]["equity"] = np.concatenate(([1e5], values))
    got = json.loads(R.report_to_json(r))["models"][0]["folds"][0]["equity"]
    assert np.array_equal(np.array(got[1:]).view(np.int64), values.view(np.int64))  # bit for bit, -0.0 too


def test_nan_in_an_int_field_is_null_and_integer_floats_there_are_ints():
    r = make_report(n_models=1, n_folds=2, bars_per_fold=24, backtest_bars=24)
    met = r["models"][0]["folds"][0]["metrics"]
    met["n_trades"], met["clipped_shorts"], met["sharpe"] = np.float64(np.nan), 4.0, 2.0
    got = parse_pairs(R.report_to_json(r))
    fold = dict(dict(dict(got)["models"][0])["folds"][0])
    metrics = dict(fold["metrics"])
    assert metrics["n_trades"] is None and type(metrics["clipped_shorts"]) is int and type(metrics["sharpe"]) is float


@pytest.mark.parametrize("directions", [[1.0, -1.0] * 6, [1.0, -1.0, np.nan] * 4, [1.0, 1.5] * 6, [np.float64(-1.0)] * 12])
def test_trades_written_a_column_at_a_time_keep_int_fields_ints(directions):
    r = make_report(n_models=1, n_folds=1, bars_per_fold=24, backtest_bars=24)
    r["models"][0]["folds"][0]["trades"] = [
        {"entry_time": "2025-05-02T13:00:00Z", "exit_time": "2025-05-02T14:00:00Z", "direction": d,
         "entry_price": 1.0, "exit_price": 2.0, "pnl": float(k), "commission": np.float64(0.5)}
        for k, d in enumerate(directions)]
    text = R.report_to_json(r)
    strict_equal(parse_pairs(text), parse_pairs(naive_report_to_json(r)))
    got = [t["direction"] for t in json.loads(text)["models"][0]["folds"][0]["trades"]]
    assert got == [None if d != d else (int(d) if float(d).is_integer() else d) for d in directions]
    assert all(type(g) is int for g, d in zip(got, directions) if d == d and float(d).is_integer())


@pytest.mark.parametrize("where, put", [
    ("models[1].folds[0].trades[9].pnl", lambda m: m["folds"][0]["trades"].__setitem__(9, {**m["folds"][0]["trades"][9], "pnl": object()})),
    ("models[1].folds[1].metrics.sharpe", lambda m: m["folds"][1]["metrics"].__setitem__("sharpe", object())),
    ("models[1].flags[1].message", lambda m: m.__setitem__("flags", [{"code": "A", "message": "x"}, {"code": "B", "message": object()}])),
    ("models[1].reasons[0]", lambda m: m.__setitem__("reasons", [object()])),
    ("models[1].summary.evidence.sr_ci90[1]", lambda m: m["summary"]["evidence"].__setitem__("sr_ci90", [1.0, object()])),
])
def test_an_unwritable_value_is_named_by_its_path(where, put):
    r = make_report(n_models=2, n_folds=2, bars_per_fold=200, backtest_bars=24)
    assert len(r["models"][1]["folds"][0]["trades"]) > 9
    put(r["models"][1])
    with pytest.raises(TypeError, match=re.escape(f"report.{where}: a object value has no JSON form")):
        R.report_to_json(r)


def test_timestamps_shared_by_many_folds_are_each_written_right():
    r = make_report(n_models=3, n_folds=2, bars_per_fold=24, backtest_bars=24)
    fold = r["models"][0]["folds"][0]
    shifted = fold["timestamps"] + np.timedelta64(1, "h")
    r["models"][1]["folds"][0]["timestamps"] = shifted  # same length and dtype, other values
    r["models"][2]["folds"][0]["timestamps"] = shifted.astype("datetime64[ms]")  # same instants, other unit
    data = json.loads(R.report_to_json(r))
    ts = [data["models"][i]["folds"][0]["timestamps"] for i in range(3)]
    assert ts[0][:2] == ["2025-05-30T00:00:00Z", "2025-05-30T01:00:00Z"] and ts[1][0] == "2025-05-30T01:00:00Z"
    assert ts[2][0] == "2025-05-30T01:00:00.000Z" and len(set(map(len, ts))) == 1
    assert data == json.loads(naive_report_to_json(r))


# --- HTML -------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [dict(n_models=7, n_folds=5, bars_per_fold=120, backtest_bars=96, seed=3),
                                dict(n_models=12, n_folds=3, bars_per_fold=700, backtest_bars=40, seed=1),
                                dict(n_models=3, command="backtest", n_folds=0, backtest_bars=24)])
def test_page_is_the_page_of_the_report_in_json_values(kw):
    r = add_stress(make_report(**kw))
    assert any(m.get("stress") for m in r["models"]) == bool(kw.get("n_folds", 5))
    m = r["models"][0]
    m["backtest"]["equity"][3] = np.nan
    if m["folds"]:
        m["folds"][-1]["equity"][5] = np.inf
        m["folds"][-1]["buy_and_hold"]["equity"] = m["folds"][-1]["buy_and_hold"]["equity"].astype(np.float32)
    page = R.render_html(r)
    assert page == naive_render_html(r)
    assert page == R.render_html(json.loads(R.report_to_json(r)))  # a report read back from its JSON


# --- terminal ---------------------------------------------------------------------------


def _table_text(fn, width, rows, columns, title="Decisions", terminal=False) -> str:
    buf = io.StringIO()
    con = Console(file=buf, width=width, highlight=False, soft_wrap=False, force_terminal=terminal,
                  color_system="standard" if terminal else None)
    fn(con, title, columns, rows)
    return buf.getvalue()


CELLS = ["LIVE", "S046USD", "-", "", "1.000", "-12.34..10.12", "東京", "BTCUSD (ckpt 12)", "[bold]x[/]", "n/a", "x" * 30,
         "bell\x07x", "tab\tx", "two\nlines", "é́"]


@pytest.mark.parametrize("seed", range(25))
def test_fast_table_is_rich_tables_layout(seed):
    from cli.output import print_table

    rng = np.random.default_rng(seed)
    n_cols = int(rng.integers(1, 9))
    columns = [(["Symbol", "Gating", "SR", "+Folds", "MinTRL d", "X", ""][rng.integers(0, 7)],
                ["left", "right"][rng.integers(0, 2)]) for _ in range(n_cols)]
    rows = [[(CELLS[rng.integers(0, len(CELLS))], [None, "bold green", "red"][rng.integers(0, 3)])
             for _ in range(n_cols)] for _ in range(int(rng.integers(0, 12)))]
    for width in (40, 80, 120):
        want = _table_text(naive_table, width, rows, columns)
        assert _table_text(print_table, width, rows, columns) == want
        # on a terminal the same characters, styled
        strip = re.compile(r"\x1b\[[0-9;]*m")
        assert strip.sub("", _table_text(print_table, width, rows, columns, terminal=True)) == \
            strip.sub("", _table_text(naive_table, width, rows, columns, terminal=True))
    styled = _table_text(print_table, 200, [[("LIVE", "bold green")]], [("Decision", "left")], terminal=True)
    assert "\x1b[1;32mLIVE\x1b[0m" in styled


@pytest.mark.parametrize("columns", ["80", "120"])
def test_validate_output_above_ten_models_is_the_plain_one(columns, monkeypatch, capsys):
    from cli.output import print_validate

    monkeypatch.setenv("COLUMNS", columns)
    r = make_report(n_models=23, n_folds=3, bars_per_fold=24, backtest_bars=24, seed=2)
    r["settings"]["walk_forward"], r["settings"]["quick_days"] = 3, 1
    r["models"][4]["reasons"].append("a long reason " * 20)
    print_validate(r)
    fast = capsys.readouterr().out
    naive_print_validate(r)
    assert fast == capsys.readouterr().out
    assert fast.count("\n") > 23 * 2 and max(len(x) for x in fast.splitlines()) <= int(columns)


@pytest.mark.parametrize("seed", range(12))
def test_curves_thinned_together_are_thinned_as_each_alone(seed):
    from engine.report.svg import MAX_CURVE_POINTS, downsample_rows
    from naive_report import naive_downsample

    rng = np.random.default_rng(seed)
    n = int(rng.choice([1, 2, 3, 599, 600, 601, 602, 1203, 4321, 20_000]))
    ys = np.cumsum(rng.standard_normal((3, n)), axis=1)
    ys[1, rng.integers(0, n, size=min(n, 5))] = np.nan
    ys[2, rng.integers(0, n, size=min(n, 3))] = [np.inf, -np.inf, np.nan][: min(n, 3)]
    if seed % 4 == 0:
        ys[2] = np.nan  # a curve without one finite value
    for (x, y), row in zip(downsample_rows(ys), ys):
        want_x, want_y = naive_downsample(row, MAX_CURVE_POINTS)
        assert np.array_equal(x, want_x) and np.array_equal(y, want_y, equal_nan=True)
        assert len(x) <= MAX_CURVE_POINTS


def test_svg_paths_are_the_points_to_a_tenth_of_a_pixel():
    from engine.report.svg import _Frame, _path_d
    from naive_report import naive_path_d

    rng = np.random.default_rng(4)
    x = np.sort(rng.uniform(0, 1e9, 2000))
    y = np.concatenate((rng.standard_normal(1990) * 1e-3, [0.0, -1e-9, np.nan, np.inf, 5e-2, -5e-2, 0.25, 0.35,
                                                            1.05, 2.45]))
    fr = _Frame(760, 250, x.min(), x.max(), -0.06, 0.06)
    got, want = _path_d(fr, x, y), naive_path_d(fr, x, y)
    assert got[0] == want[0] == "M"
    g = np.array([p.split(",") for p in got[1:].split(" ")], dtype=float)
    w = np.array([p.split(",") for p in want[1:].split(" ")], dtype=float)
    assert g.shape == w.shape == (1998, 2) and np.max(np.abs(g - w)) <= 0.1 + 1e-9
    assert all(len(v.split(".")[1]) == 1 for v in re.split("[, ]", got[1:]))  # "56.0", never "56" or "1e-05"
    assert _path_d(fr, x[:3], np.full(3, np.nan)) == ""


# --- a period's trades in one orjson call (engine/report/jsonio.py, _orjson_rows) -------------


TRADE_KEYS = ("entry_time", "exit_time", "direction", "entry_price", "exit_price", "pnl", "commission")


def _trade_rows(rng: np.random.Generator, n: int) -> list[dict]:
    times = np.datetime_as_string(np.datetime64("2024-01-01T00:00:00") + rng.integers(0, 10**8, size=2 * n)
                                  .astype("timedelta64[s]"), unit="s")
    return [{"entry_time": f"{times[2 * i]}Z", "exit_time": f"{times[2 * i + 1]}Z",
             "direction": int(rng.choice([1, -1])), "entry_price": float(_float(rng)),
             "exit_price": float(_float(rng)), "pnl": float(_float(rng)), "commission": float(_float(rng))}
            for i in range(n)]


@pytest.mark.parametrize("seed", range(12))
def test_trades_in_one_orjson_call_are_the_json_modules_text(seed, monkeypatch):
    """Every float edge (NaN and inf as null, -0.0, 5e-324, 1e22, ...) and every row:
    the fast path's lines parse to what json writes, on the same lines, and it is taken."""
    import engine.report.jsonio as J

    rng = np.random.default_rng(seed)
    rows = _trade_rows(rng, int(rng.integers(8, 300)))
    shape = J._report_shape().props["models"].items.props["folds"].items.props["trades"].items
    taken = []
    real = J._orjson_rows
    monkeypatch.setattr(J, "_orjson_rows", lambda *a: taken.append(1) or real(*a))
    fast = J._flat_rows(rows, shape)
    assert taken and fast is not None and len(fast) == len(rows)
    monkeypatch.setattr(J, "_orjson_rows", lambda *a: None)  # the column-at-a-time path
    columns = J._flat_rows(rows, shape)
    for line, other, row in zip(fast, columns, rows):
        want = json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                           for k, v in row.items()}, ensure_ascii=False)
        same_layout(want, line)
        same_layout(other, line)


FALLS_BACK = ["float_direction", "order", "one_row_order", "brace", "open_brace", "bracket", "quote",
              "newline", "numpy", "huge_int", "surrogate", "nested"]


@pytest.mark.parametrize("change", FALLS_BACK + ["bool", "null", "int_price", "comma"])
def test_trades_that_orjson_would_spell_otherwise_take_the_column_path(change, monkeypatch):
    """Each change either leaves orjson's text right (then it is used) or is refused by
    _orjson_rows; either way the writer's text is the plain writer's."""
    import engine.report.jsonio as J

    rows = _trade_rows(np.random.default_rng(3), 20)
    r = rows[7]
    if change == "float_direction":
        for x in rows:  # an integer field: json's writer spells 1.0 as 1
            x["direction"] = float(x["direction"])
    elif change == "order":
        rows = [dict(reversed(list(x.items()))) for x in rows]
    elif change == "one_row_order":  # the same keys, one row in another order
        rows[7] = dict(reversed(list(r.items())))
    elif change == "newline":
        r["exit_time"] = "2024-01-01\nT00"
    elif change == "surrogate":
        r["exit_time"] = "\ud800"
    elif change == "brace":  # the rows are split at "},{"
        r["entry_time"] = "2024-01-01T00:00:00Z},{"
    elif change == "quote":
        r["exit_time"] = 'say "x"'
    elif change == "numpy":
        r["pnl"] = np.float32(0.1)
    elif change == "huge_int":
        r["direction"] = 2**70
    elif change == "open_brace":
        r["exit_time"] = "a{b"
    elif change == "bracket":
        r["exit_time"] = "[x]"
    elif change == "nested":
        r["pnl"] = {"b": 1, "a": 2.0}
    elif change == "null":
        r["pnl"] = None
    elif change == "int_price":
        r["entry_price"] = 3
    elif change == "comma":
        r["exit_time"] = "x,y"
    else:
        r["direction"] = True
    shape = J._report_shape().props["models"].items.props["folds"].items.props["trades"].items
    entries = J._Writer.entries(_trade_rows(np.random.default_rng(3), 1)[0], shape)
    assert [e[0] for e in entries] == list(TRADE_KEYS)
    assert (J._orjson_rows(rows, entries) is None) == (change in FALLS_BACK)
    report = make_report(n_models=1, n_folds=1, bars_per_fold=24, backtest_bars=24)
    report["models"][0]["folds"][0]["trades"] = rows
    old, new = naive_report_to_json(report), R.report_to_json(report)  # the column path's text
    strict_equal(parse_pairs(old), parse_pairs(new))
    same_layout(old, new)
