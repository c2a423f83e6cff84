"""Policy files read without trusting them: sizes bounded before a read, zip
archives checked before torch sees them, `torch.load(weights_only=True)` only, and
`malformed`, the last line of defence that turns any unforeseen failure into one line."""

from __future__ import annotations

import io
import pickle
import re
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import FoldgateError, PolicyError
from ..limits import POLICY_FILE, one_line, read_bounded
from .model import SUPPORTED

# ---------------------------------------------------------------------------
# reading

def read_policy_bytes(path: Path) -> bytes:
    """The bytes of a policy file, its size bounded before it is read."""
    try:
        if not path.exists():
            raise PolicyError(f"{path}: no such file")
        if path.is_dir():
            raise PolicyError(f"{path}: is a directory, not a policy file")
        return read_bounded(path, POLICY_FILE, PolicyError)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise PolicyError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None


# torch.save stores tensors uncompressed, so a checkpoint inflates by a few bytes at
# most; one that declares far more than it holds is a bomb, refused before torch.load.
_MAX_INFLATION = 16
_MAX_ZIP_ENTRIES = 100_000


def check_zip_sizes(where: Any, zf: zipfile.ZipFile, packed_size: int) -> None:
    """Refuse a zip (a torch checkpoint, an SB3 model) whose entries declare more bytes
    than a policy may hold, or far more than the file's own size: torch allocates the
    declared size of each record it reads."""
    infos = zf.infolist()
    if len(infos) > _MAX_ZIP_ENTRIES:
        raise PolicyError(f"{where}: {len(infos):,} zip entries, more than {_MAX_ZIP_ENTRIES:,}")
    declared = sum(i.file_size for i in infos)
    limit = POLICY_FILE.value()
    if declared > limit:
        raise PolicyError(f"{where}: its zip entries declare {declared:,} bytes, over the bound of {limit:,} "
                          f"bytes per policy file; {POLICY_FILE.advice()}")
    if declared > _MAX_INFLATION * packed_size + (1 << 20):
        raise PolicyError(f"{where}: its zip entries declare {declared:,} bytes in a {packed_size:,}-byte file "
                          f"(a compression bomb); refused before loading")


def torch_load_safe(path: Path, source: Any) -> Any:
    """torch.load with the weights-only unpickler, and its failures as one line."""
    import torch  # lazy: torch, ~1 s; a warm run reads the policy cache instead

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's protocol chatter is not the user's business
            return torch.load(source, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "Weights only load failed" in msg and (op := re.search(r"Unsupported operand (\d+)", msg)):
            raise PolicyError(
                f"{path}: uses pickle opcode {op.group(1)}, which the safe loader refuses (139 = LONG4, an "
                f"integer of more than 255 bytes); nothing in it was executed"
            ) from None
        if "Weights only load failed" in msg:
            m = re.search(r"GLOBAL ([\w.]+)", msg)
            what = f" (it references {m.group(1)})" if m else " (or pickle opcodes the safe loader refuses)"
            raise PolicyError(
                f"{path}: holds code or Python objects{what} that foldgate will not load: "
                f"a checkpoint may contain only tensors, numbers, strings, lists and dicts; "
                f"nothing in it was executed"
            ) from None
        raise PolicyError(f"{path}: not a torch checkpoint ({one_line(msg)[:120]}); {SUPPORTED}") from None
    except Exception as exc:  # noqa: BLE001 - garbage can fail inside the unpickler in any way
        # (IndexError, TypeError, MemoryError, ...); nothing from it was executed
        detail = one_line(str(exc))[:120] or type(exc).__name__
        if isinstance(exc, EOFError):
            detail = "the file is empty or truncated"
        raise PolicyError(f"{path}: not a torch checkpoint ({detail}); {SUPPORTED}") from None


def zip_kind(path: Path, data: bytes) -> str:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as exc:
        raise PolicyError(f"{path}: a damaged zip archive ({one_line(str(exc))[:120]})") from None
    check_zip_sizes(path, zf, len(data))
    names = zf.namelist()
    if "data" in names or "policy.pth" in names:
        return "sb3"
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") for n in names):
        return "torch"
    return "other"


@contextmanager
def malformed(where: Any):
    """The last line of defence for a hostile file: an exception that no check above
    foresaw becomes one PolicyError line instead of a traceback. (A refusal a check
    words itself is always better; the fuzz suite hunts for the ones that land here.)"""
    try:
        yield
    except FoldgateError:
        raise
    except (TypeError, ValueError, OverflowError, AttributeError, KeyError, IndexError, RecursionError,
            MemoryError, RuntimeError) as exc:
        raise PolicyError(f"{where}: a malformed policy ({type(exc).__name__}: "
                          f"{one_line(str(exc))[:100]}); {SUPPORTED}") from None
