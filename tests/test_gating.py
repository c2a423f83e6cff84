"""Gating (docs/design.md 7): every boundary of the v2.4.5 table, units, missing values,
checkpoint advice, and the thresholds TOML."""

import json
import math

import pytest

from engine.errors import ConfigError
from engine.gating import (
    Flag,
    assess,
    assess_model_quality,
    default_thresholds,
    gate_metrics,
    load_thresholds,
)

# comfortably APPROVED on every metric; each test moves one metric
GOOD = dict(final_fitness=0.80, final_pf=2.0, final_consistency=0.90, final_max_dd=0.05)


def klass(**over):
    args = {**GOOD, **over}
    return assess_model_quality(fitness_history=[], **args)[0]


def codes(flags):
    return [f.code for f in flags]


@pytest.mark.parametrize(
    "metric, approved_edge, review_edge, below_review",
    [
        ("final_fitness", 0.70, 0.50, 0.49),
        ("final_pf", 1.8, 1.3, 1.29),
        ("final_consistency", 0.85, 0.65, 0.64),
    ],
)
def test_higher_is_better_boundaries_are_inclusive(metric, approved_edge, review_edge, below_review):
    assert klass(**{metric: approved_edge}) == "APPROVED"
    assert klass(**{metric: math.nextafter(approved_edge, 0)}) == "REVIEW"
    assert klass(**{metric: review_edge}) == "REVIEW"
    assert klass(**{metric: math.nextafter(review_edge, 0)}) == "DROP"
    assert klass(**{metric: below_review}) == "DROP"


def test_max_dd_boundaries_are_inclusive():
    assert klass(final_max_dd=0.08) == "APPROVED"
    assert klass(final_max_dd=math.nextafter(0.08, 1)) == "REVIEW"
    assert klass(final_max_dd=0.15) == "REVIEW"
    assert klass(final_max_dd=math.nextafter(0.15, 1)) == "DROP"
    assert klass(final_max_dd=0.0) == "APPROVED"


def test_all_four_exactly_at_each_class_edge():
    assert klass(final_fitness=0.70, final_pf=1.8, final_consistency=0.85, final_max_dd=0.08) == "APPROVED"
    assert klass(final_fitness=0.50, final_pf=1.3, final_consistency=0.65, final_max_dd=0.15) == "REVIEW"


def test_class_is_the_weakest_metric():
    # three APPROVED metrics and one REVIEW metric: REVIEW, never APPROVED
    assert klass(final_pf=1.5) == "REVIEW"
    # one metric below REVIEW drops the model whatever the others are
    assert klass(final_consistency=0.5) == "DROP"
    r = assess(0.6, 1.5, 0.9, 0.05, [])
    assert r.classification == "REVIEW"
    assert r.shortfalls == ("fitness 0.60 < 0.70 (APPROVED)", "profit factor 1.50 < 1.80 (APPROVED)")


def test_percent_units_are_read_and_flagged():
    cls, flags, _, _ = assess_model_quality(0.8, 2.0, 87, 6, [])
    assert cls == "APPROVED"
    assert codes(flags) == ["PERCENT_UNITS", "PERCENT_UNITS"]
    assert "consistency 87" in flags[0].message and "max_dd 6" in flags[1].message
    # exactly at the edges, in percent
    assert klass(final_consistency=85) == "APPROVED"
    assert klass(final_consistency=65) == "REVIEW"
    assert klass(final_max_dd=8) == "APPROVED"
    assert klass(final_max_dd=15) == "REVIEW"
    # 1.0 is a fraction (100%), not 1%
    cls, flags, _, _ = assess_model_quality(0.8, 2.0, 1.0, 0.05, [])
    assert cls == "APPROVED" and flags == []


