"""Reports as JSON text and JSON values.

A report is a plain dict (see docs/report.md and schemas/report.schema.json); the
pipeline may leave numpy scalars and arrays, NaN, datetimes and paths in it. The writer
turns it into JSON text in one pass that the schema drives: keys come out in the
schema's order (so two runs diff cleanly), integer fields become ints and every
non-finite number becomes null. `to_jsonable` is that text parsed back, so the JSON
file, the HTML page and the validator can never disagree about a value.

Speed: a 1,000-model report is hundreds of MB, nearly all of it equity curves,
timestamps and trades. Curves go to orjson as numpy arrays in one call each, a
datetime64 array becomes its strings in one numpy call (and a run's folds share their
timestamps, so each distinct array is formatted once per report), and a list of trades
is encoded a column at a time. Everything else (the structure, a few hundred values
per model) is walked in Python and spelled as the standard library's json spells it."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import functools
import itertools
import json
import operator
import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from json.encoder import encode_basestring as _jstr
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ..atomic import atomic_open
from .schema_file import load_schema


class _Shape:
    """What the writer needs from one schema position: key order, the schema of each
    key, list items, and whether numbers there are integers. oneOf/anyOf branches and
    allOf parts are merged: the report's alternatives only ever differ by null."""

    __slots__ = ("props", "extra", "items", "ints", "_plan")

    def __init__(self):
        self.props: dict[str, _Shape] = {}
        self.extra: _Shape | None = None
        self.items: _Shape | None = None
        self.ints = False
        self._plan = None

    def plan(self) -> list[tuple[str, str, _Shape | None, bool]]:
        """(key, key as JSON text, its schema, whether its numbers are ints) in the schema's
        order; built on first use, once the schema is compiled and merged."""
        if self._plan is None:
            self._plan = [(k, _jstr(k), sub, sub is not None and sub.ints) for k, sub in self.props.items()]
        return self._plan


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


class _Unwritable(TypeError):
    """A value with no JSON form; `path` is filled in while the recursion unwinds."""

    def __init__(self, type_name: str):
        self.type_name = type_name
        self.path: list[str] = []
        super().__init__(type_name)

    def __str__(self) -> str:
        return f"report{''.join(self.path)}: a {self.type_name} value has no JSON form"


def _iso_datetime(t: _dt.datetime | _dt.date) -> str:
    if isinstance(t, _dt.datetime):
        if t.tzinfo is not None:
            t = t.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return t.isoformat(timespec="seconds" if not t.microsecond else "microseconds") + "Z"
    return t.isoformat()


def _datetime64_strings(a: np.ndarray) -> np.ndarray:
    """A datetime64 array as ISO-8601 strings without the Z, in one numpy call: whole
    seconds for units of a second or coarser, else the array's own sub-second unit."""
    unit = np.datetime_data(a.dtype)[0]
    unit = "s" if unit in ("Y", "M", "W", "D", "h", "m", "s", "generic") else unit
    return np.datetime_as_string(a.astype(f"datetime64[{unit}]"), unit=unit)


_SCALARS = (type(None), bool, int, float, str)
_CONTAINERS = (dict, list, np.ndarray)
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _norm(value: Any) -> Any:
    """`value` as one of the types the writer spells: None, bool, int, float, str, dict,
    list or a numpy array of one or more dimensions."""
    t = type(value)
    if t is dict or t is list:
        return value
    if t is np.float64:  # the pipeline's metrics: numpy scalars, most of a report's values
        return float(value)
    if t is np.int64:
        return int(value)
    if t is np.ndarray:
        return value if value.ndim else _norm(value[()])
    if isinstance(value, float):  # np.float64 too
        return float(value)
    if isinstance(value, enum.Enum):  # before str: str() of a (str, Enum) member is "Class.NAME"
        return _norm(value.value)
    if value is None or isinstance(value, (bool, str)):
        return value if type(value) in (bool, str) or value is None else str(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, _dt.datetime | _dt.date):
        return _iso_datetime(value)
    if isinstance(value, np.datetime64):
        return str(_datetime64_strings(np.asarray([value]))[0]) + "Z"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray):
        return value if value.ndim else _norm(value[()])
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return value if type(value) is dict else dict(value)
    if isinstance(value, (list, tuple)):
        return value if type(value) is list else list(value)
    raise _Unwritable(type(value).__name__)


