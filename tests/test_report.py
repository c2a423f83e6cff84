"""The foldgate.report/2 JSON (schema, NaN, atomic writes) and the HTML page
(escaping, self-containment, size, and how it behaves in a real browser)."""

from __future__ import annotations

import enum
import html
import json
import math
import re
import struct
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from engine import report as R
from report_fixtures import find_chromium, load_in_chromium, make_report

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def rep() -> dict:
    return make_report(n_models=7, n_folds=5, bars_per_fold=120, backtest_bars=96, seed=3)


def hostile_report() -> dict:
    r = make_report(n_models=7, n_folds=3, bars_per_fold=48, backtest_bars=48, seed=5)
    m = r["models"][0]
    m["symbol"] = HOSTILE
    m["timeframe"] = '1Hour"><img src=x onerror=alert(2)>'
    m["model_path"] = "models/<b>&amp;'\"x.pt"
    m["reasons"].append("</li></ul><script>alert(3)</script>")
    m["gating"]["flags"].append({"code": "hostile", "message": "<iframe src=javascript:alert(4)>"})
    r["models"][5]["error"] = "<svg onload=alert(5)>"
    r["archive"]["path"] = "</code><script>alert(6)</script>.zip"
    r["settings"]["store"] = "<style>body{display:none}</style>"
    return r


# --- JSON and schema ----------------------------------------------------------------


def test_fixture_reports_validate(rep):
    R.validate_report(rep)
    R.validate_report(make_report(n_models=1, n_folds=3, bars_per_fold=24, backtest_bars=24))
    R.validate_report(make_report(n_models=7, command="backtest", bars_per_fold=24, backtest_bars=24))
    R.validate_report(make_report(n_models=3, command="backtest", n_folds=0, backtest_bars=24))


def test_fixture_covers_every_decision_class_and_failure(rep):
    models = rep["models"]
    assert {m["decision"] for m in models} == {"LIVE", "PAPER", "RETRAIN", "DROP", None}
    assert {m["gating"]["classification"] for m in models} == {"APPROVED", "REVIEW", "DROP"}
    assert any(m["error"] for m in models)
    assert any(m["backtest"] is None and not m["error"] for m in models)  # gating DROP: not backtested
    assert any(np.isnan(f["metrics"]["win_rate"]) or np.isnan(f["metrics"]["profit_factor"])
               for m in models for f in m["folds"]) or any(
        m["gating"] and np.isnan(m["gating"]["metrics"]["consistency"]) for m in models)


def test_empty_report_validates_and_renders():
    r = make_report(n_models=0)
    R.validate_report(r)
    assert "No models in this report" in R.render_html(r)


