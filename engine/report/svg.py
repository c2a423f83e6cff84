"""Inline SVG charts of the HTML report: no JavaScript library, no network, a few kB
per chart. Axis frames, min/max downsampling of curves, and the chart kinds."""

from __future__ import annotations

import html
import math

import numpy as np

MAX_CURVE_POINTS = 600


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def downsample(y: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of at most `max_points` points that keep each bucket's min and max in
    their order, so spikes and drawdown troughs survive; first and last kept."""
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    if n <= max_points:
        return np.arange(n, dtype=np.float64), y
    inner = y[1:-1]
    width = -(-inner.size // max(1, (max_points - 2) // 2))
    rows = -(-inner.size // width)
    lo = np.full(rows * width, np.inf)
    hi = np.full(rows * width, -np.inf)
    finite = np.isfinite(inner)
    lo[: inner.size] = np.where(finite, inner, np.inf)
    hi[: inner.size] = np.where(finite, inner, -np.inf)
    base = np.arange(rows) * width
    idx_lo = base + lo.reshape(rows, width).argmin(axis=1)
    idx_hi = base + hi.reshape(rows, width).argmax(axis=1)
    idx = np.unique(np.concatenate((idx_lo, idx_hi)))
    idx = idx[idx < inner.size]
    idx = np.concatenate(([0], idx + 1, [n - 1]))
    return idx.astype(np.float64), y[idx]


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
        return self.l + (np.asarray(x, dtype=np.float64) - self.x0) / (self.x1 - self.x0) * (self.r - self.l)

    def py(self, y):
        return self.b - (np.asarray(y, dtype=np.float64) - self.y0) / (self.y1 - self.y0) * (self.b - self.t)

    def axes(self, pct: bool, x_label: str, y_ticks: int = 5) -> list[str]:
        out = []
        yt = _nice_ticks(self.y0, self.y1, y_ticks)
        step = yt[1] - yt[0] if len(yt) > 1 else 1.0
        for v in yt:
            y = float(self.py(v))
            cls = "zero" if v == 0 else "grid"
            out.append(f'<line class="{cls}" x1="{self.l}" x2="{self.r}" y1="{y:.1f}" y2="{y:.1f}"/>')
            out.append(f'<text class="yt" x="{self.l - 6}" y="{y + 3.5:.1f}">{_tick_label(v, step, pct)}</text>')
        xt = _nice_ticks(self.x0, self.x1, 6)
        xstep = xt[1] - xt[0] if len(xt) > 1 else 1.0
        for v in xt:
            x = float(self.px(v))
            out.append(f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{self.b}" y2="{self.b + 4}"/>')
            out.append(f'<text class="xt" x="{x:.1f}" y="{self.b + 15}">{_tick_label(v, xstep, False)}</text>')
        out.append(f'<line class="axis" x1="{self.l}" x2="{self.r}" y1="{self.b}" y2="{self.b}"/>')
        if x_label:
            out.append(f'<text class="xl" x="{self.r}" y="{self.h - 1}">{_e(x_label)}</text>')
        return out


def _path_d(fr: _Frame, x: np.ndarray, y: np.ndarray) -> str:
    ok = np.isfinite(y)
    px, py = fr.px(x[ok]), fr.py(y[ok])
    if px.size == 0:
        return ""
    pts = np.column_stack((px, py)).ravel().tolist()
    return "M" + ("%.1f,%.1f " * px.size % tuple(pts)).rstrip()


def _svg(fr: _Frame, body: list[str], label: str) -> str:
    return (f'<svg class="plot" viewBox="0 0 {fr.w} {fr.h}" role="img" aria-label="{_e(label)}" '
            f'preserveAspectRatio="xMidYMid meet">' + "".join(body) + "</svg>")

