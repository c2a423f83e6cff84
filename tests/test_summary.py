"""Training summaries (docs/design.md 7): accepted shapes, per-symbol failures with their
reasons, model resolution inside the root."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from archive_factory import build_training_archive, metric_history, summary_dict
from engine.errors import ArchiveError
from engine.summary import METRIC_KEYS, load_training, parse_summary

GOOD = metric_history(0.8, 2.0, 0.9, 0.05, n=5)
RL = "models/rl_symbols"


def run_dir(tmp_path: Path, summary, models=("models/rl_symbols/UNIUSD_1Hour.pt",), raw: str | None = None):
    root = tmp_path / "extract"
    root.mkdir(exist_ok=True)
    for m in models:
        (root / m).parent.mkdir(parents=True, exist_ok=True)
        (root / m).write_bytes(b"model")
    path = root / "training_summary_20241227_120000.json"
    path.write_text(raw if raw is not None else json.dumps(summary))
    return root, path


def by_symbol(records):
    return {r.symbol: r for r in records}


@pytest.mark.parametrize("shape", ["dict", "list"])
@pytest.mark.parametrize("wrap", [True, False])
def test_dict_and_list_shapes_with_and_without_metrics_wrapper(tmp_path, shape, wrap):
    summary = summary_dict({"UNIUSD": GOOD}, shape=shape, wrap_metrics=wrap,
                           model_paths={"UNIUSD": f"{RL}/UNIUSD_1Hour.pt"})
    root, path = run_dir(tmp_path, summary)
    [rec] = parse_summary(path, root)
    assert rec.error is None and rec.ok
    assert (rec.symbol, rec.timeframe) == ("UNIUSD", "1Hour")
    assert rec.model_path == (root / RL / "UNIUSD_1Hour.pt").resolve()
    assert rec.metrics == {k: GOOD[k] for k in METRIC_KEYS}
    assert rec.final("fitness_score") == 0.8


def test_symbols_as_a_list_under_symbols_key(tmp_path):
    summary = {"timeframe": "1Hour", "symbols": [{"symbol": "UNIUSD", "metrics": GOOD}]}
    root, path = run_dir(tmp_path, summary)
    [rec] = parse_summary(path, root)
    assert rec.ok and rec.model_path.name == "UNIUSD_1Hour.pt"


def test_symbols_at_the_top_level(tmp_path):
    root, path = run_dir(tmp_path, {"timeframe": "1Hour", "run": "x", "UNIUSD": {"metrics": GOOD}})
    [rec] = parse_summary(path, root)
    assert rec.ok and rec.symbol == "UNIUSD"


def test_optional_fields_and_scalar_metrics(tmp_path):
    entry = {"fitness_score": 0.8, "profit_factor": 2.0, "consistency": 0.9, "max_drawdown": 0.05,
             "checkpoints": ["ckpt/UNIUSD_e1.pt"], "train_start": "2024-01-01",
             "train_end": "2024-06-30T00:00:00Z", "timeframe": "1Hour"}
    root, path = run_dir(tmp_path, {"symbols": {"UNIUSD": entry}})
    [rec] = parse_summary(path, root)
    assert rec.ok
    assert rec.metrics["fitness_score"] == [0.8]
    assert rec.checkpoints == ["ckpt/UNIUSD_e1.pt"]
    assert (rec.train_start, rec.train_end) == ("2024-01-01", "2024-06-30T00:00:00Z")


def test_pair_symbols_are_canonical(tmp_path):
    root, path = run_dir(tmp_path, {"timeframe": "1Hour", "symbols": {"BTC/USD": {"metrics": GOOD}}},
                         models=[f"{RL}/BTCUSD_1Hour.pt"])
    [rec] = parse_summary(path, root)
    assert rec.ok and rec.symbol == "BTCUSD" and rec.model_path.name == "BTCUSD_1Hour.pt"


def test_model_found_by_name_at_any_depth(tmp_path):
    deep = "Alpaca_trading/out/run7/models/rl_symbols/UNIUSD_1Hour.pt"
    root, path = run_dir(tmp_path, {"timeframe": "1Hour", "symbols": {"UNIUSD": {"metrics": GOOD}}}, models=[deep])
    [rec] = parse_summary(path, root)
    assert rec.ok and rec.model_path == (root / deep).resolve()


def test_named_model_path_that_moved_is_found_by_name(tmp_path):
    # the seed's archives keep models under Alpaca_trading/ while the summary says models/...
    summary = {"timeframe": "1Hour", "symbols": {"UNIUSD": {"model": f"{RL}/UNIUSD_1Hour.pt", "metrics": GOOD}}}
    root, path = run_dir(tmp_path, summary, models=[f"Alpaca_trading/{RL}/UNIUSD_1Hour.pt"])
    [rec] = parse_summary(path, root)
    assert rec.ok and rec.model_path == (root / "Alpaca_trading" / RL / "UNIUSD_1Hour.pt").resolve()


def test_absolute_training_machine_path_is_matched_by_name(tmp_path):
    summary = {"symbols": {"UNIUSD": {"model": "/content/Alpaca_trading/models/rl_symbols/UNIUSD_1Hour.pt",
                                      "metrics": GOOD},
                           "ETHUSD": {"model": "C:\\Users\\q\\models\\ETHUSD_1Hour.pt", "metrics": GOOD}}}
    root, path = run_dir(tmp_path, summary)
    recs = by_symbol(parse_summary(path, root))
    assert recs["UNIUSD"].ok and recs["UNIUSD"].timeframe == "1Hour"
    assert recs["ETHUSD"].error is None and recs["ETHUSD"].model_path is None
    assert recs["ETHUSD"].model_missing == (
        "model file missing: 'C:\\\\Users\\\\q\\\\models\\\\ETHUSD_1Hour.pt' is outside the extract root, and no file "
        "named 'ETHUSD_1Hour.pt' is inside it")


def test_timeframe_from_the_model_file_name(tmp_path):
    root, path = run_dir(tmp_path, {"symbols": {"UNIUSD": {"metrics": GOOD}}}, models=[f"{RL}/UNIUSD_15Min.pt"])
    [rec] = parse_summary(path, root)
    assert rec.ok and rec.timeframe == "15Min"


def test_rl_symbols_copy_wins_over_a_stray_one_and_true_ambiguity_fails(tmp_path):
    summary = {"timeframe": "1Hour", "symbols": {"UNIUSD": {"metrics": GOOD}}}
    root, path = run_dir(tmp_path, summary, models=[f"{RL}/UNIUSD_1Hour.pt", "backup/UNIUSD_1Hour.pt"])
    assert parse_summary(path, root)[0].model_path.parent.name == "rl_symbols"
    (root / "a" / RL).mkdir(parents=True)
    (root / "a" / RL / "UNIUSD_1Hour.pt").write_bytes(b"m")
    (root / "b" / RL).mkdir(parents=True)
    (root / "b" / RL / "UNIUSD_1Hour.pt").write_bytes(b"m")
    (root / RL / "UNIUSD_1Hour.pt").unlink()
    assert "3 files named 'UNIUSD_1Hour.pt'" in parse_summary(path, root)[0].error


@pytest.mark.parametrize(
    "entry, reason",
    [
        ({**GOOD, "profit_factor": [1.0, "2.0", 1, 1, 1]}, "metric profit_factor: element 1 is a string ('2.0'), "
                                                           "expected a number"),
        ({**GOOD, "profit_factor": [1.0, True, 1, 1, 1]}, "element 1 is a boolean (true)"),
        ({**GOOD, "fitness_score": "high"}, "metric fitness_score is a string ('high')"),
        ({"metrics": [1, 2]}, "'metrics' is a list, expected an object"),
        ({"metrics": GOOD, "checkpoints": ["a.pt"]}, "checkpoints has 1 entries, fitness_score 5"),
        ({"metrics": GOOD, "checkpoints": "a.pt"}, "checkpoints must be a list"),
        ({"metrics": GOOD, "train_end": "yesterday"}, "train_end 'yesterday' is not an ISO date"),
        ({"metrics": GOOD, "train_start": "2024-07-01", "train_end": "2024-06-01"}, "is after train_end"),
        ({"metrics": GOOD, "timeframe": 60}, "timeframe is an int"),
        ({"metrics": GOOD, "model": 5}, "model is an int, expected a path"),
        ([1, 2], "entry is a list, expected an object"),
    ],
)
def test_a_malformed_symbol_fails_alone_with_its_reason(tmp_path, entry, reason):
    summary = {"timeframe": "1Hour", "symbols": {"UNIUSD": entry, "ETHUSD": {"metrics": GOOD}}}
    root, path = run_dir(tmp_path, summary, models=[f"{RL}/UNIUSD_1Hour.pt", f"{RL}/ETHUSD_1Hour.pt"])
    recs = by_symbol(parse_summary(path, root))
    assert reason in recs["UNIUSD"].error
    assert recs["UNIUSD"].model_path is None and recs["UNIUSD"].metrics == {}
    assert recs["ETHUSD"].ok and recs["ETHUSD"].model_path.name == "ETHUSD_1Hour.pt"


@pytest.mark.parametrize(
    "entry, flag",
    [
        ({k: v for k, v in GOOD.items() if k != "consistency"}, "MISSING_METRIC"),
        ({**GOOD, "fitness_score": []}, "MISSING_METRIC"),
        ({**GOOD, "consistency": [0.9, 1, 1, 1, None]}, "NON_FINITE_METRIC"),
        ({**GOOD, "max_drawdown": [0.1, 0.2, 0.3, 0.4, float("inf")]}, "NON_FINITE_METRIC"),
        ({**GOOD, "profit_factor": [1.0, 1, 1, 1, float("nan")]}, "NON_FINITE_METRIC"),
    ],
)
def test_a_missing_or_non_finite_final_metric_is_drop_with_a_flag(tmp_path, entry, flag):
    """docs/design.md 7: a missing or non-finite metric is DROP with a flag; the symbol is
    parsed, gated and dropped, and the others go on."""
    from engine.gating import gate_metrics

    summary = {"timeframe": "1Hour", "symbols": {"UNIUSD": entry, "ETHUSD": {"metrics": GOOD}}}
    root, path = run_dir(tmp_path, summary, models=[f"{RL}/UNIUSD_1Hour.pt", f"{RL}/ETHUSD_1Hour.pt"])
    recs = by_symbol(parse_summary(path, root))
    assert recs["UNIUSD"].ok and recs["ETHUSD"].ok
    g = gate_metrics(recs["UNIUSD"].metrics, recs["UNIUSD"].checkpoints)
    assert g.classification == "DROP" and flag in [f.code for f in g.flags]
    assert gate_metrics(recs["ETHUSD"].metrics).classification == "APPROVED"


def test_a_nan_inside_a_history_is_skipped_by_the_checkpoint_advice(tmp_path):
    entry = {**GOOD, "fitness_score": [0.1, float("nan"), 0.3, 0.4, GOOD["fitness_score"][-1]]}
    root, path = run_dir(tmp_path, {"symbols": {"UNIUSD": entry}}, models=[f"{RL}/UNIUSD_1Hour.pt"])
    (rec,) = parse_summary(path, root)
    assert rec.ok and np.isnan(rec.metrics["fitness_score"][1])


def test_list_records_without_symbol_bad_symbol_and_duplicates(tmp_path):
    summary = [{"symbol": "UNIUSD", "timeframe": "1Hour", "metrics": GOOD},
               {"timeframe": "1Hour", "metrics": GOOD},
               {"symbol": "UNI USD!", "timeframe": "1Hour", "metrics": GOOD},
               {"symbol": "uniusd", "timeframe": "1Hour", "metrics": GOOD}]
    root, path = run_dir(tmp_path, summary)
    recs = parse_summary(path, root)
    assert [r.ok for r in recs] == [True, False, False, False]
    assert recs[1].symbol == "record 1" and recs[1].error == "record has no 'symbol'"
    assert "invalid symbol" in recs[2].error
    assert recs[3].error == "listed twice for timeframe 1Hour"


def test_model_path_escaping_the_root_fails_that_symbol(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "UNIUSD_1Hour.pt").write_bytes(b"evil")
    summary = {"timeframe": "1Hour", "symbols": {
        "UNIUSD": {"model": "../outside/UNIUSD_1Hour.pt", "metrics": GOOD},
        "SOLUSD": {"model": "models/../../outside/UNIUSD_1Hour.pt", "metrics": GOOD},
        "ETHUSD": {"metrics": GOOD}}}
    root, path = run_dir(tmp_path, summary, models=[f"{RL}/ETHUSD_1Hour.pt"])
    recs = by_symbol(parse_summary(path, root))
    assert "leaves the extract root" in recs["UNIUSD"].error
    assert "leaves the extract root" in recs["SOLUSD"].error
    assert recs["ETHUSD"].ok


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_model_symlink_pointing_outside_fails_that_symbol(tmp_path):
    outside = tmp_path / "outside.pt"
    outside.write_bytes(b"evil")
    root, path = run_dir(tmp_path, {"timeframe": "1Hour", "symbols": {"UNIUSD": {"metrics": GOOD},
                                                                      "ETHUSD": {"metrics": GOOD}}},
                         models=[f"{RL}/ETHUSD_1Hour.pt"])
    os.symlink(outside, root / RL / "UNIUSD_1Hour.pt")
    recs = by_symbol(parse_summary(path, root))
    assert "leaves the extract root" in recs["UNIUSD"].error and recs["ETHUSD"].ok


def test_bare_summary_without_models_when_models_are_not_required(tmp_path):
    root, path = run_dir(tmp_path, {"timeframe": "1Hour", "symbols": {"UNIUSD": {"metrics": GOOD}}}, models=[])
    with pytest.raises(ArchiveError, match="no model files"):
        parse_summary(path, root)
    [rec] = parse_summary(path, root, require_models=False)
    assert rec.ok and rec.model_path is None and rec.timeframe == "1Hour"


@pytest.mark.parametrize(
    "raw, match",
    [
        ("{not json", "invalid JSON"),
        ('"text"', "expected an object or a list"),
        ('{"symbols": {}}', "lists no symbols"),
        ("[]", "lists no symbols"),
        ('{"symbols": 3}', "'symbols' is an int"),
        ('{"timeframe": "1Hour"}', "no 'symbols'"),
        ('{"timeframe": 1, "symbols": {"UNIUSD": {}}}', "'timeframe' is an int"),
    ],
)
def test_unreadable_summaries_are_archive_errors(tmp_path, raw, match):
    root, path = run_dir(tmp_path, None, raw=raw)
    with pytest.raises(ArchiveError, match=match) as exc:
        parse_summary(path, root)
    assert str(path) in str(exc.value)


def test_missing_summary_file(tmp_path):
    with pytest.raises(ArchiveError, match="not found"):
        parse_summary(tmp_path / "training_summary.json")


def test_load_training_from_an_archive(tmp_path):
    zp = build_training_archive(tmp_path / "in", {"UNIUSD": GOOD, "ETHUSD": GOOD}, models={"UNIUSD": b"m"},
                                shape="list", name_models=False)
    run = load_training(zp, tmp_path / "ta")
    assert run.stamp == "20241227_120000" and run.root.name == "20241227_120000_extract"
    recs = by_symbol(run.records)
    assert recs["UNIUSD"].ok and recs["UNIUSD"].model_path.is_relative_to(run.root.resolve())
    assert recs["ETHUSD"].error is None and recs["ETHUSD"].model_path is None
    assert recs["ETHUSD"].model_missing == "model file missing: no ETHUSD_1Hour.pt under the extract root"
    assert recs["ETHUSD"].metrics["fitness_score"] == GOOD["fitness_score"]  # still gated
