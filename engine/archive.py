"""Training archives (docs/design.md 7): safe, idempotent extraction of
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
from .limits import SUMMARY_FILE

DEFAULT_MAX_TOTAL_BYTES = 4 * 1024**3
DEFAULT_MAX_RATIO = 200.0
DEFAULT_MAX_ENTRIES = 100_000
# Ratios are only judged past this many bytes: a tiny text file legitimately
# compresses far beyond any bound that would still catch a bomb.
RATIO_FLOOR_BYTES = 64 * 1024
MARKER = ".foldgate_extract.json"

# NAME_MAX and PATH_MAX of common file systems: a longer name cannot be written, and
# asking the OS about it raises instead of answering
MAX_COMPONENT_BYTES = 255
MAX_NAME_BYTES = 4096

_CHUNK = 1 << 20
_STAMP = r"(\d{8}_\d{6})"
_SUMMARY_RE = re.compile(r"^training_summary(?:_" + _STAMP + r")?\.json$", re.IGNORECASE)
_EXTRACT_DIR_RE = re.compile(r"^" + _STAMP + r"_extract$")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def quote(name: object, most: int = 160) -> str:
    """A name from an archive or a summary as every message shows it: repr-quoted, so a
    newline or a control character in it reads as `\\n` and can never start a second
    line (or a forged `Error:`), and shortened past `most` characters."""
    r = repr(name if isinstance(name, str) else str(name))
    return r if len(r) <= most else r[: most - 4] + "...'"


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
    archive_size = _archive_size(zf)
    plan: list[_Entry] = []
    _check_layout(zf, zp, infos)
    for info in infos:
        raw = info.orig_filename
        shown = quote(raw)
        if not raw:
            raise ArchiveError(f"{zp}: an entry has an empty name")
        if "\x00" in raw:
            raise ArchiveError(f"{zp}: entry {shown} has a NUL byte in its name")
        if len(raw.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise ArchiveError(f"{zp}: entry {shown} has a name longer than {MAX_NAME_BYTES} bytes")
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
            elif len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT_BYTES:
                raise ArchiveError(f"{zp}: entry {shown} has a path component of {len(part)} characters, more "
                                   f"than a file name may have ({MAX_COMPONENT_BYTES} bytes)")
            else:
                parts.append(part)
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise ArchiveError(f"{zp}: entry {shown} is a symbolic link; links are refused")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveError(f"{zp}: entry {shown} is a special file (mode {oct(mode)}); only files and "
                               f"directories are extracted")
        is_dir = raw.endswith(("/", "\\")) or kind == stat.S_IFDIR
        if not parts:
            if is_dir:
                continue  # "./": the destination itself
            raise ArchiveError(f"{zp}: entry {shown} has an empty name")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"{zp}: entry {shown} is encrypted; foldgate reads unencrypted archives only")
        key = "/".join(parts)
        parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
        if key in files or (not is_dir and key in dirs):
            raise ArchiveError(f"{zp}: entry {shown} duplicates the name {quote(key)}")
        clash = next((p for p in parents if p in files), None)
        if clash is not None:
            raise ArchiveError(f"{zp}: entry {shown} needs {quote(clash)} as a directory, but it is a file entry")
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
            # against the archive's real size too: entries can share their data (refused in
            # _check_layout), and a sum of compressed sizes can be made to say anything
            if declared > RATIO_FLOOR_BYTES and declared > max_ratio * max(min(packed, archive_size), 1):
                raise ArchiveError(f"{zp}: entry {shown} takes the declared compression ratio of the archive past "
                                   f"the bound of {max_ratio:g}")
        plan.append(_Entry(info, tuple(parts), is_dir))
    return plan


def _archive_size(zf: zipfile.ZipFile) -> int:
    fp = zf.fp
    try:
        here = fp.tell()
        size = fp.seek(0, os.SEEK_END)
        fp.seek(here)
        return size
    except (OSError, AttributeError, ValueError):
        return 1 << 62


_LOCAL_HEADER = 30  # bytes of a local file header before its name and extra field


def _check_layout(zf: zipfile.ZipFile, zp: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Each entry's data must be its own: sorted by offset, an entry's local header and
    compressed bytes end before the next entry starts and before the central directory.
    Entries that point at the same (or overlapping) data inflate it once per entry, so a
    tiny archive could declare honest-looking ratios and still write gigabytes."""
    end = getattr(zf, "start_dir", None)
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for a, b in zip(ordered, ordered[1:] + [None]):
        stop = a.header_offset + _LOCAL_HEADER + len(a.orig_filename.encode("utf-8", "surrogateescape")) \
            + a.compress_size
        nxt = b.header_offset if b is not None else end
        if nxt is not None and stop > nxt:
            other = f"entry {quote(b.orig_filename)}" if b is not None else "the central directory"
            raise ArchiveError(f"{zp}: entry {quote(a.orig_filename)} overlaps {other} (entries sharing their "
                               f"data are refused)")


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
        shown = quote(e.info.orig_filename)
        target = tmp.joinpath(*e.parts)
        # the names were checked, and no link is ever created; this guards the guard
        if not os.path.realpath(target).startswith(base + os.sep):
            raise ArchiveError(f"{zp}: entry {shown} resolves outside the destination")
        try:
            if e.is_dir:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(f"{zp}: cannot create the directory of entry {shown}: {exc.strerror}") from None
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
            with _open_zip(zp) as zf:
                stamp = _stamp(zp, _plan(zf, zp, DEFAULT_MAX_TOTAL_BYTES, DEFAULT_MAX_RATIO, DEFAULT_MAX_ENTRIES))
        except (OSError, ArchiveError):
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
    except NotImplementedError as exc:  # e.g. "zip file version 6.4"
        raise ArchiveError(f"{zp}: a zip archive foldgate cannot read ({exc})") from None
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
                    max_entries: int = DEFAULT_MAX_ENTRIES, require_summary: bool = False) -> Path:
    """Extract a training archive to `dest_root/YYYYMMDD_HHMMSS_extract/` and return that
    directory. A complete extract of the same archive (same sha256) is reused as is.
    Raises ArchiveError naming the entry for anything unsafe, corrupt or over the bounds;
    with require_summary, also for an archive without a training summary."""
    zp = Path(zip_path)
    with _open_zip(zp) as zf:
        plan = _plan(zf, zp, max_total_bytes, max_ratio, max_entries)
        if require_summary:
            _require_summary(zp, [e.info for e in plan])
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


def _require_summary(zp: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse, before anything is extracted, a training archive without a training
    summary, or whose summary declares more bytes than a summary may have (`extract`
    and `validate` both go through this: one rule, one message)."""
    summaries = [i for i in infos if is_summary_name(PurePosixPath(i.filename.replace("\\", "/")).name)]
    if not summaries:
        raise ArchiveError(f"{zp}: no training_summary_*.json in the archive; nothing extracted")
    for info in summaries:
        if info.file_size > SUMMARY_FILE.value():
            raise ArchiveError(f"{zp}: entry {quote(info.filename)} declares {info.file_size:,} bytes, over the bound "
                               f"of {SUMMARY_FILE.value():,} bytes per training summary; {SUMMARY_FILE.advice()}; "
                               f"nothing extracted")


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
        root = extract_archive(p, dest_root, require_summary=True)
        return root, _find_summary(root), stamp_from_name(root.name)
    raise ArchiveError(f"{p}: expected a training archive (.zip), its extracted directory, or a summary (.json)")
