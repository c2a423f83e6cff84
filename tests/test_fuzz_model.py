"""Property-based fuzzing of every parser a model-side user file reaches (issue 10):
training summaries, native policy dicts, SB3 `data` JSON and sidecars, thresholds
TOML, and zip central directories (entries and raw bytes).

Each property asserts only what must always hold: a result, or a FoldgateError whose
message is one non-empty line; never another exception; never a file written outside
the target directory. CI runs a fixed seed and few examples (tests/conftest.py's "ci"
profile); `python benchmarks/fuzz.py --examples 20000 -k model` runs them long."""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from archive_factory import SB3_SIDECAR, metric_history, policy_bytes, policy_fields, sb3_data, sb3_zip_bytes
from engine.errors import FoldgateError

STAMP = "20241227_120000"
SUMMARY = f"training_summary_{STAMP}.json"


def holds(fn, *args, **kwargs):
    """fn's result, or None after a FoldgateError of one non-empty line."""
    try:
        return fn(*args, **kwargs)
    except FoldgateError as exc:
        msg = str(exc)
        assert msg.strip() and "\n" not in msg and "\r" not in msg, repr(msg)
        return None


@contextmanager
def workdir():
    with tempfile.TemporaryDirectory(prefix="fuzz-") as d:
        yield Path(d)


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ------------------------------------------------------------------ value strategies

huge_ints = st.sampled_from([10**400, -(10**400), 2**64, -(2**63) - 1, 2**1000])
numbers = st.one_of(
    st.integers(-10**6, 10**6), huge_ints, st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -0.0, 1e-320, 1e300, 3.5e38, 1e39, -1e39]),
)
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "\n", "a\nError: x", "\x00", "..", "../x", "/abs", "C:\\x", "\u2028", "x" * 300,
                     "1Hour", "UNIUSD", "ret_1", "rsi_14", "ret_" + "9" * 30, "tanh", "relu", "discrete",
                     "continuous", "2024-12-20T00:00:00Z", "9999-12-31T23:59:59-01:00", "\ud800", "x\udcffy",
                     "0001-01-01T00:00:00+01:00", "foldgate.policy/1"]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False,
              allow_infinity=False), texts),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)


def _dumps(v) -> str:
    return json.dumps(v, allow_nan=True)


# ------------------------------------------------------------------ training summaries

GOOD = metric_history(0.8, 2.0, 0.9, 0.05, n=4)
entry_values = st.one_of(json_values, st.just(GOOD), st.just({"metrics": GOOD}),
                         st.fixed_dictionaries({"metrics": st.dictionaries(
                             st.sampled_from(list(GOOD)), st.one_of(st.lists(scalars, max_size=4), scalars),
                             max_size=4)}),
                         st.fixed_dictionaries({"metrics": st.just(GOOD), "model": texts,
                                                "checkpoints": st.one_of(st.none(), st.lists(texts, max_size=5)),
                                                "train_start": texts, "train_end": texts, "timeframe": texts}))
summaries = st.one_of(
    json_values,
    st.fixed_dictionaries({"timeframe": st.one_of(texts, scalars),
                           "symbols": st.dictionaries(texts, entry_values, max_size=4)}),
    st.lists(st.fixed_dictionaries({"symbol": texts}).flatmap(
        lambda d: entry_values.map(lambda e: {**e, **d} if isinstance(e, dict) else e)), max_size=4),
)


def _summary_text(obj) -> str:
    try:
        return json.dumps(obj, allow_nan=True)
    except (ValueError, TypeError):
        return "{}"


@given(summaries, st.booleans())
def test_fuzz_training_summary(obj, require_models):
    from engine.summary import parse_summary

    with workdir() as d:
        root = d / "extract"
        (root / "models" / "rl_symbols").mkdir(parents=True)
        (root / "models" / "rl_symbols" / "UNIUSD_1Hour.pt").write_bytes(b"m")
        p = root / SUMMARY
        p.write_text(_summary_text(obj), encoding="utf-8", errors="surrogatepass")
        records = holds(parse_summary, p, root, require_models)
        for rec in records or []:
            assert rec.error is None or ("\n" not in rec.error and rec.error.strip())
            if rec.model_path is not None:
                assert rec.model_path.is_relative_to(root.resolve())


