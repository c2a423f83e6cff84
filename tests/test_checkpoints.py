"""validate --checkpoints final|advised|all (docs/design.md 11): a symbol's checkpoints are its
variants (DSR, PBO), a missing checkpoint file fails its variant alone, and the
deployment manifest names the checkpoint chosen and why."""

import hashlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from archive_factory import build_training_archive, metric_history, model_member, policy_bytes, policy_fields  # noqa: E402

from cli.main import app  # noqa: E402
from engine.promote import chosen_models, why_chosen  # noqa: E402
from engine.report.schema import validate_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "data" / "bars"
CKPT = "Alpaca_trading/checkpoints/BTCUSD_1Hour_ep{}.pt"
N = 4  # fitness evaluations, one checkpoint each
ADVISED = 1  # the epoch whose fitness beats the final one


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ALPACA_KEYS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """BTCUSD with four listed checkpoints (epoch 2's file absent) and its final model."""
    out = tmp_path_factory.mktemp("ckpt")
    # seeds whose policies trade in every fold of this window (one that never trades has
    # no DSR to compare)
    seeds = {0: 0, 1: 3, 2: 83, 3: 31}
    blobs = {k: policy_bytes(policy_fields(seed=seeds[k], hidden=(8,), state=())) for k in range(N)}
    final = policy_bytes(policy_fields(seed=67, hidden=(8,), state=()))
    metrics = metric_history(1.5, 1.6, 0.75, 0.08, n=N, best_fitness=2.5, best_at=ADVISED)
    symbols = {"BTCUSD": {"metrics": metrics, "checkpoints": [CKPT.format(k) for k in range(N)]}}
    extra = {CKPT.format(k): b for k, b in blobs.items() if k != 2}
    path = build_training_archive(out, symbols, models={"BTCUSD": final}, extra=extra)
    sha = {k: hashlib.sha256(b).hexdigest() for k, b in blobs.items()}
    sha["final"] = hashlib.sha256(final).hexdigest()
    return path, sha


def validate(archive_path, out, *args):
    r = CliRunner().invoke(app, ["validate", str(archive_path), "--store", str(STORE), "--out", str(out),
                                 "--days", "120", "--walk-forward", "4", *map(str, args)])
    report = json.loads((Path(out) / "report.json").read_text())
    validate_report(report)
    return r, report


def test_final_is_the_default_and_names_no_checkpoint(archive, tmp_path):
    path, sha = archive
    r, report = validate(path, tmp_path / "o")
    assert r.exit_code == 0, r.output
    (m,) = report["models"]
    assert m["model_sha256"] == sha["final"] and m["checkpoint"] is None
    assert m["gating"]["use_checkpoint"] and m["gating"]["checkpoint_index"] == ADVISED
    assert report["settings"]["checkpoints"] == "final"


def test_advised_validates_gatings_checkpoint(archive, tmp_path):
    path, sha = archive
    r, report = validate(path, tmp_path / "o", "--checkpoints", "advised")
    assert r.exit_code == 0, r.output
    (m,) = report["models"]
    assert m["checkpoint"] == {"kind": "advised", "index": ADVISED, "file": f"BTCUSD_1Hour_ep{ADVISED}.pt"}
    assert m["model_sha256"] == sha[ADVISED]
    assert m["summary"]["evidence"]["n_variants"] == 1


def test_all_makes_every_checkpoint_a_variant_and_a_missing_file_fails_alone(archive, tmp_path):
    path, sha = archive
    r, report = validate(path, tmp_path / "o", "--checkpoints", "all")
    assert r.exit_code == 1, r.output  # the missing checkpoint's variant failed
    models = report["models"]
    assert [m["checkpoint"]["index"] for m in models] == [0, 1, 2, 3, None]
    assert [m["checkpoint"]["kind"] for m in models] == ["listed"] * 4 + ["final"]
    failed = [m for m in models if m["error"]]
    assert len(failed) == 1 and failed[0]["checkpoint"]["index"] == 2
    assert failed[0]["error"].startswith("checkpoint 2: file missing")
    assert "checkpoint 2: file missing" in r.stderr
    ok = [m for m in models if not m["error"]]
    assert [m["model_sha256"] for m in ok] == [sha[0], sha[1], sha[3], sha["final"]]
    for m in ok:
        ev = m["summary"]["evidence"]
        assert ev["n_variants"] == 4
        # deflated across the four: never above PSR at the hurdle
        assert ev["dsr"] <= ev["psr_hurdle"] + 1e-12
        assert m["summary"]["pbo"]["n_variants"] == 4 and m["summary"]["pbo"]["n_blocks"] == 16
    assert len({json.dumps(m["summary"]["pbo"], sort_keys=True) for m in ok}) == 1  # one PBO per symbol
    assert any(ev["dsr"] < ev["psr_hurdle"] - 1e-6 for ev in (m["summary"]["evidence"] for m in ok))
    # the terminal and the HTML tell the variants apart
    assert "BTCUSD (ckpt 1)" in r.output and "BTCUSD (final)" in r.output
    page = (tmp_path / "o" / "report.html").read_text()
    assert "checkpoint 3" in page and "final model" in page


def test_checkpoints_is_a_usage_error_when_unknown(archive, tmp_path):
    r = CliRunner().invoke(app, ["validate", str(archive[0]), "--checkpoints", "best"])
    assert r.exit_code == 2 and "--checkpoints" in r.output


def _job(symbol, decision, dsr, name, index=None, error=None):
    return SimpleNamespace(symbol=symbol, timeframe="1Hour", decision=decision, model_path=Path(name),
                           policy=object(), error=error, summary={"evidence": {"dsr": dsr}},
                           checkpoint=name, checkpoint_info={"kind": "listed", "index": index, "file": name})


def test_manifest_names_the_best_variant_by_dsr_and_says_why():
    jobs = [_job("BTCUSD", "PAPER", 0.81, "ep0.pt", 0), _job("BTCUSD", "LIVE", 0.97, "ep1.pt", 1),
            _job("BTCUSD", "RETRAIN", 0.99, "ep3.pt", 3), _job("ETHUSD", "PAPER", 0.85, "final.pt")]
    chosen = chosen_models(jobs)
    assert chosen[("BTCUSD", "1Hour")].checkpoint == "ep1.pt"  # RETRAIN is never deployed, DSR decides
    why = why_chosen(chosen[("BTCUSD", "1Hour")], jobs)
    assert why == "LIVE; the best of 3 variants of BTCUSD 1Hour by DSR (0.970; 2 of them LIVE or PAPER)"
    assert why_chosen(chosen[("ETHUSD", "1Hour")], jobs) == "PAPER; the only variant of ETHUSD 1Hour"
