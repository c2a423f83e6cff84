"""Plain references for the report writers: the seed's way, kept as the baseline the
fast writers are checked against (tests/test_report_equiv.py) and timed against
(benchmarks/report_write.py).

- JSON: every value turned into Python JSON values by one recursive function, then
  the text built by `json` (its encoder spells every number and string), line layout
  as docs/report.md keeps it: structure on lines, numeric lists and flat objects on one.
- HTML: the page drawn from the report in JSON values (curves as lists of floats and
  ISO strings), as the page was drawn before it read the pipeline's arrays.
- Terminal: rich.Table for the summary and stress tables, one print per line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import enum
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.report.jsonio import _report_shape  # the schema's key order and int fields, compiled once


def _iso_datetime(t) -> str:
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
        return [naive_plain(v, None) for v in a.tolist()]
    values = a.tolist()
    if ints and all(math.isfinite(x) and x == round(x) for x in values):
        return [int(x) for x in values]
    return [x if math.isfinite(x) else None for x in values]


class Unwritable(TypeError):
    pass


def naive_plain(value: Any, shape) -> Any:
    """`value` as JSON values, ordered and typed after `shape` (None: no schema here)."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        value = float(value)
        return int(value) if shape is not None and shape.ints and value.is_integer() else value
    if isinstance(value, enum.Enum):
        return naive_plain(value.value, shape)
    if value is None or isinstance(value, (bool, str)):
        return value if type(value) in (bool, str) or value is None else str(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.floating):
        return naive_plain(float(value), shape)
    if isinstance(value, _dt.datetime | _dt.date):
        return _iso_datetime(value)
    if isinstance(value, np.datetime64):
        return _iso_datetime64(np.asarray([value]))[0]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    items = shape.items if shape is not None else None
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return naive_plain(value[()], shape)
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
        out = {key: naive_plain(value[key], sub) for key, sub in props.items() if key in value}
        for key in sorted((k for k in value if k not in props), key=str):
            out[str(key)] = naive_plain(value[key], extra)
        return out
    if isinstance(value, (list, tuple)):
        return [naive_plain(v, items) for v in value]
    raise Unwritable(type(value).__name__)


def naive_to_jsonable(report: Mapping) -> dict:
    return naive_plain(report, _report_shape())


ONE_LINE = (",", ":")  # a value on one line (a curve, a trade, a flag) is written compactly


def _dump(value: Any, indent: str, inline_dicts: bool) -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        if inline_dicts and all(not isinstance(v, (dict, list)) for v in value.values()):
            return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=ONE_LINE)
        inner = indent + "  "
        parts = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {_dump(v, inner, False)}" for k, v in value.items()]
        return "{\n" + ",\n".join(parts) + "\n" + indent + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        if not isinstance(value[0], (dict, list)) and not isinstance(value[-1], (dict, list)):
            return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=ONE_LINE)
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + _dump(v, inner, True) for v in value) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def naive_iter_report_json(report: Mapping):
    """The report's text a model at a time, each model converted and dumped on its own."""
    shape = _report_shape()
    models = report.get("models") or []
    top = naive_plain({k: v for k, v in report.items() if k != "models"}, shape)
    order = list(shape.props)
    keys = list(top)
    keys.insert(sum(1 for k in keys if k in order and order.index(k) < order.index("models")), "models")
    yield "{\n"
    for n, key in enumerate(keys):
        sep = ",\n" if n < len(keys) - 1 else "\n"
        if key != "models":
            yield f"  {json.dumps(key)}: {_dump(top[key], '  ', False)}{sep}"
        elif not models:
            yield f'  "models": []{sep}'
        else:
            yield '  "models": [\n'
            for i, m in enumerate(models):
                text = _dump(naive_plain(m, shape.props["models"].items), "    ", True)
                yield "    " + text + (",\n" if i < len(models) - 1 else "\n")
            yield f"  ]{sep}"
    yield "}\n"


def naive_report_to_json(report: Mapping) -> str:
    return "".join(naive_iter_report_json(report))


# --- HTML -------------------------------------------------------------------------