@given(summaries)
def test_fuzz_gate_cli(obj):
    """The whole `foldgate gate` command prints what it read from the summary: a name
    holding a lone surrogate or a newline must neither crash the terminal output nor
    split an error over two lines."""
    from click.testing import CliRunner

    from cli.main import app

    with workdir() as d:
        p = d / SUMMARY
        p.write_text(_summary_text(obj))
        res = CliRunner().invoke(app, ["gate", str(p)])
        assert res.exit_code in (0, 1) and (res.exception is None or isinstance(res.exception, SystemExit)), (
            res.output, res.exception)
        errors = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
        assert len(errors) <= 1 and (res.exit_code == 0 or len(errors) == 1), res.output


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzz_training_summary_bytes(raw):
    from engine.summary import parse_summary

    with workdir() as d:
        p = d / SUMMARY
        p.write_bytes(raw)
        holds(parse_summary, p, d, False)


# ------------------------------------------------------------------ native policy dicts

def _tensors():
    shapes = st.lists(st.integers(0, 6), min_size=0, max_size=3)
    dtypes = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64, torch.bool,
                              torch.complex64])
    fills = st.sampled_from([0.0, 1.0, -1.0, math.inf, math.nan, 1e39])

    def make(shape, dtype, fill):
        t = torch.full(shape, fill if dtype.is_floating_point or dtype.is_complex else 1, dtype=torch.float64)
        return t.to(dtype)

    plain = st.builds(make, shapes, dtypes, fills)
    expanded = st.builds(lambda n: torch.zeros(1, 1).expand(n, 3), st.sampled_from([5000, 10**6, 10**8]))
    return st.one_of(plain, expanded, st.just(torch.zeros(4, 3).to_sparse()))


field_values = st.one_of(scalars, json_values, _tensors(), st.lists(st.one_of(scalars, _tensors()), max_size=5))
FIELDS = ["format", "symbol", "timeframe", "features", "window", "state_features", "obs_norm", "actor",
          "activation", "action", "trained_until", "meta"]


@given(st.dictionaries(st.sampled_from(FIELDS + ["obs_norm.epsilon", "obs_norm.clip", "obs_norm.var",
                                                 "action.targets", "action.low", "actor.0"]),
                       field_values, max_size=3),
       st.booleans())
def test_fuzz_policy_dict(changes, with_norm):
    from engine.policies.checkpoint import load_policy

    f = policy_fields()
    if with_norm:
        f["obs_norm"] = {"mean": [0.0, 0.0, 0.0], "var": [1.0, 1.0, 1.0], "epsilon": 1e-8, "clip": 10.0}
    for key, value in changes.items():
        head, _, sub = key.partition(".")
        if not sub:
            f[head] = value
        elif isinstance(f.get(head), dict):
            f[head][sub] = value
        elif isinstance(f.get(head), list) and sub.isdigit() and int(sub) < len(f[head]):
            f[head][int(sub)] = value
    with workdir() as d:
        p = d / "UNIUSD_1Hour.pt"
        try:
            p.write_bytes(policy_bytes(f))
        except Exception:  # noqa: BLE001 - torch.save cannot write it: not a file a user could hand us
            return
        pol = holds(load_policy, p)
        if pol is not None:
            obs = np.zeros((2, pol.obs_dim), dtype=np.float32)
            assert pol.forward(obs).shape == (2, pol.n_out)


