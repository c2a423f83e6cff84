"""Synthetic `foldgate.report/2` reports, and a headless-Chromium page loader.

`make_report` builds reports shaped like the pipeline's output (numpy arrays and
scalars included, NaN where a metric is undefined) without running a simulation, so
report, CLI and browser tests can use realistic sizes cheaply. The metrics are
computed from the generated curves and trades with the formulas of docs/design.md 6, so
tables and charts agree with each other.

`load_in_chromium` opens a file in headless Chromium over the DevTools protocol
(a pipe, no port, no network) and returns the console errors, uncaught exceptions,
the load time and a screenshot.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

HOUR = timedelta(hours=1)
BARS_PER_YEAR_CRYPTO_1H = 8766.0
# The rotation makes every decision, gating class and failure mode appear in any
# report of 7 models or more; smaller reports take a prefix of it.
PROFILES = ["LIVE", "PAPER", "RETRAIN", "DROP", "GATE_DROP", "ERROR", "PAPER_REVIEW"]
SYMBOLS = ["BTCUSD", "ETHUSD", "UNIUSD", "SOLUSD", "AAPL", "MSFT", "LINKUSD", "AVAXUSD", "NVDA",
           "DOGEUSD", "LTCUSD", "SPY", "AAVEUSD", "DOTUSD", "TSLA", "XRPUSD"]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _symbol(i: int) -> str:
    base = SYMBOLS[i % len(SYMBOLS)]
    return base if i < len(SYMBOLS) else f"{base}{i // len(SYMBOLS)}"


# Annualised Sharpe of each fold per profile, cycled over the folds; chosen so the
# rules of docs/design.md 8 land on the profile (the seed's UNIUSD example is RETRAIN).
FOLD_SHARPES = {
    "LIVE": [1.8, 2.4, 1.5, 2.9, 2.1],
    "PAPER": [1.5, 2.2, 0.8, -0.7, -1.1],
    "PAPER_REVIEW": [2.0, 1.6, 2.6, 1.2, 2.2],
    "RETRAIN": [-3.67, 2.36, -1.5, 0.9, -2.3],
    "DROP": [-2.5, -1.8, -3.1, -0.9, -2.2],
}


def _bar_returns(target_sharpe: float, in_market: np.ndarray, vol: float, bars_per_year: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Returns that are zero when flat and whose Sharpe (ddof 1, annualised) is exactly the target."""
    n, n_in = in_market.size, int(in_market.sum())
    if n_in < 2:
        return np.zeros(n)
    z = rng.standard_normal(n_in)
    z = (z - z.mean()) / z.std(ddof=1)
    s = target_sharpe / np.sqrt(bars_per_year)
    a = n_in / n
    # mean = a*m and var = (n_in*m^2*(1-a) + vol^2*(n_in-1)) / (n-1); solve mean/std = s for m.
    coef = a * a - s * s * n_in * (1 - a) / (n - 1)
    m = np.sign(s) * np.sqrt(s * s * vol * vol * (n_in - 1) / (n - 1) / coef)
    r = np.zeros(n)
    r[in_market] = m + vol * z
    return r


def _fold_sharpe(profile: str, k: int, rng: np.random.Generator) -> float:
    seq = FOLD_SHARPES[profile]
    return seq[k % len(seq)] + 0.05 * rng.standard_normal()


def _metrics(equity: np.ndarray, pnls: np.ndarray, turnover: float,
             exposure: float, bars_per_year: float) -> dict:
    """docs/design.md 6, from one curve and its trades; NaN where the contract says null."""
    cap = equity[0]
    r = equity[1:] / equity[:-1] - 1.0
    peak = np.maximum.accumulate(np.maximum(equity, cap))
    sd = r.std(ddof=1) if r.size > 1 else 0.0
    downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    gp = float(pnls[pnls > 0].sum())
    gl = float(-pnls[pnls < 0].sum())
    n = int(pnls.size)
    return {
        "total_return": np.float64(equity[-1] / cap - 1.0),
        "max_drawdown": np.float64(np.max(1.0 - equity / peak)),
        "sharpe": np.float64(r.mean() / sd * np.sqrt(bars_per_year) if sd > 0 else 0.0),
        "sortino": np.float64(r.mean() / downside * np.sqrt(bars_per_year) if downside > 0 else 0.0),
        "n_trades": np.float64(n),  # the kernel returns float64 columns; the report makes them ints
        "win_rate": np.float64((pnls > 0).sum() / n if n else np.nan),
        "gross_profit": np.float64(gp),
        "gross_loss": np.float64(gl),
        "profit_factor": np.float64(gp / gl if gl > 0 else np.nan),
        "exposure": np.float64(exposure),
        "turnover": np.float64(turnover),
        "clipped_shorts": np.float64(0.0),
        "bars": np.float64(equity.size - 1),
    }


