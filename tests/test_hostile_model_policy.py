"""Hostile policy files (issue 10): each test builds its attack itself and checks that it
ends in one PolicyError line naming the file and the field, before anything of the
declared size is allocated."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from archive_factory import SB3_SIDECAR, policy_bytes, policy_fields, sb3_data, sb3_zip_bytes
from engine.errors import PolicyError
from engine.policies.checkpoint import load_policy

ROOT = Path(__file__).resolve().parent.parent


HUGE = 10**5000  # past int -> str's digit limit: no message may repr it


def _huge(v):
    """Parameter ids cannot show HUGE, so parameters name it and tests put it in."""
    if v == "HUGE":
        return HUGE
    if isinstance(v, dict):
        return {(HUGE if k == "HUGE_KEY" else k): _huge(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_huge(x) for x in v]
    return v


def _write(tmp_path: Path, fields: dict, name: str = "UNIUSD_1Hour.pt") -> Path:
    p = tmp_path / name
    p.write_bytes(policy_bytes(fields))
    return p


def refused(path: Path, *needles: str) -> str:
    with pytest.raises(PolicyError) as ei:
        load_policy(path)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(str(path.parent)), msg
    for n in needles:
        assert n in msg, (n, msg)
    return msg


def test_control_the_factory_checkpoint_loads(tmp_path):
    pol = load_policy(_write(tmp_path, policy_fields()))
    assert pol.obs_dim == 3 and pol.n_out == 3


# ------------------------------------------------------------------ sizes


def _wide(n_rows: int, n_cols: int) -> torch.Tensor:
    """A tensor that declares (n_rows, n_cols) but stores one float: stride 0."""
    return torch.zeros(1, 1).expand(n_rows, n_cols)


def test_small_file_declaring_a_100M_wide_layer_is_refused_without_allocating(tmp_path):
    f = policy_fields()
    f["actor"] = [_wide(100_000_000, 3), torch.zeros(1).expand(100_000_000),
                  _wide(3, 100_000_000), torch.zeros(3)]
    p = _write(tmp_path, f)
    assert p.stat().st_size < 2_000_000
    # in a fresh process, so its peak memory is this load's alone; converting the
    # layer would take 1.2 GB for the first weight alone
    # (VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec)
    code = ("import sys; from engine.policy import load_policy\n"
            "from engine.errors import PolicyError\n"
            "try:\n    load_policy(sys.argv[1]); print('LOADED')\n"
            "except PolicyError as e:\n    print('REFUSED', e)\n"
            "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')]\n"
            "print('RSS_MB', int(hwm[0].split()[1]) // 1024 if hwm else 0)\n")
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    lines = out.stdout.splitlines()
    assert lines[0].startswith("REFUSED") and "actor[0] (layer 0 weight)" in lines[0], out.stdout + out.stderr
    assert "wider than 4,096" in lines[0]
    rss = int(lines[-1].split()[1])
    assert rss < 1000, f"peak RSS {rss} MB: the declared layer was materialised"


def test_parameter_bound_over_all_layers(tmp_path):
    f = policy_fields(hidden=(4096, 4096))
    f["actor"] = [_wide(4096, 3), torch.zeros(4096), _wide(4096, 4096), torch.zeros(4096),
                  _wide(3, 4096), torch.zeros(3)]
    refused(_write(tmp_path, f), "actor", "more than 16,000,000 parameters", "FOLDGATE_MAX_POLICY_PARAMS")


def test_bounds_are_configurable(tmp_path, monkeypatch):
    f = policy_fields(hidden=(64,))
    p = _write(tmp_path, f)
    load_policy(p)
    monkeypatch.setenv("FOLDGATE_MAX_LAYER_WIDTH", "32")
    refused(p, "wider than 32", "FOLDGATE_MAX_LAYER_WIDTH")
    monkeypatch.setenv("FOLDGATE_MAX_LAYER_WIDTH", "4096")
    monkeypatch.setenv("FOLDGATE_MAX_POLICY_PARAMS", "100")
    refused(p, "more than 100 parameters")
    monkeypatch.setenv("FOLDGATE_MAX_POLICY_PARAMS", "lots")
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="FOLDGATE_MAX_POLICY_PARAMS"):
        load_policy(p)


def test_observation_wider_than_the_bound(tmp_path):
    f = policy_fields(window=3000)
    f["actor"] = [_wide(4, 6001), torch.zeros(4), torch.zeros(3, 4), torch.zeros(3)]
    refused(_write(tmp_path, f), "window", "6,001 inputs")


def test_file_over_the_size_bound_is_refused_before_reading(tmp_path, monkeypatch):
    p = _write(tmp_path, policy_fields())
    p.write_bytes(p.read_bytes() + b"\0" * (2 << 20))
    monkeypatch.setenv("FOLDGATE_MAX_POLICY_MB", "1")
    import builtins

    real_open = builtins.open

    def no_read(file, *a, **kw):
        assert Path(file) != p, "the oversized file was opened"
        return real_open(file, *a, **kw)

    monkeypatch.setattr(builtins, "open", no_read)
    refused(p, "over the bound of 1,048,576 bytes", "FOLDGATE_MAX_POLICY_MB")


def test_deflated_tensor_record_bomb(tmp_path):
    # torch stores records uncompressed; recompressing a 4 MB record of zeros makes a
    # file of a few KB that declares it all
    src = io.BytesIO(policy_bytes({**policy_fields(), "meta": {"pad": torch.zeros(1_000_000)}}))
    p = tmp_path / "UNIUSD_1Hour.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    assert p.stat().st_size < 100_000
    refused(p, "compression bomb")


def test_sparse_and_wrong_dtype_tensors(tmp_path):
    for i, (t, needle) in enumerate([
        (torch.zeros(4, 3).to_sparse(), "sparse"),
        (torch.zeros(4, 3, dtype=torch.int64), "dtype torch.int64"),
        (torch.zeros(4, 3, dtype=torch.complex64), "dtype torch.complex64"),
        (torch.zeros(4, 3, dtype=torch.bool), "dtype torch.bool"),
        ("a string", "expected a float tensor"),
    ]):
        f = policy_fields()
        f["actor"][0] = t
        refused(_write(tmp_path, f, f"M{i}_1Hour.pt"), "actor[0] (layer 0 weight)", needle)


def test_float64_weights_past_float32_range(tmp_path):
    f = policy_fields()
    f["actor"][0] = torch.full((4, 3), 1e300, dtype=torch.float64)
    refused(_write(tmp_path, f), "actor[0]", "too large for float32")


# ------------------------------------------------------------------ obs_norm


def _norm(**over):
    n = {"mean": [0.0, 0.0, 0.0], "var": [1.0, 1.0, 1.0], "epsilon": 1e-8, "clip": 10.0}
    n.update(over)
    return n


@pytest.mark.parametrize("norm, field", [
    (_norm(clip=float("inf")), "obs_norm.clip"),
    (_norm(clip=float("nan")), "obs_norm.clip"),
    (_norm(clip=1e39), "obs_norm.clip"),  # finite as a double, inf in float32
    (_norm(clip=10**400), "obs_norm.clip"),
    (_norm(epsilon=1e300), "obs_norm.epsilon"),
    (_norm(epsilon=10**400), "obs_norm.epsilon"),
    (_norm(epsilon=-1e-8), "obs_norm.epsilon"),
    (_norm(var=[1.0, -2.0, 1.0]), "obs_norm.var"),
    (_norm(var=[1.0, -1e-8, 1.0]), "obs_norm.var"),  # var + epsilon = 0
    (_norm(var=[1.0, 3e38, 1.0], epsilon=1e38), "obs_norm.var"),  # the sum overflows float32
    (_norm(mean=[0.0, 10**400, 0.0]), "obs_norm.mean"),
    (_norm(mean=[0.0, 1e39, 0.0]), "obs_norm.mean"),
    (_norm(mean=[0.0] * 10**5), "obs_norm.mean"),
    ([0.0, 1.0], "obs_norm"),
    (_norm(**{"bad\nkey": 1}), "obs_norm.'bad\\nkey'"),
])
def test_obs_norm_refused_at_load(tmp_path, norm, field):
    f = policy_fields()
    f["obs_norm"] = norm
    refused(_write(tmp_path, f), field)


# ------------------------------------------------------------------ numbers and dates


@pytest.mark.parametrize("key, value, field", [
    ("window", 10**400, "window"),
    ("window", "HUGE", "pickle opcode 139"),
    ("symbol", 10**400, "symbol"),
    ("symbol", "X" * 5000, "symbol"),
    ("timeframe", ["1Hour"], "timeframe"),
    ("format", "HUGE", "pickle opcode 139"),
    ("activation", torch.zeros(2), "activation"),
    ("features", ["ret_1"] * 5000, "features"),
    ("trained_until", "9999-12-31T23:59:59-01:00", "trained_until"),
    ("trained_until", "0001-01-01T00:00:00+01:00", "trained_until"),
    ("trained_until", "2300-01-01T00:00:00Z", "trained_until"),
    ("trained_until", "1969-12-31T00:00:00Z", "trained_until"),
    ("trained_until", 10**400, "trained_until"),
])
def test_field_values_refused(tmp_path, key, value, field):
    f = policy_fields()
    f[key] = _huge(value)
    refused(_write(tmp_path, f), field)


@pytest.mark.parametrize("action, field", [
    ({"type": "discrete", "targets": [0.0, 10**400, None]}, "action.targets[1]"),
    ({"type": "discrete", "targets": [0.0, "HUGE", None]}, "pickle opcode 139"),
    ({"type": "discrete", "targets": [0.0] * 10**5}, "action.targets"),
    ({"type": "continuous", "low": -(10**400), "high": 1.0}, "action.low"),
    ({"type": "continuous", "low": -1.0, "high": 1e39}, "action.high"),
    ({"type": torch.zeros(1)}, "action.type"),
    ({"type": "discrete", "targets": [0.0, 1.0, None], 10**300: 1}, "action.an integer of"),
    ({"type": "discrete", "targets": [0.0, 1.0, None], "HUGE_KEY": 1}, "pickle opcode 139"),
])
def test_action_values_refused(tmp_path, action, field):
    f = policy_fields()
    if action.get("type") == "continuous":
        f = policy_fields(n_out=1)
    f["action"] = _huge(action)
    refused(_write(tmp_path, f), field)


def test_trained_until_at_the_edge_still_loads(tmp_path):
    f = policy_fields()
    f["trained_until"] = "2261-12-31T00:00:00+01:00"
    assert load_policy(_write(tmp_path, f)).trained_until.year == 2261


# ------------------------------------------------------------------ SB3 zips built by hand


def _sb3(tmp_path, name="ETHUSD_1Hour.zip", sidecar=SB3_SIDECAR, sidecar_text=None, **kw) -> Path:
    p = tmp_path / name
    p.write_bytes(sb3_zip_bytes(**kw))
    side = p.with_name(p.name[:-4] + ".features.json")
    side.write_text(sidecar_text if sidecar_text is not None else json.dumps(sidecar))
    return p


def test_control_hand_made_sb3_zip_loads(tmp_path):
    pol = load_policy(_sb3(tmp_path))
    assert pol.source_format == "sb3.zip" and pol.hidden_sizes == [4] and pol.n_out == 3


def _deep(n: int) -> str:
    return "[" * n + "]" * n


def test_sb3_data_nested_100000_deep(tmp_path):
    refused(_sb3(tmp_path, raw_data=('{"a": ' + _deep(100_000) + "}").encode()), "'data' entry", "nested")


def test_sb3_data_integer_past_the_digit_limit(tmp_path):
    refused(_sb3(tmp_path, raw_data=b'{"n": ' + b"9" * 5000 + b"}"), "'data' entry", "not JSON")


def test_sb3_integer_action_space_shape(tmp_path):
    data = sb3_data()
    data["action_space"] = {":type:": "<class 'gymnasium.spaces.box.Box'>", "_shape": 1, "low": "[-1.]",
                            "high": "[1.]"}
    refused(_sb3(tmp_path, data=data), "action_space", "Box of shape 1")
    data["observation_space"]["_shape"] = 3
    refused(_sb3(tmp_path, data=data), "observation space has shape 3")
    data["observation_space"]["_shape"] = "(" + "9" * 5000 + ",)"
    refused(_sb3(tmp_path, data=data), "observation space")


def test_sb3_box_bounds_past_float_range(tmp_path):
    data = sb3_data()
    data["action_space"] = {":type:": "<class 'gymnasium.spaces.box.Box'>", "_shape": [1], "low": -(10**400),
                            "high": 1.0}
    refused(_sb3(tmp_path, data=data), "action_space")


def test_sb3_stride_zero_weights_refused_by_shape(tmp_path):
    sd = {"mlp_extractor.policy_net.0.weight": _wide(50_000_000, 3),
          "mlp_extractor.policy_net.0.bias": torch.zeros(1).expand(50_000_000),
          "action_net.weight": _wide(3, 50_000_000), "action_net.bias": torch.zeros(3)}
    refused(_sb3(tmp_path, state_dict=sd), "layer 0 weight", "wider than")


def test_sidecar_nested_deep_huge_int_and_list_obs_norm(tmp_path):
    refused(_sb3(tmp_path, sidecar_text='{"features": ' + _deep(100_000) + "}"), "nested")
    refused(_sb3(tmp_path, sidecar_text='{"window": ' + "9" * 5000 + "}"), "not valid JSON")
    refused(_sb3(tmp_path, sidecar={**SB3_SIDECAR, "window": 10**400}), "window")
    refused(_sb3(tmp_path, sidecar={**SB3_SIDECAR, "obs_norm": [1, 2, 3]}), "obs_norm")
    refused(_sb3(tmp_path, sidecar={**SB3_SIDECAR, "obs_norm": {"mean": [0, 0, 0], "var": [1, 1, 1],
                                                               "clip": 1e400}}), "obs_norm.clip")


def test_sidecar_over_its_size_bound(tmp_path, monkeypatch):
    p = _sb3(tmp_path, sidecar={**SB3_SIDECAR, "meta": {"pad": "x" * (2 << 20)}})
    monkeypatch.setenv("FOLDGATE_MAX_SIDECAR_MB", "1")
    refused(p, "over the bound", "FOLDGATE_MAX_SIDECAR_MB")


def test_cli_prints_one_error_line(tmp_path):
    from click.testing import CliRunner

    from cli.main import app

    f = policy_fields()
    f["obs_norm"] = _norm(epsilon=1e300)
    p = _write(tmp_path, f)
    res = CliRunner().invoke(app, ["backtest", "--model", str(p), "--store", str(tmp_path / "none")])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines == [f"Error: {p}: obs_norm.epsilon: 1e+300 is not a finite number >= 0 (within float32)"], res.output
    assert np.isfinite(np.float64(1e300))  # the control: finite as a double


def test_convert_sb3_prints_one_error_line(tmp_path):
    from click.testing import CliRunner

    from cli.main import app

    p = _sb3(tmp_path, sidecar={**SB3_SIDECAR, "obs_norm": [1, 2, 3]})
    res = CliRunner().invoke(app, ["convert", "sb3", str(p), "-o", str(tmp_path / "out.pt")])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: ") and "obs_norm" in lines[0]
    assert not (tmp_path / "out.pt").exists()


def test_sb3_policy_pth_record_bomb(tmp_path):
    import io as _io

    sd = {"mlp_extractor.policy_net.0.weight": torch.zeros(4, 3), "mlp_extractor.policy_net.0.bias": torch.zeros(4),
          "action_net.weight": torch.zeros(3, 4), "action_net.bias": torch.zeros(3),
          "log_std": torch.zeros(1_000_000)}
    buf = _io.BytesIO()
    torch.save(sd, buf)
    bomb = _io.BytesIO()
    with zipfile.ZipFile(buf) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    zp = tmp_path / "ETHUSD_1Hour.zip"
    with zipfile.ZipFile(zp, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("data", json.dumps(sb3_data()))
        zf.writestr("policy.pth", bomb.getvalue())
    zp.with_name("ETHUSD_1Hour.features.json").write_text(json.dumps(SB3_SIDECAR))
    refused(zp, "(policy.pth)", "compression bomb")
