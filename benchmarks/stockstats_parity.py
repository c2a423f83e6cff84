"""Largest relative difference of each `stockstats:` feature from stockstats itself,
after its lookback, over seeded random series with flat stretches (the cases of
tests/test_stockstats.py, more seeds). Needs the test extra (stockstats, pandas).

    python benchmarks/stockstats_parity.py [--seeds 8] [--bars 6000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from engine.features import compute_features, feature_lookback, parse_feature  # noqa: E402
from test_stockstats import PAIRS, _in_dead_window, make_series, stockstats_columns  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--bars", type=int, default=6000)
    args = ap.parse_args()
    names = [f"stockstats:{o}" for o, _ in PAIRS]
    worst = dict.fromkeys(names, 0.0)
    for seed in range(args.seeds):
        bars, flats = make_series(args.bars, seed)
        got = compute_features(bars, names)
        ref = stockstats_columns(bars, [t for _, t in PAIRS])
        for j, (ours, theirs) in enumerate(PAIRS):
            look, k = feature_lookback(names[j]), parse_feature(names[j])[1]
            col, want = got[:, j], ref[theirs]
            keep = np.isfinite(want) & (want != 0.0)
            keep[:look] = False
            c = bars.close
            for t in np.flatnonzero(keep):
                # the bars where stockstats reports rounding noise (docs/features.md)
                if ours.startswith("cci") and _in_dead_window(flats, t, k):
                    keep[t] = False
                elif ours.startswith("boll") and c[t - k + 1:t + 1].min() == c[t - k + 1:t + 1].max():
                    keep[t] = False
            rel = np.abs(col[keep] - want[keep]) / np.abs(want[keep])
            worst[names[j]] = max(worst[names[j]], float(rel.max()) if rel.size else 0.0)
    print(f"{'feature':28s} {'lookback':>8s} {'worst relative difference':>26s}")
    for n in names:
        print(f"{n:28s} {feature_lookback(n):8d} {worst[n]:26.1e}")


if __name__ == "__main__":
    main()
