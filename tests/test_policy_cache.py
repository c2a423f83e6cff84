"""The policy cache: identical policies, re-validation on change, no torch when warm."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.errors import PolicyError
from engine.policies.checkpoint import load_policy
from engine.cache_root import cache_dir
from engine.policies.policy_cache import ENTRY_SUFFIX, load_policy_cached, pack_entry, unpack_entry

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
    assert len(list(cache_dir().glob("*" + ENTRY_SUFFIX))) == 1
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
    (entry,) = cache_dir().glob("*" + ENTRY_SUFFIX)
    entry.write_bytes(b"garbage")
    p = load_policy_cached(src)
    assert p.symbol == "ETHUSD"
    assert "meta" in unpack_entry(entry.read_bytes())


def test_warm_load_does_not_import_torch(tmp_path):
    src = SAMPLES / "TSLA_1Hour.pt"
    load_policy_cached(src)
    code = ("import sys; from engine.policies.policy_cache import load_policy_cached; "
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
    assert list(d.glob("*" + ENTRY_SUFFIX))


# ---------------------------------------------------------------- what an entry is trusted for


def _entry_arrays(entry):
    return dict(unpack_entry(entry.read_bytes()))


def test_tampered_entry_is_discarded_and_rebuilt(tmp_path):
    src = SAMPLES / "ETHUSD_1Hour.pt"
    ref = load_policy(src)
    load_policy_cached(src)
    (entry,) = cache_dir().glob("*" + ENTRY_SUFFIX)
    arrays = _entry_arrays(entry)
    arrays["w0"] = arrays["w0"] * 0 + 7.0  # other weights, same shapes, the old hash kept
    entry.write_bytes(pack_entry(arrays))
    obs = np.random.default_rng(3).standard_normal((32, ref.obs_dim)).astype(np.float32)
    got = load_policy_cached(src)
    assert np.array_equal(got.forward(obs), ref.forward(obs))
    # rebuilt from the source: the entry is a genuine one again
    assert np.array_equal(_entry_arrays(entry)["w0"], ref.layers[0][0])


def test_entry_with_a_recomputed_hash_but_another_source_is_discarded(tmp_path):
    from engine.policies.policy_cache import payload_hash

    src = SAMPLES / "ETHUSD_1Hour.pt"
    load_policy_cached(src)
    (entry,) = cache_dir().glob("*" + ENTRY_SUFFIX)
    arrays = _entry_arrays(entry)
    import json as _json

    meta = _json.loads(bytes(arrays["meta"]).decode())
    meta["sha256"] = "0" * 64
    arrays["meta"] = np.frombuffer(_json.dumps(meta).encode(), dtype=np.uint8)
    arrays["payload_sha256"] = np.frombuffer(payload_hash(arrays).encode(), dtype=np.uint8)
    entry.write_bytes(pack_entry(arrays))
    assert load_policy_cached(src).sha256 == load_policy(src).sha256


def test_oversized_entry_is_never_read(tmp_path, monkeypatch):
    src = SAMPLES / "ETHUSD_1Hour.pt"
    load_policy_cached(src)
    (entry,) = cache_dir().glob("*" + ENTRY_SUFFIX)
    monkeypatch.setenv("FOLDGATE_MAX_POLICY_MB", "1")
    with open(entry, "ab") as fh:
        fh.truncate(3 << 20)
    assert load_policy_cached(src).symbol == "ETHUSD"
    assert entry.stat().st_size < (1 << 20)


@pytest.mark.skipif(not hasattr(__import__("os"), "getuid"), reason="POSIX ownership")
def test_temp_fallback_is_private_and_a_loose_one_is_recreated(tmp_path, monkeypatch):
    import os
    import stat

    import engine.cache_root as pc

    monkeypatch.delenv("FOLDGATE_CACHE_DIR")
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setattr(pc.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    root = pc.temp_cache_root()
    assert root.name == f"foldgate-{os.getuid()}"
    load_policy_cached(SAMPLES / "BTCUSD_1Hour.pt")
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "policies").stat().st_mode) == 0o700
    # someone made it world-writable and planted a file: it is emptied and tightened
    os.chmod(root, 0o777)
    (root / "policies" / "planted.npz").write_bytes(b"x")
    d = pc.usable_cache_dir()
    assert d == root / "policies" and not (d / "planted.npz").exists()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


@pytest.mark.skipif(not hasattr(__import__("os"), "getuid"), reason="POSIX ownership")
def test_cache_dir_of_another_owner_or_a_link_is_not_used(tmp_path, monkeypatch):
    import os

    import engine.cache_root as pc

    monkeypatch.delenv("FOLDGATE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "nohome" / "f"))
    (tmp_path / "nohome").write_text("a file, so no home cache")
    monkeypatch.setattr(pc.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir(mode=0o700)
    pc.temp_cache_root().symlink_to(elsewhere)
    assert pc.usable_cache_dir() is None
    p = load_policy_cached(SAMPLES / "BTCUSD_1Hour.pt")  # cold, never failing
    assert p.symbol == "BTCUSD" and not list(elsewhere.rglob("*" + ENTRY_SUFFIX))
    pc.temp_cache_root().unlink()
    pc.temp_cache_root().mkdir(mode=0o700)
    monkeypatch.setattr(pc, "_uid", lambda: os.getuid() + 1)  # as if someone else owned it
    assert pc.usable_cache_dir() is None


# ---------------------------------------------------------------- the entry format itself


def _genuine_entry() -> bytes:
    src = SAMPLES / "BTCUSD_1Hour.pt"
    load_policy_cached(src)
    (entry,) = cache_dir().glob("*" + ENTRY_SUFFIX)
    return entry.read_bytes()


def test_entry_round_trips_every_array_bit_for_bit():
    rng = np.random.default_rng(5)
    arrays = {"w0": rng.standard_normal((7, 3)).astype(np.float32), "b0": np.zeros(0, np.float32),
              "targets": np.array([0.0, np.nan, -1.0]), "meta": np.frombuffer(b'{"a": 1}', np.uint8),
              "one": np.float32(2.5).reshape(())}
    back = unpack_entry(pack_entry(arrays))
    assert list(back) == list(arrays)
    for k, a in arrays.items():
        assert back[k].dtype == a.dtype and back[k].shape == a.shape
        assert back[k].tobytes() == a.tobytes()
        assert back[k].ctypes.data % 16 == 0  # aligned views, not copies
    with pytest.raises(ValueError, match="dtype"):
        pack_entry({"x": np.arange(3)})  # int64: not a dtype an entry holds


def _edited_header(raw: bytes, edit) -> bytes:
    """The entry with its array table edited, laid out again (header length, alignment)."""
    import json

    from engine.policies import policy_cache as pc

    head = len(pc._MAGIC) + pc._LEN_BYTES
    n = int.from_bytes(raw[len(pc._MAGIC):head], "little")
    start = head + n + (-(head + n) % pc._ALIGN)
    header = json.loads(raw[head:head + n])
    edit(header["arrays"])
    text = json.dumps(header).encode()
    pad = -(head + len(text)) % pc._ALIGN
    return pc._MAGIC + len(text).to_bytes(pc._LEN_BYTES, "little") + text + b"\0" * pad + raw[start:]


@pytest.mark.parametrize("edit", [
    lambda t: t[0].__setitem__(1, "<i8"),                         # a dtype no entry holds
    lambda t: t[0].__setitem__(2, [1, 1, 1]),                     # three dimensions
    lambda t: t[0].__setitem__(2, [-1]),                          # a negative one
    lambda t: t[0].__setitem__(2, [True]),                        # a bool for an int
    lambda t: t[0].__setitem__(3, 3),                             # an unaligned offset
    lambda t: t[1].__setitem__(3, t[1][3] + 64),                  # a gap before an array
    lambda t: t.pop(),                                            # bytes after the last array
    lambda t: t[0].__setitem__(3, 1 << 40),                       # past the end
    lambda t: t[0].__setitem__(4, t[0][4] + 4),                   # bytes that do not match the shape
    lambda t: t[1].__setitem__(0, t[0][0]),                       # a name twice
    lambda t: t.__setitem__(0, ["w0", "<f4", [1]]),               # a short row
])
def test_an_entry_with_a_header_foldgate_never_writes_is_untrusted(edit):
    from engine.policies.policy_cache import _Untrusted

    raw = _genuine_entry()
    unpack_entry(raw)
    with pytest.raises(_Untrusted):
        unpack_entry(_edited_header(raw, edit))


def test_truncated_or_foreign_entries_are_untrusted():
    from engine.policies.policy_cache import _Untrusted

    raw = _genuine_entry()
    for bad in (b"", raw[:10], raw[:40], b"PK\x03\x04" + raw[4:], raw[:-8], raw + b"\0"):
        with pytest.raises(_Untrusted):
            unpack_entry(bad)


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


_GENUINE: list[bytes] = []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_to_an_entry_is_caught_and_the_policy_stays_right(data):
    """Flipped bytes, cut or grown files, anywhere in the entry: the load gives the
    policy torch gives, and never raises."""
    src = SAMPLES / "BTCUSD_1Hour.pt"
    ref = load_policy(src)
    if not _GENUINE:
        _GENUINE.append(_genuine_entry())
    (entry,) = cache_dir().glob("*" + ENTRY_SUFFIX)
    raw = bytearray(_GENUINE[0])  # every example damages the genuine entry afresh
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "grow"]))
        if kind == "flip" and raw:
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del raw[data.draw(st.integers(0, len(raw))):]
        else:
            raw += data.draw(st.binary(min_size=1, max_size=64))
    entry.write_bytes(bytes(raw))
    got = load_policy_cached(src)
    obs = np.random.default_rng(2).standard_normal((16, ref.obs_dim)).astype(np.float32)
    assert np.array_equal(got.forward(obs), ref.forward(obs)) and got.sha256 == ref.sha256
