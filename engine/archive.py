"""Training archives (design.md 7): safe, idempotent extraction of
`Alpaca_trading_trained_YYYYMMDD_HHMMSS.zip` to `training_archives/YYYYMMDD_HHMMSS_extract/`,
and `open_training_source`, which accepts an archive, its extracted directory or a
summary JSON.

An archive is untrusted input. Every entry name is checked before anything is
written: absolute paths, drive letters, `..` that leaves the destination, links and
other special files, and duplicate names are refused with the entry named. While
streaming, the bytes actually decompressed are counted (headers can lie) against a
bound on the total and on the compression ratio of each entry and of the whole.
Extraction goes into a temp directory inside `dest_root`, and a marker file written
last; the directory is renamed into place only when complete, so a failure or an
interrupt leaves no partial extract and nothing outside `dest_root`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .atomic import ensure_writable_dir
from .errors import ArchiveError

DEFAULT_MAX_TOTAL_BYTES = 4 * 1024**3
DEFAULT_MAX_RATIO = 200.0
DEFAULT_MAX_ENTRIES = 100_000
# Ratios are only judged past this many bytes: a tiny text file legitimately
# compresses far beyond any bound that would still catch a bomb.
RATIO_FLOOR_BYTES = 64 * 1024
MARKER = ".foldgate_extract.json"

_CHUNK = 1 << 20
_STAMP = r"(\d{8}_\d{6})"
_SUMMARY_RE = re.compile(r"^training_summary(?:_" + _STAMP + r")?\.json$", re.IGNORECASE)
_EXTRACT_DIR_RE = re.compile(r"^" + _STAMP + r"_extract$")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def _valid_stamp(text: str | None) -> str | None:
    if not text:
        return None
    try:
        dt.datetime.strptime(text, "%Y%m%d_%H%M%S")
    except ValueError:
        return None
    return text


def stamp_from_name(name: str) -> str | None:
    """The YYYYMMDD_HHMMSS run stamp that ends an archive, summary or extract-dir name."""
    stem = name
    for suffix in (".zip", ".json"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    if stem.endswith("_extract"):
        stem = stem[: -len("_extract")]
    m = re.search(_STAMP + r"$", stem)
    return _valid_stamp(m.group(1)) if m else None


def is_summary_name(name: str) -> bool:
    return bool(_SUMMARY_RE.match(name))


# ---------------------------------------------------------------- entry checks


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]
    is_dir: bool


def _plan(zf: zipfile.ZipFile, zp: Path, max_total_bytes: int, max_ratio: float, max_entries: int) -> list[_Entry]:
    """Check every entry before a byte is written; return them with safe relative parts."""
    infos = zf.infolist()
    if len(infos) > max_entries:
        raise ArchiveError(f"{zp}: {len(infos)} entries, more than the bound of {max_entries}")
    files: set[str] = set()
    dirs: set[str] = set()
    declared = packed = 0
    plan: list[_Entry] = []
    for info in infos:
        raw = info.orig_filename
        shown = repr(raw)
        if "\x00" in raw:
            raise ArchiveError(f"{zp}: entry {shown} has a NUL byte in its name")
        name = raw.replace("\\", "/")  # archives made on Windows may use backslashes
        if name.startswith("/") or _DRIVE_RE.match(name):
            raise ArchiveError(f"{zp}: entry {shown} has an absolute path")
        parts: list[str] = []
        for part in name.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise ArchiveError(f"{zp}: entry {shown} leaves the destination ('..')")
                parts.pop()
            else:
                parts.append(part)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise ArchiveError(f"{zp}: entry {shown} is a symbolic link; links are refused")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveError(f"{zp}: entry {shown} is a special file (mode {oct(mode)}); only files and "
                               f"directories are extracted")
        is_dir = info.is_dir() or kind == stat.S_IFDIR
        if not parts:
            if is_dir:
                continue  # "./": the destination itself
            raise ArchiveError(f"{zp}: entry {shown} has an empty name")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"{zp}: entry {shown} is encrypted; foldgate reads unencrypted archives only")
        key = "/".join(parts)
        parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
        if key in files or (not is_dir and key in dirs):
            raise ArchiveError(f"{zp}: entry {shown} duplicates the name {key!r}")
        clash = next((p for p in parents if p in files), None)
        if clash is not None:
            raise ArchiveError(f"{zp}: entry {shown} needs {clash!r} as a directory, but it is a file entry")
        dirs.update(parents)
        (dirs if is_dir else files).add(key)
        if not is_dir:
            declared += info.file_size
            if declared > max_total_bytes:
                raise ArchiveError(f"{zp}: entry {shown} takes the declared uncompressed size to {declared} bytes, "
                                   f"over the bound of {max_total_bytes}")
            if info.file_size > RATIO_FLOOR_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
                raise ArchiveError(f"{zp}: entry {shown} declares a compression ratio of "
                                   f"{info.file_size / max(info.compress_size, 1):.0f}, over the bound of {max_ratio:g}")
            packed += info.compress_size
            if declared > RATIO_FLOOR_BYTES and declared > max_ratio * max(packed, 1):
                raise ArchiveError(f"{zp}: entry {shown} takes the declared compression ratio of the archive past "
                                   f"the bound of {max_ratio:g}")
        plan.append(_Entry(info, tuple(parts), is_dir))
    return plan


def _stamp(zp: Path, plan: list[_Entry]) -> str:
    stamp = stamp_from_name(zp.name)
    if stamp:
        return stamp
    found = sorted({s for e in plan if not e.is_dir and is_summary_name(e.parts[-1])
                    for s in [stamp_from_name(e.parts[-1])] if s})
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ArchiveError(f"{zp}: summaries of several runs inside ({', '.join(found)}); cannot tell its stamp")
    raise ArchiveError(f"{zp}: no run stamp; name it Alpaca_trading_trained_YYYYMMDD_HHMMSS.zip or include "
                       f"training_summary_YYYYMMDD_HHMMSS.json")


# ------------------------------------------------------------------ extraction


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _complete_extract(dest: Path, digest: str) -> bool:
    """True when `dest` is a complete extract of this archive; False when absent;
    ArchiveError when something else sits there (never overwritten)."""
    if not dest.exists() and not dest.is_symlink():
        return False
    marker = dest / MARKER
    if dest.is_symlink() or not dest.is_dir() or not marker.is_file():
        raise ArchiveError(f"{dest} exists but is not a complete foldgate extract (no {MARKER}); "
                           f"move it aside, pass it as a directory, or use another --dest")
    try:
        info = json.loads(marker.read_text("utf-8"))
        their = info["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ArchiveError(f"{marker} is unreadable; move {dest} aside") from None
    if their != digest:
        raise ArchiveError(f"{dest} holds the extract of another archive with the same stamp "
                           f"({info.get('archive')}); move it aside or use another --dest")
    return True


def _clean_stale_temps(root: Path, dest_name: str) -> None:
    """Remove temp dirs of extracts whose process died (kill -9, power loss)."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return
    pattern = re.compile(r"^\." + re.escape(dest_name) + r"\.tmp-(\d+)-")
    for entry in root.iterdir():
        m = pattern.match(entry.name)
        if not m or not entry.is_dir() or entry.is_symlink():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except (PermissionError, OverflowError):
            pass


