"""The policy cache: identical policies, re-validation on change, no torch when warm."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.errors import PolicyError
from engine.policy import load_policy
from engine.policy_cache import cache_dir, load_policy_cached

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "policies"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.pt")))
def test_cached_policy_equals_loaded(name, tmp_path):
    src = SAMPLES / name
    cold = load_policy_cached(src)
    warm = load_policy_cached(src)
    ref = load_policy(src)
    assert len(list(cache_dir().glob("*.npz"))) == 1
    obs = np.random.default_rng(1).standard_normal((64, ref.obs_dim)).astype(np.float32) * 3
    for p in (cold, warm):
        assert np.array_equal(p.forward(obs), ref.forward(obs))
        assert np.array_equal(p.act(obs), ref.act(obs))
        for attr in ("symbol", "timeframe", "features", "window", "state_features", "activation",
                     "action_kind", "low", "high", "sha256", "trained_until", "obs_dim"):
            assert getattr(p, attr) == getattr(ref, attr), attr


def test_changed_file_is_validated_again(tmp_path):
    model = tmp_path / "BTCUSD_1Hour.pt"
    model.write_bytes((SAMPLES / "BTCUSD_1Hour.pt").read_bytes())
    load_policy_cached(model)
    model.write_bytes(b"not a checkpoint")
    with pytest.raises(PolicyError):
        load_policy_cached(model)


def test_damaged_entry_is_rewritten(tmp_path):
    src = SAMPLES / "ETHUSD_1Hour.pt"
    load_policy_cached(src)
    (entry,) = cache_dir().glob("*.npz")
    entry.write_bytes(b"garbage")
    p = load_policy_cached(src)
    assert p.symbol == "ETHUSD"
    with np.load(entry, allow_pickle=False) as blob:
        assert "meta" in blob


def test_warm_load_does_not_import_torch(tmp_path):
    src = SAMPLES / "TSLA_1Hour.pt"
    load_policy_cached(src)
    code = ("import sys; from engine.policy_cache import load_policy_cached; "
            f"p = load_policy_cached({str(src)!r}); print(p.symbol, 'torch' in sys.modules)")
    env = {**__import__("os").environ}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=Path(__file__).resolve().parent.parent, check=True)
    assert out.stdout.split() == ["TSLA", "False"]


def test_read_only_home_falls_back_to_temp(tmp_path, monkeypatch):
    monkeypatch.delenv("FOLDGATE_CACHE_DIR")
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    d = cache_dir()
    assert str(d).startswith(__import__("tempfile").gettempdir())
    load_policy_cached(SAMPLES / "BTCUSD_1Hour.pt")
    assert list(d.glob("*.npz"))