@given(st.binary(min_size=0, max_size=300), st.integers(0, 2000), st.binary(min_size=1, max_size=8))
def test_fuzz_policy_bytes(prefix, at, patch):
    """A valid checkpoint with bytes overwritten somewhere (pickle, zip headers, data)."""
    from engine.policies.checkpoint import load_policy

    raw = bytearray(_VALID_PT)
    at = at % len(raw)
    raw[at:at + len(patch)] = patch
    with workdir() as d:
        p = d / "UNIUSD_1Hour.pt"
        p.write_bytes(bytes(raw) if prefix == b"" else prefix + bytes(raw))
        holds(load_policy, p)


_VALID_PT = policy_bytes(policy_fields())


# ------------------------------------------------------------------ SB3 data JSON and sidecars

_VALID_PTH = None


def _sb3_zip(data_text: str) -> bytes:
    global _VALID_PTH
    if _VALID_PTH is None:
        with zipfile.ZipFile(io.BytesIO(sb3_zip_bytes())) as zf:
            _VALID_PTH = zf.read("policy.pth")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("data", data_text)
        zf.writestr("policy.pth", _VALID_PTH)
    return out.getvalue()


SPACE_KEYS = ["observation_space", "action_space", "policy_kwargs", "policy_class", "use_sde"]


@given(st.dictionaries(st.sampled_from(SPACE_KEYS + ["observation_space._shape", "action_space._shape",
                                                     "action_space.n", "action_space.low", "action_space.:type:",
                                                     "policy_kwargs.activation_fn", "policy_kwargs.net_arch"]),
                       st.one_of(json_values, scalars), max_size=3),
       st.dictionaries(st.sampled_from(["features", "window", "state_features", "targets", "action", "obs_norm",
                                        "activation", "symbol", "timeframe", "trained_until", "bogus"]),
                       st.one_of(json_values, scalars), max_size=3))
def test_fuzz_sb3_data_and_sidecar(data_changes, sidecar_changes):
    from engine.policies.checkpoint import load_policy

    data = sb3_data()
    for key, value in data_changes.items():
        head, _, sub = key.partition(".")
        if sub and isinstance(data.get(head), dict):
            data[head][sub] = value
        elif not sub:
            data[head] = value
    side = {**SB3_SIDECAR, **sidecar_changes}
    with workdir() as d:
        p = d / "ETHUSD_1Hour.zip"
        p.write_bytes(_sb3_zip(_summary_text(data)))
        (d / "ETHUSD_1Hour.features.json").write_text(_summary_text(side), errors="surrogatepass")
        holds(load_policy, p)


