"""Inline SVG charts of the HTML report: no JavaScript library, no network, a few kB
per chart. Axis frames, min/max downsampling of curves, and the chart kinds."""

from __future__ import annotations

import datetime as dt
import functools
import html
import math

import numpy as np
import orjson

MAX_CURVE_POINTS = 600


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def downsample(y: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of at most `max_points` points that keep each bucket's min and max in
    their order, so spikes and drawdown troughs survive; first and last kept."""
    return downsample_rows(np.asarray(y, dtype=np.float64)[None, :], max_points)[0]


def downsample_rows(ys: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> list[tuple[np.ndarray, np.ndarray]]:
    """`downsample` of each row of a 2-D array (curves over one time axis, e.g. a model's
    return, buy-and-hold and drawdown), the buckets' minima and maxima found for all
    rows in one pass."""
    ys = np.asarray(ys, dtype=np.float64)
    k, n = ys.shape
    if n <= max_points:
        return [(np.arange(n, dtype=np.float64), y) for y in ys]
    inner = ys[:, 1:-1]
    m = inner.shape[1]
    width = -(-m // max(1, (max_points - 2) // 2))
    rows = -(-m // width)
    finite = np.isfinite(inner)
    if finite.all():  # the usual curve: no copies
        lo = hi = inner
    else:  # a non-finite value is never a bucket's extreme
        lo, hi = np.where(finite, inner, np.inf), np.where(finite, inner, -np.inf)
    whole = (rows - 1) * width  # the buckets before the last, which may be short
    base = np.arange(rows) * width
    idx_lo, idx_hi = np.empty((k, rows), dtype=np.int64), np.empty((k, rows), dtype=np.int64)
    idx_lo[:, :-1] = lo[:, :whole].reshape(k, rows - 1, width).argmin(axis=2)
    idx_hi[:, :-1] = hi[:, :whole].reshape(k, rows - 1, width).argmax(axis=2)
    idx_lo[:, -1] = lo[:, whole:].argmin(axis=1)
    idx_hi[:, -1] = hi[:, whole:].argmax(axis=1)
    idx_lo += base
    idx_hi += base
    # buckets are disjoint and in order: each one's two indices, smaller first, are sorted
    pairs = np.sort(np.stack((idx_lo, idx_hi), axis=2), axis=2).reshape(k, -1)
    out = []
    for y, p in zip(ys, pairs):
        idx = p[np.concatenate(([True], p[1:] != p[:-1]))]
        idx = np.concatenate(([0], idx[idx < m] + 1, [n - 1]))
        out.append((idx.astype(np.float64), y[idx]))
    return out


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(0.0 if abs(t) < step * 1e-9 else t)
        t += step
    return ticks


def _tick_label(v: float, step: float, pct: bool) -> str:
    if pct:
        v *= 100
        step *= 100
    digits = next((d for d in range(5) if abs(round(step, d) - step) <= 1e-9 * max(1.0, abs(step))), 4)
    return f"{v:.{digits}f}%" if pct else f"{v:,.{digits}f}"


class _Frame:
    """Data -> pixel mapping of one chart's plot area."""

    def __init__(self, width, height, x0, x1, y0, y1, left=56, right=14, top=12, bottom=26, pad=0.06):
        self.w, self.h = width, height
        self.l, self.r, self.t, self.b = left, width - right, top, height - bottom
        self.x0, self.x1 = x0, (x1 if x1 > x0 else x0 + 1)
        pad = (y1 - y0) * pad if y1 > y0 else max(abs(y0) * 0.1, 1e-3)
        self.y0, self.y1 = y0 - pad, y1 + pad

    def px(self, x):
        if type(x) is not np.ndarray:  # a tick or a marker: plain floats, no array round trip
            x = float(x)
        return self.l + (x - self.x0) / (self.x1 - self.x0) * (self.r - self.l)

    def py(self, y):
        if type(y) is not np.ndarray:
            y = float(y)
        return self.b - (y - self.y0) / (self.y1 - self.y0) * (self.b - self.t)

    def axes(self, pct: bool, x_label: str, y_ticks: int = 5, x_ticks=None) -> list[str]:
        """Grid, y ticks and x ticks; x_ticks: [(value, label)] in place of numeric ones."""
        out = []
        yt = _nice_ticks(self.y0, self.y1, y_ticks)
        step = yt[1] - yt[0] if len(yt) > 1 else 1.0
        for v in yt:
            y = float(self.py(v))
            cls = "zero" if v == 0 else "grid"
            out.append(f'<line class="{cls}" x1="{self.l}" x2="{self.r}" y1="{y:.1f}" y2="{y:.1f}"/>')
            out.append(f'<text class="yt" x="{self.l - 6}" y="{y + 3.5:.1f}">{_tick_label(v, step, pct)}</text>')
        if x_ticks is None:
            xt = _nice_ticks(self.x0, self.x1, 6)
            xstep = xt[1] - xt[0] if len(xt) > 1 else 1.0
            x_ticks = [(v, _tick_label(v, xstep, False)) for v in xt]
        for v, label in x_ticks:
            x = float(self.px(v))
            out.append(f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{self.b}" y2="{self.b + 4}"/>')
            out.append(f'<text class="xt" x="{x:.1f}" y="{self.b + 15}">{_e(label)}</text>')
        out.append(f'<line class="axis" x1="{self.l}" x2="{self.r}" y1="{self.b}" y2="{self.b}"/>')
        if x_label:
            out.append(f'<text class="xl" x="{self.r}" y="{self.h - 1}">{_e(x_label)}</text>')
        return out


def _path_d(fr: _Frame, x: np.ndarray, y: np.ndarray) -> str:
    """"Mx,y x,y ..." in pixels to 0.1: rounded in numpy, spelled by orjson in one call
    (the shortest form of a value rounded to one decimal has one decimal: "56.0")."""
    ok = np.isfinite(y)
    px, py = fr.px(x[ok]), fr.py(y[ok])
    if px.size == 0:
        return ""
    pts = np.round(np.column_stack((px, py)), 1)
    return "M" + orjson.dumps(pts, option=orjson.OPT_SERIALIZE_NUMPY).decode()[2:-2].replace("],[", " ")


def _svg(fr: _Frame, body: list[str], label: str) -> str:
    return (f'<svg class="plot" viewBox="0 0 {fr.w} {fr.h}" role="img" aria-label="{_e(label)}" '
            f'preserveAspectRatio="xMidYMid meet">' + "".join(body) + "</svg>")



DAY = 86_400.0
# tick spacings of a time axis, in days, and how each labels its ticks
_TIME_STEPS = [(1, "%m-%d"), (2, "%m-%d"), (7, "%m-%d"), (14, "%m-%d"), (30.4375, "%Y-%m"),
               (91.3125, "%Y-%m"), (182.625, "%Y-%m"), (365.25, "%Y")]


@functools.lru_cache(maxsize=256)  # the models of a run share their windows, and so their ticks
def time_ticks(t0: float, t1: float, n: int = 6) -> tuple[tuple[float, str], ...]:
    """About n ticks between epoch seconds t0 and t1, at whole days (UTC), labelled by date;
    month and year steps land on the first of the month."""
    return tuple(_time_ticks(t0, t1, n))


def _time_ticks(t0: float, t1: float, n: int) -> list[tuple[float, str]]:
    span_days = max((t1 - t0) / DAY, 1e-9)
    step, fmt = next(((d, f) for d, f in _TIME_STEPS if span_days / d <= n), _TIME_STEPS[-1])
    utc = dt.timezone.utc
    start = dt.datetime.fromtimestamp(t0, utc).replace(hour=0, minute=0, second=0, microsecond=0)
    ticks = []
    if step < 28:
        t = start
        while t.timestamp() <= t1:
            if t.timestamp() >= t0:
                ticks.append((t.timestamp(), t.strftime(fmt)))
            t += dt.timedelta(days=step)
        return ticks
    months = round(step / 30.4375)
    y, m = start.year, start.month
    while True:
        t = dt.datetime(y, m, 1, tzinfo=utc)
        if t.timestamp() > t1:
            return ticks
        if t.timestamp() >= t0:
            ticks.append((t.timestamp(), t.strftime(fmt)))
        m += months
        y, m = y + (m - 1) // 12, (m - 1) % 12 + 1


def stitched_chart(curves: list[dict], boundaries: list[tuple[float, str]], shaded: list[tuple[float, float, str]],
                   width: int, height: int, label: str, pct: bool = True) -> str:
    """Line chart over a time axis: curves [{x (epoch s), y, cls, title, dashed}], vertical
    boundary lines [(t, label)], shaded spans [(t0, t1, label)] (e.g. in-sample folds)."""
    ys = [c["y"][np.isfinite(c["y"])] for c in curves]
    ys = [y for y in ys if y.size]
    lo = min([0.0] + [float(y.min()) for y in ys])
    hi = max([0.0] + [float(y.max()) for y in ys])
    xs = [c["x"] for c in curves if len(c["x"])] + [np.array([a, b]) for a, b, _ in shaded]
    x0 = min(float(x.min()) for x in xs) if xs else 0.0
    x1 = max(float(x.max()) for x in xs) if xs else 1.0
    fr = _Frame(width, height, x0, x1, lo, hi, top=18)
    body = []
    for a, b, text in shaded:
        xa, xb = float(fr.px(a)), float(fr.px(b))
        body.append(f'<rect class="shade" x="{xa:.1f}" y="{fr.t}" width="{max(xb - xa, 0.5):.1f}" '
                    f'height="{fr.b - fr.t}"><title>{_e(text)}</title></rect>')
        body.append(f'<text class="sl" x="{(xa + xb) / 2:.1f}" y="{fr.b - 4}">{_e(text)}</text>')
    body += fr.axes(pct=pct, x_label="", x_ticks=time_ticks(x0, x1))
    for t, text in boundaries:
        x = float(fr.px(t))
        body.append(f'<line class="fb" x1="{x:.1f}" x2="{x:.1f}" y1="{fr.t}" y2="{fr.b}"/>')
        body.append(f'<text class="fl" x="{x + 3:.1f}" y="{fr.t - 5}">{_e(text)}</text>')
    for c in curves:
        dash = ' stroke-dasharray="5 3"' if c.get("dashed") else ""
        body.append(f'<path class="ln {c["cls"]}" d="{_path_d(fr, c["x"], c["y"])}"{dash}>'
                    f'<title>{_e(c["title"])}</title></path>')
    return _svg(fr, body, label)


def forest_plot(rows: list[dict], width: int, label: str) -> str:
    """One row per fold: a point (its Sharpe) and, where known, its 90% interval; rows
    [{name, value, lo, hi, cls, note}]. A zero line marks no edge."""
    vals = [v for r in rows for v in (r.get("value"), r.get("lo"), r.get("hi")) if v is not None and math.isfinite(v)]
    lo, hi = (min(vals + [0.0]), max(vals + [0.0])) if vals else (-1.0, 1.0)
    row_h = 24
    height = 30 + row_h * len(rows)
    fr = _Frame(width, height, lo, hi, 0.0, float(len(rows)), left=64, right=16, top=6, bottom=24, pad=0.0)
    span = (fr.x1 - fr.x0) * 0.05
    fr.x0, fr.x1 = fr.x0 - span, fr.x1 + span
    body = []
    xt = _nice_ticks(fr.x0, fr.x1, 5)
    step = xt[1] - xt[0] if len(xt) > 1 else 1.0
    for v in xt:
        x = float(fr.px(v))
        cls = "zero" if v == 0 else "grid"
        body.append(f'<line class="{cls}" x1="{x:.1f}" x2="{x:.1f}" y1="{fr.t}" y2="{fr.b}"/>')
        body.append(f'<text class="xt" x="{x:.1f}" y="{fr.b + 15}">{_tick_label(v, step, False)}</text>')
    for k, r in enumerate(rows):
        y = fr.t + row_h * (k + 0.5)
        body.append(f'<text class="yt" x="{fr.l - 8}" y="{y + 4:.1f}">{_e(r["name"])}</text>')
        tip = r["name"] + (f": Sharpe {r['value']:.2f}" if r.get("value") is not None else ": no Sharpe")
        if r.get("lo") is not None and r.get("hi") is not None:
            xa, xb = float(fr.px(r["lo"])), float(fr.px(r["hi"]))
            tip += f", 90% interval {r['lo']:.2f} to {r['hi']:.2f}"
            body.append(f'<line class="ci {r["cls"]}" x1="{xa:.1f}" x2="{xb:.1f}" y1="{y:.1f}" y2="{y:.1f}"/>')
            for xe in (xa, xb):
                body.append(f'<line class="ci {r["cls"]}" x1="{xe:.1f}" x2="{xe:.1f}" y1="{y - 5:.1f}" '
                            f'y2="{y + 5:.1f}"/>')
        if r.get("note"):
            tip += f" ({r['note']})"
        if r.get("value") is not None:
            x = float(fr.px(r["value"]))
            if r.get("diamond"):
                body.append(f'<path class="pt {r["cls"]}" d="M{x - 7:.1f},{y:.1f} L{x:.1f},{y - 7:.1f} '
                            f'L{x + 7:.1f},{y:.1f} L{x:.1f},{y + 7:.1f} Z"><title>{_e(tip)}</title></path>')
            else:
                body.append(f'<circle class="pt {r["cls"]}" cx="{x:.1f}" cy="{y:.1f}" r="4.5">'
                            f'<title>{_e(tip)}</title></circle>')
        if r.get("note"):
            body.append(f'<text class="fn" x="{fr.r:.1f}" y="{y - 7:.1f}">{_e(r["note"])}</text>')
    body.append(f'<line class="axis" x1="{fr.l}" x2="{fr.r}" y1="{fr.b}" y2="{fr.b}"/>')
    return _svg(fr, body, label)
