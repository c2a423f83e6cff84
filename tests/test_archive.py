"""Training-archive extraction (docs/design.md 7): hostile zips are refused with the entry
named, nothing is written outside the destination, no partial extract remains, and a
second extraction reuses the first."""

import os
import warnings
import zipfile
from pathlib import Path

import pytest

import engine.archive as archive
from archive_factory import build_training_archive, metric_history
from engine.archive import MARKER, extract_archive, open_training_source
from engine.errors import ArchiveError

STAMP = "20241227_120000"
NAME = f"Alpaca_trading_trained_{STAMP}.zip"


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def make_zip(path: Path, members, compression=zipfile.ZIP_DEFLATED) -> Path:
    """members: (name, bytes) or (ZipInfo, bytes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we craft
        with zipfile.ZipFile(path, "w", compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return path


@pytest.fixture
def env(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    dest = tmp_path / "deep" / "er" / "training_archives"
    return src, dest, tmp_path


def refused(env, members, match, **kw):
    src, dest, top = env
    zp = make_zip(src / NAME, members)
    before = tree(top)
    with pytest.raises(ArchiveError, match=match) as exc:
        extract_archive(zp, dest, **kw)
    after = tree(top)
    # nothing new anywhere except (at most) the empty destination root itself
    assert after - before <= {str(p.relative_to(top)) for p in [dest.parent.parent, dest.parent, dest]}
    assert not dest.exists() or list(dest.iterdir()) == []
    assert "\n" not in str(exc.value)
    return str(exc.value)


def summary_member():
    return (f"training_summary_{STAMP}.json", b'{"symbols": {}}')


def test_valid_archive_extracts_to_stamp_dir(tmp_path):
    zp = build_training_archive(tmp_path / "in", {"UNIUSD": metric_history(0.8, 2, 0.9, 0.05)})
    out = extract_archive(zp, tmp_path / "ta")
    assert out == tmp_path / "ta" / f"{STAMP}_extract"
    assert (out / f"training_summary_{STAMP}.json").is_file()
    assert (out / "Alpaca_trading/models/rl_symbols/UNIUSD_1Hour.pt").is_file()
    assert (out / MARKER).is_file()
    assert sorted(p.name for p in (tmp_path / "ta").iterdir()) == [f"{STAMP}_extract"]


def test_second_extract_reuses_the_first(tmp_path):
    zp = build_training_archive(tmp_path / "in", {"UNIUSD": metric_history(0.8, 2, 0.9, 0.05)})
    out = extract_archive(zp, tmp_path / "ta")
    marker_mtime = (out / MARKER).stat().st_mtime_ns
    note = out / "my_notes.txt"
    note.write_text("kept")
    assert archive.existing_extract(zp, tmp_path / "ta") == out
    assert extract_archive(zp, tmp_path / "ta") == out
    assert note.read_text() == "kept" and (out / MARKER).stat().st_mtime_ns == marker_mtime


def test_another_archive_with_the_same_stamp_is_not_mixed_in(tmp_path):
    a = build_training_archive(tmp_path / "a", {"UNIUSD": metric_history(0.8, 2, 0.9, 0.05)})
    b = build_training_archive(tmp_path / "b", {"BTCUSD": metric_history(0.8, 2, 0.9, 0.05)})
    extract_archive(a, tmp_path / "ta")
    with pytest.raises(ArchiveError, match="another archive"):
        extract_archive(b, tmp_path / "ta")


def test_foreign_directory_in_the_way_is_left_alone(tmp_path):
    zp = build_training_archive(tmp_path / "in", {"UNIUSD": metric_history(0.8, 2, 0.9, 0.05)})
    manual = tmp_path / "ta" / f"{STAMP}_extract"
    manual.mkdir(parents=True)
    (manual / "unzipped_by_hand.txt").write_text("x")
    with pytest.raises(ArchiveError, match="not a complete foldgate extract"):
        extract_archive(zp, tmp_path / "ta")
    assert tree(tmp_path / "ta") == {f"{STAMP}_extract", f"{STAMP}_extract/unzipped_by_hand.txt"}


def test_stamp_from_the_summary_when_the_name_has_none(tmp_path):
    zp = build_training_archive(tmp_path / "in", {"UNIUSD": metric_history(0.8, 2, 0.9, 0.05)},
                                stamp="20250102_030405", archive_name="latest_run.zip")
    assert extract_archive(zp, tmp_path / "ta").name == "20250102_030405_extract"


def test_no_stamp_at_all(env):
    src, dest, _ = env
    zp = make_zip(src / "run.zip", [("summary.json", b"{}")])
    with pytest.raises(ArchiveError, match="no run stamp"):
        extract_archive(zp, dest)


@pytest.mark.parametrize("name", ["/etc/evil.txt", "//server/share/evil.txt", "C:/evil.txt", "C:\\evil.txt",
                                  "\\evil.txt"])
def test_absolute_paths_are_refused(env, name):
    msg = refused(env, [summary_member(), (name, b"x")], "absolute path")
    assert repr(name) in msg


@pytest.mark.parametrize("name", ["../escaped.txt", "a/../../escaped.txt", "models/../../../../escaped.txt",
                                  "..\\escaped.txt"])
def test_dotdot_escapes_are_refused(env, name):
    refused(env, [summary_member(), (name, b"x")], "leaves the destination")
    assert not list(env[2].rglob("escaped.txt"))


def test_dotdot_that_stays_inside_is_normalised(tmp_path):
    zp = make_zip(tmp_path / NAME, [summary_member(), ("a/../b/ok.txt", b"x")])
    out = extract_archive(zp, tmp_path / "ta")
    assert (out / "b" / "ok.txt").read_bytes() == b"x"


def test_backslash_names_become_directories(tmp_path):
    zp = make_zip(tmp_path / NAME, [summary_member(), ("models\\rl_symbols\\X_1Hour.pt", b"x")])
    out = extract_archive(zp, tmp_path / "ta")
    assert (out / "models" / "rl_symbols" / "X_1Hour.pt").is_file()


def test_symlink_entry_is_refused(env):
    link = zipfile.ZipInfo("models/rl_symbols/UNIUSD_1Hour.pt")
    link.external_attr = 0o120777 << 16
    msg = refused(env, [summary_member(), (link, b"/etc/passwd")], "symbolic link")
    assert "UNIUSD_1Hour.pt" in msg


def test_special_file_entry_is_refused(env):
    fifo = zipfile.ZipInfo("pipe")
    fifo.external_attr = 0o010644 << 16
    refused(env, [summary_member(), (fifo, b"")], "special file")


@pytest.mark.parametrize("members", [
    [("a.txt", b"1"), ("a.txt", b"2")],
    [("a.txt", b"1"), ("./a.txt", b"2")],
    [("d/", b""), ("d", b"2")],
    [("d", b"1"), ("d/", b"")],
])
def test_duplicate_names_are_refused(env, members):
    refused(env, [summary_member(), *members], "duplicates")


def test_file_used_as_a_directory_is_refused(env):
    refused(env, [summary_member(), ("a", b"1"), ("a/b.txt", b"2")], "is a file entry")


def test_zip_bomb_by_ratio(env):
    msg = refused(env, [summary_member(), ("bomb.bin", bytes(8 * 2**20))], "compression ratio")
    assert "'bomb.bin'" in msg


def test_zip_bomb_spread_over_many_small_entries(env):
    # each entry stays under the per-entry floor; together they inflate ~1000x
    members = [(f"part{i:03d}.bin", bytes(60_000)) for i in range(40)]
    msg = refused(env, [summary_member(), *members], "compression ratio of the archive")
    assert "'part" in msg


def test_ratio_bound_is_configurable(env):
    src, dest, _ = env
    data = b"abc" * 100_000  # ~300 kB that deflates ~500x
    refused(env, [summary_member(), ("text.txt", data)], "ratio", max_ratio=5)
    zp = make_zip(src / NAME, [summary_member(), ("text.txt", data)])
    assert (extract_archive(zp, dest, max_ratio=1e6) / "text.txt").read_bytes() == data


def test_zip_bomb_by_total_size(env):
    msg = refused(env, [summary_member(), ("a.bin", os.urandom(600)), ("b.bin", os.urandom(600))],
                  "uncompressed size", max_total_bytes=1000)
    assert "'b.bin'" in msg


def test_too_many_entries(env):
    refused(env, [summary_member()] + [(f"f{i}", b"") for i in range(5)], "entries", max_entries=3)


def test_decompressed_bytes_are_counted_while_streaming(env, monkeypatch):
    """Bounds hold even if a header lies: with the header checks disabled, the streamed
    byte count alone refuses the bomb and cleans up."""
    real_plan = archive._plan
    monkeypatch.setattr(archive, "_plan", lambda zf, zp, *_: real_plan(zf, zp, 1 << 62, 1e18, 10**9))
    refused(env, [summary_member(), ("bomb.bin", bytes(8 * 2**20))], "inflates more than 200x")
    refused(env, [summary_member(), *[(f"p{i}", bytes(60_000)) for i in range(40)]], "whole archive past")
    refused(env, [summary_member(), ("big.bin", os.urandom(3000))], "past the bound of 1000",
            max_total_bytes=1000)


def test_interrupt_leaves_no_partial_extract(env, monkeypatch):
    src, dest, _ = env
    zp = build_training_archive(src, {"UNIUSD": metric_history(0.8, 2, 0.9, 0.05)})

    def boom(self, *a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(zipfile.ZipExtFile, "read", boom)
    with pytest.raises(KeyboardInterrupt):
        extract_archive(zp, dest)
    assert list(dest.iterdir()) == []


def test_stale_temp_of_a_dead_process_is_removed(tmp_path):
    zp = build_training_archive(tmp_path / "in", {"UNIUSD": metric_history(0.8, 2, 0.9, 0.05)})
    stale = tmp_path / "ta" / f".{STAMP}_extract.tmp-999999999-abc"
    stale.mkdir(parents=True)
    extract_archive(zp, tmp_path / "ta")
    assert not stale.exists()


def test_truncated_zip(env):
    src, dest, top = env
    good = build_training_archive(src, {"UNIUSD": metric_history(0.8, 2, 0.9, 0.05)})
    cut = src / f"cut_{STAMP}.zip"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ArchiveError, match="truncated or corrupt"):
        extract_archive(cut, dest)
    assert not dest.exists()


def test_corrupt_member_data_names_the_entry(env):
    src, dest, _ = env
    payload = os.urandom(4096)
    zp = make_zip(src / NAME, [summary_member(), ("model.pt", payload)], compression=zipfile.ZIP_STORED)
    raw = bytearray(zp.read_bytes())
    at = bytes(raw).index(payload[:64])
    raw[at + 100] ^= 0xFF
    zp.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match="'model.pt' is corrupt or truncated"):
        extract_archive(zp, dest)
    assert list(dest.iterdir()) == []


def test_not_a_zip(env):
    src, dest, _ = env
    fake = src / NAME
    fake.write_text("this is not a zip")
    with pytest.raises(ArchiveError, match="not a zip archive"):
        extract_archive(fake, dest)
    with pytest.raises(ArchiveError, match="not found"):
        extract_archive(src / "missing.zip", dest)
    with pytest.raises(ArchiveError, match="is a directory"):
        extract_archive(src, dest)


# ------------------------------------------------------------------ sources


def test_open_training_source_accepts_archive_dir_and_json(tmp_path):
    zp = build_training_archive(tmp_path / "in", {"UNIUSD": metric_history(0.8, 2, 0.9, 0.05)})
    root, summary, stamp = open_training_source(zp, tmp_path / "ta")
    assert root == tmp_path / "ta" / f"{STAMP}_extract"
    assert summary == root / f"training_summary_{STAMP}.json" and stamp == STAMP
    assert open_training_source(root) == (root, summary, STAMP)
    assert open_training_source(summary) == (root, summary, STAMP)
    plain = tmp_path / "elsewhere" / "summary.json"
    plain.parent.mkdir()
    plain.write_text("{}")
    assert open_training_source(plain) == (plain.parent, plain, None)


def test_open_training_source_errors(tmp_path):
    with pytest.raises(ArchiveError, match="not found"):
        open_training_source(tmp_path / "nope.zip")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ArchiveError, match="no training_summary"):
        open_training_source(empty)
    (empty / "a").mkdir()
    (empty / "a" / "training_summary_20240101_000000.json").write_text("{}")
    (empty / "training_summary_20240102_000000.json").write_text("{}")
    with pytest.raises(ArchiveError, match="several training summaries"):
        open_training_source(empty)
    other = tmp_path / "model.pt"
    other.write_bytes(b"x")
    with pytest.raises(ArchiveError, match="expected a training archive"):
        open_training_source(other)
    zp = make_zip(tmp_path / NAME, [("models/x.pt", b"x")])
    with pytest.raises(ArchiveError, match="no training_summary"):
        open_training_source(zp, tmp_path / "ta")