def _period(start: datetime, bars: int, sharpe: float, rng: np.random.Generator, capital: float,
            bars_per_year: float, price0: float, trades: bool, index: int | None,
            in_sample: bool) -> dict:
    times = [start + i * HOUR for i in range(bars)]
    # The strategy is in the market about 60% of the time; flat bars keep equity still.
    in_market = rng.random(bars) < 0.6
    rets = _bar_returns(sharpe, in_market, 0.004, bars_per_year, rng)
    equity = capital * np.concatenate(([1.0], np.cumprod(1.0 + rets)))
    price = price0 * np.cumprod(1.0 + 0.006 * rng.standard_normal(bars))
    trade_rows = []
    if trades:
        # Trades tile the in-market stretches: a run of in-market bars is one trade.
        edges = np.flatnonzero(np.diff(np.concatenate(([0], in_market.astype(np.int8), [0]))))
        for a, b in zip(edges[::2], edges[1::2]):
            b = min(b, bars - 1)
            if b <= a:
                continue
            pnl = float(equity[b + 1] - equity[a])
            commission = float(abs(equity[a]) * 2e-4)
            trade_rows.append({
                "entry_time": _iso(times[a]), "exit_time": _iso(times[b]),
                "direction": np.int64(1 if rng.random() < 0.8 else -1),
                "entry_price": np.float64(price[a]), "exit_price": np.float64(price[b]),
                "pnl": pnl, "commission": commission,
            })
    pnls = np.array([t["pnl"] for t in trade_rows], dtype=np.float64)
    m = _metrics(equity, pnls, turnover=2.0 * len(trade_rows) * 0.95,
                 exposure=float(in_market.mean()), bars_per_year=bars_per_year)
    out = {}
    if index is not None:
        out["index"] = np.int64(index)
    # buy-and-hold over the same bars: all in from the first bar, one trade
    hold = capital * np.concatenate(([1.0], price / price[0]))
    hold_m = _metrics(hold, np.array([hold[-1] - hold[0]]), turnover=2.0, exposure=1.0,
                      bars_per_year=bars_per_year)
    out.update({
        "start": _iso(times[0]), "end": _iso(times[-1]), "bars": np.int64(bars),
        "in_sample": in_sample, "metrics": m, "equity": equity,
        "timestamps": np.datetime64(start.replace(tzinfo=None), "s") + np.arange(bars) * np.timedelta64(1, "h"),
        "trades": trade_rows, "buy_and_hold": {"metrics": hold_m, "equity": hold},
    })
    return out


def _summary(folds: list[dict], n_models: int) -> dict:
    sh = np.array([f["metrics"]["sharpe"] for f in folds], dtype=np.float64)
    rt = np.array([f["metrics"]["total_return"] for f in folds], dtype=np.float64)
    pos = int((rt > 0).sum())
    return {
        "folds": len(folds), "positive_folds": pos,
        "sharpe_min": sh.min(), "sharpe_max": sh.max(), "sharpe_mean": sh.mean(),
        "sharpe_std": sh.std(ddof=1) if sh.size > 1 else np.nan,
        "return_min": rt.min(), "return_max": rt.max(), "return_mean": rt.mean(),
        "psr": float(np.clip(0.5 + 0.1 * sh.mean(), 0.0, 1.0)),
        "dsr": None,
        "in_sample_folds": sum(bool(f["in_sample"]) for f in folds),
        "evidence": _evidence(folds),
    }


