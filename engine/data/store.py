"""The bar store: one Arrow IPC file per `<root>/<timeframe>/<SYMBOL>.arrow`.

A read is a memory map (the columns are views onto the mapped file, see
`arrow_file`). Writes go through `engine.atomic.atomic_open`: a reader sees the old
file or the new one, never half of one; a lock serialises read-merge-write per file.
Every write is validated, so the store only ever holds bars that satisfy docs/design.md 2."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from ..atomic import atomic_open, ensure_writable_dir, file_lock
from ..errors import DataError, FoldgateError
from ..sample import repo_root
from .arrow_file import META_ASSET_CLASS, bars_from_table, bars_to_table, one_line
from .bars import Bars, COLUMNS, canonical_timeframe, ns_to_datetime, validate_bars
from .symbols import canonical_symbol, check_asset_class

DEFAULT_ROOT = Path("data") / "bars"


@dataclass(frozen=True)
class StoreEntry:
    symbol: str
    timeframe: str
    asset_class: str | None
    n_bars: int
    first: datetime | None  # UTC, microsecond precision; first_ns is exact
    last: datetime | None
    path: Path
    size_bytes: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    error: str | None = None  # set when the file could not be read


def _merge(old: Bars, new: Bars) -> Bars:
    """One row per timestamp, sorted; on equal timestamps the new row wins."""
    n_old = len(old)
    ts = np.concatenate([old.timestamp, new.timestamp])
    # stable sort puts a new row right after the old row with the same timestamp,
    # so keeping the last row of each run of equal timestamps keeps the new one
    order = np.argsort(ts, kind="stable")
    ts_sorted = ts[order]
    keep = np.ones(len(ts), dtype=bool)
    keep[:-1] = ts_sorted[1:] != ts_sorted[:-1]
    idx = order[keep]

    def cat(name: str, fill):
        a, b = getattr(old, name), getattr(new, name)
        if a is None and b is None:
            return None
        a = np.full(n_old, fill) if a is None else a
        b = np.full(len(new), fill) if b is None else b
        return np.concatenate([a, b])[idx]

    cols = {c: np.concatenate([getattr(old, c), getattr(new, c)])[idx] for c in COLUMNS[:6]}
    prov = {k: (v if v is not None else getattr(old, k)) for k, v in new.provenance().items()}
    if new.first_available is None:  # the pair travels together
        prov["first_available"], prov["searched_from"] = old.first_available, old.searched_from
    return Bars(
        new.symbol, new.timeframe, new.asset_class,
        trade_count=cat("trade_count", np.int64(-1)), vwap=cat("vwap", np.nan), **cols, **prov,
    )


@dataclass(frozen=True)
class StoreWrite:
    """What one write did, counted under the file's lock."""

    path: Path
    added: int  # timestamps the file did not have
    replaced: int  # stored bars overwritten by new ones
    total: int  # bars in the file afterwards
    first: int | None  # ns of the first and last bar in the file
    last: int | None


def is_shipped_sample(root: str | os.PathLike) -> bool:
    """True when `root` is the sample store of a source checkout (`data/bars` beside
    foldgate's own pyproject.toml): data that ships with foldgate, tracked by git."""

    repo = repo_root()
    if not (repo / "pyproject.toml").is_file():
        return False
    try:
        return Path(root).resolve() == (repo / DEFAULT_ROOT).resolve()
    except OSError:
        return False


