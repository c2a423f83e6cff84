"""The probability of backtest overfitting (PBO) by combinatorially symmetric
cross-validation (CSCV; Bailey, Borwein, Lopez de Prado and Zhu, 2017).

Input: a (T, N) matrix of per-bar returns of N variants (one symbol's checkpoints)
over the same T out-of-sample bars. Its rows are cut into S = 16 contiguous blocks
(numpy.array_split: the first T mod S blocks one row longer). For each of the
C(16, 8) = 12,870 ways to pick 8 blocks as the in-sample half, the variant with the
highest in-sample Sharpe is taken (the lowest index on ties), its rank among all N
out-of-sample is turned into a relative rank w = rank / (N + 1) (rank 1 = worst; tied
out-of-sample Sharpes share their mean rank), and into a logit ln(w / (1 - w)).
PBO = the share of logits <= 0: how often the in-sample winner lands at or below the
out-of-sample median.

Sharpe here is mean / std (ddof 1) per bar, 0 when the half's returns of that variant
are all equal (docs/design.md 6); annualising would not change any rank."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from itertools import combinations

import numpy as np

N_BLOCKS = 16
"""S of CSCV (docs/design.md 11)."""
MAX_VARIANTS = 10_000
MAX_CELLS = 50_000_000
_COMBO_STEP = 1024  # combinations per vectorised step: bounds the (step, S, N) scratch


@dataclass(frozen=True)
class PBOResult:
    pbo: float | None
    """Share of the combinations whose in-sample best is at or below the out-of-sample
    median; None when undefined (see reason)."""
    reason: str | None
    """Why pbo is None; None when it is defined."""
    n_variants: int
    n_bars: int
    n_blocks: int
    n_combinations: int
    logits: np.ndarray | None
    """float64 (n_combinations,), in the order of itertools.combinations(range(S), S/2)."""
    prob_oos_loss: float | None
    """Share of the combinations whose in-sample best has an out-of-sample Sharpe < 0."""

    def to_dict(self) -> dict:
        return {"pbo": self.pbo, "reason": self.reason, "n_variants": self.n_variants,
                "n_bars": self.n_bars, "n_blocks": self.n_blocks,
                "n_combinations": self.n_combinations, "prob_oos_loss": self.prob_oos_loss}


def in_sample_combinations(n_blocks: int = N_BLOCKS) -> np.ndarray:
    """bool (C(S, S/2), S): row c marks the in-sample blocks of combination c. Made once
    per S (a third of a symbol's PBO was listing the 12,870 combinations) and read-only."""
    return _combinations(int(n_blocks))


@functools.lru_cache(maxsize=4)
def _combinations(n_blocks: int) -> np.ndarray:
    combos = np.array(list(combinations(range(n_blocks), n_blocks // 2)), dtype=np.int64)
    mask = np.zeros((combos.shape[0], n_blocks), dtype=bool)
    np.put_along_axis(mask, combos, True, axis=1)
    mask.flags.writeable = False
    return mask


def _undefined(reason, n_bars, n_variants, n_blocks) -> PBOResult:
    return PBOResult(None, reason, n_variants, n_bars, n_blocks, 0, None, None)


def pbo_cscv(returns, n_blocks: int = N_BLOCKS) -> PBOResult:
    """PBO of the columns of `returns` (T bars x N variants); see the module docstring.
    ValueError for a matrix that is not 2-D, not finite, or too large."""
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"returns must be a (bars, variants) matrix, got shape {m.shape}")
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"the number of blocks must be even and >= 2, got {n_blocks}")
    t, n = m.shape
    if n > MAX_VARIANTS or m.size > MAX_CELLS:
        raise ValueError(f"returns of {t} bars x {n} variants exceed the limits "
                         f"({MAX_VARIANTS:,} variants, {MAX_CELLS:,} values)")
    if not np.all(np.isfinite(m)):
        row, col = np.argwhere(~np.isfinite(m))[0]
        raise ValueError(f"returns[{row}, {col}] is not finite")
    if n < 2:
        return _undefined("one variant: there is no choice among variants to overfit",
                          t, n, n_blocks)
    if t < n_blocks:
        return _undefined(f"{t} bars: CSCV needs at least one per block ({n_blocks})",
                          t, n, n_blocks)

    mask = in_sample_combinations(n_blocks)
    blocks = np.array_split(np.arange(t), n_blocks)
    # per-block sums of returns centred on their column mean: the variance of a half
    # comes out of them without the cancellation raw sums of squares would suffer
    centre = m.mean(axis=0)
    d = m - centre
    cnt = np.array([len(b) for b in blocks], dtype=np.float64)
    s1 = np.stack([d[b].sum(axis=0) for b in blocks])
    s2 = np.stack([(d[b] * d[b]).sum(axis=0) for b in blocks])
    bmin = np.stack([m[b].min(axis=0) for b in blocks])
    bmax = np.stack([m[b].max(axis=0) for b in blocks])

    logits = np.empty(mask.shape[0], dtype=np.float64)
    oos_loss = np.empty(mask.shape[0], dtype=bool)
    for a in range(0, mask.shape[0], _COMBO_STEP):
        part = mask[a:a + _COMBO_STEP]
        sr_in = _half_sharpe(part, cnt, s1, s2, bmin, bmax, centre)
        sr_out = _half_sharpe(~part, cnt, s1, s2, bmin, bmax, centre)
        best = np.argmax(sr_in, axis=1)  # first maximum: the lowest index on ties
        b_out = sr_out[np.arange(part.shape[0]), best][:, None]
        below = (sr_out < b_out).sum(axis=1)
        ties = (sr_out == b_out).sum(axis=1) - 1  # others tied with the best
        rank = 1.0 + below + 0.5 * ties
        w = rank / (n + 1.0)
        logits[a:a + part.shape[0]] = np.log(w / (1.0 - w))
        oos_loss[a:a + part.shape[0]] = b_out[:, 0] < 0.0
    return PBOResult(float(np.mean(logits <= 0.0)), None, n, t, n_blocks, mask.shape[0],
                     logits, float(np.mean(oos_loss)))


def _half_sharpe(mask, cnt, s1, s2, bmin, bmax, centre) -> np.ndarray:
    """(combinations, N) per-bar Sharpe of the rows in the blocks `mask` selects."""
    w = mask.astype(np.float64)
    k = w @ cnt                      # rows in the half, (c,)
    sum1 = w @ s1                    # (c, N)
    var = (w @ s2 - sum1 * sum1 / k[:, None]) / (k[:, None] - 1.0)
    mean = centre[None, :] + sum1 / k[:, None]
    # all returns equal: Sharpe 0, as docs/design.md 6. A half can only be flat where
    # every block it takes is (min == max); only there are its min and max compared,
    # a (combinations, blocks) pass per such variant instead of one over all of them
    flat = ~(var > 0.0)
    maybe = (w @ (bmin != bmax).astype(np.float64)) == 0.0  # (c, N): no varying block chosen
    cols = np.flatnonzero(maybe.any(axis=0))
    if cols.size:
        lo = np.where(mask[:, :, None], bmin[None][:, :, cols], np.inf).min(axis=1)
        hi = np.where(mask[:, :, None], bmax[None][:, :, cols], -np.inf).max(axis=1)
        flat[:, cols] |= maybe[:, cols] & (lo == hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = mean / np.sqrt(var)
    sr[flat] = 0.0
    return sr


def returns_matrix(variant_returns: list) -> np.ndarray:
    """(T, N) from N per-bar return series over the same bars; ValueError naming the
    variant whose length differs."""
    arrays = [np.asarray(r, dtype=np.float64).reshape(-1) for r in variant_returns]
    if not arrays:
        return np.zeros((0, 0))
    t = arrays[0].shape[0]
    for j, a in enumerate(arrays):
        if a.shape[0] != t:
            raise ValueError(f"variant {j} has {a.shape[0]} bars, variant 0 has {t}: "
                             "CSCV needs the same out-of-sample bars for every variant")
    return np.stack(arrays, axis=1)


__all__ = ["pbo_cscv", "PBOResult", "N_BLOCKS", "in_sample_combinations", "returns_matrix"]
