"""The report of a 50-model validate run: HTML render time and size, JSON write time,
the terminal summary, each beside its plain reference (tests/naive_report.py; the
ratios of a 1,000-model report come from benchmarks/report_write.py), and how long
headless Chromium takes to show the page.

    pytest benchmarks/test_bench_report.py --benchmark-enable
    FOLDGATE_BENCH_TINY=1 pytest benchmarks/test_bench_report.py   # CI smoke size

Sizes: 50 models, 5 folds of 864 hourly bars (180 days) and a 720-bar backtest
(30 days), as `foldgate validate` writes with its defaults. Figures land in
extra_info: html_mb, json_mb, and page_load_s (navigation to first painted frame,
without the browser's start-up).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from engine.report import render_html, report_to_json, write_html_report  # noqa: E402
from naive_report import naive_print_validate, naive_render_html, naive_report_to_json  # noqa: E402
from report_fixtures import add_stress, find_chromium, load_in_chromium, make_report  # noqa: E402

TINY = os.environ.get("FOLDGATE_BENCH_TINY", "") not in ("", "0")
N_MODELS, BARS_PER_FOLD, BACKTEST_BARS = (4, 48, 48) if TINY else (50, 864, 720)
MAX_HTML_BYTES = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def report() -> dict:
    r = add_stress(make_report(n_models=N_MODELS, n_folds=5, bars_per_fold=BARS_PER_FOLD, backtest_bars=BACKTEST_BARS))
    r["settings"].update(walk_forward=5, quick_days=max(1, BACKTEST_BARS // 24))
    return r


@pytest.mark.benchmark(group="report")
def test_bench_render_html(benchmark, report):
    page = benchmark(render_html, report)
    size = len(page.encode("utf-8"))
    benchmark.extra_info.update(models=N_MODELS, html_mb=round(size / 1e6, 3))
    assert size < MAX_HTML_BYTES


@pytest.mark.benchmark(group="report")
def test_bench_report_json(benchmark, report):
    text = benchmark(report_to_json, report)
    benchmark.extra_info.update(models=N_MODELS, json_mb=round(len(text.encode("utf-8")) / 1e6, 3))


@pytest.mark.benchmark(group="report")
def test_bench_report_json_reference(benchmark, report):
    text = benchmark(naive_report_to_json, report)
    assert json.loads(text) == json.loads(report_to_json(report))


@pytest.mark.benchmark(group="report")
def test_bench_render_html_reference(benchmark, report):
    page = benchmark(naive_render_html, report)
    assert page == render_html(report)


def _quiet(fn):
    def run(report):
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            fn(report)
    return run


@pytest.mark.benchmark(group="terminal")
def test_bench_print_validate(benchmark, report, monkeypatch):
    from cli.output import print_validate

    monkeypatch.setenv("COLUMNS", "120")
    benchmark(_quiet(print_validate), report)


@pytest.mark.benchmark(group="terminal")
def test_bench_print_validate_reference(benchmark, report, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    benchmark(_quiet(naive_print_validate), report)


@pytest.mark.browser
@pytest.mark.benchmark(group="report")
@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")
def test_bench_open_in_chromium(benchmark, report, tmp_path):
    path = write_html_report(tmp_path / "report.html", report)
    loads = []

    def open_page():
        page = load_in_chromium(path, width=1280, height=900)
        assert page.errors == [], page.errors
        loads.append(page.load_s)

    # each round starts a fresh browser; page_load_s is the page's share of it
    benchmark.pedantic(open_page, rounds=1 if TINY else 3, iterations=1)
    benchmark.extra_info.update(models=N_MODELS, page_load_s=round(min(loads), 3),
                                page_load_s_max=round(max(loads), 3))
    assert max(loads) < 3.0
