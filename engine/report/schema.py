"""The report schema (its file: schema_file), and `validate_report`, which checks a
report against it plus the cross-field rules the schema cannot state."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from .jsonio import to_jsonable
from .schema_file import SCHEMA_ID, SCHEMA_PATH, load_schema

__all__ = ["SCHEMA_ID", "SCHEMA_PATH", "ReportSchemaError", "load_schema", "validate_report"]


class ReportSchemaError(ValueError):
    """A report that does not match `foldgate.report/1`. `errors` lists every problem,
    each as `path.to.field: what is wrong`; str() gives the first and a count."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"report does not match {SCHEMA_ID}: {errors[0]}{more}")



def _where(path) -> str:
    out = "report"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _semantic_errors(r: dict) -> list[str]:
    """What the schema cannot say: lengths and counts that must agree."""
    errors = []
    for i, m in enumerate(r.get("models") or []):
        if not isinstance(m, dict):
            continue
        where = f"report.models[{i}]"
        folds = m.get("folds") if isinstance(m.get("folds"), list) else []
        periods = [("backtest", m.get("backtest"))] + [(f"folds[{k}]", f) for k, f in enumerate(folds)]
        for name, p in periods:
            if not isinstance(p, dict):
                continue
            eq, ts = p.get("equity"), p.get("timestamps")
            if isinstance(eq, list) and isinstance(ts, list) and len(eq) != len(ts) + 1:
                errors.append(f"{where}.{name}.equity: {len(eq)} values for {len(ts)} timestamps "
                              "(want one more: the starting capital)")
            if isinstance(ts, list) and isinstance(p.get("bars"), int) and p["bars"] != len(ts):
                errors.append(f"{where}.{name}.bars: {p['bars']} but {len(ts)} timestamps")
            bh = p.get("buy_and_hold")
            if isinstance(bh, dict) and isinstance(bh.get("equity"), list) and isinstance(ts, list) \
                    and len(bh["equity"]) != len(ts) + 1:
                errors.append(f"{where}.{name}.buy_and_hold.equity: {len(bh['equity'])} values for {len(ts)} "
                              "timestamps (want one more: the starting capital)")
        for k, f in enumerate(folds):
            if isinstance(f, dict) and f.get("index") != k:
                errors.append(f"{where}.folds[{k}].index: {f.get('index')!r}, want {k} (folds in order)")
        s = m.get("summary")
        if isinstance(s, dict):
            if s.get("folds") != len(folds):
                errors.append(f"{where}.summary.folds: {s.get('folds')!r} but {len(folds)} folds listed")
            if isinstance(s.get("positive_folds"), int) and isinstance(s.get("folds"), int) \
                    and s["positive_folds"] > s["folds"]:
                errors.append(f"{where}.summary.positive_folds: {s['positive_folds']} > folds {s['folds']}")
        e = s.get("evidence") if isinstance(s, dict) else None
        if isinstance(e, dict):
            oos = sum(1 for f in folds if isinstance(f, dict) and not f.get("in_sample"))
            if e.get("oos_folds") != oos:
                errors.append(f"{where}.summary.evidence.oos_folds: {e.get('oos_folds')!r} but {oos} out-of-sample "
                              "folds listed")
            for key in ("fold_sharpe", "fold_sharpe_ci90"):
                if isinstance(e.get(key), list) and len(e[key]) != e.get("oos_folds"):
                    errors.append(f"{where}.summary.evidence.{key}: {len(e[key])} values for "
                                  f"{e.get('oos_folds')!r} out-of-sample folds")
        decisions = m.get("decisions")
        if isinstance(decisions, dict) and m.get("profile") in decisions and m.get("decision") is not None \
                and decisions[m["profile"]] != m["decision"]:
            errors.append(f"{where}.decision: {m['decision']!r} but decisions.{m['profile']} (the profile used) is "
                          f"{decisions[m['profile']]!r}")
        if m.get("symbol") is None and not m.get("error"):
            errors.append(f"{where}.symbol: null is only allowed for a model that failed (with an error)")
        if m.get("error") and m.get("decision") is not None:
            errors.append(f"{where}.decision: {m['decision']!r} for a model that failed ({m['error']}); want null")
    return errors


# Arrays with one item per bar or per trade: jsonschema spends ~10 us per item, which
# made a 50-model report take tens of seconds to validate. Their items are checked by
# `_quick_ok` instead, and only the items it rejects go through jsonschema, for the message.
PER_ITEM_ARRAYS = ("equity", "timestamps", "trades")
_TYPES = {"number": lambda v: type(v) in (int, float), "integer": lambda v: type(v) is int,
          "string": lambda v: type(v) is str, "null": lambda v: v is None,
          "boolean": lambda v: type(v) is bool, "object": lambda v: type(v) is dict,
          "array": lambda v: type(v) is list}