def _extract_into(zf: zipfile.ZipFile, zp: Path, plan: list[_Entry], tmp: Path,
                  max_total_bytes: int, max_ratio: float) -> int:
    base = os.path.realpath(tmp)
    total_out = total_in = 0
    for e in plan:
        shown = repr(e.info.orig_filename)
        target = tmp.joinpath(*e.parts)
        # the names were checked, and no link is ever created; this guards the guard
        if not os.path.realpath(target).startswith(base + os.sep):
            raise ArchiveError(f"{zp}: entry {shown} resolves outside the destination")
        if e.is_dir:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        total_in += e.info.compress_size
        written = 0
        try:
            with zf.open(e.info) as src, open(target, "xb") as out:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    total_out += len(chunk)
                    if total_out > max_total_bytes:
                        raise ArchiveError(f"{zp}: entry {shown} takes the uncompressed size past the bound of "
                                           f"{max_total_bytes} bytes")
                    if written > RATIO_FLOOR_BYTES and written > max_ratio * max(e.info.compress_size, 1):
                        raise ArchiveError(f"{zp}: entry {shown} inflates more than {max_ratio:g}x "
                                           f"(compression-ratio bound)")
                    if total_out > RATIO_FLOOR_BYTES and total_out > max_ratio * max(total_in, 1):
                        raise ArchiveError(f"{zp}: entry {shown} takes the whole archive past a compression "
                                           f"ratio of {max_ratio:g}")
                    out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
            raise ArchiveError(f"{zp}: entry {shown} is corrupt or truncated ({exc})") from None
        except NotImplementedError as exc:
            raise ArchiveError(f"{zp}: entry {shown} uses an unsupported compression ({exc})") from None
        except RuntimeError as exc:  # zipfile's "password required"
            raise ArchiveError(f"{zp}: entry {shown} cannot be read ({exc})") from None
        except FileExistsError:
            raise ArchiveError(f"{zp}: entry {shown} collides with another entry") from None
        except OSError as exc:
            raise ArchiveError(f"{zp}: cannot write entry {shown}: {exc.strerror}") from None
    return total_out