@pytest.mark.parametrize("mutate, expect", [
    (lambda r: r["models"][1]["folds"][0]["metrics"].__setitem__("sharpe", "high"),
     "report.models[1].folds[0].metrics.sharpe: 'high' is not of type 'number', 'null'"),
    (lambda r: r["models"][2].__setitem__("decision", "MAYBE"),
     "report.models[2].decision: 'MAYBE' is not one of"),
    (lambda r: r["models"][0]["gating"].__setitem__("classification", "OK"),
     "report.models[0].gating.classification: 'OK' is not one of ['APPROVED', 'REVIEW', 'DROP']"),
    (lambda r: r["models"][3].pop("reasons"), "report.models[3]: 'reasons' is a required property"),
    (lambda r: r["models"][0]["summary"].__setitem__("sharp_mean", 1.0),
     "report.models[0].summary: Additional properties are not allowed ('sharp_mean' was unexpected)"),
    (lambda r: r["models"][0]["backtest"].__setitem__("index", 0), "report.models[0].backtest.index: not allowed here"),
    (lambda r: r["models"][1]["folds"][2]["trades"][0].__setitem__("direction", 0),
     "report.models[1].folds[2].trades[0].direction: 0 is not one of [1, -1]"),
    (lambda r: r["models"][1]["folds"][2]["trades"][1].pop("pnl"),
     "report.models[1].folds[2].trades[1]: 'pnl' is a required property"),
    (lambda r: r["models"][0]["folds"][1].__setitem__("equity", r["models"][0]["folds"][1]["equity"][:-1]),
     "report.models[0].folds[1].equity: 120 values for 120 timestamps"),
    (lambda r: r["models"][0]["folds"][1]["equity"].__setitem__(7, np.nan),
     "report.models[0].folds[1].equity[7]: None is not of type 'number'"),
    (lambda r: r["models"][0]["folds"][1].__setitem__("timestamps", ["yesterday"] * 120),
     "report.models[0].folds[1].timestamps[0]: 'yesterday' does not match"),
    (lambda r: r["models"][0]["summary"].__setitem__("folds", 4),
     "report.models[0].summary.folds: 4 but 5 folds listed"),
    (lambda r: r["models"][5].__setitem__("decision", "LIVE"),
     "report.models[5].decision: 'LIVE' for a model that failed"),
    (lambda r: r.__setitem__("schema", "foldgate.report/1"), "report.schema: 'foldgate.report/2' was expected"),
    (lambda r: r["models"][0].__setitem__("decision", "DROP"),
     "report.models[0].decision: 'DROP' but decisions.evidence (the profile used) is 'LIVE'"),
    (lambda r: r["models"][0]["decisions"].__setitem__("seed", "MAYBE"), "report.models[0].decisions.seed: 'MAYBE'"),
    (lambda r: r["models"][0].__setitem__("profile", "hunch"), "report.models[0].profile: 'hunch' is not one of"),
    (lambda r: r["models"][0]["flags"].append({"code": "lower", "message": "x"}),
     "report.models[0].flags[1].code: 'lower' does not match"),
    (lambda r: r["models"][0]["summary"]["evidence"].__setitem__("oos_folds", 2),
     "report.models[0].summary.evidence.oos_folds: 2 but 4 out-of-sample folds listed"),
    (lambda r: r["models"][0]["summary"]["evidence"].__setitem__("psr0", 1.5),
     "report.models[0].summary.evidence.psr0: 1.5 is greater than the maximum of 1"),
    (lambda r: r["models"][0]["summary"]["evidence"].pop("bh_q"),
     "report.models[0].summary.evidence: 'bh_q' is a required property"),
    (lambda r: r["models"][0]["folds"][0]["buy_and_hold"].__setitem__("equity", [1.0, 2.0]),
     "report.models[0].folds[0].buy_and_hold.equity: 2 values for 120 timestamps"),
])
def test_broken_report_names_the_field(mutate, expect):
    r = make_report(n_models=7, n_folds=5, bars_per_fold=120, backtest_bars=96, seed=3)
    mutate(r)
    with pytest.raises(R.ReportSchemaError) as info:
        R.validate_report(r)
    assert any(e.startswith(expect) for e in info.value.errors), info.value.errors
    assert str(info.value).startswith("report does not match foldgate.report/2: report.")


def test_errors_inside_null_alternatives_are_not_hidden():
    # backtest is `null | period`: the message must name the bad field, not say "is not null"
    r = make_report(n_models=1, n_folds=2, bars_per_fold=24, backtest_bars=24)
    r["models"][0]["backtest"]["metrics"]["n_trades"] = -1
    with pytest.raises(R.ReportSchemaError) as info:
        R.validate_report(r)
    assert info.value.errors == ["report.models[0].backtest.metrics.n_trades: -1 is less than the minimum of 0"]


def test_nan_and_inf_are_written_as_null(rep):
    r = make_report(n_models=1, n_folds=2, bars_per_fold=24, backtest_bars=24)
    met = r["models"][0]["folds"][0]["metrics"]
    met["sharpe"] = np.float64(np.inf)
    met["sortino"] = -math.inf
    met["profit_factor"] = float("nan")
    r["models"][0]["summary"]["psr"] = np.float32(np.nan)
    text = R.report_to_json(r)

    def refuse(name):
        raise AssertionError(f"non-JSON constant {name} in the report")

    data = json.loads(text, parse_constant=refuse)
    got = data["models"][0]["folds"][0]["metrics"]
    assert got["sharpe"] is None and got["sortino"] is None and got["profit_factor"] is None
    assert data["models"][0]["summary"]["psr"] is None
    R.validate_report(data)


def test_numpy_values_become_plain_json(rep):
    data = json.loads(R.report_to_json(rep))
    fold = data["models"][0]["folds"][0]
    assert isinstance(fold["metrics"]["n_trades"], int)  # float64 count from the kernel -> int
    assert isinstance(fold["index"], int) and isinstance(fold["bars"], int)
    assert all(type(v) is float for v in fold["equity"])
    assert fold["timestamps"][0].endswith("Z") and len(fold["equity"]) == len(fold["timestamps"]) + 1
    assert fold["trades"][0]["direction"] in (1, -1)


