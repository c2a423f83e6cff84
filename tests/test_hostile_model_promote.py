"""`validate --promote` (docs/design.md 9, issue 10 item 1): canonical names, the best
variant, SB3 zips written as native checkpoints, and the manifest's sha256 that of the
file as copied."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from archive_factory import SB3_SIDECAR, policy_bytes, policy_fields, sb3_zip_bytes
from engine.errors import FoldgateError
from engine.pipeline import ModelJob
from engine.policies.checkpoint import load_policy
from engine.promote import MANIFEST, promote


def _job(path: Path, symbol: str, decision: str, dsr: float | None = None, tf: str = "1Hour", **kw) -> ModelJob:
    job = ModelJob(model_path=path, symbol=symbol, timeframe=tf)
    job.policy = load_policy(path)
    job.decision = decision
    job.summary = {"dsr": dsr} if dsr is not None else {}
    for k, v in kw.items():
        setattr(job, k, v)
    return job


def _pt(path: Path, seed: int, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(policy_bytes(policy_fields(seed=seed, **kw)))
    return path


def _manifest(models: Path) -> dict:
    return json.loads((models / MANIFEST).read_text())


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_two_symbols_sharing_a_file_name_land_on_two_files(tmp_path):
    a = _pt(tmp_path / "a" / "model.pt", seed=1)
    b = _pt(tmp_path / "b" / "model.pt", seed=2)
    assert _sha(a) != _sha(b)
    models = tmp_path / "models" / "rl_symbols"
    promote([_job(a, "UNIUSD", "LIVE"), _job(b, "ETHUSD", "PAPER")], tmp_path / "report.json", models)
    m = _manifest(models)
    by = {e["symbol"]: e for e in m["models"]}
    assert sorted(p.name for p in models.iterdir()) == ["ETHUSD_1Hour.pt", "UNIUSD_1Hour.pt", MANIFEST]
    for sym, src, decision in (("UNIUSD", a, "LIVE"), ("ETHUSD", b, "PAPER")):
        e = by[sym]
        dest = models / f"{sym}_1Hour.pt"
        assert dest.read_bytes() == src.read_bytes()  # its own weights, not the other's
        assert e["sha256"] == _sha(dest) == e["source_sha256"]
        assert e["decision"] == decision and e["path"] == str(dest) and e["model_file"] == dest.name
        assert e["checkpoint"] == "model.pt" and e["source"] == str(src)


def test_best_variant_by_dsr_and_by_marker(tmp_path):
    low = _pt(tmp_path / "v1" / "UNIUSD_1Hour.pt", seed=1)
    high = _pt(tmp_path / "v2" / "UNIUSD_1Hour.pt", seed=2)
    models = tmp_path / "m"
    promote([_job(low, "UNIUSD", "LIVE", dsr=0.91), _job(high, "UNIUSD", "PAPER", dsr=0.97)], tmp_path / "r", models)
    (entry,) = _manifest(models)["models"]
    assert entry["source"] == str(high) and (models / "UNIUSD_1Hour.pt").read_bytes() == high.read_bytes()
    # the pipeline's own choice wins over the score
    promote([_job(low, "UNIUSD", "LIVE", dsr=0.91, best=True), _job(high, "UNIUSD", "PAPER", dsr=0.97)],
            tmp_path / "r", models)
    (entry,) = _manifest(models)["models"]
    assert entry["source"] == str(low) and entry["sha256"] == _sha(models / "UNIUSD_1Hour.pt") == _sha(low)


def test_one_file_per_timeframe(tmp_path):
    h = _pt(tmp_path / "h" / "m.pt", seed=1)
    d = _pt(tmp_path / "d" / "m.pt", seed=2)
    models = tmp_path / "m"
    promote([_job(h, "SPY", "LIVE"), _job(d, "SPY", "LIVE", tf="1Day")], tmp_path / "r", models)
    assert {e["model_file"] for e in _manifest(models)["models"]} == {"SPY_1Hour.pt", "SPY_1Day.pt"}


def test_sb3_zip_is_written_as_its_native_checkpoint(tmp_path):
    zp = tmp_path / "src" / "ETHUSD_1Hour.zip"
    zp.parent.mkdir()
    zp.write_bytes(sb3_zip_bytes())
    zp.with_name("ETHUSD_1Hour.features.json").write_text(json.dumps(SB3_SIDECAR))
    job = _job(zp, "ETHUSD", "PAPER")
    models = tmp_path / "m"
    promote([job], tmp_path / "r", models)
    dest = models / "ETHUSD_1Hour.pt"
    assert dest.read_bytes()[:2] == b"PK" and dest.read_bytes() != zp.read_bytes()
    native = load_policy(dest)
    assert native.source_format == "foldgate.policy/1"
    obs = np.random.default_rng(0).normal(0, 2, (64, native.obs_dim)).astype(np.float32)
    assert np.array_equal(native.forward(obs), job.policy.forward(obs))
    (e,) = _manifest(models)["models"]
    assert e["written"].startswith("converted") and e["sha256"] == _sha(dest)
    assert e["source_sha256"] == _sha(zp)


def test_a_source_changed_since_validation_is_not_promoted(tmp_path):
    a = _pt(tmp_path / "a" / "UNIUSD_1Hour.pt", seed=1)
    models = tmp_path / "m"
    promote([_job(a, "UNIUSD", "LIVE")], tmp_path / "r", models)
    before = (models / MANIFEST).read_bytes(), (models / "UNIUSD_1Hour.pt").read_bytes()
    job = _job(a, "UNIUSD", "LIVE")
    _pt(a, seed=9)  # swapped after the backtest
    with pytest.raises(FoldgateError, match="changed since it was validated"):
        promote([job], tmp_path / "r", models)
    assert ((models / MANIFEST).read_bytes(), (models / "UNIUSD_1Hour.pt").read_bytes()) == before
    assert not [p for p in models.iterdir() if p.name.endswith(".tmp")]


def test_only_live_and_paper_and_none_when_nothing(tmp_path):
    a = _pt(tmp_path / "a" / "A.pt", seed=1)
    models = tmp_path / "m"
    assert promote([_job(a, "UNIUSD", "RETRAIN"), _job(a, "ETHUSD", "DROP")], tmp_path / "r", models) is None
    assert not models.exists()


@pytest.mark.parametrize("symbol", ["../EVIL", "A/B", "", ".hidden"])
def test_a_symbol_that_cannot_name_a_file_is_refused(tmp_path, symbol):
    a = _pt(tmp_path / "a" / "A.pt", seed=1)
    with pytest.raises(FoldgateError, match="cannot name a model file"):
        promote([_job(a, symbol, "LIVE")], tmp_path / "r", tmp_path / "m")
    assert not (tmp_path / "m" / MANIFEST).exists()
    assert not list(tmp_path.rglob("EVIL*"))


def test_a_manifest_of_the_old_shape_is_updated_by_symbol_and_timeframe(tmp_path):
    models = tmp_path / "m"
    models.mkdir()
    (models / MANIFEST).write_text(json.dumps({"schema": "foldgate.manifest/1", "models": [
        {"symbol": "UNIUSD", "model_file": "model.pt", "sha256": "0" * 64, "decision": "LIVE"},
        {"symbol": "BTCUSD", "timeframe": "1Hour", "model_file": "BTCUSD_1Hour.pt", "sha256": "1" * 64}]}))
    a = _pt(tmp_path / "a" / "model.pt", seed=1)
    promote([_job(a, "UNIUSD", "PAPER")], tmp_path / "r", models)
    by = {e["symbol"]: e for e in _manifest(models)["models"]}
    assert by["UNIUSD"]["model_file"] == "UNIUSD_1Hour.pt" and by["UNIUSD"]["decision"] == "PAPER"
    assert by["BTCUSD"]["sha256"] == "1" * 64  # untouched by this run