def _scalar(v: Any, ints: bool) -> str:
    """A normalised scalar as the json module writes it (NaN and inf: null)."""
    t = type(v)
    if t is float:
        if v - v != 0.0:  # NaN or infinite
            return "null"
        return int.__repr__(int(v)) if ints and v.is_integer() else float.__repr__(v)
    if t is str:
        return _jstr(v)
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    return int.__repr__(v)


def _numbers(a: np.ndarray) -> str:
    """A 1-D numeric numpy array on one line, "[1.5,null,2.0]". Floats are shortest
    round-trip (orjson), so they parse to the very same float64."""
    return orjson.dumps(np.ascontiguousarray(a), option=_NUMPY).decode()


class _Writer:
    """One report's text. Holds the formatted timestamps of the arrays seen so far,
    keyed by their bytes, so the folds of many models that share a window format it
    once; bounded to the last few distinct arrays."""

    TIMES_KEPT = 64

    def __init__(self):
        self.times: OrderedDict[tuple, str] = OrderedDict()
        self.rows: dict[int, tuple[list, list[str]]] = {}  # spell_trades's, for the model being written

    # --- leaves -------------------------------------------------------------------

    def array(self, a: np.ndarray, shape: _Shape | None) -> str | list:
        """A 1-D array's one-line text; other arrays as lists for the generic path."""
        kind = a.dtype.kind
        if a.ndim != 1:
            return a.tolist() if kind != "M" else np.char.add(_datetime64_strings(a), "Z").tolist()
        if kind == "f":
            a = np.asarray(a, dtype=np.float64)
            if shape is not None and shape.ints:
                finite = np.isfinite(a)
                if finite.all() and np.all(a == np.round(a)):
                    return _numbers(a.astype(np.int64))
            return _numbers(a)
        if kind in "iu":
            return _numbers(a.astype(np.uint64 if kind == "u" and a.dtype.itemsize == 8 else np.int64))
        if kind == "b":
            return _numbers(a.astype(np.bool_))
        if kind == "M":
            return self.timestamps(a)
        if kind in "US":
            return self.inline(a.astype(str).tolist(), None)
        return a.tolist()

    def timestamps(self, a: np.ndarray) -> str:
        if a.size == 0:
            return "[]"
        key = (a.dtype.str, a.tobytes())
        text = self.times.get(key)
        if text is None:
            # ISO strings hold no character JSON escapes: joined as they are
            text = '["' + 'Z","'.join(_datetime64_strings(a).tolist()) + 'Z"]'
            self.times[key] = text
            if len(self.times) > self.TIMES_KEPT:
                self.times.popitem(last=False)
        return text

    # --- objects: key order -------------------------------------------------------

    @staticmethod
    def entries(value: dict, shape: _Shape | None) -> list[list]:
        """[key, value, schema, ints, key as JSON text] in the schema's order, keys it does
        not list after them, sorted."""
        if shape is None:
            return [[str(k), value[k], None, False, _jstr(str(k))] for k in sorted(value, key=str)]
        out = [[k, value[k], sub, ints, text] for k, text, sub, ints in shape.plan() if k in value]
        if len(out) < len(value):
            extra = shape.extra
            ints = extra is not None and extra.ints
            out += [[str(k), value[k], extra, ints, _jstr(str(k))]
                    for k in sorted((k for k in value if k not in shape.props), key=str)]
        return out

    @staticmethod
    def normed(entries: list[list]) -> list[list]:
        """The entries with their values normalised (scalars are already)."""
        for e in entries:
            if type(e[1]) not in _SCALARS:
                try:
                    e[1] = _norm(e[1])
                except _Unwritable as exc:
                    exc.path.insert(0, f".{e[0]}")
                    raise
        return entries

    # --- one line -----------------------------------------------------------------

    def inline(self, value: Any, shape: _Shape | None) -> str:
        """Any value on one line, compact: "," and ":" between items, as orjson writes."""
        if type(value) not in _SCALARS:
            value = _norm(value)
        t = type(value)
        if t in _SCALARS:
            return _scalar(value, shape is not None and shape.ints)
        if t is np.ndarray:
            got = self.array(value, shape.items if shape is not None else None)
            return got if type(got) is str else self.inline(got, shape)
        if t is dict:
            return "{" + ",".join([f"{key}:{_scalar(v, ints) if type(v) in _SCALARS else self.child(k, v, sub)}"
                                    for k, v, sub, ints, key in self.normed(self.entries(value, shape))]) + "}"
        items = shape.items if shape is not None else None
        rows = _flat_rows(value, items) if value and type(value[0]) is dict else None
        return "[" + ",".join(rows if rows is not None else self.listed(value, items, self.inline)) + "]"

    def listed(self, values: list, items: _Shape | None, each) -> list[str]:
        i = 0
        try:
            out = []
            for i, v in enumerate(values):
                out.append(each(v, items))
            return out
        except _Unwritable as exc:
            exc.path.insert(0, f"[{i}]")
            raise

    # --- the layout: structure on lines, flat values on one ------------------------

    @staticmethod
    def item(values: list, i: int) -> Any:
        """values[i] normalised, for the layout's look at a list's ends."""
        v = values[i]
        try:
            return v if type(v) in _SCALARS else _norm(v)
        except _Unwritable as exc:
            exc.path.insert(0, f"[{i % len(values)}]")
            raise

    def child(self, key: str, value: Any, shape: _Shape | None, indent: str | None = None) -> str:
        """An object's value at `key`: on its own lines at `indent`, or (None) on one line."""
        try:
            return self.inline(value, shape) if indent is None else self.block(value, shape, indent, False)
        except _Unwritable as exc:
            exc.path.insert(0, f".{key}")
            raise

    def block(self, value: Any, shape: _Shape | None, indent: str, inline_dicts: bool) -> str:
        """Structure on separate lines, but lists of numbers (equity curves) and small
        flat objects (trades, flags) on one line each, so a report stays readable."""
        if type(value) not in _SCALARS:
            value = _norm(value)
        t = type(value)
        if t in _SCALARS:
            return _scalar(value, shape is not None and shape.ints)
        if t is np.ndarray:
            got = self.array(value, shape.items if shape is not None else None)
            if type(got) is str:
                return got
            value, t = got, list
        inner = indent + "  "
        if t is dict:
            if not value:
                return "{}"
            if not inline_dicts and shape is not None and value.keys() <= shape.props.keys():
                # the common object: under a key (so on lines) and only the schema's keys: one pass
                parts = [f"{inner}{key}: {_scalar(v, ints) if type(v) in _SCALARS else self.child(k, v, sub, inner)}"
                         for k, key, sub, ints in shape.plan() if k in value for v in (value[k],)]
                return "{\n" + ",\n".join(parts) + "\n" + indent + "}"
            entries = self.normed(self.entries(value, shape))
            if inline_dicts and not any(type(e[1]) in _CONTAINERS for e in entries):
                return self.inline(value, shape)
            # most values are scalars: spelled here, not in a call of block
            parts = [f"{inner}{key}: {_scalar(v, ints) if type(v) in _SCALARS else self.child(k, v, sub, inner)}"
                     for k, v, sub, ints, key in entries]
            return "{\n" + ",\n".join(parts) + "\n" + indent + "}"
        if not value:
            return "[]"
        items = shape.items if shape is not None else None
        first, last = (self.item(value, i) for i in (0, -1))
        if type(first) not in _CONTAINERS and type(last) not in _CONTAINERS:
            return self.inline(value, shape)
        rows = None
        if type(first) is dict:
            held = self.rows.get(id(value))
            rows = held[1] if held is not None and held[0] is value else _flat_rows(value, items)
            if type(rows) is str:  # orjson's "{...},{...}": a line each
                return "[\n" + inner + rows.replace("},{", "},\n" + inner + "{") + "\n" + indent + "]"
        if rows is None:
            rows = self.listed(value, items, lambda v, s: self.block(v, s, inner, True))
        return "[\n" + inner + (",\n" + inner).join(rows) + "\n" + indent + "]"

    def spell_trades(self, model: Any, shape: _Shape | None) -> None:
        """A model's trade lists spelled ahead, held for `block` by the list's identity
        while the model is written: each by orjson when `_orjson_rows` takes it, the
        others in one `_flat_rows` (a list's set-up costs more than its rows); lists that
        fit neither are left to `block`."""
        self.rows = {}
        try:
            trade = shape.props["folds"].items.props["trades"].items
            same = shape.props["backtest"].props["trades"].items is trade
        except (AttributeError, KeyError):
            return
        if type(model) is not dict:
            return
        folds = model.get("folds")
        periods = ([model.get("backtest")] if same else []) + (folds if type(folds) is list else [])
        lists = [p["trades"] for p in periods if type(p) is dict and type(p.get("trades")) is list and p["trades"]]
        if not lists or type(lists[0][0]) is not dict:
            return
        entries = self.entries(lists[0][0], trade)
        rest = []
        for trades in lists:  # the usual: orjson's text, split into lines by block
            compact = _orjson_rows(trades, entries) if set(map(type, trades)) == {dict} else None
            if compact is not None:
                self.rows[id(trades)] = (trades, compact)
            else:
                rest.append(trades)
        rows = _flat_rows([r for trades in rest for r in trades], trade) if len(rest) > 1 else None
        if rows is None:
            return
        at = 0
        for trades in rest:
            self.rows[id(trades)] = (trades, rows[at:at + len(trades)])
            at += len(trades)