def existing_extract(zip_path: str | os.PathLike, dest_root: str | os.PathLike = "training_archives") -> Path | None:
    """The complete extract of this archive under `dest_root`, or None."""
    zp = Path(zip_path)
    stamp = stamp_from_name(zp.name)
    if stamp is None:
        try:
            with zipfile.ZipFile(zp) as zf:
                stamp = _stamp(zp, _plan(zf, zp, DEFAULT_MAX_TOTAL_BYTES, DEFAULT_MAX_RATIO, DEFAULT_MAX_ENTRIES))
        except (zipfile.BadZipFile, OSError, ArchiveError):
            return None
    dest = Path(dest_root) / f"{stamp}_extract"
    try:
        return dest if _complete_extract(dest, _sha256(zp)) else None
    except (ArchiveError, OSError):
        return None


def _open_zip(zp: Path) -> zipfile.ZipFile:
    if not zp.exists():
        raise ArchiveError(f"archive {zp} not found")
    if zp.is_dir():
        raise ArchiveError(f"{zp} is a directory, not a zip archive")
    try:
        return zipfile.ZipFile(zp)
    except (zipfile.BadZipFile, ValueError, EOFError):
        try:
            with open(zp, "rb") as fh:
                head = fh.read(4)
        except OSError:
            head = b""
        if head == b"PK\x03\x04":
            raise ArchiveError(f"{zp}: zip archive is truncated or corrupt (no readable central directory)") from None
        raise ArchiveError(f"{zp}: not a zip archive") from None
    except OSError as exc:
        raise ArchiveError(f"cannot read archive {zp}: {exc.strerror}") from None


def extract_archive(zip_path: str | os.PathLike, dest_root: str | os.PathLike = "training_archives",
                    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES, max_ratio: float = DEFAULT_MAX_RATIO,
                    max_entries: int = DEFAULT_MAX_ENTRIES) -> Path:
    """Extract a training archive to `dest_root/YYYYMMDD_HHMMSS_extract/` and return that
    directory. A complete extract of the same archive (same sha256) is reused as is.
    Raises ArchiveError naming the entry for anything unsafe, corrupt or over the bounds."""
    zp = Path(zip_path)
    with _open_zip(zp) as zf:
        plan = _plan(zf, zp, max_total_bytes, max_ratio, max_entries)
        stamp = _stamp(zp, plan)
        root = ensure_writable_dir(dest_root)
        dest = root / f"{stamp}_extract"
        digest = _sha256(zp)
        if _complete_extract(dest, digest):
            return dest
        _clean_stale_temps(root, dest.name)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-{os.getpid()}-", dir=root))
        try:
            total = _extract_into(zf, zp, plan, tmp, max_total_bytes, max_ratio)
            marker = {
                "schema": "foldgate.extract/1", "archive": str(zp.resolve()), "sha256": digest, "stamp": stamp,
                "files": sum(1 for e in plan if not e.is_dir), "bytes": total,
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            }
            (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", "utf-8")
            try:
                os.rename(tmp, dest)
            except OSError:
                # another process may have finished the same extract first
                if _complete_extract(dest, digest):
                    shutil.rmtree(tmp, ignore_errors=True)
                    return dest
                raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest


# --------------------------------------------------------------------- sources


def find_summaries(root: Path) -> list[Path]:
    """training_summary*.json files under `root`, at any depth, links not followed,
    foldgate's own temp dirs skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not (d.startswith(".") and ".tmp-" in d))
        found.extend(Path(dirpath) / f for f in sorted(filenames) if is_summary_name(f))
    return found


def _find_summary(root: Path) -> Path:
    found = find_summaries(root)
    if not found:
        raise ArchiveError(f"no training_summary_*.json under {root}")
    if len(found) > 1:
        listed = ", ".join(str(p.relative_to(root)) for p in found[:4])
        raise ArchiveError(f"several training summaries under {root} ({listed}); pass the one you mean")
    return found[0]


def open_training_source(path: str | os.PathLike, dest_root: str | os.PathLike = "training_archives"
                         ) -> tuple[Path, Path, str | None]:
    """ARCHIVE.zip (extracted first, idempotently), an extracted DIR, or a SUMMARY.json ->
    (root_dir, summary_path, stamp). Model paths are resolved inside root_dir; stamp is
    None only when neither the summary's nor the directory's name carries one."""
    p = Path(path)
    if not p.exists():
        raise ArchiveError(f"{p} not found")
    if p.is_dir():
        summary = _find_summary(p)
        return p, summary, stamp_from_name(summary.name) or stamp_from_name(p.name)
    if p.suffix.lower() == ".json":
        return p.parent, p, stamp_from_name(p.name) or stamp_from_name(p.parent.name)
    if p.suffix.lower() == ".zip" or zipfile.is_zipfile(p):
        # no summary in the archive: say so before extracting anything
        with _open_zip(p) as zf:
            if not any(is_summary_name(PurePosixPath(n).name) for n in zf.namelist()):
                raise ArchiveError(f"{p}: no training_summary_*.json in the archive; nothing extracted")
        root = extract_archive(p, dest_root)
        return root, _find_summary(root), stamp_from_name(root.name)
    raise ArchiveError(f"{p}: expected a training archive (.zip), its extracted directory, or a summary (.json)")
