"""Hand-built, seeded sample policies in the native foldgate.policy/1 format.

They are not trained: each is a small MLP whose weights are set so that it acts on an
idea (momentum, RSI mean reversion, a breakout, or nothing at all for the random
ones), plus small seeded random weights in the remaining units so they look and run
like real networks. They exist so the demo, the tests and the benchmarks have
models of every supported shape; data/policies/README.md describes each.

    python data/make_sample_policies.py [--out data/policies]

or, from Python, `build_sample_policies(out_dir, symbols=None)`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from engine.policies.checkpoint import save_policy  # noqa: E402

DEFAULT_SYMBOLS = (
    "BTCUSD", "ETHUSD", "SOLUSD", "UNIUSD", "LINKUSD", "AVAXUSD",
    "AAPL", "MSFT", "SPY", "NVDA", "AMZN", "TSLA",
    "PAXGUSD", "GLD",
)
SEED = 20240611
STEADY_SYMBOLS = ("PAXGUSD", "GLD")  # the steady movers of data/make_sample_bars.py

# Typical hourly scale of each input (mean, std): the z-score the hand-set weights
# are written in. With obs_norm these become the checkpoint's statistics; without,
# they are folded into the first layer.
STATS = {
    "ret_1": (0.0, 0.008), "ret_4": (0.0, 0.016), "ret_6": (0.0, 0.02), "ret_24": (0.0, 0.04),
    "vol_24": (0.008, 0.004), "sma_ratio_24": (0.0, 0.02), "sma_ratio_168": (0.0, 0.05), "rsi_14": (0.0, 0.35),
    "hl_range": (0.01, 0.008), "volume_z_24": (0.0, 1.0),
    "hour_sin": (0.0, 0.707), "hour_cos": (0.0, 0.707), "dow_sin": (0.0, 0.707), "dow_cos": (0.0, 0.707),
    "position": (0.0, 0.6), "unrealized_return": (0.0, 0.03), "bars_held": (0.1, 0.15),
}


@dataclass
class Spec:
    name: str
    features: list[str]
    window: int
    state: list[str]
    hidden: list[int]
    activation: str
    action: dict
    obs_norm: bool
    # signals: each a dict input-name -> weight (in z units; "name@lag" for lags > 0)
    signals: list[dict[str, float]]
    # outputs: (n_out, n_signals) weights from the signals, and a bias per output
    out_w: list[list[float]]
    out_b: list[float]
    description: str
    noise: float = 0.03  # scale of the random filler weights
    random: bool = False  # no signals: every weight random


def _inputs(spec: Spec) -> list[str]:
    names = []
    for lag in range(spec.window):
        names += [f if lag == 0 else f"{f}@{lag}" for f in spec.features]
    return names + list(spec.state)


def _stat(name: str) -> tuple[float, float]:
    return STATS[name.split("@")[0]]


def _build(spec: Spec, rng: np.random.Generator) -> dict:
    inputs = _inputs(spec)
    n_in = len(inputs)
    mean = np.array([_stat(n)[0] for n in inputs], dtype=np.float64)
    std = np.array([_stat(n)[1] for n in inputs], dtype=np.float64)
    n_out = len(spec.out_b) if not spec.random else _n_out(spec)
    sizes = [n_in, *spec.hidden, n_out]
    layers: list[tuple[np.ndarray, np.ndarray]] = []

    if spec.random:
        for a, b in zip(sizes[:-1], sizes[1:]):
            w = rng.normal(0.0, 1.0 / np.sqrt(a), size=(b, a))
            layers.append((w, rng.normal(0.0, 0.05, size=b)))
    else:
        relu = spec.activation == "relu"
        # a relu unit only passes one sign, so each signal rides on a (+, -) pair
        per = 2 if relu else 1
        n_sig = len(spec.signals) * per
        for h in spec.hidden:
            if h < n_sig + 2:
                raise ValueError(f"{spec.name}: hidden layer {h} too small for {n_sig} signal units")
        gain = 1.0 if relu else 1.2
        for li, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = li == len(sizes) - 2
            w = rng.normal(0.0, spec.noise, size=(b, a))
            bias = rng.normal(0.0, spec.noise, size=b)
            if li == 0 and not last:
                for j, sig in enumerate(spec.signals):
                    row = np.zeros(a)
                    for name, wt in sig.items():
                        row[inputs.index(name)] = wt
                    for k in range(per):
                        w[j * per + k] = row * (1 if k == 0 else -1)
                        bias[j * per + k] = 0.0
                # filler units see every input a little, as trained ones would
                w[n_sig:] = rng.normal(0.0, 0.5 / np.sqrt(a), size=(b - n_sig, a))
            elif not last:
                # pass the signal units through; fillers mix among themselves
                w[:n_sig, :] = 0.0
                w[:, :n_sig] = 0.0
                for j in range(n_sig):
                    w[j, j] = gain
                    bias[j] = 0.0
                w[n_sig:, n_sig:] = rng.normal(0.0, 0.5 / np.sqrt(max(a - n_sig, 1)), size=(b - n_sig, a - n_sig))
            else:
                w[:, :n_sig] = 0.0
                for o, row in enumerate(spec.out_w):
                    for j, c in enumerate(row):
                        if relu:
                            w[o, 2 * j], w[o, 2 * j + 1] = c, -c
                        else:
                            w[o, j] = c
                bias = np.asarray(spec.out_b, dtype=np.float64) + rng.normal(0.0, spec.noise, size=b)
            layers.append((w, bias))

    fields: dict = {
        "features": list(spec.features),
        "window": spec.window,
        "state_features": list(spec.state),
        "activation": spec.activation,
        "action": spec.action,
    }
    if spec.obs_norm:
        fields["obs_norm"] = {
            "mean": mean.astype(np.float32),
            "var": (std**2).astype(np.float32),
            "epsilon": 1e-8,
            "clip": 10.0,
        }
    else:
        # fold the z-scoring into the first layer: W z = W (x - m) / s
        w0, b0 = layers[0]
        layers[0] = (w0 / std, b0 - (w0 / std) @ mean)
    fields["actor"] = [x.astype(np.float32) for wb in layers for x in wb]
    return fields


def _n_out(spec: Spec) -> int:
    if spec.action["type"] == "continuous":
        return 1
    return len(spec.action["targets"])


def _disc(*targets) -> dict:
    return {"type": "discrete", "targets": list(targets)}


def _cont(low: float, high: float) -> dict:
    return {"type": "continuous", "low": low, "high": high}


def _specs() -> list[Spec]:
    return [
        Spec(
            "momentum_long", ["ret_1", "ret_4", "ret_24", "sma_ratio_24", "vol_24"], 1, ["position"],
            [16, 16], "tanh", _disc(0.0, 1.0, None), True,
            [{"ret_4": 0.5, "ret_24": 0.5, "sma_ratio_24": 0.6, "ret_1": 0.2}],
            [[-3.0], [3.0], [0.0]], [0.0, 0.0, 1.2],
            "Momentum, long-only: long when recent returns and price vs its 24-bar mean are "
            "positive, flat when negative, hold in between.",
        ),
        Spec(
            "rsi_reversion_long", ["rsi_14", "sma_ratio_24", "hl_range"], 1, ["position", "unrealized_return"],
            [16], "relu", _disc(0.0, 1.0, None), False,
            [{"rsi_14": -1.0, "sma_ratio_24": -0.4}, {"unrealized_return": 1.0}],
            [[-2.0, 1.5], [2.0, -0.5], [0.0, 0.0]], [0.0, 0.0, 1.0],
            "RSI mean reversion, long-only: buys oversold (RSI low, price below its mean), goes "
            "flat when overbought or after a gain (takes profit), holds otherwise.",
        ),
        Spec(
            "random_longshort", ["ret_1", "vol_24", "volume_z_24", "hour_sin", "hour_cos"], 4, ["position"],
            [32, 32], "tanh", _disc(-1.0, 0.0, 1.0), True, [], [], [],
            "Random weights (no idea at all), long-short targets: on a crypto symbol the shorts "
            "are clipped (long-only), which the report counts. A null model to compare against.",
            random=True,
        ),
        Spec(
            "momentum_continuous_long", ["ret_4", "ret_24", "sma_ratio_24"], 1, [],
            [16], "tanh", _cont(0.0, 1.0), True,
            [{"ret_4": 0.5, "ret_24": 0.5, "sma_ratio_24": 0.5}],
            [[0.9]], [0.4],
            "Momentum, continuous, long-only: the position (0..1 of equity) grows with the "
            "trend signal.",
        ),
        Spec(
            "lagged_momentum", ["ret_1", "vol_24"], 6, [],
            [24, 12], "relu", _disc(0.0, 0.5, 1.0, None), False,
            [{**{("ret_1" if lag == 0 else f"ret_1@{lag}"): 0.4 for lag in range(6)}, "vol_24": -0.3}],
            [[-2.0], [0.6], [2.0], [0.0]], [0.0, 0.4, -0.6, 0.8],
            "Momentum over the last 6 one-bar returns (window 6), sized: flat, half or full long, "
            "less eager when volatility is high.",
        ),
        Spec(
            "random_continuous", ["ret_1", "ret_4", "hl_range", "volume_z_24"], 1, ["bars_held", "position"],
            [16], "relu", _cont(-1.0, 1.0), True, [], [], [],
            "Random weights, continuous long-short action in [-1, 1] (shorts clipped on crypto), "
            "with state features.",
            random=True,
        ),
        Spec(
            "momentum_longshort", ["ret_1", "ret_4", "ret_24", "sma_ratio_24"], 1, [],
            [16, 16], "tanh", _disc(-1.0, 0.0, 1.0, None), True,
            [{"ret_4": 0.5, "ret_24": 0.6, "sma_ratio_24": 0.5}],
            [[-3.0], [0.0], [3.0], [0.0]], [0.0, 0.3, 0.0, 1.0],
            "Momentum, long-short: long in up-trends, short in down-trends, hold when unclear.",
        ),
        Spec(
            "rsi_reversion_longshort", ["rsi_14", "sma_ratio_24", "vol_24"], 1, [],
            [16], "relu", _disc(-1.0, 0.0, 1.0), False,
            [{"rsi_14": -1.0, "sma_ratio_24": -0.5}],
            [[-2.0], [0.0], [2.0]], [0.0, 1.0, 0.0],
            "RSI mean reversion, long-short: long when oversold, short when overbought, flat "
            "in between.",
        ),
        Spec(
            "reversion_continuous", ["ret_1", "sma_ratio_24", "rsi_14"], 2, ["position"],
            [16, 8], "tanh", _cont(-1.0, 1.0), True,
            [{"sma_ratio_24": -0.6, "rsi_14": -0.5, "ret_1@1": -0.2}],
            [[1.3]], [0.0],
            "Mean reversion, continuous long-short in [-1, 1], window 2: leans against the "
            "price's distance from its 24-bar mean.",
        ),
        Spec(
            "session_momentum", ["ret_4", "sma_ratio_24", "hour_sin", "hour_cos", "dow_sin", "dow_cos"], 1, [],
            [16], "relu", _disc(0.0, 1.0, None), False,
            [{"ret_4": 0.6, "sma_ratio_24": 0.6}, {"hour_cos": 1.0}],
            [[-2.5, 0.0], [2.5, -0.6], [0.0, 0.0]], [0.0, 0.0, 1.0],
            "Momentum, long-only, with time-of-day and day-of-week inputs: less willing to "
            "go long at some hours.",
        ),
        Spec(
            "reference_random",
            ["ret_1", "ret_4", "ret_24", "vol_24", "sma_ratio_24", "rsi_14", "hl_range", "volume_z_24"], 2, [],
            [64, 64], "tanh", _disc(-1.0, 0.0, 1.0), True, [], [], [],
            "Random weights in the shape of the benchmark's reference workload (docs/design.md 10): "
            "a 2x64 tanh MLP on 16 inputs (8 features x window 2), 3 actions.",
            random=True,
        ),
        Spec(
            "breakout_with_exit", ["ret_4", "vol_24", "hl_range", "volume_z_24"], 1,
            ["position", "unrealized_return", "bars_held"],
            [32, 16], "tanh", _disc(-1.0, 0.0, 1.0, None), True,
            [{"ret_4": 0.9, "volume_z_24": 0.3}, {"bars_held": 1.0, "unrealized_return": -0.6}],
            [[-3.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, -0.5]], [0.0, -0.5, 0.0, 1.2],
            "Breakout, long-short: follows strong 4-bar moves on high volume; exits to flat as "
            "the trade ages or draws down; holds otherwise. Uses all three state features.",
        ),
        Spec(
            "trend_filter_long", ["sma_ratio_168", "ret_24"], 1, [],
            [8], "tanh", _disc(0.0, 1.0), True,
            [{"sma_ratio_168": 1.0, "ret_24": 0.1}],
            [[-2.0], [2.0]], [0.0, 3.0],
            "Trend filter, long-only: long while the price is no more than about 4% under its "
            "one-week (168-bar) mean, flat below that. Rarely trades on a steady riser.",
        ),
    ]


def sample_specs() -> list[Spec]:
    """The recipes, in the order of DEFAULT_SYMBOLS."""
    return _specs()


def build_sample_policies(
    out_dir: str | Path,
    symbols: list[str] | tuple[str, ...] | None = None,
    timeframe: str = "1Hour",
    seed: int = SEED,
    recipe: str | None = None,
) -> list[Path]:
    """Write one sample policy per symbol, `out_dir/SYMBOL_TIMEFRAME.pt`. Symbol i gets
    recipe i mod 13 (the first 13 defaults get one each; GLD, the 14th, shares PAXGUSD's
    trend filter); past 13 the random weights differ. `recipe` (a Spec name) gives every
    symbol that one recipe, its weights drawn per symbol.
    Deterministic for a given (symbols, seed, recipe). Returns the paths written."""
    specs = _specs()
    if recipe is not None:
        named = [s for s in specs if s.name == recipe]
        if not named:
            raise ValueError(f"no sample recipe named {recipe!r}: {', '.join(s.name for s in specs)}")
        specs = named
    symbols = list(symbols) if symbols is not None else list(DEFAULT_SYMBOLS)
    out = Path(out_dir)
    paths = []
    for i, sym in enumerate(symbols):
        spec = specs[-1] if sym in STEADY_SYMBOLS and recipe is None else specs[i % len(specs)]
        rng = np.random.default_rng([seed, i])
        fields = _build(spec, rng)
        fields["symbol"] = sym
        fields["timeframe"] = timeframe
        fields["meta"] = {"sample": spec.name, "seed": seed, "generator": "data/make_sample_policies.py"}
        paths.append(save_policy(out / f"{sym}_{timeframe}.pt", **fields))
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "data" / "policies"))
    ap.add_argument("--symbols", nargs="*", default=None)
    ap.add_argument("--timeframe", default="1Hour")
    args = ap.parse_args(argv)
    for p in build_sample_policies(args.out, args.symbols, args.timeframe):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