_QUICK_KEYWORDS = {"$ref", "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum",
                   "exclusiveMaximum", "pattern", "minLength", "required", "properties",
                   "additionalProperties", "title", "description"}


@functools.lru_cache(maxsize=None)
def _pattern(p: str) -> re.Pattern:
    return re.compile(p)


def _quick_ok(value: Any, node: Any, root: dict) -> bool:
    """A conservative validator for flat items: True only where jsonschema would agree;
    a keyword it does not know makes it answer False (and jsonschema decide)."""
    if node is True:
        return True
    if not isinstance(node, dict) or not _QUICK_KEYWORDS.issuperset(node):
        return False
    if "$ref" in node:
        target = root
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        if not _quick_ok(value, target, root):
            return False
    types = node.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        if not any(t in _TYPES and _TYPES[t](value) for t in types):
            return False
    if "enum" in node and not any(type(value) is type(e) and value == e for e in node["enum"]):
        return False
    if "const" in node and not (type(value) is type(node["const"]) and value == node["const"]):
        return False
    if type(value) in (int, float):
        if "minimum" in node and not value >= node["minimum"]:
            return False
        if "maximum" in node and not value <= node["maximum"]:
            return False
        if "exclusiveMinimum" in node and not value > node["exclusiveMinimum"]:
            return False
        if "exclusiveMaximum" in node and not value < node["exclusiveMaximum"]:
            return False
    elif type(value) is str:
        if "minLength" in node and len(value) < node["minLength"]:
            return False
        if "pattern" in node and not _pattern(node["pattern"]).search(value):
            return False
    elif type(value) is dict:
        props = node.get("properties", {})
        if any(k not in value for k in node.get("required", [])):
            return False
        if node.get("additionalProperties") is False and any(k not in props for k in value):
            return False
        if not all(_quick_ok(v, props[k], root) for k, v in value.items() if k in props):
            return False
    return True


def _split_per_item(schema: dict) -> tuple[dict, dict]:
    """(the schema less `items` on the per-item arrays, {array name: its items schema})."""
    light = json.loads(json.dumps(schema))
    period = light["$defs"]["period"]["properties"]
    return light, {name: period[name].pop("items") for name in PER_ITEM_ARRAYS}


def _per_item_errors(data: dict, schema: dict, items: dict, jsonschema) -> list[str]:
    errors = []
    models = data.get("models")
    for i, m in enumerate(models if isinstance(models, list) else []):
        if not isinstance(m, dict):
            continue
        folds = m.get("folds") if isinstance(m.get("folds"), list) else []
        named = [("backtest", m.get("backtest"))] + [(f"folds[{k}]", f) for k, f in enumerate(folds)]
        for name, p in named:
            if not isinstance(p, dict):
                continue
            for arr in PER_ITEM_ARRAYS:
                values = p.get(arr)
                if not isinstance(values, list):
                    continue
                node = items[arr]
                for j, v in enumerate(values):
                    if _quick_ok(v, node, schema):
                        continue
                    check = jsonschema.Draft202012Validator({**node, "$defs": schema["$defs"]})
                    for err in check.iter_errors(v):
                        where = _where(err.absolute_path)[len("report"):]
                        errors.append(f"report.models[{i}].{name}.{arr}[{j}]{where}: {_short(err.message)}")
    return errors


def _short(message: str, limit: int = 240) -> str:
    # jsonschema quotes the whole offending value; a fold with its curve is megabytes
    return message if len(message) <= limit else message[: limit - 24] + " ... " + message[-16:]


def _leaves(err) -> list:
    """The errors that explain `err`: a oneOf failure is replaced by the errors of its
    non-null alternatives ("... is not of type 'null'" says nothing useful)."""
    if not err.context:
        return [err]
    real = [c for c in err.context if not (c.validator == "type" and c.validator_value == "null")]
    return [leaf for c in (real or err.context) for leaf in _leaves(c)]


def _describe(err) -> str:
    if err.validator == "not" and err.validator_value == {}:
        return f"{_where(err.absolute_path)}: not allowed here"  # the schema's way to bar a key
    return f"{_where(err.absolute_path)}: {_short(err.message)}"


def validate_report(report: Mapping) -> None:
    """Check `report` (as it would be written) against the schema and the cross-field
    rules; raise ReportSchemaError listing every problem by its path."""
    try:
        import jsonschema  # lazy: a test dependency, not a runtime one
    except ImportError as exc:  # a test dependency, not a runtime one
        raise RuntimeError("validate_report needs the jsonschema package (pip install jsonschema)") from exc

    data = to_jsonable(report)
    schema = load_schema()
    light, items = _split_per_item(schema)
    errors = sorted(_describe(leaf) for err in jsonschema.Draft202012Validator(light).iter_errors(data)
                    for leaf in _leaves(err))
    errors += _per_item_errors(data, schema, items, jsonschema)
    errors += _semantic_errors(data)
    if errors:
        raise ReportSchemaError(list(dict.fromkeys(errors)))
