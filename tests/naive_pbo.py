"""Plain reference for engine/pbo.py: CSCV written out with itertools.combinations,
one combination at a time, each half's Sharpe straight from its rows."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np


def naive_sharpe(x) -> float:
    """Per-bar mean / std (ddof 1); 0 when all values are equal."""
    x = np.asarray(x, dtype=np.float64)
    if np.ptp(x) == 0:
        return 0.0
    return float(np.mean(x) / np.std(x, ddof=1))


def naive_pbo(m, n_blocks=16):
    """(pbo, logits, prob_oos_loss) or (None, None, None) when undefined."""
    m = np.asarray(m, dtype=np.float64)
    t, n = m.shape
    if n < 2 or t < n_blocks:
        return None, None, None
    blocks = np.array_split(np.arange(t), n_blocks)
    logits, losses = [], []
    for chosen in combinations(range(n_blocks), n_blocks // 2):
        ins = np.concatenate([blocks[b] for b in chosen])
        outs = np.concatenate([blocks[b] for b in range(n_blocks) if b not in chosen])
        sr_in = [naive_sharpe(m[ins, j]) for j in range(n)]
        sr_out = [naive_sharpe(m[outs, j]) for j in range(n)]
        best = sr_in.index(max(sr_in))
        # mean rank among the tied, 1 = worst
        below = sum(1 for j in range(n) if sr_out[j] < sr_out[best])
        tied = sum(1 for j in range(n) if sr_out[j] == sr_out[best]) - 1
        rank = 1 + below + tied / 2
        w = rank / (n + 1)
        logits.append(math.log(w / (1 - w)))
        losses.append(sr_out[best] < 0)
    logits = np.array(logits)
    return float(np.mean(logits <= 0)), logits, float(np.mean(losses))
