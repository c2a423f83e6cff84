"""Training summaries (docs/design.md 7): every accepted shape, model paths resolved inside
the extract root, models found by name, and per-symbol failures.

Accepted shapes:
    {"timeframe": "1Hour", "symbols": {"UNIUSD": {...entry...}, ...}}
    {"timeframe": "1Hour", "symbols": [{"symbol": "UNIUSD", ...entry...}, ...]}
    [{"symbol": "UNIUSD", ...entry...}, ...]
    {"UNIUSD": {...entry...}, ...}            (symbols at the top level)
An entry holds its metric histories under "metrics" or directly (fitness_score,
profit_factor, consistency, max_drawdown: lists of numbers, or one number), and
optionally "model" (or "model_path"), "timeframe", "checkpoints" (aligned with the
histories), "train_start", "train_end".

Histories of different lengths are normal (fitness is logged at every evaluation,
profit factor may be logged once): gating reads each metric's last value and the
fitness history; checkpoints, when listed, are aligned with fitness_score.

A malformed entry (a value of the wrong type or past float range, checkpoints not
aligned with fitness_score, a bad date, a model path that leaves the root or cannot
be a path) fails that symbol alone: its record carries `error` and the others go on.
A model file that is missing is not an error: the record is gated and carries
`model_missing` (docs/design.md 7: the flag MODEL_MISSING, not backtested). A summary that
cannot be read at all (over its size bound, invalid or too deeply nested JSON), or an
archive without any model file, is an ArchiveError.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .archive import open_training_source, quote
from .errors import ArchiveError, FoldgateError
from .limits import SUMMARY_FILE, parse_json, read_bounded
from .data.symbols import canonical_symbol

METRIC_KEYS = ("fitness_score", "profit_factor", "consistency", "max_drawdown")
CHECKPOINT_CHOICES = ("final", "advised", "all")
"""validate --checkpoints (docs/design.md 11): the summary's model, gating's advised
checkpoint, or every checkpoint the summary lists (engine.pipeline.checkpoint_variants)."""
_TIMEFRAME_RE = re.compile(r"[A-Za-z0-9]{1,32}")
MODEL_SUFFIXES = (".pt", ".zip")  # native checkpoints first, then SB3 zips (docs/design.md 3)


@dataclass
class SymbolRecord:
    symbol: str
    timeframe: str | None
    model_path: Path | None
    metrics: dict[str, list[float]]        # METRIC_KEYS -> history (lengths may differ); {} on error
    checkpoints: list[str | None] | None   # aligned with fitness_score, or None
    train_start: str | None                # ISO text as written in the summary (validated)
    train_end: str | None
    error: str | None = None
    model_missing: str | None = None       # why no model file was found (gated, not backtested)
    checkpoint_files: list[tuple[Path | None, str | None]] | None = None
    """Aligned with `checkpoints`: each listed checkpoint's file inside the extract, or
    None and why not (validate --checkpoints advised|all fails that variant alone)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def final(self, key: str) -> float | None:
        h = self.metrics.get(key)
        return h[-1] if h else None


@dataclass
class TrainingRun:
    root: Path
    summary_path: Path
    stamp: str | None
    records: list[SymbolRecord]


class _Bad(Exception):
    """One symbol's entry is unusable; the message is the reason."""


class _Missing(Exception):
    """The entry is fine but its model file is not there."""

    def __init__(self, message: str, timeframe: str | None):
        super().__init__(message)
        self.timeframe = timeframe


# ------------------------------------------------------------------ values


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"a boolean ({str(v).lower()})"
    if isinstance(v, str):
        return f"a string ({quote(v)})"
    if isinstance(v, (list, dict)):
        return "a list" if isinstance(v, list) else "an object"
    kind = type(v).__name__
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _history(name: str, raw: Any) -> list[float]:
    """A metric's history as floats. A null or non-finite value stays NaN: gating then
    classifies the model DROP with a flag (docs/design.md 7), which is a verdict on the model,
    not a broken summary; only values of the wrong type make the entry malformed."""
    values = raw if isinstance(raw, list) else [raw]
    out = []
    for i, v in enumerate(values):
        where = f"metric {name}" if not isinstance(raw, list) else f"metric {name}: element {i}"
        if v is None:
            out.append(math.nan)
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise _Bad(f"{where} is {_describe(v)}, expected a number")
        try:
            out.append(float(v))
        except OverflowError:  # an integer like 10**400: no float holds it
            raise _Bad(f"{where} is an integer of {v.bit_length()} bits, too large for a number") from None
    return out