# A trade's values, column by column: the exact types spelled without conversion
_FLOATS = frozenset({float, np.float64})
_INTS = frozenset({int, np.int64, np.int32})
_ESCAPED = re.compile(r'[\x00-\x1f"\\]')  # what json escapes (ensure_ascii off): nothing else
_CUT = "\x00"  # splits a column's joined text: in no spelled number, no key, no unescaped string


def _prefixed(prefix: str, spelled: str) -> list[str]:
    """"a,b,c" (numbers: no comma inside one) -> [prefix + "a", prefix + "b", ...], in C."""
    return (prefix + spelled.replace(",", _CUT + prefix)).split(_CUT)


def _column(values: list, shape: _Shape | None, prefix: str) -> list[str] | None:
    """One key's values across a list of flat objects, each spelled after `prefix`
    (its `,"key":`), a whole column in a few calls; None when the column holds anything
    but plain floats, ints, strings or bools (the caller then takes the general path,
    value by value)."""
    types = set(map(type, values))
    ints = shape is not None and shape.ints
    if types <= _FLOATS:
        a = np.array(values, dtype=np.float64)
        finite = np.isfinite(a)
        if ints and finite.all() and np.all(a == np.round(a)):
            return _prefixed(prefix, orjson.dumps(a.astype(np.int64), option=_NUMPY).decode()[1:-1])
        # orjson spells the column (null where not finite) in one call
        out = _prefixed(prefix, orjson.dumps(a, option=_NUMPY).decode()[1:-1])
        if ints:  # integer-valued floats among non-integer ones: each on its own
            for i in np.flatnonzero(finite & (a == np.round(a))).tolist():
                out[i] = prefix + int.__repr__(int(a[i]))
        return out
    if types == {str}:
        if _ESCAPED.search("".join(values)) is None:  # the usual: nothing to escape, so quotes suffice
            return (prefix + '"' + ('"' + _CUT + prefix + '"').join(values) + '"').split(_CUT)
        return [prefix + _jstr(v) for v in values]
    if types <= _INTS:
        try:
            a = np.array(values, dtype=np.int64)
        except OverflowError:  # past 64 bits: Python spells it
            return [prefix + int.__repr__(int(v)) for v in values]
        return _prefixed(prefix, orjson.dumps(a, option=_NUMPY).decode()[1:-1])
    if types == {bool}:
        return [prefix + ("true" if v else "false") for v in values]
    return None


