"""Hostile training archives and summaries (issue 10 items 4, 5, 8; issue 8 items 2, 8):
each test builds its input itself; every refusal is one line, nothing is written
outside the destination, and what already held (traversal, links, bombs: see
tests/test_archive.py) still holds."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive_factory import build_training_archive, metric_history, policy_bytes, policy_fields
from cli.main import app
from engine.archive import extract_archive, open_training_source, quote
from engine.errors import ArchiveError
from engine.summary import parse_summary

STAMP = "20241227_120000"
NAME = f"Alpaca_trading_trained_{STAMP}.zip"
GOOD = metric_history(0.8, 2.0, 0.9, 0.05, n=5)
SUMMARY = f"training_summary_{STAMP}.json"


def _zip(path: Path, members) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name) if isinstance(name, str) else name, data)
    return path


def _summary_bytes(symbols=None) -> bytes:
    return json.dumps({"timeframe": "1Hour", "symbols": symbols or {"UNIUSD": {"metrics": GOOD}}}).encode()


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(res) -> str:
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert "Traceback" not in res.output
    return lines[0]


def everything_under(root: Path) -> set[Path]:
    return set(root.rglob("*"))


# ------------------------------------------------------------------ member names


def test_quote_keeps_any_name_on_one_line():
    for name in ["a\nError: forged", "a\rb", "a\u2028b", "a\x85b", "\x1b[31mred", "x" * 1000]:
        q = quote(name)
        assert len(q.splitlines()) == 1 and len(q) <= 160, q


def test_a_name_holding_a_newline_prints_one_error_line(tmp_path):
    zp = _zip(tmp_path / NAME, [(SUMMARY, _summary_bytes()), ("../x\nError: all is well\n", b"x")])
    line = one_error_line(cli("extract", zp, "--dest", tmp_path / "ta"))
    assert "'../x\\nError: all is well\\n'" in line and "leaves the destination" in line


@pytest.mark.parametrize("member, needle", [
    ("", "an entry has an empty name"),
    ("a/" + "b" * 300 + "/c.pt", "a path component of 300 characters"),
    ("d/" * 2100 + "e.pt", "a name longer than 4096 bytes"),
])
def test_names_the_os_cannot_take_are_refused_before_writing(tmp_path, member, needle):
    zp = _zip(tmp_path / NAME, [(SUMMARY, _summary_bytes()), (member, b"x")])
    before = everything_under(tmp_path)
    with pytest.raises(ArchiveError) as ei:
        extract_archive(zp, tmp_path / "ta")
    assert needle in str(ei.value) and "\n" not in str(ei.value)
    assert everything_under(tmp_path) - before <= {tmp_path / "ta"}
    one_error_line(cli("extract", zp, "--dest", tmp_path / "ta2"))


# ------------------------------------------------------------------ overlapping entries


def _central_records(raw: bytes):
    """(offset of each central-directory record, offset of the end record)."""
    eocd = raw.rindex(b"PK\x05\x06")
    cd_size, cd_off = struct.unpack_from("<II", raw, eocd + 12)
    out, pos = [], cd_off
    while pos < cd_off + cd_size:
        out.append(pos)
        n, m, k = struct.unpack_from("<HHH", raw, pos + 28)
        pos += 46 + n + m + k
    return out, eocd


def test_entries_sharing_one_deflate_stream_are_refused(tmp_path):
    # a 4 MiB member compresses to a few KB; three more central records point at its data
    zp = _zip(tmp_path / NAME, [(SUMMARY, _summary_bytes()), ("m/aaaa", bytes(4 << 20))])
    raw = zp.read_bytes()
    (rec_s, rec_a), eocd = _central_records(raw)
    record = raw[rec_a:eocd]
    copies = b"".join(record.replace(b"m/aaaa", f"m/aaa{i}".encode()) for i in range(3))
    cd_off = struct.unpack_from("<I", raw, eocd + 16)[0]
    cd = raw[cd_off:eocd] + copies
    end = bytearray(raw[eocd:])
    struct.pack_into("<HHII", end, 8, 5, 5, len(cd), cd_off)
    zp.write_bytes(raw[:cd_off] + cd + bytes(end))
    with zipfile.ZipFile(zp) as zf:  # the control: zipfile itself lists all five
        assert len(zf.infolist()) == 5
    with pytest.raises(ArchiveError, match="overlaps entry .*sharing their data") as ei:
        extract_archive(zp, tmp_path / "ta", max_ratio=10_000)
    assert "\n" not in str(ei.value)
    assert not (tmp_path / "ta").exists() or not any((tmp_path / "ta").iterdir())


def test_an_entry_whose_data_runs_into_the_next_is_refused(tmp_path):
    zp = _zip(tmp_path / NAME, [(SUMMARY, _summary_bytes()), ("m/a.pt", b"a" * 1000), ("m/b.pt", b"b" * 1000)])
    raw = bytearray(zp.read_bytes())
    recs, _ = _central_records(bytes(raw))
    size = struct.unpack_from("<I", raw, recs[1] + 20)[0]
    struct.pack_into("<I", raw, recs[1] + 20, size + 200)  # compressed size of m/a.pt
    zp.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match="'m/a.pt' overlaps entry 'm/b.pt'"):
        extract_archive(zp, tmp_path / "ta")


def test_the_ratio_counts_the_archive_not_the_sum_of_entry_sizes(tmp_path):
    # entries may claim more compressed bytes than the file holds; the file's size bounds it
    zp = _zip(tmp_path / NAME, [(SUMMARY, _summary_bytes()), ("m/a", bytes(1 << 20))])
    raw = bytearray(zp.read_bytes())
    recs, _ = _central_records(bytes(raw))
    struct.pack_into("<I", raw, recs[1] + 20, 1 << 30)  # declares 1 GiB compressed, ratio ~0
    zp.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match="overlaps|ratio"):
        extract_archive(zp, tmp_path / "ta")


# ------------------------------------------------------------------ summaries


def test_summary_declared_over_its_bound_is_refused_before_extracting(tmp_path, monkeypatch):
    import random

    digits = random.Random(0).choices(range(10), k=600_000)  # ~1.8 MB that does not compress away
    big = json.dumps({"timeframe": "1Hour", "symbols": {}, "pad": digits}).encode()
    zp = build_training_archive(tmp_path / "in", {"UNIUSD": GOOD}, extra={f"x/{SUMMARY}": big})
    zp2 = _zip(tmp_path / NAME, [(f"x/{SUMMARY}", big), ("models/rl_symbols/UNIUSD_1Hour.pt", b"m")])
    del zp
    monkeypatch.setenv("FOLDGATE_MAX_SUMMARY_MB", "1")
    with pytest.raises(ArchiveError, match="over the bound of 1,048,576 bytes per training summary") as ei:
        open_training_source(zp2, tmp_path / "ta")
    assert "FOLDGATE_MAX_SUMMARY_MB" in str(ei.value)
    assert not (tmp_path / "ta").exists() or not any((tmp_path / "ta").iterdir())


def test_summary_file_over_its_bound_is_never_parsed(tmp_path, monkeypatch):
    import engine.limits as limits

    p = tmp_path / SUMMARY
    p.write_bytes(b'{"symbols": {}, "pad": "' + b"x" * (2 << 20) + b'"}')
    monkeypatch.setenv("FOLDGATE_MAX_SUMMARY_MB", "1")
    monkeypatch.setattr(limits, "parse_json", lambda *a, **k: pytest.fail("parsed"))
    with pytest.raises(ArchiveError, match="over the bound"):
        parse_summary(p, require_models=False)


@pytest.mark.parametrize("raw, needle", [
    ('{"symbols": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ('{"symbols": {"UNIUSD": {"fitness_score": [' + "9" * 5000 + "]}}}", "invalid JSON"),
    (b"\xff\xfe{}", "invalid JSON|not UTF-8"),
])
def test_unreadable_summaries_are_one_line(tmp_path, raw, needle):
    p = tmp_path / SUMMARY
    p.write_bytes(raw if isinstance(raw, bytes) else raw.encode())
    with pytest.raises(ArchiveError, match=needle) as ei:
        parse_summary(p, require_models=False)
    assert "\n" not in str(ei.value) and str(p) in str(ei.value)
    assert one_error_line(cli("gate", p)).startswith(f"Error: {p}")


def _run_dir(tmp_path: Path, symbols: dict) -> tuple[Path, Path]:
    root = tmp_path / "extract"
    (root / "models" / "rl_symbols").mkdir(parents=True)
    for sym in ("UNIUSD", "ETHUSD"):
        (root / "models" / "rl_symbols" / f"{sym}_1Hour.pt").write_bytes(b"m")
    p = root / SUMMARY
    p.write_text(json.dumps({"timeframe": "1Hour", "symbols": symbols}))
    return root, p


@pytest.mark.parametrize("entry, reason", [
    ({"metrics": {**GOOD, "profit_factor": [1.0, 10**400]}}, "element 1 is an integer of 1329 bits"),
    ({"metrics": GOOD, "model": "models/rl_symbols/UNI\x00USD_1Hour.pt"}, "holds a NUL character"),
    ({"metrics": GOOD, "model": "m/" * 2500 + "UNIUSD_1Hour.pt"}, "longer than any path"),
    ({"metrics": GOOD, "model": "models/" + "r" * 300 + "/UNIUSD_1Hour.pt"}, "a component of 300 characters"),
    ({"metrics": GOOD, "train_end": "9999-12-31T23:59:59-01:00"}, "is not an ISO date"),
    ({"metrics": GOOD, "model": "a\nError: b.pt"}, "'a\\nError: b.pt'"),
])
def test_a_hostile_entry_fails_its_symbol_alone(tmp_path, entry, reason):
    root, p = _run_dir(tmp_path, {"UNIUSD": entry, "ETHUSD": {"metrics": GOOD}})
    recs = {r.symbol: r for r in parse_summary(p, root)}
    why = recs["UNIUSD"].error or recs["UNIUSD"].model_missing  # a path that names no file is missing
    assert why and reason in why, recs["UNIUSD"]
    assert "\n" not in why
    assert recs["ETHUSD"].ok and recs["ETHUSD"].model_path.name == "ETHUSD_1Hour.pt"


# ------------------------------------------------------------------ issue 8 items 2 and 8


def test_histories_of_different_lengths_are_gated_on_their_last_values(tmp_path):
    from engine.gating import gate_metrics

    metrics = {"fitness_score": [0.5, 0.9, 0.75], "profit_factor": [2.0], "consistency": [0.7, 0.9],
               "max_drawdown": [0.05]}
    root, p = _run_dir(tmp_path, {"UNIUSD": {"metrics": metrics, "checkpoints": ["c0.pt", "c1.pt", "c2.pt"]}})
    (rec,) = [r for r in parse_summary(p, root) if r.symbol == "UNIUSD"]
    assert rec.ok and rec.metrics["profit_factor"] == [2.0]
    g = gate_metrics(rec.metrics, rec.checkpoints)
    assert g.classification == "APPROVED"
    assert g.metrics == {"fitness": 0.75, "profit_factor": 2.0, "consistency": 0.9, "max_drawdown": 0.05}
    # checkpoints follow fitness_score: the best epoch (0.9, index 1) names c1.pt
    assert g.use_checkpoint and g.checkpoint_index == 1 and g.checkpoint == "c1.pt"


def test_checkpoints_are_aligned_with_fitness_not_another_history(tmp_path):
    metrics = {"fitness_score": [0.5, 0.9, 0.75], "profit_factor": [2.0, 2.0]}
    root, p = _run_dir(tmp_path, {"UNIUSD": {"metrics": metrics, "checkpoints": ["c0.pt", "c1.pt"]}})
    (rec,) = [r for r in parse_summary(p, root) if r.symbol == "UNIUSD"]
    assert rec.error == "checkpoints has 2 entries, fitness_score 3"


def test_a_missing_model_is_gated_flagged_and_not_backtested(tmp_path, monkeypatch):
    from engine.pipeline import RunConfig, run_validate

    monkeypatch.setenv("FOLDGATE_CACHE_DIR", str(tmp_path / "cache"))
    drop = metric_history(0.2, 0.9, 0.3, 0.5)  # gating DROP: never loaded, never simulated
    zp = build_training_archive(tmp_path / "in", {"UNIUSD": GOOD, "ETHUSD": drop},
                                models={"ETHUSD": policy_bytes(policy_fields())})
    report, jobs = run_validate(zp, RunConfig(days=30, walk_forward=2, store=str(tmp_path / "nostore")),
                                dest_root=tmp_path / "ta")
    by = {m["symbol"]: m for m in report["models"]}
    uni = by["UNIUSD"]
    assert uni["error"] is None and uni["gating"]["classification"] == "APPROVED"
    assert "MODEL_MISSING" in [f["code"] for f in uni["gating"]["flags"]]
    assert uni["folds"] == [] and uni["backtest"] is None and uni["decision"] is None
    assert uni["reasons"] and "model file missing" in uni["reasons"][0]
    assert by["ETHUSD"]["decision"] == "DROP" and by["ETHUSD"]["error"] is None


def test_extract_refuses_an_archive_without_summary_as_validate_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    zp = _zip(tmp_path / NAME, [("models/rl_symbols/BTCUSD_1Hour.pt", b"x")])
    a = one_error_line(cli("extract", zp, "--dest", tmp_path / "ta"))
    b = one_error_line(cli("validate", zp, "--dest", tmp_path / "ta", "--store", tmp_path / "s"))
    assert a == b == f"Error: {zp}: no training_summary_*.json in the archive; nothing extracted"
    assert not (tmp_path / "ta").exists() or not list((tmp_path / "ta").iterdir())


def test_gate_prints_hostile_names_quoted_without_crashing(tmp_path):
    p = tmp_path / SUMMARY
    p.write_text(json.dumps({"symbols": {
        "\ud800X": {"fitness_score": [0.8]},
        "SOLUSD": {"fitness_score": [0.8], "timeframe": "\ud800"},
        "[/]": {"fitness_score": [0.8]},
        "UNIUSD": {"metrics": GOOD, "checkpoints": ["c0", "c1", "c2", "c3\nError: forged"]},
        "ETHUSD": {"metrics": GOOD, "checkpoints": ["a", "b", "c", "\udcff"]}}}))
    res = CliRunner().invoke(app, ["gate", str(p)])
    assert res.exception is None and res.exit_code == 0, (res.output, res.exception)
    assert "'\\ud800X'" in res.output and "SOLUSD" in res.output and "[/]" in res.output
    assert not [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    recs = {r.symbol: r for r in parse_summary(p, require_models=False)}
    assert "checkpoints[3] 'c3\\nError: forged' is not a printable path" in recs["UNIUSD"].error
    assert "checkpoints[3] '\\udcff'" in recs["ETHUSD"].error