@given(st.text(max_size=120), st.text(max_size=120))
def test_fuzz_sb3_raw_texts(data_text, sidecar_text):
    from engine.policies.checkpoint import load_policy

    with workdir() as d:
        p = d / "ETHUSD_1Hour.zip"
        p.write_bytes(_sb3_zip(data_text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")))
        (d / "ETHUSD_1Hour.features.json").write_bytes(sidecar_text.encode("utf-8", "surrogatepass"))
        holds(load_policy, p)


# ------------------------------------------------------------------ thresholds TOML

toml_keys = st.sampled_from(["fitness", "profit_factor", "consistency", "max_drawdown", "min_improvement",
                             "inflated_max_drawdown", "live_min_positive_fraction", "bogus", '"a\\nb"', "profile"])
toml_values = st.sampled_from(["0.7", "1", "-1", "85", "1e400", "nan", "inf", '"x"', "true", "[1, 2]",
                               "1" + "0" * 400, "9" * 5000, "{a = 1}", "2024-01-01", "[[[]]]", '"evidence"'])
toml_sections = st.sampled_from(["[approved]", "[review]", "[checkpoint]", "[proxy]", "[decision]",
                                 "[decision.evidence]", "[bogus]", "", "[[approved]]"])


@given(st.lists(st.tuples(toml_sections, st.lists(st.tuples(toml_keys, toml_values), max_size=3)), max_size=3),
       st.text(max_size=40))
def test_fuzz_thresholds_toml(tables, noise):
    from engine.gating import load_thresholds

    text = "\n".join(sec + "\n" + "\n".join(f"{k} = {v}" for k, v in kv) for sec, kv in tables) + "\n" + noise
    with workdir() as d:
        p = d / "t.toml"
        p.write_bytes(text.encode("utf-8", "surrogatepass"))
        holds(load_thresholds, p)


# ------------------------------------------------------------------ zip central directories

member_names = st.one_of(
    st.sampled_from([SUMMARY, f"run/{SUMMARY}", "models/rl_symbols/UNIUSD_1Hour.pt", "../x", "../../x", "/abs",
                     "C:/x", "\\\\server\\share\\x", "a/../../x", "a\\..\\..\\x", "", ".", "./", "a/", "a",
                     "a/b", "x" * 300, "a\nError: b", "a\x00b", "models/", "models/rl_symbols/"]),
    st.text(min_size=0, max_size=20),
)
members = st.lists(st.tuples(member_names, st.binary(max_size=64), st.sampled_from([0, 0o100644, 0o120777,
                                                                                   0o040755, 0o010644])),
                   max_size=6)


def _build_zip(path: Path, entries) -> bool:
    import warnings

    try:
        with warnings.catch_warnings(), zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            warnings.simplefilter("ignore")  # duplicate names are part of the attack
            for name, data, mode in entries:
                info = zipfile.ZipInfo(name)
                info.external_attr = mode << 16
                zf.writestr(info, data)
        return True
    except Exception:  # noqa: BLE001 - zipfile cannot write it either: nothing to test
        return False


def _source_holds(d: Path, zp: Path) -> None:
    from engine.archive import open_training_source

    dest = d / "ta"
    before = files_under(d)
    holds(open_training_source, zp, dest)
    after = files_under(d)
    # nothing new outside the destination
    assert {f for f in after - before if not (d / f).resolve().is_relative_to(dest.resolve())} == set()
    for p in (dest.rglob("*") if dest.exists() else []):
        assert not p.is_symlink() and p.resolve().is_relative_to(dest.resolve())


@given(members, st.booleans())
def test_fuzz_zip_entries(entries, with_summary):
    if with_summary:
        entries = [(SUMMARY, json.dumps({"symbols": {"UNIUSD": {"metrics": GOOD}}}).encode(), 0o100644), *entries]
    with workdir() as d:
        zp = d / f"Alpaca_trading_trained_{STAMP}.zip"
        if _build_zip(zp, entries):
            _source_holds(d, zp)


_VALID_ZIP = None


def _valid_zip() -> bytes:
    global _VALID_ZIP
    if _VALID_ZIP is None:
        with workdir() as d:
            from archive_factory import build_training_archive

            _VALID_ZIP = build_training_archive(d, {"UNIUSD": GOOD, "ETHUSD": GOOD}).read_bytes()
    return _VALID_ZIP


@given(st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=1, max_size=4)), min_size=1, max_size=4),
       st.booleans())
def test_fuzz_zip_central_directory_bytes(patches, near_end):
    raw = bytearray(_valid_zip())
    cd = raw.rindex(b"PK\x05\x06")
    start = int.from_bytes(raw[cd + 16:cd + 20], "little")
    for at, patch in patches:
        # most patches land in the central directory, some anywhere
        pos = start + at % max(len(raw) - start, 1) if near_end else at % len(raw)
        raw[pos:pos + len(patch)] = patch
    with workdir() as d:
        zp = d / f"Alpaca_trading_trained_{STAMP}.zip"
        zp.write_bytes(bytes(raw))
        _source_holds(d, zp)


def test_fuzz_suite_controls():
    """The properties can fail: a foldgate error of two lines, or another exception,
    is caught by `holds`."""
    import pytest

    with pytest.raises(AssertionError):
        holds(lambda: (_ for _ in ()).throw(FoldgateError("a\nError: b")))
    with pytest.raises(ValueError):
        holds(lambda: int("x"))
    assert holds(lambda: 3) == 3
    assert os.path.basename(SUMMARY).startswith("training_summary_")