def naive_downsample(y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """engine.report.svg.downsample one curve at a time: each bucket's min and max by
    argmin/argmax, the indices made unique by np.unique."""
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    if n <= max_points:
        return np.arange(n, dtype=np.float64), y
    inner = y[1:-1]
    width = -(-inner.size // max(1, (max_points - 2) // 2))
    idx = []
    for start in range(0, inner.size, width):
        chunk = inner[start:start + width]
        finite = np.isfinite(chunk)
        idx.append(start + int(np.argmin(np.where(finite, chunk, np.inf))))
        idx.append(start + int(np.argmax(np.where(finite, chunk, -np.inf))))
    idx = np.concatenate(([0], np.unique(idx) + 1, [n - 1]))
    return idx.astype(np.float64), y[idx]


def naive_path_d(fr, x: np.ndarray, y: np.ndarray) -> str:
    """An SVG path's d, each point formatted with "%.1f,%.1f"."""
    ok = np.isfinite(y)
    px, py = fr.px(x[ok]), fr.py(y[ok])
    if px.size == 0:
        return ""
    return "M" + " ".join("%.1f,%.1f" % (a, b) for a, b in zip(px.tolist(), py.tolist()))


@contextlib.contextmanager
def plain_charts():
    """The page's charts thinned a curve at a time and their paths formatted a point at a time."""
    from engine.report import html, svg

    saved = html.downsample_rows, svg._path_d
    html.downsample_rows = lambda ys, max_points=svg.MAX_CURVE_POINTS: [naive_downsample(y, max_points) for y in ys]
    svg._path_d = naive_path_d
    try:
        yield
    finally:
        html.downsample_rows, svg._path_d = saved


def naive_render_html(report: Mapping) -> str:
    """The page from the report in JSON values (trades left out: the page shows counts),
    its charts by the plain thinning and path formatting above."""
    from engine.report.html import page_html

    def strip(p):
        return {k: v for k, v in p.items() if k != "trades"} if isinstance(p, Mapping) else p

    models = []
    for m in report.get("models") or []:
        m = dict(m)
        m["backtest"] = strip(m.get("backtest"))
        m["folds"] = [strip(f) for f in m.get("folds") or []]
        models.append(m)
    with plain_charts():
        return page_html(naive_to_jsonable({**report, "models": models}))


# --- terminal ---------------------------------------------------------------------


def naive_table(con, title: str, columns: list[tuple[str, str]], rows: list[list[tuple[str, str | None]]]) -> None:
    """cli.output.print_table as rich.Table draws it, a cell at a time."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    for head, justify in columns:
        table.add_column(head, justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(*(Text(text, style=style or "") for text, style in row))
    if not con.is_terminal and not os.environ.get("COLUMNS"):  # a pipe or a file: drawn whole
        old, con.width = con.width, 100_000
        try:
            con.print(table)
        finally:
            con.width = old
        return
    con.print(table)


@contextlib.contextmanager
def rich_tables():
    """cli.output's tables drawn by rich.Table while inside."""
    from cli import output

    fast = output.print_table
    output.print_table = naive_table
    try:
        yield
    finally:
        output.print_table = fast


def naive_print_validate(report: dict) -> None:
    """cli.output.print_validate above 10 models, with rich.Table tables and a print per
    line."""
    from cli import output

    with rich_tables():
        con = output.console()
        s = report["settings"]
        profile = s.get("profile") or "evidence"
        con.print(f"foldgate validate: quick backtest {s['quick_days']} days, walk-forward {s['days']} days x "
                  f"{s['walk_forward']} folds, capital {s['capital']:,.0f}", markup=False)
        con.print(f"  profile {profile} (the other profile's verdict in 'Other'), device "
                  f"{s.get('device_used') or s['device']}", markup=False)
        models = output.print_summary_table(con, report, profile)
        output.print_stress_table(con, report)
        for e in models:
            con.print(f"{output.model_label(e)}: {e['decision'] or output.undecided_label(e)}", markup=False)
            for reason in e["reasons"] or ([e["error"]] if e["error"] else []):
                output.print_reason(con, reason)