def _orjson_rows(rows: list, entries: list) -> str | None:
    """The rows as one orjson call spells them, "{...},{...}" (no brackets), when that is
    the text the column path would give: every row's keys in the schema's order, no
    float in an integer field (json's writer spells 3.0 there as 3), only what orjson
    writes as json does (numpy scalars and other types make it raise), no escape (the
    two may spell one differently), no nested value, and no brace inside a string (the
    rows are told apart at "},{"). None otherwise."""
    order = tuple(e[0] for e in entries)
    if not all(map(order.__eq__, map(tuple, rows))):
        return None
    for e in entries:
        if e[3] and float in set(map(type, map(operator.itemgetter(e[0]), rows))):
            return None
    try:
        text = orjson.dumps(rows).decode()
    except orjson.JSONEncodeError:  # a numpy value, an int past 64 bits, a lone surrogate
        return None
    if "\\" in text or "[" in text[1:-1] or text.count("{") != len(rows):
        return None
    return text[1:-1]


def _flat_rows(rows: list, shape: _Shape | None) -> list[str] | None:
    """A list of flat objects with one set of keys (a period's trades), a line per object,
    built a column at a time; None when the list is not of that kind."""
    if len(rows) < 8 or set(map(type, rows)) != {dict}:  # a short list: setting up columns would cost more
        return None
    keys = rows[0].keys()
    if not all(map(keys.__eq__, map(dict.keys, rows))):
        return None
    entries = _Writer.entries(rows[0], shape)
    if any(type(k) is not str for k in keys) or len(entries) != len(keys):
        return None
    fast = _orjson_rows(rows, entries)
    if fast is not None:
        return fast.replace("},{", "}" + _CUT + "{").split(_CUT)
    names = [e[0] for e in entries]
    columns = []
    values = zip(*map(operator.itemgetter(*names), rows)) if len(names) > 1 else [[r[names[0]] for r in rows]]
    for n, ((_, _, sub, _, key), column) in enumerate(zip(entries, values)):
        col = _column(list(column), sub, ("{" if n == 0 else ",") + key + ":")
        if col is None:
            return None
        columns.append(col)
    return list(map("".join, zip(*columns, itertools.repeat("}", len(rows)))))


