"""benchmarks/bulk_validate.py --tiny: the 1,000-model benchmark's script still runs
end to end (a child `foldgate validate`), at a size CI affords."""

from __future__ import annotations

import json

import bulk_validate


def test_bulk_validate_tiny_reports_its_figures(tmp_path, capsys):
    figures = bulk_validate.main(["--tiny", "--workdir", str(tmp_path / "w"),
                                  "--json", str(tmp_path / "fig.json")])
    printed = capsys.readouterr().out
    assert figures["models"] == 6 and figures["exit_status"] == 0
    assert figures["trajectories"] == 6 * (3 + 1) * figures["scenarios"]
    assert figures["wall_s"] > 0 and figures["peak_rss_mb"] > 10
    assert "wall time" in printed and "peak RSS" in printed and "% of wall" in printed
    # the kernel's seconds come from the run directory validate keeps under --out
    assert 0 < figures["kernel_s"] < figures["wall_s"] and 0 < figures["kernel_share"] < 1
    assert json.loads((tmp_path / "fig.json").read_text()) == figures
    report = json.loads((tmp_path / "w" / "out" / "report.json").read_text())
    assert len(report["models"]) == 6
    assert all(m["folds"] for m in report["models"])
    # a second call reuses the workload it built
    again = bulk_validate.main(["--tiny", "--workdir", str(tmp_path / "w")])
    assert again["build_s"] < figures["build_s"] or again["build_s"] < 1.0


def test_bulk_validate_tiny_checkpoint_run(tmp_path, capsys):
    """--checkpoints-per-symbol: 2 symbols x 3 checkpoints of the reference shape, each
    validated (--checkpoints all), the checkpoints of a symbol its variants."""
    figures = bulk_validate.main(["--tiny", "--models", "6", "--checkpoints-per-symbol", "3",
                                  "--policies", "reference", "--workdir", str(tmp_path / "w")])
    assert figures["models"] == 6 and figures["symbols"] == 2 and figures["exit_status"] == 0
    report = json.loads((tmp_path / "w" / "out" / "report.json").read_text())
    assert len(report["models"]) == 6
    by_symbol = {}
    for m in report["models"]:
        by_symbol.setdefault(m["symbol"], []).append(m["checkpoint"]["index"])
        assert m["summary"]["evidence"]["n_variants"] == 3
    assert {s: sorted(v) for s, v in by_symbol.items()} == {"C000USD": [0, 1, 2], "C001USD": [0, 1, 2]}
    assert "(2 symbols)" in capsys.readouterr().out
