"""docs/sb3.md's worked example holds: its sidecar, taken from the page itself,
converts a freshly saved SB3 PPO zip of the shape the page describes, and foldgate
acts as SB3's predict(deterministic=True)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

sb3 = pytest.importorskip("stable_baselines3")
gym = pytest.importorskip("gymnasium")

from click.testing import CliRunner  # noqa: E402

from cli.main import app  # noqa: E402
from engine.policies.checkpoint import load_policy  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "sb3.md"


def _doc_sidecar() -> dict:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, "docs/sb3.md lost its worked sidecar"
    return json.loads(blocks[0])


class _Env(gym.Env):
    def __init__(self, obs_dim):
        self.observation_space = gym.spaces.Box(-5.0, 5.0, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Discrete(3)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, True, {}


def test_worked_sidecar_converts_and_acts_like_sb3(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    side = _doc_sidecar()
    obs_dim = len(side["features"]) * side.get("window", 1) + len(side.get("state_features", []))
    model = sb3.PPO("MlpPolicy", _Env(obs_dim), n_steps=32, batch_size=16, n_epochs=1, seed=0, device="cpu")
    zip_path = tmp_path / "UNIUSD_1Hour.zip"
    model.save(zip_path)
    (tmp_path / "UNIUSD_1Hour.features.json").write_text(json.dumps(side))

    out = tmp_path / "native" / "UNIUSD_1Hour.pt"
    out.parent.mkdir()
    r = CliRunner().invoke(app, ["convert", "sb3", str(zip_path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    pol = load_policy(out)
    assert (pol.symbol, pol.timeframe) == ("UNIUSD", "1Hour")
    assert pol.features == side["features"] and pol.window == side["window"]
    obs = np.random.default_rng(1).normal(0.0, 2.0, (500, obs_dim)).astype(np.float32)
    np.testing.assert_array_equal(pol.act(obs), model.predict(obs, deterministic=True)[0])
