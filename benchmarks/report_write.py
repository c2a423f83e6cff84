"""Time the report writers on a synthetic N-model report built in memory: the JSON
file, the HTML page and the terminal summary of `validate`, each the new way and the
plain reference way (tests/naive_report.py: the json-module writer, the page drawn from
the report in JSON values, rich.Table and a print per line), in the same run.

    python benchmarks/report_write.py                 # 1,000 models x 5 folds of 864 bars
    python benchmarks/report_write.py --models 200 --rounds 3
    python benchmarks/report_write.py --tiny          # seconds: a smoke run

The report is shaped like `foldgate validate --stress` writes it (numpy curves and
datetime64 timestamps, NaN metrics, trades, four stress scenarios per model), from
tests/report_fixtures.make_report. Each figure is the best of --rounds; the ratios are
reference / new. "largest piece" is the most text either JSON writer held at once
(both stream a model at a time)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT / "tests"), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

def best_of(rounds: int, fn) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=1000)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--bars", type=int, default=864, help="bars per fold (864: 180 days hourly / 5)")
    ap.add_argument("--backtest-bars", type=int, default=720)
    ap.add_argument("--rounds", type=int, default=1, help="best of this many runs of each writer")
    ap.add_argument("--tiny", action="store_true", help="12 models x 3 folds of 48 bars")
    ap.add_argument("--columns", type=int, default=120, help="terminal width of the summary")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    if args.tiny:
        args.models, args.folds, args.bars, args.backtest_bars = 12, 3, 48, 48

    from cli import output
    from engine.atomic import atomic_open
    from engine.report import iter_report_json, render_html, write_html_report, write_json_report
    from naive_report import naive_iter_report_json, naive_print_validate, naive_render_html
    from report_fixtures import add_stress, make_report

    t0 = time.perf_counter()
    report = add_stress(make_report(n_models=args.models, n_folds=args.folds, bars_per_fold=args.bars,
                                     backtest_bars=args.backtest_bars))
    report["settings"].update(walk_forward=args.folds, quick_days=max(1, args.backtest_bars // 24))
    build_s = time.perf_counter() - t0
    os.environ["COLUMNS"] = str(args.columns)

    tmp = Path(tempfile.mkdtemp(prefix="foldgate-report-bench-"))

    def naive_json():
        with atomic_open(tmp / "naive.json", "wb") as fh:
            for piece in naive_iter_report_json(report):
                fh.write(piece.encode("utf-8"))

    def naive_html():
        with open(tmp / "naive.html", "w", encoding="utf-8") as fh:
            fh.write(naive_render_html(report))

    def quiet(fn):
        def run():
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                fn(report)
        return run

    timed = {
        "json": (lambda: write_json_report(tmp / "report.json", report), naive_json),
        "html": (lambda: write_html_report(tmp / "report.html", report), naive_html),
        "terminal": (quiet(output.print_validate), quiet(naive_print_validate)),
    }
    figures = {"models": args.models, "folds": args.folds, "bars_per_fold": args.bars, "build_s": round(build_s, 2)}
    for name, (new, old) in timed.items():
        t_new = best_of(args.rounds, new)
        t_old = best_of(args.rounds, old)
        figures[name] = {"new_s": round(t_new, 3), "reference_s": round(t_old, 3), "ratio": round(t_old / t_new, 2)}
    same_json = json.loads((tmp / "report.json").read_text()) == json.loads((tmp / "naive.json").read_text())
    figures["json_mb"] = round((tmp / "report.json").stat().st_size / 1e6, 1)
    figures["html_mb"] = round((tmp / "report.html").stat().st_size / 1e6, 1)
    figures["largest_piece_mb"] = {"new": round(max(map(len, iter_report_json(report))) / 1e6, 2),
                                   "reference": round(max(map(len, naive_iter_report_json(report))) / 1e6, 2)}
    figures["same_json"] = same_json
    figures["same_html"] = render_html(report) == naive_render_html(report)
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()

    print(f"report writers: {args.models} models x {args.folds} folds of {args.bars} bars (+ a {args.backtest_bars}-bar "
          f"backtest), 4 stress scenarios; built in {build_s:.1f} s; best of {args.rounds}")
    print(f"  {'':10} {'new':>9} {'reference':>10} {'ratio':>7}")
    for name in timed:
        f = figures[name]
        print(f"  {name:10} {f['new_s']:8.3f}s {f['reference_s']:9.3f}s {f['ratio']:6.1f}x")
    print(f"  JSON {figures['json_mb']} MB (largest piece held: {figures['largest_piece_mb']['new']} MB new, "
          f"{figures['largest_piece_mb']['reference']} MB reference), HTML {figures['html_mb']} MB; "
          f"same JSON values: {same_json}, same page: {figures['same_html']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
    return 0 if same_json and figures["same_html"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