def test_float32_metrics_are_read_as_the_decimal_they_print_as():
    import numpy as np

    f32 = np.float32
    cls, flags, use_cp, idx = assess_model_quality(f32(0.70), f32(1.8), f32(0.85), f32(0.08),
                                                   np.array([0.5, 0.75, 0.70], dtype=np.float32))
    assert cls == "APPROVED" and codes(flags) == ["CHECKPOINT_BETTER"] and (use_cp, idx) == (True, 1)


def test_impossible_values_drop():
    cls, flags, _, _ = assess_model_quality(0.8, 2.0, 150, 0.05, [])
    assert cls == "DROP" and codes(flags) == ["OUT_OF_RANGE"]
    cls, flags, _, _ = assess_model_quality(0.8, -1.0, 0.9, 0.05, [])
    assert cls == "DROP" and codes(flags) == ["OUT_OF_RANGE"]


def test_negative_max_dd_is_read_as_magnitude():
    cls, flags, _, _ = assess_model_quality(0.8, 2.0, 0.9, -0.05, [])
    assert cls == "APPROVED" and codes(flags) == ["NEGATIVE_MAX_DD"]


@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), float("-inf"), "0.8", True])
@pytest.mark.parametrize("metric", ["final_fitness", "final_pf", "final_consistency", "final_max_dd"])
def test_missing_or_non_finite_metric_is_drop_with_a_flag(metric, bad):
    cls, flags, use_cp, idx = assess_model_quality(fitness_history=[0.9, 0.8], **{**GOOD, metric: bad})
    assert cls == "DROP"
    expected = "NON_FINITE_METRIC" if isinstance(bad, float) else "MISSING_METRIC"
    assert expected in codes(flags)
    if metric == "final_fitness":
        assert (use_cp, idx) == (False, None)


def test_inflated_proxy_dd_is_flagged_above_bound_only():
    cls, flags, _, _ = assess_model_quality(0.8, 2.0, 0.9, 0.45, [])
    assert cls == "DROP" and codes(flags) == ["INFLATED_PROXY_DD"]
    assert "reward_scale 0.1" in flags[0].message and "proxy" in flags[0].message
    _, flags, _, _ = assess_model_quality(0.8, 2.0, 0.9, 0.30, [])
    assert codes(flags) == ["PROXY_MAX_DD"]  # at the bound: not inflated, but it alone drops the model
    _, flags, _, _ = assess_model_quality(0.8, 2.0, 0.9, 45, [])  # percent, then inflated
    assert codes(flags) == ["PERCENT_UNITS", "INFLATED_PROXY_DD"]


def test_proxy_flag_only_when_max_dd_is_what_limits_the_class():
    _, flags, _, _ = assess_model_quality(0.8, 2.0, 0.9, 0.12, [])
    assert codes(flags) == ["PROXY_MAX_DD"] and "REVIEW" in flags[0].message
    _, flags, _, _ = assess_model_quality(0.6, 2.0, 0.9, 0.12, [])  # fitness also at REVIEW
    assert flags == []


def test_checkpoint_margin_exactly_005_counts():
    # 0.75 - 0.70 is 0.04999999999999993 in binary: still "by >= 0.05"
    cls, flags, use_cp, idx = assess_model_quality(0.70, 2.0, 0.9, 0.05, [0.5, 0.75, 0.72, 0.70])
    assert (use_cp, idx) == (True, 1)
    assert cls == "APPROVED" and codes(flags) == ["CHECKPOINT_BETTER"]
    _, flags, use_cp, idx = assess_model_quality(0.70, 2.0, 0.9, 0.05, [0.5, 0.749, 0.70])
    assert (use_cp, idx) == (False, None) and flags == []


def test_checkpoint_index_is_the_first_best():
    _, _, use_cp, idx = assess_model_quality(0.6, 2.0, 0.9, 0.05, [0.1, 0.9, 0.3, 0.9, 0.6])
    assert (use_cp, idx) == (True, 1)