def _iso(name: str, v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise _Bad(f"{name} is {_describe(v)}, expected an ISO date")
    try:
        if len(v) > 64:
            raise ValueError
        _as_utc(v.strip()).astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved by an offset
        raise _Bad(f"{name} {quote(v)} is not an ISO date or time") from None
    return v.strip()


def _as_utc(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


# ------------------------------------------------------------------ models


class _ModelIndex:
    """Model files under the root by file name, found once, links not followed."""

    def __init__(self, root: Path):
        self.root = root
        self._by_name: dict[str, list[Path]] | None = None

    @property
    def by_name(self) -> dict[str, list[Path]]:
        if self._by_name is None:
            self._by_name = {}
            for dirpath, dirnames, filenames in os.walk(self.root):
                # foldgate's own temp dirs of an extract in progress are not part of it
                dirnames[:] = sorted(d for d in dirnames if not (d.startswith(".") and ".tmp-" in d))
                for f in sorted(filenames):
                    if f.lower().endswith(MODEL_SUFFIXES):
                        self._by_name.setdefault(f, []).append(Path(dirpath) / f)
        return self._by_name

    def find(self, name: str) -> Path | None:
        hits = self.by_name.get(name, [])
        if len(hits) > 1:
            # the training run's own layout wins over stray copies
            preferred = [p for p in hits if p.parent.name == "rl_symbols"] or hits
            depth = min(len(p.parts) for p in preferred)
            preferred = [p for p in preferred if len(p.parts) == depth]
            if len(preferred) > 1:
                listed = ", ".join(quote(str(p.relative_to(self.root))) for p in preferred[:3])
                raise _Bad(f"{len(hits)} files named {quote(name)} ({listed}); name the model in the summary")
            hits = preferred
        return hits[0] if hits else None

    def matching(self, symbol: str) -> list[Path]:
        pat = re.compile(re.escape(symbol) + r"_([A-Za-z0-9]+)\.(pt|zip)$")
        return [p for name, ps in self.by_name.items() if pat.match(name) for p in ps]


_MAX_PATH, _MAX_COMPONENT = 4096, 255


def _check_path_text(raw: str) -> str:
    """A model path from the summary that the OS could be asked about: no NUL, within
    PATH_MAX and NAME_MAX (beyond them the OS raises instead of answering)."""
    if "\x00" in raw:
        raise _Bad(f"model path {quote(raw)} holds a NUL character")
    if len(raw.encode("utf-8", "surrogateescape")) > _MAX_PATH:
        raise _Bad(f"model path of {len(raw):,} characters is longer than any path ({_MAX_PATH})")
    long = next((c for c in raw.replace("\\", "/").split("/") if len(c.encode("utf-8", "surrogateescape"))
                 > _MAX_COMPONENT), None)
    if long is not None:
        raise _Bad(f"model path {quote(raw)} has a component of {len(long)} characters, more than a file "
                   f"name may have ({_MAX_COMPONENT})")
    return raw


def _inside(root_real: Path, p: Path, shown: str) -> Path:
    try:
        real = p.resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: a symlink loop (3.11)
        raise _Bad(f"model path {quote(shown)} cannot be resolved ({type(exc).__name__})") from None
    if not real.is_relative_to(root_real):
        raise _Bad(f"model path {quote(shown)} leaves the extract root {root_real}")
    return real


def _resolve_model(raw: Any, symbol: str, timeframe: str | None, root_real: Path, summary_dir: Path,
                   index: _ModelIndex, require: bool) -> tuple[Path | None, str | None]:
    """(model path or None, timeframe, possibly read from the model's file name).
    Raises _Missing when `require` and no model file is found."""
    if raw is not None:
        if not isinstance(raw, str) or not raw.strip():
            raise _Bad(f"model is {_describe(raw)}, expected a path")
        text = _check_path_text(raw.strip()).replace("\\", "/")
        name = text.rsplit("/", 1)[-1]
        if timeframe is None:
            m = re.match(re.escape(symbol) + r"_([A-Za-z0-9]+)\.", name)
            timeframe = m.group(1) if m else None
        if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
            # a path on the training machine (e.g. /content/... on Colab): never opened;
            # the file of that name inside the extract is the model
            found = index.find(name)
            if found is None:
                if not require:
                    return None, timeframe
                raise _Missing(f"model file missing: {quote(raw)} is outside the extract root, and no file named "
                               f"{quote(name)} is inside it", timeframe)
            return _inside(root_real, found, str(found)), timeframe
        for base in dict.fromkeys((summary_dir, root_real)):
            cand = _inside(root_real, base / text, raw)
            try:
                if cand.is_file():
                    return cand, timeframe
            except OSError:
                continue
        found = index.find(name)
        if found is None:
            if not require:
                return None, timeframe
            raise _Missing(f"model file missing: {quote(raw)} (no file named {quote(name)} under the extract root)",
                           timeframe)
        return _inside(root_real, found, str(found)), timeframe

    if timeframe is None:
        hits = index.matching(symbol)
        if len(hits) == 1:
            m = re.match(re.escape(symbol) + r"_([A-Za-z0-9]+)\.", hits[0].name)
            return _inside(root_real, hits[0], str(hits[0])), m.group(1)
        if not require and not hits:
            return None, None
        if hits:
            raise _Bad(f"no timeframe in the summary and {len(hits)} models for {symbol}; set \"timeframe\"")
        raise _Missing(f"model file missing: no {symbol}_<timeframe>.pt under the extract root", None)
    for suffix in MODEL_SUFFIXES:
        found = index.find(f"{symbol}_{timeframe}{suffix}")
        if found is not None:
            return _inside(root_real, found, str(found)), timeframe
    if not require:
        return None, timeframe
    raise _Missing(f"model file missing: no {symbol}_{timeframe}.pt under the extract root", timeframe)


# ------------------------------------------------------------------ entries


def _entries(data: Any, where: Path) -> tuple[list[tuple[str, Any, Any]], Any]:
    """[(label, symbol or None, entry)] and the top-level timeframe."""
    top_tf = None
    if isinstance(data, dict):
        top_tf = data.get("timeframe")
        if "symbols" in data:
            body = data["symbols"]
        else:
            body = {k: v for k, v in data.items()
                    if isinstance(v, dict) and ("metrics" in v or any(m in v for m in METRIC_KEYS))}
            if not body:
                raise ArchiveError(f"{where}: no 'symbols' in the training summary")
    elif isinstance(data, list):
        body = data
    else:
        raise ArchiveError(f"{where}: the training summary is {_describe(data)}, expected an object or a list")
    if isinstance(body, dict):
        items = [(str(k), k, v) for k, v in body.items()]
    elif isinstance(body, list):
        items = []
        for i, rec in enumerate(body):
            sym = rec.get("symbol") if isinstance(rec, dict) else None
            items.append((str(sym) if isinstance(sym, str) else f"record {i}", sym, rec))
    else:
        raise ArchiveError(f"{where}: 'symbols' is {_describe(body)}, expected an object or a list")
    if not items:
        raise ArchiveError(f"{where}: the training summary lists no symbols")
    return items, top_tf


def _parse_entry(label: str, raw_symbol: Any, entry: Any, top_tf: Any, root_real: Path, summary_dir: Path,
                 index: _ModelIndex, require: bool) -> SymbolRecord:
    if not isinstance(entry, dict):
        raise _Bad(f"entry is {_describe(entry)}, expected an object")
    if raw_symbol is None:
        raise _Bad("record has no 'symbol'")
    try:
        symbol = canonical_symbol(raw_symbol)
    except FoldgateError as exc:
        raise _Bad(str(exc)) from None
    timeframe = entry.get("timeframe", top_tf)
    if timeframe is not None and (not isinstance(timeframe, str) or not _TIMEFRAME_RE.fullmatch(timeframe)):
        raise _Bad(f"timeframe is {_describe(timeframe)}, expected a name like 1Hour")
    if "metrics" in entry:
        source = entry["metrics"]
        if not isinstance(source, dict):
            raise _Bad(f"'metrics' is {_describe(source)}, expected an object")
    else:
        source = entry
    metrics = {}
    for key in METRIC_KEYS:
        # a missing metric is an empty history: gating flags it MISSING_METRIC and drops the model
        metrics[key] = _history(key, source[key]) if key in source else []
    if not any(metrics.values()):
        raise _Bad("no metrics (" + ", ".join(METRIC_KEYS) + ")")
    # histories of different lengths are normal; checkpoints follow the fitness evaluations
    checkpoints = entry.get("checkpoints")
    if checkpoints is not None:
        if not isinstance(checkpoints, list) or not all(c is None or isinstance(c, str) for c in checkpoints):
            raise _Bad("checkpoints must be a list of paths (or nulls)")
        for i, c in enumerate(checkpoints):
            # a checkpoint name is printed in flags and tables: one printable line
            if c is not None and (not c.isprintable() or len(c) > _MAX_PATH):
                raise _Bad(f"checkpoints[{i}] {quote(c)} is not a printable path")
        n = len(metrics["fitness_score"])
        if len(checkpoints) != n:
            raise _Bad(f"checkpoints has {len(checkpoints)} entries, fitness_score {n}")
    start, end = _iso("train_start", entry.get("train_start")), _iso("train_end", entry.get("train_end"))
    if start and end and _as_utc(start) > _as_utc(end):
        raise _Bad(f"train_start {start} is after train_end {end}")
    model = entry.get("model", entry.get("model_path"))
    try:
        model_path, timeframe = _resolve_model(model, symbol, timeframe, root_real, summary_dir, index, require)
    except _Missing as missing:
        return SymbolRecord(symbol, missing.timeframe or timeframe, None, metrics, checkpoints, start, end,
                            model_missing=str(missing))
    files = None if checkpoints is None else [
        _checkpoint_file(k, c, symbol, timeframe, root_real, summary_dir, index) for k, c in enumerate(checkpoints)]
    return SymbolRecord(symbol, timeframe, model_path, metrics, checkpoints, start, end, checkpoint_files=files)


def _checkpoint_file(k: int, raw: str | None, symbol: str, timeframe: str | None, root_real: Path,
                     summary_dir: Path, index: _ModelIndex) -> tuple[Path | None, str | None]:
    """A listed checkpoint's file, found as the model's own is (and kept inside the
    extract root the same way); a missing or unusable one is its variant's failure,
    not the symbol's."""
    if raw is None:
        return None, f"checkpoint {k}: the summary lists no file for it"
    try:
        path, _ = _resolve_model(raw, symbol, timeframe, root_real, summary_dir, index, True)
    except (_Bad, _Missing) as exc:
        return None, f"checkpoint {k}: {str(exc).replace('model file missing', 'file missing')}"
    return path, None


def parse_summary(summary_path: str | os.PathLike, root: str | os.PathLike | None = None,
                  require_models: bool = True) -> list[SymbolRecord]:
    """The per-symbol records of a training summary, in the summary's order.

    root: the extract root that model paths must stay inside (default: the summary's
    directory). require_models=False (gating a bare summary) leaves model_path None
    where no model is found instead of failing the symbol."""
    path = Path(summary_path)
    root_real = Path(root if root is not None else path.parent).resolve()
    try:
        raw = read_bounded(path, SUMMARY_FILE, ArchiveError, "training summary")  # before it is parsed
    except FileNotFoundError:
        raise ArchiveError(f"training summary {path} not found") from None
    except OSError as exc:
        raise ArchiveError(f"cannot read training summary {path}: {exc.strerror}") from None
    data = parse_json(raw, str(path), ArchiveError)
    items, top_tf = _entries(data, path)
    if top_tf is not None and not isinstance(top_tf, str):
        raise ArchiveError(f"{path}: 'timeframe' is {_describe(top_tf)}, expected a name like 1Hour")
    index = _ModelIndex(root_real)
    if require_models and not index.by_name:
        raise ArchiveError(f"no model files (*.pt) under {root_real}")

    records: list[SymbolRecord] = []
    seen: set[tuple[str, str | None]] = set()
    for label, raw_symbol, entry in items:
        try:
            rec = _parse_entry(label, raw_symbol, entry, top_tf, root_real, path.parent.resolve(), index,
                               require_models)
            if (rec.symbol, rec.timeframe) in seen:
                raise _Bad(f"listed twice for timeframe {rec.timeframe}")
            seen.add((rec.symbol, rec.timeframe))
        except _Bad as exc:
            try:
                symbol = canonical_symbol(raw_symbol)
            except FoldgateError:
                # the label is printed as the row's name: quoted unless it is plain text
                symbol = label if label.isprintable() and len(label) <= 40 else quote(label, 40)
            tf = entry.get("timeframe", top_tf) if isinstance(entry, dict) else top_tf
            tf = tf if isinstance(tf, str) and _TIMEFRAME_RE.fullmatch(tf) else None  # it is printed too
            rec = SymbolRecord(symbol, tf, None, {}, None, None, None, error=str(exc))
        records.append(rec)
    return records


def load_training(path: str | os.PathLike, dest_root: str | os.PathLike = "training_archives",
                  require_models: bool = True) -> TrainingRun:
    """ARCHIVE.zip | DIR | SUMMARY.json -> the run's root, summary, stamp and records."""
    root, summary_path, stamp = open_training_source(path, dest_root)
    return TrainingRun(root, summary_path, stamp, parse_summary(summary_path, root, require_models))