def _evidence(folds: list[dict]) -> dict:
    """summary.evidence by the real statistics of engine.metrics, out-of-sample folds only."""
    from engine.metrics import evidence_summary, per_bar_sharpe

    oos = [f for f in folds if not f["in_sample"]]
    rets = [np.diff(f["equity"]) / f["equity"][:-1] for f in oos]
    hold = [np.diff(f["buy_and_hold"]["equity"]) / f["buy_and_hold"]["equity"][:-1] for f in oos]
    r = np.concatenate(rets) if rets else np.zeros(0)
    h = np.concatenate(hold) if hold else np.zeros(0)
    e = evidence_summary(r, [x.size for x in rets], BARS_PER_YEAR_CRYPTO_1H)
    ann = math.sqrt(BARS_PER_YEAR_CRYPTO_1H)
    if h.size:
        e["buy_and_hold"] = {"return": float(np.prod(1 + h) - 1), "sharpe": per_bar_sharpe(h) * ann}
        e["excess_sharpe"] = per_bar_sharpe(r - h) * ann
    return e


def _decide(summary: dict, classification: str) -> tuple[str, list[str]]:
    """docs/design.md 8 (a test double; engine/decision.py is the real one)."""
    k, p = summary["folds"], summary["positive_folds"] / summary["folds"]
    sd = summary["sharpe_std"]
    sd = float("inf") if sd is None or not np.isfinite(sd) else float(sd)
    line = f"{summary['positive_folds']}/{k} positive folds; Sharpe std {sd:.2f}"
    if summary["return_mean"] < 0 and p <= 0.2:
        d, why = "DROP", f"consistent losses: mean fold return {summary['return_mean']:.2%}; investigate the data"
    elif p >= 0.8 and sd < 1.0:
        d, why = "LIVE", f"{line} < 1.0"
    elif p >= 0.6 and sd <= 2.0:
        d, why = "PAPER", f"{line} <= 2.0"
    else:
        d, why = "RETRAIN", f"{line}: not consistent enough across periods"
    reasons = [why]
    if classification == "REVIEW" and d == "LIVE":
        d = "PAPER"
        reasons.append("gating REVIEW caps the decision at PAPER")
    return d, reasons