def test_checkpoint_skips_broken_epochs_and_handles_empty_history():
    _, _, use_cp, idx = assess_model_quality(0.6, 2.0, 0.9, 0.05, [float("nan"), None, 0.8, 0.6])
    assert (use_cp, idx) == (True, 2)
    assert assess_model_quality(0.6, 2.0, 0.9, 0.05, [])[2:] == (False, None)
    assert assess_model_quality(0.6, 2.0, 0.9, 0.05, None)[2:] == (False, None)
    assert assess_model_quality(0.6, 2.0, 0.9, 0.05, [float("nan")])[2:] == (False, None)
    # the final epoch itself is the best: nothing to recommend
    assert assess_model_quality(0.9, 2.0, 0.9, 0.05, [0.5, 0.9])[2:] == (False, None)


def test_flags_compare_print_and_serialise():
    f = Flag("PERCENT_UNITS", "consistency 87 is above 1.")
    assert f == Flag("PERCENT_UNITS", "consistency 87 is above 1.")
    assert f == "PERCENT_UNITS" and f != "MISSING_METRIC"
    assert "PERCENT_UNITS" in [f]
    assert str(f) == "PERCENT_UNITS: consistency 87 is above 1."
    assert json.loads(json.dumps(f.to_dict())) == {"code": "PERCENT_UNITS", "message": "consistency 87 is above 1."}


def test_gate_metrics_uses_final_values_and_names_the_checkpoint():
    metrics = {"fitness_score": [0.3, 0.8, 0.6], "profit_factor": [1, 2, 1.5],
               "consistency": [50, 80, 70], "max_drawdown": [0.2, 0.1, 0.12]}
    r = gate_metrics(metrics, checkpoints=["c0.pt", "c1.pt", "c2.pt"])
    assert r.classification == "REVIEW"
    assert r.metrics == {"fitness": 0.6, "profit_factor": 1.5, "consistency": 0.7, "max_drawdown": 0.12}
    assert (r.use_checkpoint, r.checkpoint_index, r.checkpoint) == (True, 1, "c1.pt")
    d = r.to_dict()
    assert set(d) == {"classification", "metrics", "flags", "use_checkpoint", "checkpoint_index", "checkpoint"}
    json.dumps(d, allow_nan=False)
    r = gate_metrics({"fitness_score": [0.9]})
    assert r.classification == "DROP" and r.metrics["profit_factor"] is None


# ------------------------------------------------------------------ thresholds


def test_defaults_are_the_seed_table():
    t = default_thresholds()
    assert (t.approved.fitness, t.approved.profit_factor, t.approved.consistency, t.approved.max_drawdown) == (
        0.70, 1.8, 0.85, 0.08)
    assert (t.review.fitness, t.review.profit_factor, t.review.consistency, t.review.max_drawdown) == (
        0.50, 1.3, 0.65, 0.15)
    assert t.checkpoint.min_improvement == 0.05 and t.proxy.inflated_max_drawdown == 0.30
    d = t.decision
    assert (d.live_min_positive_fraction, d.live_max_sharpe_std, d.paper_min_positive_fraction,
            d.paper_max_sharpe_std, d.drop_max_positive_fraction, d.drop_mean_return_below) == (
        0.8, 1.0, 0.6, 2.0, 0.2, 0.0)
    assert load_thresholds(None) is t