def test_json_is_stable_and_in_schema_order(rep):
    text = R.report_to_json(rep)
    data = json.loads(text)
    assert list(data) == ["schema", "created", "command", "versions", "settings", "archive", "models"]
    assert list(data["models"][0])[:3] == ["symbol", "timeframe", "asset_class"]
    assert list(data["models"][0]["folds"][0])[0] == "index"

    def reversed_keys(v):
        if isinstance(v, dict):
            return {k: reversed_keys(v[k]) for k in reversed(list(v))}
        if isinstance(v, list):
            return [reversed_keys(x) for x in v]
        return v

    assert R.report_to_json(reversed_keys(data)) == text
    assert R.report_to_json(data) == text  # already-JSON input is a fixed point
    assert text.endswith("}\n")


def test_unwritable_value_names_its_path():
    r = make_report(n_models=2, n_folds=2, bars_per_fold=24, backtest_bars=24)
    r["models"][1]["folds"][1]["metrics"]["sharpe"] = object()
    with pytest.raises(TypeError, match=r"report\.models\[1\]\.folds\[1\]\.metrics\.sharpe: a object value"):
        R.report_to_json(r)


def test_enums_paths_and_datetimes_are_converted():
    class Decision(str, enum.Enum):
        LIVE = "LIVE"

    r = make_report(n_models=1, n_folds=2, bars_per_fold=24, backtest_bars=24)
    m = r["models"][0]
    m["decision"] = Decision.LIVE
    m["model_path"] = Path("models") / "BTCUSD_1Hour.pt"
    m["folds"][0]["start"] = datetime(2025, 4, 12, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    data = json.loads(R.report_to_json(r))
    assert data["models"][0]["decision"] == "LIVE"
    assert data["models"][0]["model_path"] == str(Path("models") / "BTCUSD_1Hour.pt")
    assert data["models"][0]["folds"][0]["start"] == "2025-04-12T00:00:00Z"


def test_write_json_report_round_trips(tmp_path, rep):
    path = R.write_json_report(tmp_path / "out" / "report.json", rep)
    assert path.read_text(encoding="utf-8") == R.report_to_json(rep)
    R.validate_report(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("writer", [R.write_json_report, R.write_html_report])
def test_failed_write_leaves_old_file_and_no_temp(tmp_path, rep, writer):
    dest = tmp_path / "report.out"
    writer(dest, rep)
    before = dest.read_bytes()
    broken = make_report(n_models=2, n_folds=2, bars_per_fold=24, backtest_bars=24)
    broken["models"][1]["summary"]["psr"] = object()
    with pytest.raises(TypeError):
        writer(dest, broken)
    assert dest.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.out"]


def test_failed_first_write_creates_nothing(tmp_path):
    broken = make_report(n_models=1, n_folds=2, bars_per_fold=24, backtest_bars=24)
    broken["models"][0]["symbol"] = object()
    with pytest.raises(TypeError):
        R.write_html_report(tmp_path / "r.html", broken)
    assert list(tmp_path.iterdir()) == []


# --- HTML ---------------------------------------------------------------------------


def test_html_escapes_hostile_strings():
    page = R.render_html(hostile_report())
    assert page.count("<script") == 1  # the page's own sort script, nothing from the report
    for raw in (HOSTILE, "<img", "<iframe", "<svg onload", "<style>body", "<b>&amp;"):
        assert raw not in page, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;/li&gt;&lt;/ul&gt;&lt;script&gt;alert(3)&lt;/script&gt;" in page
    assert "1Hour&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page


def test_html_is_self_contained(rep):
    page = R.render_html(rep)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert "@import" not in page and "url(http" not in page
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


def _summary_rows(page: str) -> list[tuple[str, str]]:
    table = page[page.index('id="summary-table"'): page.index("</table>", page.index('id="summary-table"'))]
    rows = re.findall(r'<tr><td><a href="#(m\d+)">.*?<span class="badge b-(\w+)"', table)
    return rows


def test_summary_is_sorted_by_decision_then_errors(rep):
    page = R.render_html(rep)
    rows = _summary_rows(page)
    order = ["live", "paper", "retrain", "drop", "error"]
    kinds = [k for _, k in rows]
    assert len(rows) == len(rep["models"])
    assert kinds == sorted(kinds, key=order.index)
    # sections follow the same order, so the best models come first in the page too
    sections = re.findall(r'<section class="model m-\w+" id="(m\d+)">', page)
    assert sections == [anchor for anchor, _ in rows]


def test_each_model_section_has_its_parts(rep):
    page = R.render_html(rep)
    for i, m in enumerate(rep["models"]):
        start = page.index(f'id="m{i}"')
        end = page.find("<section", start)
        sec = page[start: end if end > 0 else len(page)]
        if m["error"]:
            assert "Evaluation failed" in sec
            continue
        assert "Gating" in sec and all(k in sec for k in ("Fitness", "Profit factor", "Consistency"))
        for reason in m["reasons"]:
            assert html.escape(reason) in sec
        if m["folds"]:
            assert sec.count("<svg") == 3  # stitched equity, its drawdown, the forest plot
            # ONE stitched policy curve per run of out-of-sample folds, not one per fold
            runs = 1 + sum(1 for a, b in zip(m["folds"], m["folds"][1:]) if a["in_sample"] and not b["in_sample"]) \
                - (1 if m["folds"][0]["in_sample"] else 0)
            assert sec.count('class="ln pol"') == 2 * runs  # equity and drawdown
            assert sec.count('class="ln bh"') == runs  # buy-and-hold on the equity chart
            assert sec.count('class="fb"') == 2 * sum(not f["in_sample"] for f in m["folds"])  # fold boundaries
            assert sec.count('class="shade"') == 2 * sum(f["in_sample"] for f in m["folds"])
            # the forest plot: a point per fold, an interval per out-of-sample fold and the pooled row
            oos = sum(not f["in_sample"] for f in m["folds"])
            assert sec.count('<circle class="pt') == len(m["folds"])
            assert sec.count('<line class="ci') == 3 * (oos + 1)
            fold_rows = sec[sec.index('class="grid folds"'):]
            assert fold_rows.count("<tr>") == len(m["folds"]) + 1
            e = m["summary"]["evidence"]
            assert f"{e['psr0']:.3f}" in sec and "PSR(hurdle" in sec and "MinTRL" in sec
            other = [d for k, d in m["decisions"].items() if k != m["profile"]][0]
            assert f'seed profile: <span class="badge b-{other.lower()}">' in sec
        else:
            assert "<svg" not in sec


def test_curves_are_downsampled_but_keep_extremes():
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.standard_normal(20_000))
    y[12_345] = y.min() - 50  # a one-bar crash must stay visible
    x, ys = R.downsample(y)
    assert len(x) <= R.MAX_CURVE_POINTS
    assert ys.min() == y.min() and ys.max() == y.max()
    assert x[0] == 0 and x[-1] == y.size - 1 and np.all(np.diff(x) > 0)
    assert np.array_equal(ys, y[x.astype(int)])
    short = np.arange(10.0)
    assert np.array_equal(R.downsample(short)[1], short)


def test_json_keeps_full_curves_while_html_draws_fewer_points():
    r = make_report(n_models=1, n_folds=3, bars_per_fold=5000, backtest_bars=24)  # fold 0 in-sample
    data = json.loads(R.report_to_json(r))
    assert len(data["models"][0]["folds"][1]["equity"]) == 5001
    page = R.render_html(r)
    paths = re.findall(r'class="ln (?:pol|bh)" d="M([^"]+)"', page)
    # the two out-of-sample folds stitched: 10,000 bars drawn with at most MAX_CURVE_POINTS
    assert len(paths) == 3 and all(len(p.split()) <= R.MAX_CURVE_POINTS for p in paths)


def test_fifty_model_page_is_under_10_mb():
    r = make_report(n_models=50, n_folds=5, bars_per_fold=864, backtest_bars=720)  # 180 d + 30 d hourly
    page = R.render_html(r)
    assert len(page.encode("utf-8")) < 10 * 1024 * 1024
    assert len(_summary_rows(page)) == 50


def test_thresholds_from_the_report_are_shown(rep):
    r = json.loads(R.report_to_json(rep))
    r["settings"]["thresholds"]["approved"]["fitness"] = 0.77
    assert "&ge; 0.77" in R.render_html(r)
    r["settings"].pop("thresholds")
    page = R.render_html(r)
    assert "&ge; 0.70" in page and "default thresholds" in page


# --- in a browser -------------------------------------------------------------------

browser = pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")


def png_pixels(png: bytes) -> np.ndarray:
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG (what Chromium writes) to (H, W, C)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos:pos + 4])
        kind, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for row in range(height):
        ftype = raw[row * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, row * (stride + 1) + 1).astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 1:  # Sub: a running sum per channel
            cur = np.cumsum(line.reshape(width, bpp), axis=0).ravel() & 0xFF
        elif ftype == 2:  # Up
            cur = (line + prev) & 0xFF
        else:  # Average and Paeth depend on the byte just decoded: one at a time
            cur_l, up, fl = [0] * stride, prev.tolist(), line.tolist()
            for i in range(stride):
                a = cur_l[i - bpp] if i >= bpp else 0
                b = up[i]
                if ftype == 3:
                    pred = (a + b) >> 1
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur_l[i] = (fl[i] + pred) & 0xFF
            cur = np.array(cur_l, dtype=np.int32)
        out[row] = cur
        prev = cur
    return out.reshape(height, width, bpp)


