"""The public names docs/design.md gives keep working at their paths, the re-export
shims stay tiny, and foldgate's own code imports from the real homes, not the shims."""

import ast
import importlib
from pathlib import Path

import pytest

from tests.import_graph import all_imports

ROOT = Path(__file__).resolve().parent.parent

# public path -> (name, its real home)
PUBLIC = [
    ("engine.policy", "load_policy", "engine.policies.checkpoint"),
    ("engine.gating", "assess_model_quality", "engine.gating"),
    ("engine.features", "compute_features", "engine.features"),
    ("engine.features", "lookback", "engine.features"),
    ("engine.features", "parse_feature", "engine.features"),
    ("engine.features", "market_observations", "engine.features"),
    ("engine.features", "state_observation", "engine.features"),
    ("engine.pipeline", "RunConfig", "engine.run_config"),
    ("engine.pipeline", "run_backtest", "engine.pipeline"),
    ("engine.pipeline", "run_validate", "engine.pipeline"),
    ("engine.store", "BarStore", "engine.data.store"),
    ("engine.store", "Bars", "engine.data.bars"),
    ("engine.symbols", "canonical_symbol", "engine.data.symbols"),
    ("engine.sources.alpaca", "ensure_bars", "engine.data.sources.alpaca"),
    ("engine.policy_cache", "load_policy_cached", "engine.policies.policy_cache"),
]
SHIMS = ["engine.store", "engine.policy", "engine.symbols", "engine.sources", "engine.sources.alpaca",
         "engine.policy_cache"]


@pytest.mark.parametrize("path, name, home", PUBLIC)
def test_every_public_name_imports_from_its_public_path(path, name, home):
    obj = getattr(importlib.import_module(path), name)
    assert obj is getattr(importlib.import_module(home), name)
    assert callable(obj)


def test_the_public_api_works_from_its_paths(tmp_path):
    from engine.features import compute_features, lookback
    from engine.gating import assess_model_quality
    from engine.pipeline import RunConfig, run_backtest
    from engine.policy import load_policy
    from engine.store import BarStore

    policy = load_policy(ROOT / "data" / "policies" / "BTCUSD_1Hour.pt")
    bars = BarStore(ROOT / "data" / "bars").read("BTCUSD", "1Hour")
    x = compute_features(bars, policy.features)
    assert x.shape == (len(bars), len(policy.features)) and lookback(policy.features) >= 1
    assert assess_model_quality(0.8, 2.0, 0.9, 0.05, [0.8])[0] == "APPROVED"
    report = run_backtest([str(policy.path)], RunConfig(days=10, store=str(ROOT / "data" / "bars")))
    assert report["models"][0]["symbol"] == "BTCUSD"


@pytest.mark.parametrize("module", SHIMS)
def test_a_shim_is_a_docstring_and_re_exports(module):
    spec = importlib.util.find_spec(module)
    tree = ast.parse(Path(spec.origin).read_text())
    assert ast.get_docstring(tree) and "public path" in ast.get_docstring(tree)
    body = tree.body[1:]
    assert all(isinstance(node, ast.ImportFrom) for node in body), module
    assert len(Path(spec.origin).read_text().splitlines()) <= 60


def test_foldgate_imports_nothing_through_a_shim():
    through = [f"{i.source}:{i.line} imports {i.target}" for i in all_imports()
               if i.target in SHIMS and i.source not in SHIMS]
    assert through == []