def test_partial_config_overrides_only_its_keys(tmp_path):
    p = tmp_path / "t.toml"
    p.write_text("[review]\nfitness = 0.4\n[checkpoint]\nmin_improvement = 0\n")
    t = load_thresholds(p)
    assert t.review.fitness == 0.4 and t.review.profit_factor == 1.3 and t.approved.fitness == 0.70
    assert t.source == str(p)
    assert assess_model_quality(0.45, 2.0, 0.9, 0.05, [], thresholds=t)[0] == "REVIEW"
    assert assess_model_quality(0.45, 2.0, 0.9, 0.05, [0.46, 0.45], thresholds=t)[2:] == (True, 0)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[review]\nfitnes = 0.4\n", "review.fitnes"),
        ("[reveiw]\nfitness = 0.4\n", "reveiw"),
        ("margin = 0.05\n", "margin"),
        ("[review]\nfitness = '0.4'\n", "review.fitness"),
        ("[review]\nfitness = true\n", "review.fitness"),
        ("[review]\nfitness = nan\n", "review.fitness"),
        ("[approved]\nconsistency = 85\n", "approved.consistency"),
        ("[decision]\nlive_max_sharpe_std = -1\n", "decision.live_max_sharpe_std"),
        ("[approved]\nfitness = 0.4\n", "approved.fitness"),
        ("review = 3\n", "review"),
        ("[review\n", "invalid TOML"),
    ],
)
def test_bad_config_is_refused_naming_key_and_file(tmp_path, text, needle):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_thresholds(p)
    msg = str(exc.value)
    assert needle in msg and str(p) in msg and "\n" not in msg


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_thresholds(tmp_path / "nope.toml")


def test_thresholds_as_a_mapping_overlay_the_defaults():
    from engine.errors import ConfigError

    loose = {"approved": {"fitness": 0.6}}
    assert assess_model_quality(0.65, 1.9, 0.9, 0.05, [0.5, 0.65])[0] == "REVIEW"
    assert assess_model_quality(0.65, 1.9, 0.9, 0.05, [0.5, 0.65], thresholds=loose)[0] == "APPROVED"
    with pytest.raises(ConfigError, match="approved.sharpe"):
        assess_model_quality(0.65, 1.9, 0.9, 0.05, [0.5], thresholds={"approved": {"sharpe": 1.0}})


def test_flags_are_strings_with_code_and_message():
    cls, flags, _, _ = assess_model_quality(0.8, 2.0, 90, 0.05, [0.8])
    (flag,) = flags
    assert isinstance(flag, str) and flag.startswith("PERCENT_UNITS: ") and "percent" in flag.lower()
    assert flag == "PERCENT_UNITS" and "PERCENT_UNITS" in flags and flag.code == "PERCENT_UNITS"


# ---------------------------------------------------------------- hostile thresholds files


@pytest.mark.parametrize("text, needle", [
    ("[approved]\nfitness = " + "1" + "0" * 400 + "\n", "key 'approved.fitness' must be finite, got an integer of"),
    ("[approved]\nfitness = " + "9" * 5000 + "\n", "invalid TOML"),
    ("x = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
    ('[approved]\n"fit\\nness" = 0.7\n', "holds a control character"),
    ("[approved]\nfitness = 1e400\n", "must be finite"),
    ("[approved]\nfitness = nan\n", "must be finite"),
])
def test_hostile_thresholds_file_is_one_config_error(tmp_path, text, needle):
    from engine.errors import ConfigError
    from engine.gating import load_thresholds

    p = tmp_path / "t.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_thresholds(p)
    assert needle in str(ei.value) and "\n" not in str(ei.value) and str(p) in str(ei.value)


def test_thresholds_file_over_its_bound_and_not_utf8(tmp_path, monkeypatch):
    from engine.errors import ConfigError
    from engine.gating import load_thresholds

    p = tmp_path / "t.toml"
    p.write_text("# " + "x" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match="over the bound of 1,048,576 bytes per thresholds file"):
        load_thresholds(p)
    monkeypatch.setenv("FOLDGATE_MAX_CONFIG_MB", "4")
    assert load_thresholds(p).approved.fitness == 0.70
    p.write_bytes(b"[approved]\nfitness = 0.7 # \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_thresholds(p)


def test_gate_config_prints_one_error_line(tmp_path):
    from click.testing import CliRunner

    from cli.main import app

    p = tmp_path / "t.toml"
    p.write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    summary = tmp_path / "training_summary_20241227_120000.json"
    summary.write_text('{"symbols": {"UNIUSD": {"fitness_score": [0.8]}}}')
    res = CliRunner().invoke(app, ["gate", str(summary), "--config", str(p)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.strip().splitlines() == [f"Error: {p}: invalid TOML: nested too deeply to read"]
