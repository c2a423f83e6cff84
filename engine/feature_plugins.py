"""Features added by installed packages through the `foldgate.features` entry point.

Only code the user chose to install is run: entry points of installed distributions,
never anything from an archive or checkpoint under validation (a checkpoint only
names a feature). The contract (docs/features.md):

    # pyproject.toml of the plugin:  [project.entry-points."foldgate.features"]
    #                                "acme:mom" = "acme_features:momentum"
    def momentum(timestamp, open, high, low, close, volume, k):
        ...   # int64 ns (T,), float64 (T,) each; k the window in the name
        return out   # float64 (T,); NaN before the lookback
    momentum.lookback = lambda k: k   # bars before t the value at t reads
                                      # (an int for a feature without a window)

An entry point's name is the feature's name: a namespace, a colon, a base name
(`acme:mom`); a windowed feature is named with its window (`acme:mom_14`). Before
its first use a plugin feature must pass the check of engine/lookahead.py; the
verdict is cached per distribution name and version (a new version is checked
again) and a feature that fails is refused, naming the bar where it looked ahead."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .atomic import atomic_write_text
from .cache_root import cache_dir
from . import lookahead
from .errors import FeatureError

GROUP = "foldgate.features"
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*:[A-Za-z][A-Za-z0-9_]*$")
_WINDOWED_RE = re.compile(r"^(.+)_(\d+)$")
RESERVED_NAMESPACES = ("stockstats",)
MAX_PLUGIN_WINDOW = 100_000
VERDICT_VERSION = 1


@dataclass(frozen=True)
class PluginFeature:
    name: str  # the entry point's name, e.g. "acme:mom"
    value: str  # "module:attr"
    dist: str | None  # the installed distribution, None when unknown
    version: str | None
    entry_point: Any

    def label(self) -> str:
        where = f"{self.dist} {self.version}" if self.dist else "an unknown distribution"
        return f"plugin feature {self.name!r} ({self.value}, from {where})"


def discover_entry_points() -> list:
    """The installed `foldgate.features` entry points (tests replace this)."""
    # lazy: importlib.metadata (~10 ms), read only when a plugin feature is named
    from importlib.metadata import entry_points

    return list(entry_points(group=GROUP))


_registry: dict[str, PluginFeature] | None = None
_loaded: dict[str, Callable] = {}
_verified: set[str] = set()
_checking: set[str] = set()  # names whose check is running: the check itself parses them


def reset() -> None:
    """Forget discovered plugins and in-process verdicts (after installing one)."""
    global _registry
    _registry = None
    _loaded.clear()
    _verified.clear()
    _checking.clear()


def registry() -> dict[str, PluginFeature]:
    global _registry
    if _registry is None:
        found: dict[str, PluginFeature] = {}
        for ep in discover_entry_points():
            dist = getattr(ep, "dist", None)
            name = str(ep.name)
            found[name] = PluginFeature(
                name=name,
                value=str(ep.value),
                dist=getattr(dist, "name", None) if dist is not None else None,
                version=getattr(dist, "version", None) if dist is not None else None,
                entry_point=ep,
            )
        _registry = found
    return _registry


def _plugin(stem: str) -> PluginFeature | None:
    return registry().get(stem)


def _load(p: PluginFeature) -> Callable:
    if p.name not in _loaded:
        try:
            fn = p.entry_point.load()
        except Exception as exc:  # noqa: BLE001 - the user's package can fail any way
            raise FeatureError(f"{p.label()}: cannot be loaded ({type(exc).__name__}: {exc})") from None
        if not callable(fn):
            raise FeatureError(f"{p.label()}: {p.value} is not a function")
        look = getattr(fn, "lookback", None)
        if look is None or not (callable(look) or (isinstance(look, int) and not isinstance(look, bool))):
            raise FeatureError(
                f"{p.label()}: the function has no `lookback` attribute (an int, or a function of "
                f"the window k giving the bars before t that the value at t reads)"
            )
        _loaded[p.name] = fn
    return _loaded[p.name]


def _windowed(p: PluginFeature) -> bool:
    return callable(getattr(_load(p), "lookback"))


def parse_plugin_name(name: str) -> tuple[str, int]:
    """`"acme:mom_14"` -> `("acme:mom", 14)`; `"acme:spread"` -> `("acme:spread", 0)`."""
    ns = name.split(":", 1)[0]
    if ns in RESERVED_NAMESPACES:
        raise FeatureError(f"unknown feature {name!r}: the namespace {ns!r} is foldgate's own")
    p = _plugin(name)
    if p is not None and _NAME_RE.match(p.name):
        if _windowed(p):
            raise FeatureError(f"feature {name!r} needs a window, e.g. {name}_14 ({p.label()})")
        return name, 0
    m = _WINDOWED_RE.match(name)
    if m:
        p = _plugin(m.group(1))
        if p is not None and _NAME_RE.match(p.name):
            if not _windowed(p):
                raise FeatureError(f"feature {name!r}: {p.label()} takes no window; name it {p.name!r}")
            k = int(m.group(2))
            if not 1 <= k <= MAX_PLUGIN_WINDOW:
                raise FeatureError(f"feature {name!r}: the window must be an integer from 1 to {MAX_PLUGIN_WINDOW}")
            return p.name, k
    names = sorted(x for x in registry() if _NAME_RE.match(x))
    installed = f"installed plugin features: {', '.join(names)}" if names else "no plugin features are installed"
    raise FeatureError(
        f"unknown feature {name!r}: a name with a namespace is a plugin feature, registered by an "
        f"installed package under the entry point group {GROUP!r}; {installed}"
    )


def plugin_lookback(stem: str, k: int) -> int:
    p = registry()[stem]
    look = getattr(_load(p), "lookback")
    try:
        value = look(k) if callable(look) else look
    except Exception as exc:  # noqa: BLE001
        raise FeatureError(f"{p.label()}: lookback({k}) failed ({type(exc).__name__}: {exc})") from None
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise FeatureError(f"{p.label()}: lookback gave {value!r}, not an integer >= 0")
    return int(value)


def _raw_values(bars, name: str) -> np.ndarray:
    """The plugin's output on copies of the bars (so it cannot edit them), checked
    and with the rows before its lookback set to NaN."""
    stem, k = parse_plugin_name(name)
    p = registry()[stem]
    fn = _load(p)
    look = plugin_lookback(stem, k)
    close = np.array(bars.close, dtype=np.float64)
    op = getattr(bars, "open", None)
    args = (
        np.array(bars.timestamp, dtype=np.int64),
        np.array(op, dtype=np.float64) if op is not None else close.copy(),
        np.array(bars.high, dtype=np.float64),
        np.array(bars.low, dtype=np.float64),
        close,
        np.array(bars.volume, dtype=np.float64),
    )
    try:
        out = fn(*args, k)
    except Exception as exc:  # noqa: BLE001
        raise FeatureError(f"{p.label()}: failed on {len(close)} bars ({type(exc).__name__}: {exc})") from None
    out = np.asarray(out)
    if out.shape != close.shape or out.dtype.kind != "f":
        raise FeatureError(
            f"{p.label()}: returned {out.dtype} shape {out.shape}; a feature returns float64 of shape ({len(close)},)"
        )
    out = out.astype(np.float64)
    out[: min(look, len(out))] = np.nan
    return out


def _verdict_path(p: PluginFeature, name: str):
    key = json.dumps([VERDICT_VERSION, p.dist, p.version, p.value, name])
    return cache_dir().parent / "feature-verdicts" / (hashlib.sha256(key.encode()).hexdigest() + ".json")


def _cached_verdict(p: PluginFeature, name: str) -> dict | None:
    if not p.dist or not p.version:
        return None  # no version to key on: check in every process
    try:
        v = json.loads(_verdict_path(p, name).read_text())
    except (OSError, ValueError):
        return None
    return v if isinstance(v, dict) and isinstance(v.get("ok"), bool) else None


def _store_verdict(p: PluginFeature, name: str, verdict: dict) -> None:
    if not p.dist or not p.version:
        return

    try:
        path = _verdict_path(p, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(verdict))
    except OSError:
        pass  # an unwritable cache only costs a re-check next run


def verify_plugin_feature(name: str) -> None:
    """Run the lookahead check on a plugin feature (once per distribution version,
    cached) and raise FeatureError naming the bar where it moved if it fails."""
    if name in _verified or name in _checking:
        return
    stem, _ = parse_plugin_name(name)
    p = registry()[stem]
    verdict = _cached_verdict(p, name)
    if verdict is None:
        look = plugin_lookback(stem, parse_plugin_name(name)[1])
        bars = lookahead.synthetic_bars(lookahead.default_length([look]))
        result = lookahead.check_values(bars, name, look, lambda b: _raw_values(b, name))
        first = result.first_lookahead()
        verdict = {
            "ok": result.ok,
            "feature": name,
            "dist": p.dist,
            "version": p.version,
            "moves": len(result.moves),
            "first": first.describe() if first else None,
            "bar": first.bar if first else None,
            "copy": first.copy if first else None,
        }
        _store_verdict(p, name, verdict)
    if not verdict["ok"]:
        what = "looked ahead" if verdict.get("copy") == "truncated" else "depends on where the history starts"
        raise FeatureError(
            f"{p.label()} refused: it {what} at bar {verdict.get('bar')} "
            f"({verdict.get('moves')} values moved; first: {verdict.get('first')}); "
            f"run `foldgate check-features {name}` for every one"
        )
    _verified.add(name)


@contextlib.contextmanager
def unverified(names):
    """Inside, naming these features does not trigger their check: the check (or
    `foldgate check-features`) is what runs."""
    added = [n for n in names if n not in _checking]
    _checking.update(added)
    try:
        yield
    finally:
        _checking.difference_update(added)


def resolve_plugin_name(name: str) -> tuple[str, int]:
    """parse_plugin_name, then the check before first use: a policy naming a plugin
    feature that looks ahead is refused when it is loaded."""
    parsed = parse_plugin_name(name)
    verify_plugin_feature(name)
    return parsed


def compute_plugin_feature(bars, name: str, *, verify: bool = True) -> np.ndarray:
    if verify:
        verify_plugin_feature(name)
    return _raw_values(bars, name)