def assert_not_blank(png: bytes) -> None:
    px = png_pixels(png)[..., :3].astype(np.float64)
    assert px.std() > 10.0, f"screenshot looks blank (pixel std {px.std():.2f})"
    # a real page has many colours: text, badges, the fold curves
    colours = np.unique(px.reshape(-1, 3)[::7], axis=0)
    assert len(colours) > 50, f"only {len(colours)} distinct colours"


@pytest.mark.browser
@browser
def test_page_loads_in_chromium_without_errors(tmp_path, rep):
    path = R.write_html_report(tmp_path / "report.html", rep)
    # click "Sharpe mean" twice (descending); the first row must then hold the best mean
    sort = ("(() => { const th = [...document.querySelectorAll('#summary-table th')]"
            ".find(h => h.textContent.startsWith('Sharpe mean')); th.click(); th.click();"
            " return [...document.querySelectorAll('#summary-table tbody tr')]"
            ".map(r => r.cells[0].textContent.trim().split(' ')[0]); })()")
    page = load_in_chromium(path, width=1280, height=900,
                            expressions=("document.querySelectorAll('svg.plot').length", sort))
    assert page.errors == [], page.errors
    assert page.title.startswith("foldgate validate report")
    n_backtested = sum(1 for m in rep["models"] if m["folds"])
    assert page.values[0] == 3 * n_backtested
    best = max((m for m in rep["models"] if m["summary"]), key=lambda m: m["summary"]["sharpe_mean"])
    assert page.values[1][0] == best["symbol"]
    assert_not_blank(page.screenshot)