class BarStore:
    """A directory of Arrow IPC bar files, `<root>/<timeframe>/<SYMBOL>.arrow`."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.explicit = not (root is None or str(root) == "")
        if not self.explicit:
            env = os.environ.get("FOLDGATE_STORE")
            self.explicit = bool(env)
            root = env or DEFAULT_ROOT
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"BarStore({str(self.root)!r})"

    def path(self, symbol: str, timeframe: str) -> Path:
        return self.root / canonical_timeframe(timeframe) / f"{canonical_symbol(symbol)}.arrow"

    def has(self, symbol: str, timeframe: str) -> bool:
        return self.path(symbol, timeframe).is_file()

    def timeframes(self, symbol: str) -> list[str]:
        """Timeframes stored for a symbol."""
        sym = canonical_symbol(symbol)
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob(f"*/{sym}.arrow"))

    def missing_root_message(self) -> str:
        how = ("pass --store DIR or set FOLDGATE_STORE to the directory that holds your bars"
               if not self.explicit else "check --store / FOLDGATE_STORE")
        return (f"store directory {self.root} does not exist; {how}, or create it by importing "
                "or fetching bars into it")

    def _missing_message(self, symbol: str, timeframe: str) -> str:
        sym, tf = canonical_symbol(symbol), canonical_timeframe(timeframe)
        if not self.root.is_dir():
            return self.missing_root_message()
        other = self.timeframes(sym)
        also = f" (stored timeframes for {sym}: {', '.join(other)})" if other else ""
        tf_flag = "" if tf == "1Hour" else f" --timeframe {tf}"
        return (
            f"no {tf} bars for {sym} in store {self.root}{also}; import them with "
            f"`foldgate data import FILE --symbol {sym} --timeframe {tf}` or fetch them with "
            f"`foldgate data fetch {sym}{tf_flag}`"
        )

    def _open_table(self, p: Path) -> pa.Table:
        try:
            source = pa.memory_map(str(p), "r")
            table = ipc.open_file(source).read_all()
            table.validate(full=True)  # offsets and lengths, before any buffer is touched
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise DataError(f"{p}: not a readable Arrow bar file ({one_line(exc)}); "
                            "re-import or re-fetch it") from None
        return table

    def read(self, symbol: str, timeframe: str) -> Bars:
        """Memory-mapped read; the float columns are read-only views onto the file.
        Every row handed out satisfies docs/design.md 2; anything else is a DataError
        naming the file and the row."""
        p = self.path(symbol, timeframe)
        if not p.is_file():
            raise DataError(self._missing_message(symbol, timeframe))
        return bars_from_table(self._open_table(p), canonical_symbol(symbol),
                               canonical_timeframe(timeframe), source=str(p))

    def asset_class(self, symbol: str, timeframe: str | None = None) -> str | None:
        """The stored asset class of a symbol (any timeframe when none is given)."""
        tfs = [canonical_timeframe(timeframe)] if timeframe else self.timeframes(symbol)
        for tf in tfs:
            p = self.path(symbol, tf)
            if p.is_file():
                try:
                    with pa.memory_map(str(p), "r") as src:
                        meta = ipc.open_file(src).schema.metadata or {}
                except (pa.ArrowException, OSError):
                    continue
                ac = meta.get(META_ASSET_CLASS.encode())
                try:
                    return check_asset_class(ac.decode()) if ac else None
                except (FoldgateError, UnicodeDecodeError):
                    continue
        return None

    def check_writable(self) -> Path:
        """The root, created if needed; DataError when it cannot be written."""
        try:
            return ensure_writable_dir(self.root)
        except FoldgateError as exc:
            raise DataError(
                f"bar store {self.root} is not writable ({exc}); choose another with "
                "--store DIR or FOLDGATE_STORE"
            ) from None

    def write(self, bars: Bars, mode: str = "merge") -> Path:
        """Validate, merge with what is stored (mode="merge": one row per timestamp, new
        rows win) or replace it (mode="replace"), and write atomically."""
        return self.write_bars(bars, mode).path

    def write_bars(self, bars: Bars, mode: str = "merge") -> StoreWrite:
        """`write`, with what it did. Read, merge and write happen under the file's lock,
        so two writers (two imports, an import and a fetch) never lose each other's
        bars; temp files a killed writer left are removed. Bars of another adjustment
        than the stored ones are refused, never merged."""
        if mode not in ("merge", "replace"):
            raise ValueError(f"mode must be 'merge' or 'replace', got {mode!r}")
        validate_bars(bars)
        self.check_writable()
        p = self.path(bars.symbol, bars.timeframe)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            with file_lock(p):
                out, replaced = bars, 0
                if mode == "merge" and p.is_file():
                    old = self.read(bars.symbol, bars.timeframe)
                    if old.asset_class != bars.asset_class:
                        raise DataError(
                            f"{p}: {bars.symbol} is stored as {old.asset_class}, the new bars say "
                            f"{bars.asset_class}; use the stored asset class or replace the file"
                        )
                    if old.adjustment and bars.adjustment and old.adjustment != bars.adjustment:
                        raise DataError(
                            f"{p}: {bars.symbol} is stored {old.adjustment}-adjusted, the new bars are "
                            f"{bars.adjustment}-adjusted; bars of two adjustments are never merged: "
                            f"fetch with --adjustment {old.adjustment}, or delete the file to switch"
                        )
                    replaced = int(np.isin(bars.timestamp, old.timestamp).sum())
                    out = _merge(old, bars)
                    del old
                    validate_bars(out, source=f"{p} after merge")
                table = bars_to_table(out)
                with atomic_open(p, "wb", locked=True) as fh:
                    with ipc.new_file(fh, table.schema) as writer:
                        writer.write_table(table, max_chunksize=max(len(table), 1))
        except DataError:
            raise
        except FoldgateError as exc:
            raise DataError(f"{exc}; nothing written (choose another store with --store DIR)") from None
        except OSError as exc:
            raise DataError(f"cannot write {p}: {exc.strerror or exc}; nothing written") from None
        n = len(out)
        return StoreWrite(p, len(bars) - replaced, replaced, n,
                          int(out.timestamp[0]) if n else None, int(out.timestamp[-1]) if n else None)

    def list(self) -> list[StoreEntry]:
        """Every stored (symbol, timeframe), sorted by timeframe then symbol."""
        out: list[StoreEntry] = []
        if not self.root.is_dir():
            return out
        for tf_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for f in sorted(tf_dir.glob("*.arrow")):
                if f.name.startswith("."):
                    continue  # an atomic write in progress
                size = f.stat().st_size
                try:
                    bars = self.read(f.stem, tf_dir.name)
                    n = len(bars)
                    first_ns = int(bars.timestamp[0]) if n else None
                    last_ns = int(bars.timestamp[-1]) if n else None
                    out.append(StoreEntry(
                        bars.symbol, bars.timeframe, bars.asset_class, n,
                        None if first_ns is None else ns_to_datetime(first_ns),
                        None if last_ns is None else ns_to_datetime(last_ns),
                        f, size, first_ns, last_ns,
                    ))
                except FoldgateError as exc:
                    out.append(StoreEntry(f.stem, tf_dir.name, None, 0, None, None, f, size, error=str(exc)))
        return out
