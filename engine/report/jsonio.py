"""Reports as JSON values and JSON text.

A report is a plain dict (see docs/report.md and schemas/report.schema.json); the
pipeline may leave numpy scalars and arrays, NaN, datetimes and paths in it. Both
writers first turn it into JSON values with `to_jsonable`, which the schema drives:
keys come out in the schema's order (so two runs diff cleanly), integer fields
become ints and every non-finite number becomes null."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import functools
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_text
from .schema import load_schema


class _Shape:
    """What the writer needs from one schema position: key order, the schema of each
    key, list items, and whether numbers there are integers. oneOf/anyOf branches and
    allOf parts are merged: the report's alternatives only ever differ by null."""

    __slots__ = ("props", "extra", "items", "ints")

    def __init__(self):
        self.props: dict[str, _Shape] = {}
        self.extra: _Shape | None = None
        self.items: _Shape | None = None
        self.ints = False


def _compile(node: Any, root: dict, memo: dict) -> _Shape | None:
    if not isinstance(node, dict):
        return None
    ref = node.get("$ref")
    if ref is not None and ref in memo:
        return memo[ref]
    shape = _Shape()
    if ref is not None:
        memo[ref] = shape
        target = root
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        _merge(shape, _compile(target, root, memo))
    for key, sub in node.get("properties", {}).items():
        shape.props.setdefault(key, _compile(sub, root, memo))
    for key in ("allOf", "oneOf", "anyOf"):
        for sub in node.get(key, []):
            _merge(shape, _compile(sub, root, memo))
    if isinstance(node.get("additionalProperties"), dict):
        shape.extra = _compile(node["additionalProperties"], root, memo)
    if "items" in node:
        shape.items = _compile(node["items"], root, memo)
    types = node.get("type")
    types = types if isinstance(types, list) else [types]
    enum_ = [e for e in node.get("enum", []) if e is not None]
    shape.ints = shape.ints or ("integer" in types and "number" not in types) or (
        bool(enum_) and all(isinstance(e, int) and not isinstance(e, bool) for e in enum_))
    return shape


def _merge(into: _Shape, other: _Shape | None) -> None:
    if other is None:
        return
    for key, sub in other.props.items():
        into.props.setdefault(key, sub)
    into.extra = into.extra or other.extra
    into.items = into.items or other.items
    into.ints = into.ints or other.ints


@functools.lru_cache(maxsize=1)
def _report_shape() -> _Shape:
    schema = load_schema()
    return _compile(schema, schema, {})


def _iso_datetime(t: _dt.datetime | _dt.date) -> str:
    if isinstance(t, _dt.datetime):
        if t.tzinfo is not None:
            t = t.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return t.isoformat(timespec="seconds" if not t.microsecond else "microseconds") + "Z"
    return t.isoformat()


def _iso_datetime64(a: np.ndarray) -> list[str]:
    unit = np.datetime_data(a.dtype)[0]
    unit = "s" if unit in ("Y", "M", "W", "D", "h", "m", "s", "generic") else unit
    return [s + "Z" for s in np.datetime_as_string(a.astype(f"datetime64[{unit}]"), unit=unit).tolist()]


def _float_list(a: np.ndarray, ints: bool) -> list:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 1:
        return [_plain(v, None) for v in a.tolist()]
    finite = np.isfinite(a)
    if ints and finite.all() and np.all(a == np.round(a)):
        return a.astype(np.int64).tolist()
    out = a.tolist()
    if not finite.all():
        for i in np.flatnonzero(~finite).tolist():
            out[i] = None
    return out


class _Unwritable(TypeError):
    """A value with no JSON form; `path` is filled in while the recursion unwinds."""

    def __init__(self, type_name: str):
        self.type_name = type_name
        self.path: list[str] = []
        super().__init__(type_name)

    def __str__(self) -> str:
        return f"report{''.join(self.path)}: a {self.type_name} value has no JSON form"


def _plain(value: Any, shape: _Shape | None) -> Any:
    """`value` as JSON values, ordered and typed after `shape` (None: no schema here)."""
    if isinstance(value, float):  # the common case first: most of a report is floats
        if value != value or value in (math.inf, -math.inf):
            return None
        if type(value) is not float:  # np.float64 subclasses float
            value = float(value)
        return int(value) if shape is not None and shape.ints and value.is_integer() else value
    if isinstance(value, enum.Enum):  # before str: str() of a (str, Enum) member is "Class.NAME"
        return _plain(value.value, shape)
    if value is None or isinstance(value, (bool, str)):
        return value if type(value) in (bool, str) or value is None else str(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.floating):
        return _plain(float(value), shape)
    if isinstance(value, _dt.datetime | _dt.date):
        return _iso_datetime(value)
    if isinstance(value, np.datetime64):
        return _iso_datetime64(np.asarray([value]))[0]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    items = shape.items if shape is not None else None
    if isinstance(value, np.ndarray):
        kind = value.dtype.kind
        if kind == "f":
            return _float_list(value, items is not None and items.ints)
        if kind in "iub":
            return value.tolist()
        if kind == "M":
            return _iso_datetime64(value)
        if kind in "US":
            return value.astype(str).tolist()
        value = value.tolist()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        props = shape.props if shape is not None else {}
        extra = shape.extra if shape is not None else None
        out = {}
        key = None
        try:
            for key, sub in props.items():
                if key in value:
                    out[key] = _plain(value[key], sub)
            if len(out) < len(value):
                for key in sorted((k for k in value if k not in props), key=str):
                    out[str(key)] = _plain(value[key], extra)
        except _Unwritable as exc:
            exc.path.insert(0, f".{key}")
            raise
        return out
    if isinstance(value, (list, tuple)):
        try:
            return [_plain(v, items) for v in value]
        except _Unwritable as exc:
            # the failing index is found again only on this rare path
            for i, v in enumerate(value):
                try:
                    _plain(v, items)
                except _Unwritable:
                    exc.path.insert(0, f"[{i}]")
                    break
            raise
    raise _Unwritable(type(value).__name__)


def to_jsonable(report: Mapping) -> dict:
    """The report as JSON values in the schema's key order: numpy scalars and arrays
    as numbers and lists, NaN/inf as null, datetimes as ISO-8601 UTC, paths as str."""
    return _plain(report, _report_shape())


def _dump(value: Any, indent: str, inline_dicts: bool) -> str:
    # Structure on separate lines, but lists of numbers (equity curves) and small flat
    # objects (trades, flags) on one line each, so a 50-model report stays readable.
    if isinstance(value, dict):
        if not value:
            return "{}"
        flat = all(not isinstance(v, (dict, list)) for v in value.values())
        if inline_dicts and flat:
            return json.dumps(value, ensure_ascii=False, allow_nan=False)
        inner = indent + "  "
        parts = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {_dump(v, inner, False)}" for k, v in value.items()]
        return "{\n" + ",\n".join(parts) + "\n" + indent + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        if not isinstance(value[0], (dict, list)) and not isinstance(value[-1], (dict, list)):
            return json.dumps(value, ensure_ascii=False, allow_nan=False)
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + _dump(v, inner, True) for v in value) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def report_to_json(report: Mapping) -> str:
    """The report as JSON text: schema key order, NaN/inf as null, newline at the end."""
    return _dump(to_jsonable(report), "", False) + "\n"


def write_json_report(path: str | os.PathLike, report: Mapping) -> Path:
    """Write the JSON report atomically; a failure leaves any old file untouched."""
    text = report_to_json(report)
    atomic_write_text(path, text)
    return Path(path)