def _gating(profile: str, rng: np.random.Generator, history: int = 40) -> dict:
    if profile == "GATE_DROP":
        return {"classification": "DROP",
                "metrics": {"fitness": 0.41, "profit_factor": 1.12, "consistency": np.nan, "max_drawdown": 0.46},
                "flags": [{"code": "NON_FINITE_METRIC", "message": "consistency is NaN; classified DROP"},
                          {"code": "INFLATED_PROXY_DD", "message": "training max_dd 0.46 > 0.30: the inflated proxy of reward_scale 0.1"},
                          {"code": "CHECKPOINT_BETTER", "message": "checkpoint 20 has fitness 0.52, 0.11 above the final 0.41"}],
                "use_checkpoint": True, "checkpoint_index": np.int64(history // 2),
                "checkpoint": f"checkpoints/step_{history // 2 * 1000}.pt"}
    if profile == "PAPER_REVIEW":
        return {"classification": "REVIEW",
                "metrics": {"fitness": 0.58, "profit_factor": 1.42, "consistency": 0.71, "max_drawdown": 0.12},
                "flags": [{"code": "PERCENT_UNITS", "message": "consistency 71.0 read as a percent (0.71)"}],
                "use_checkpoint": False, "checkpoint_index": None, "checkpoint": None}
    return {"classification": "APPROVED",
            "metrics": {"fitness": np.float64(0.70 + 0.2 * rng.random()), "profit_factor": np.float64(1.8 + rng.random()),
                        "consistency": np.float64(0.85 + 0.1 * rng.random()), "max_drawdown": np.float64(0.03 + 0.05 * rng.random())},
            "flags": [{"code": "PROXY_MAX_DD", "message": "training max_dd is a proxy (reward volatility), not equity drawdown"}],
            "use_checkpoint": False, "checkpoint_index": None, "checkpoint": None}


def make_report(n_models: int = 7, n_folds: int = 5, bars_per_fold: int = 240, backtest_bars: int = 240,
                seed: int = 0, trades: bool = True, command: str = "validate") -> dict:
    """A report dict as the pipeline builds it (numpy values, NaN metrics, datetime64 timestamps).

    `validate`: models follow PROFILES in turn: LIVE, PAPER, RETRAIN, DROP (consistent
    losses), a gating DROP that was not backtested, a model that failed to load, and a
    REVIEW model capped at PAPER. Fold 0 of every third model overlaps training.
    `backtest`: no archive and no gating; with n_folds=0 a plain backtest without
    walk-forward, so no summary and no decision."""
    if command not in ("validate", "backtest"):
        raise ValueError(f"command {command!r}")
    gated = command == "validate"
    rng = np.random.default_rng(seed)
    capital = 100_000.0
    end = datetime(2025, 6, 1, tzinfo=timezone.utc)
    wf_start = end - n_folds * bars_per_fold * HOUR
    bt_start = end - backtest_bars * HOUR
    models = []
    for i in range(n_models):
        profile = PROFILES[i % len(PROFILES)]
        sym = _symbol(i)
        asset = "crypto" if sym.rstrip("0123456789").endswith("USD") else "us_equity"
        sha = f"{rng.integers(0, 2**63):016x}" * 4
        m = {"symbol": sym, "timeframe": "1Hour", "asset_class": asset,
             "model_path": f"training_archives/20250601_120000_extract/models/rl_symbols/{sym}_1Hour.pt",
             "model_sha256": sha, "long_only": asset == "crypto", "error": None, "gating": None,
             "backtest": None, "folds": [], "summary": None, "profile": "evidence", "decision": None,
             "decisions": {"evidence": None, "seed": None}, "flags": [], "reasons": []}
        if profile == "ERROR":
            error = f"cannot load {sym}_1Hour.pt: actor layer 2 has shape (3, 32), expected (3, 64)"
            m.update(model_sha256=None, error=error, gating=_gating("LIVE", rng) if gated else None, reasons=[error])
            models.append(m)
            continue
        if not gated:
            profile = {"GATE_DROP": "DROP", "PAPER_REVIEW": "LIVE"}.get(profile, profile)
        else:
            m["gating"] = _gating(profile, rng)
        if profile == "GATE_DROP":
            m.update(decision="DROP", decisions={"evidence": "DROP", "seed": "DROP"}, reasons=["gating DROP: consistency is NaN; not backtested (use --force to backtest)"])
            models.append(m)
            continue
        price0 = float(50 + 1000 * rng.random())
        folds = [_period(wf_start + k * bars_per_fold * HOUR, bars_per_fold, _fold_sharpe(profile, k, rng),
                         rng, capital, BARS_PER_YEAR_CRYPTO_1H, price0, trades, k, in_sample=(k == 0 and i % 3 == 0))
                 for k in range(n_folds)]
        m["folds"] = folds
        m["backtest"] = _period(bt_start, backtest_bars, _fold_sharpe(profile, n_folds - 1, rng), rng,
                                capital, BARS_PER_YEAR_CRYPTO_1H, price0, trades, None, in_sample=False)
        if not folds:
            models.append(m)
            continue
        m["summary"] = _summary(folds, n_models)
        m["summary"]["dsr"] = m["summary"]["evidence"]["dsr"]
        m["decision"], m["reasons"] = _decide(m["summary"], m["gating"]["classification"] if gated else None)
        # the other profile disagrees now and then, as the real two do
        m["decisions"] = {"evidence": m["decision"], "seed": "RETRAIN" if i % 2 else m["decision"]}
        if m["summary"]["in_sample_folds"]:
            flag = {"code": "IN_SAMPLE_FOLDS", "message": f"{m['summary']['in_sample_folds']} fold(s) overlap "
                    "training: shown, left out of the evidence"}
            m["flags"].append(flag)
            m["reasons"].append(f"{flag['code']}: {flag['message']}")
        models.append(m)
    return {
        "schema": "foldgate.report/2",
        "created": "2025-06-01T12:34:56Z",
        "command": command,
        "versions": {"foldgate": "0.1.0", "python": "3.11.9", "numpy": np.__version__, "numba": "0.61.0",
                     "pyarrow": "19.0.0", "torch": "2.6.0"},
        "settings": {"days": max(1, (n_folds * bars_per_fold if n_folds else backtest_bars) // 24),
                     "walk_forward": n_folds or None,
                     "quick_days": max(1, backtest_bars // 24) if gated else None, "capital": capital,
                     "commission_bps": 2.0, "slippage_bps": 1.0, "fill": "next-open", "end": _iso(end),
                     "store": "data/bars", "source": "store", "long_only": None,
                     "bars_per_year": BARS_PER_YEAR_CRYPTO_1H, "device": "cpu",
                     "thresholds": None if not gated else {"approved": {"fitness": 0.70, "profit_factor": 1.8, "consistency": 0.85, "max_drawdown": 0.08},
                                    "review": {"fitness": 0.50, "profit_factor": 1.3, "consistency": 0.65, "max_drawdown": 0.15},
                                    "checkpoint": {"min_improvement": 0.05}, "proxy": {"inflated_max_drawdown": 0.30}}},
        "archive": None if not gated else {
            "path": "Alpaca_trading_trained_20250601_120000.zip", "stamp": "20250601_120000",
            "extract_dir": "training_archives/20250601_120000_extract"},
        "models": models,
    }


def add_stress(report: dict) -> dict:
    """Each model's `stress` block as --stress writes it: four scenarios from its folds
    (figures made up, shapes real)."""
    from engine.stress import SCENARIOS

    rng = np.random.default_rng(1)
    for m in report["models"]:
        folds = m.get("folds") or []
        if not folds:
            continue
        base = [float(f["metrics"]["total_return"]) for f in folds]
        sharpes = [float(f["metrics"]["sharpe"]) for f in folds]
        rows = []
        for name, label, mult, late in ((sc.name, sc.label, sc.cost_multiplier, sc.late_fill) for sc in SCENARIOS):
            cut = 0.0 if name == "base" else 0.002 * mult + 0.001 * late
            rets = [r - cut for r in base]
            srs = [s - 10 * cut for s in sharpes]
            rows.append({"scenario": name, "label": label, "cost_multiplier": mult, "late_fill": late,
                         "backtest_return": float(m["backtest"]["metrics"]["total_return"]) - cut,
                         "backtest_sharpe": float(m["backtest"]["metrics"]["sharpe"]) - 10 * cut,
                         "psr0": float(rng.random()), "psr_hurdle": float(rng.random()),
                         "sr_annual": float(np.mean(srs)), "fold_returns": rets, "fold_sharpes": srs,
                         "positive_folds": int(sum(r > 0 for r in rets)), "return_mean": float(np.mean(rets)),
                         "sharpe_mean": float(np.mean(srs)),
                         "change": {"psr0": -cut, "psr_hurdle": -cut, "sr_annual": -10 * cut,
                                    "return_mean": -cut, "sharpe_mean": -10 * cut}})
        m["stress"] = {"scenarios": rows}
    report["settings"]["stress"] = True
    return report



# --- headless Chromium over the DevTools protocol ---------------------------------

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    env = os.environ.get("FOLDGATE_CHROMIUM")
    if env:
        return env
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLoad:
    errors: list[str] = field(default_factory=list)     # console errors, exceptions, CSP violations
    messages: list[str] = field(default_factory=list)   # every console / log line
    load_s: float = 0.0                                  # navigate -> load event + first frame
    screenshot: bytes = b""                              # PNG of the viewport
    title: str = ""
    dialogs: list[str] = field(default_factory=list)    # alert/confirm/prompt texts (answered)
    values: list = field(default_factory=list)          # results of `expressions`, in order


class _Pipe:
    """The DevTools protocol over --remote-debugging-pipe: NUL-terminated JSON on fds 3/4."""

    def __init__(self, wfd: int, rfd: int, deadline: float):
        self.wfd, self.rfd, self.deadline = wfd, rfd, deadline
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def recv(self) -> dict:
        import select
        while b"\0" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def _keep(self, msg: dict) -> None:
        self.events.append(msg)
        if msg.get("method") == "Page.javascriptDialogOpening":
            # an unanswered alert() blocks the page, and the load event with it
            self.send("Page.handleJavaScriptDialog", {"accept": True}, msg.get("sessionId"))

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        want = self.send(method, params, session)
        while True:
            msg = self.recv()
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._keep(msg)

    def wait_event(self, method: str) -> dict:
        for i, msg in enumerate(self.events):
            if msg.get("method") == method:
                return self.events.pop(i)
        while True:
            msg = self.recv()
            if msg.get("method") == method:
                return msg
            self._keep(msg)


def _event_text(msg: dict) -> tuple[str, bool] | None:
    """(text, is_error) for the events that carry page output."""
    method, p = msg.get("method"), msg.get("params", {})
    if method == "Runtime.exceptionThrown":
        d = p.get("exceptionDetails", {})
        return f"exception: {d.get('exception', {}).get('description') or d.get('text')}", True
    if method == "Runtime.consoleAPICalled":
        text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
        return f"console.{p.get('type')}: {text}", p.get("type") in ("error", "assert")
    if method == "Log.entryAdded":
        e = p.get("entry", {})
        return f"{e.get('source')} {e.get('level')}: {e.get('text')}", e.get("level") == "error"
    return None


def load_in_chromium(path: str | os.PathLike, width: int = 1360, height: int = 1800,
                     timeout_s: float = 60.0, chromium: str | None = None,
                     expressions: tuple[str, ...] = ()) -> PageLoad:
    """Open `path` in a fresh headless Chromium profile and report what the page did;
    `expressions` are evaluated in the page after it has loaded (JSON-able results)."""
    exe = chromium or find_chromium()
    if not exe:
        raise FileNotFoundError("no chromium executable found")
    url = Path(path).resolve().as_uri()
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()

    def child_fds():
        # Chromium reads commands on fd 3 and writes answers on fd 4; dup first so a
        # pipe end that already sits on 3 or 4 is not closed by the other dup2.
        a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
        os.dup2(a, 3)
        os.dup2(b, 4)

    with tempfile.TemporaryDirectory(prefix="foldgate-chromium-") as profile:
        args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
                f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        proc = subprocess.Popen(args, preexec_fn=child_fds, close_fds=False, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        pipe = _Pipe(to_chrome_w, from_chrome_r, time.monotonic() + timeout_s)
        out = PageLoad()
        try:
            targets = pipe.call("Target.getTargets")["targetInfos"]
            target = next(t["targetId"] for t in targets if t["type"] == "page")
            sid = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
                pipe.call(domain, session=sid)
            pipe.call("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=sid)
            t0 = time.monotonic()
            pipe.call("Page.navigate", {"url": url}, session=sid)
            pipe.wait_event("Page.loadEventFired")
            # Load fires before layout and paint; a frame after it means the page is on screen.
            pipe.call("Runtime.evaluate", {"expression": "new Promise(r => requestAnimationFrame(() => "
                                           "requestAnimationFrame(() => r(1))))", "awaitPromise": True}, session=sid)
            out.load_s = time.monotonic() - t0
            for expr in expressions:
                res = pipe.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                                     "awaitPromise": True}, session=sid)
                if "exceptionDetails" in res:
                    raise RuntimeError(f"{expr}: {res['exceptionDetails'].get('text')}")
                out.values.append(res["result"].get("value"))
            out.title = pipe.call("Runtime.evaluate", {"expression": "document.title", "returnByValue": True},
                                  session=sid)["result"].get("value", "")
            out.screenshot = base64.b64decode(pipe.call("Page.captureScreenshot", {"format": "png"}, session=sid)["data"])
            for msg in pipe.events:
                if msg.get("method") == "Page.javascriptDialogOpening":
                    out.dialogs.append(msg.get("params", {}).get("message", ""))
                got = _event_text(msg)
                if got:
                    out.messages.append(got[0])
                    if got[1]:
                        out.errors.append(got[0])
            try:
                pipe.call("Browser.close")
            except (EOFError, RuntimeError):
                pass
        finally:
            os.close(to_chrome_w)
            os.close(from_chrome_r)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return out