@pytest.mark.browser
@browser
def test_hostile_strings_stay_text_in_chromium(tmp_path):
    path = R.write_html_report(tmp_path / "hostile.html", hostile_report())
    page = load_in_chromium(path, width=1024, height=700, expressions=(
        "document.body.innerText.includes('<script>alert(1)</script>')",
        "document.scripts.length",
        "document.querySelectorAll('img, iframe, main style').length",
    ))
    assert page.dialogs == []
    assert page.values == [True, 1, 0]
    assert page.errors == [], page.errors


@pytest.mark.browser
@pytest.mark.slow
@browser
def test_fifty_model_page_loads_in_chromium(tmp_path):
    r = make_report(n_models=50, n_folds=5, bars_per_fold=864, backtest_bars=720)
    path = R.write_html_report(tmp_path / "big.html", r)
    page = load_in_chromium(path, width=1280, height=900,
                            expressions=("document.querySelectorAll('section.model').length",))
    assert page.errors == [], page.errors
    assert page.values == [50]
    assert_not_blank(page.screenshot)


@pytest.mark.browser
@browser
def test_browser_check_notices_errors(tmp_path):
    # the harness itself: a page that throws and loads from the network must be reported
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><title>x</title><p>x</p><script>undefined_function()</script>"
                   "<script>console.error('boom')</script>", encoding="utf-8")
    page = load_in_chromium(bad, width=400, height=300)
    assert any("undefined_function" in e for e in page.errors)
    assert any("boom" in e for e in page.errors)
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><title>b</title><body style='background:#fff'></body>", encoding="utf-8")
    with pytest.raises(AssertionError, match="blank"):
        assert_not_blank(load_in_chromium(blank, width=400, height=300).screenshot)


def test_png_decoder_reads_every_filter():
    # rows filtered None, Sub, Up, Average, Paeth must decode back to the same pixels
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    stride, bpp = 7 * 3, 3
    raw, prev = b"", np.zeros(stride, dtype=np.int32)
    for ftype, row in enumerate(img.reshape(5, stride).astype(np.int32)):
        left = np.concatenate((np.zeros(bpp, np.int32), row[:-bpp]))
        upleft = np.concatenate((np.zeros(bpp, np.int32), prev[:-bpp]))
        if ftype == 0:
            f = row
        elif ftype == 1:
            f = row - left
        elif ftype == 2:
            f = row - prev
        elif ftype == 3:
            f = row - ((left + prev) >> 1)
        else:
            p = left + prev - upleft
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
            f = row - np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        raw += bytes([ftype]) + (f & 0xFF).astype(np.uint8).tobytes()
        prev = row

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 7, 5, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    assert np.array_equal(png_pixels(png), img)


