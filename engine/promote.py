"""`validate --promote` (docs/design.md 9): one model per (symbol, timeframe), the LIVE or
PAPER one (the best variant where there are several), copied to
`models/rl_symbols/SYMBOL_TIMEFRAME.pt`, and `deployment_manifest.json` beside it.

What must never happen is a wrong file deployed under a right name, so:
- the destination is the canonical name, never the source's own file name (two
  symbols' `a/model.pt` and `b/model.pt` land on two files);
- the bytes copied are the ones validated: the source is hashed as it is read and must
  still match the sha256 of the policy that was backtested;
- an SB3 zip is written as the native checkpoint it converts to (what foldgate read);
- each file is re-read after it is written and its sha256 checked, and the manifest
  records that sha256;
- everything is staged first: a failure leaves the old files and manifest as they were.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable

from .atomic import atomic_write_text, ensure_writable_dir
from .errors import FoldgateError
from .limits import POLICY_FILE, read_bounded
from .policies.checkpoint import policy_to_checkpoint
from .policies.model import FORMAT

MANIFEST = "deployment_manifest.json"
MANIFEST_SCHEMA = "foldgate.manifest/1"  # fields were only added
PROMOTED = ("LIVE", "PAPER")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}")


def canonical_file_name(symbol: str, timeframe: str) -> str:
    """`SYMBOL_TIMEFRAME.pt`; refuses names that could leave the directory."""
    for what, v in (("symbol", symbol), ("timeframe", timeframe)):
        if not isinstance(v, str) or not _SAFE_NAME.fullmatch(v) or ".." in v:
            raise FoldgateError(f"--promote: {what} {v!r} cannot name a model file")
    return f"{symbol}_{timeframe}.pt"


def _score(job) -> float | None:
    """The variant's deflated Sharpe ratio (docs/design.md 6.1: the best variant has the
    highest DSR), from the evidence profile when present."""
    summary = getattr(job, "summary", None) or {}
    ev = summary.get("evidence") if isinstance(summary.get("evidence"), dict) else {}
    for v in (ev.get("dsr"), summary.get("dsr"), ev.get("psr_hurdle"), summary.get("psr")):
        if isinstance(v, (int, float)) and v == v:
            return float(v)
    return None


def best_variant(jobs: list) -> Any:
    """A job marked `best` by the pipeline wins; else the highest DSR, LIVE before
    PAPER on a tie, then the first listed."""
    marked = [j for j in jobs if getattr(j, "best", False)]
    if marked:
        return marked[0]

    def rank(ij):
        i, j = ij
        s = _score(j)
        return (s is not None, s if s is not None else 0.0, j.decision == "LIVE", -i)

    return max(enumerate(jobs), key=rank)[1]


def _promotable(jobs: Iterable) -> dict[tuple[str, str], list]:
    groups: dict[tuple[str, str], list] = {}
    for job in jobs:
        if job.decision in PROMOTED and job.model_path and getattr(job, "policy", None) is not None:
            groups.setdefault((job.symbol, job.timeframe), []).append(job)
    return groups


def chosen_models(jobs: Iterable) -> dict[tuple[str, str], Any]:
    """(symbol, timeframe) -> the job to deploy."""
    return {key: best_variant(group) for key, group in _promotable(jobs).items()}


def why_chosen(job, jobs: Iterable) -> str:
    """The manifest's `why`: the chosen variant's decision and, among several
    variants of its (symbol, timeframe), that it has the highest DSR."""
    variants = [j for j in jobs if j.symbol == job.symbol and j.timeframe == job.timeframe
                and getattr(j, "policy", None) is not None and j.error is None]
    promotable = _promotable(variants).get((job.symbol, job.timeframe), [])
    score = _score(job)
    dsr = "n/a" if score is None else f"{score:.3f}"
    if len(variants) <= 1:
        return f"{job.decision}; the only variant of {job.symbol} {job.timeframe}"
    return (f"{job.decision}; the best of {len(variants)} variants of {job.symbol} {job.timeframe} by DSR "
            f"({dsr}; {len(promotable)} of them LIVE or PAPER)")


def _deploy_bytes(job) -> tuple[bytes, str]:
    """The bytes to deploy and what they are: the validated native file itself, or
    the native checkpoint an SB3 zip converts to."""
    src = Path(job.model_path)
    policy = job.policy
    try:
        raw = read_bounded(src, POLICY_FILE, FoldgateError)
    except OSError as exc:
        raise FoldgateError(f"--promote: cannot read {src}: {exc.strerror}") from None
    if policy.sha256 and hashlib.sha256(raw).hexdigest() != policy.sha256:
        raise FoldgateError(f"--promote: {src} changed since it was validated (sha256 differs); "
                            f"nothing was promoted")
    if policy.source_format == FORMAT:
        return raw, "copy"
    import torch  # lazy: torch, ~1 s, only to write an SB3 zip as a native checkpoint

    buf = io.BytesIO()
    torch.save(policy_to_checkpoint(policy), buf)
    return buf.getvalue(), f"converted from {policy.source_format}"


def _stage(target: Path, name: str, data: bytes) -> tuple[Path, str]:
    """Write `data` to a temp file in `target`, re-read it, check its sha256."""
    want = hashlib.sha256(data).hexdigest()
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=target)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        with open(tmp, "rb") as fh:
            got = hashlib.sha256(fh.read()).hexdigest()
        if got != want:
            raise FoldgateError(f"--promote: {target / name} reads back with another sha256 than was written")
        os.chmod(tmp, 0o644)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(tmp), got


def _old_entries(manifest_path: Path) -> dict[tuple[str, str | None], dict]:
    if not manifest_path.exists():
        return {}
    try:
        models = json.loads(manifest_path.read_text("utf-8")).get("models", [])
        return {(e["symbol"], e.get("timeframe")): e for e in models}
    except (ValueError, KeyError, TypeError, AttributeError, OSError, RecursionError):
        raise FoldgateError(f"{manifest_path}: existing manifest is not valid JSON; move it aside") from None


def promote(jobs: list, report_path: Path, models_dir: str | os.PathLike = "models/rl_symbols") -> Path | None:
    """Deploy one model per (symbol, timeframe) into `models_dir` and write its
    manifest; None when no model is LIVE or PAPER."""
    jobs = list(jobs)
    chosen = chosen_models(jobs)
    if not chosen:
        return None
    target = ensure_writable_dir(models_dir)
    manifest_path = target / MANIFEST
    entries = _old_entries(manifest_path)
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    staged: list[tuple[Path, Path]] = []
    try:
        for (symbol, timeframe), job in sorted(chosen.items()):
            name = canonical_file_name(symbol, timeframe)
            data, how = _deploy_bytes(job)
            tmp, sha = _stage(target, name, data)
            staged.append((tmp, target / name))
            entries.pop((symbol, None), None)  # an entry of the old, symbol-keyed manifest
            entries[(symbol, timeframe)] = {
                "symbol": symbol,
                "timeframe": timeframe,
                "decision": job.decision,
                "mode": "live" if job.decision == "LIVE" else "paper",
                "checkpoint": getattr(job, "checkpoint", None) or Path(job.model_path).name,
                "checkpoint_index": (getattr(job, "checkpoint_info", None) or {}).get("index"),
                "why": why_chosen(job, jobs),
                "source": str(job.model_path),
                "source_sha256": job.policy.sha256,
                "written": how,
                "path": str(target / name),
                "model_file": name,
                "sha256": sha,
                "report": str(report_path),
                "time": now,
            }
        for tmp, dest in staged:
            os.replace(tmp, dest)
        staged = []
        for e in entries.values():  # checked after the copy: the file on disk is the one listed
            if (e.get("time") == now and hashlib.sha256(Path(e["path"]).read_bytes()).hexdigest()
                    != e["sha256"]):
                raise FoldgateError(f"--promote: {e['path']} does not hold what was written")
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    manifest = {"schema": MANIFEST_SCHEMA, "updated": now,
                "models": sorted(entries.values(), key=lambda e: (e["symbol"], e.get("timeframe") or ""))}
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return manifest_path