def iter_report_json(report: Mapping):
    """The report's JSON text in pieces, one model at a time: the same text as
    `report_to_json`, without ever holding all of it (or all models' values) at once;
    a 1,000-model report is hundreds of MB."""
    shape = _report_shape()
    w = _Writer()
    models = report.get("models") if isinstance(report, Mapping) else None
    if not isinstance(models, (list, tuple)):
        yield w.block(report, shape, "", False) + "\n"
        return
    rest = {k: v for k, v in report.items() if k != "models"}
    top = [(k, v, sub, key) for k, v, sub, _, key in w.entries(rest, shape)]
    order = list(shape.props)
    at = sum(1 for k, _, _, _ in top if k in order and order.index(k) < order.index("models")) \
        if "models" in order else len(top)
    top.insert(at, ("models", None, None, '"models"'))
    model_shape = shape.props["models"].items if "models" in shape.props else None
    # the top level is small: its text is built (and any unwritable value found) first
    text = {}
    for k, v, sub, _ in top:
        if k != "models":
            try:
                text[k] = w.block(v, sub, "  ", False)
            except _Unwritable as exc:
                exc.path.insert(0, f".{k}")
                raise
    yield "{\n"
    for n, (k, _, _, key) in enumerate(top):
        sep = ",\n" if n < len(top) - 1 else "\n"
        if k != "models":
            yield f"  {key}: {text[k]}{sep}"
            continue
        if not models:
            yield f'  "models": []{sep}'
            continue
        yield '  "models": [\n'
        for i, m in enumerate(models):
            w.spell_trades(m, model_shape)
            try:
                piece = w.block(m, model_shape, "    ", True)
            except _Unwritable as exc:
                exc.path[:0] = [".models", f"[{i}]"]
                raise
            yield "    " + piece + (",\n" if i < len(models) - 1 else "\n")
        yield f"  ]{sep}"
    yield "}\n"


def report_to_json(report: Mapping) -> str:
    """The report as JSON text: schema key order, NaN/inf as null, newline at the end."""
    return "".join(iter_report_json(report))


def to_jsonable(report: Mapping) -> dict:
    """The report as JSON values in the schema's key order: numpy scalars and arrays
    as numbers and lists, NaN/inf as null, datetimes as ISO-8601 UTC, paths as str.
    It is the written text parsed back: one set of conversion rules for every reader
    (on one line: the layout is for people, and costs time here)."""
    text = _Writer().inline(report, _report_shape())
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # an integer past 64 bits: the json module reads any
        return json.loads(text)


def write_json_report(path: str | os.PathLike, report: Mapping) -> Path:
    """Write the JSON report atomically, streamed a model at a time into the temp file;
    a failure leaves any old file untouched."""
    pieces = iter_report_json(report)
    first = next(pieces)  # an unwritable top-level value fails before the temp file exists
    with atomic_open(path, "wb") as fh:
        fh.write(first.encode("utf-8"))
        for piece in pieces:
            fh.write(piece.encode("utf-8"))
    return Path(path)