def test_report_path_argument_accepts_str(tmp_path, rep):
    out = R.write_html_report(str(tmp_path / "a.html"), rep)
    assert isinstance(out, Path) and out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_docs_describe_every_schema_field():
    schema = R.load_schema()
    names = set()

    def walk(node):
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    doc = (Path(__file__).resolve().parents[1] / "docs" / "report.md").read_text(encoding="utf-8")
    undocumented = sorted(n for n in names if f"`{n}`" not in doc)
    assert not undocumented, f"docs/report.md does not describe: {undocumented}"


@pytest.mark.parametrize("metric, value, level", [
    ("max_drawdown", 0.05, "APPROVED"), ("max_drawdown", 0.08, "APPROVED"), ("max_drawdown", 0.10, "REVIEW"),
    ("max_drawdown", 0.15, "REVIEW"), ("max_drawdown", 0.20, "DROP"),
    ("fitness", 0.75, "APPROVED"), ("fitness", 0.70, "APPROVED"), ("fitness", 0.55, "REVIEW"), ("fitness", 0.4, "DROP"),
    ("consistency", 0.90, "APPROVED"), ("consistency", 0.60, "DROP"),
])
def test_gating_table_levels_follow_engine_gating(rep, metric, value, level):
    """The table's levels are engine.gating's comparisons: inverting the drawdown
    comparison (smaller is better) there or here fails this test (issue 8 item 12)."""
    from engine.gating import as_thresholds, metric_level

    r = json.loads(R.report_to_json(rep))
    m = r["models"][0]
    m["gating"]["metrics"][metric] = value
    sec = R.render_html(r)
    sec = sec[sec.index('id="m0"'):]
    sec = sec[: sec.find("<section") if "<section" in sec else len(sec)]
    labels = {"fitness": "Fitness", "consistency": "Consistency", "max_drawdown": "Max drawdown (proxy)"}
    row = re.search(rf"<tr><th>{re.escape(labels[metric])}</th>(.*?)</tr>", sec).group(1)
    assert f'<span class="badge b-{level.lower()}">{level}</span>' in row
    t = as_thresholds(r["settings"]["thresholds"])
    assert ("DROP", "REVIEW", "APPROVED")[metric_level(metric, value, t)] == level
    op = "&le;" if metric == "max_drawdown" else "&ge;"
    assert row.count(op) == 2


def test_out_of_sample_folds_are_stitched_into_one_compounded_curve():
    from engine.report.html import _stitched

    def period(i, start_h, equity, hold, in_sample=False):
        t0 = np.datetime64("2025-01-01T00:00:00") + np.timedelta64(start_h, "h")
        ts = [str(t0 + np.timedelta64(k, "h")) + "Z" for k in range(len(equity) - 1)]
        return {"index": i, "in_sample": in_sample, "timestamps": ts, "equity": equity,
                "buy_and_hold": {"equity": hold}}

    m = {"folds": [period(0, 0, [100.0, 110.0, 121.0], [100.0, 100.0, 120.0]),
                   period(1, 2, [100.0, 50.0, 200.0], [100.0, 1.0, 1.0], in_sample=True),
                   period(2, 4, [100.0, 90.0, 99.0], [100.0, 105.0, 84.0])]}
    st = _stitched(m)
    assert [b[1] for b in st["boundaries"]] == ["F1", "F3"] and len(st["shaded"]) == 1
    assert len(st["segments"]) == 2  # the in-sample fold is a gap, not part of the curve
    np.testing.assert_allclose(st["segments"][0]["ret"], [0.10, 0.21])
    np.testing.assert_allclose(st["segments"][1]["ret"], [1.21 * 0.9 - 1, 1.21 * 0.99 - 1])  # compounded
    np.testing.assert_allclose(st["segments"][1]["hold"], [1.2 * 1.05 - 1, 1.2 * 0.84 - 1])
    # drawdown from the running peak, which carries over the gap
    np.testing.assert_allclose(st["segments"][1]["dd"], [0.9 - 1, 0.99 - 1])
    assert st["total"] == pytest.approx(1.21 * 0.99 - 1) and st["hold_total"] == pytest.approx(1.2 * 0.84 - 1)
