"""Plain-Python reference for ONE trajectory of the simulation (docs/design.md 5 and the
choices in docs/internals.md), written to be read, not to be fast.

The policy math is float32 NumPy in the kernel's order (bias first, then inputs in
index order, one correctly rounded fused multiply-add per input: kernels/fma.py's
NumPy emulation), so the reference and the kernel take the same decisions bit for
bit; the accounting is Python floats (float64).
"""

from __future__ import annotations

import math

import numpy as np

from kernels.activations import tanh_f32_np
from kernels.fma import fma_f32_np

__all__ = ["naive_simulate", "naive_forward"]


def naive_forward(policy, obs):
    """Raw last-layer outputs (float32) of `policy` for one observation vector."""
    x = np.asarray(obs, dtype=np.float32)
    if policy.obs_norm is not None:
        mean = np.asarray(policy.obs_norm.mean, dtype=np.float32)
        var = np.asarray(policy.obs_norm.var, dtype=np.float32)
        denom = np.sqrt(var + np.float32(policy.obs_norm.epsilon)).astype(np.float32)
        clip = np.float32(policy.obs_norm.clip)
        x = np.clip((x - mean) / denom, -clip, clip).astype(np.float32)
    h = x
    n_layers = len(policy.layers)
    for index, (w, b) in enumerate(policy.layers):
        wt = np.ascontiguousarray(np.asarray(w, dtype=np.float32).T)  # (in, out)
        acc = np.asarray(b, dtype=np.float32).copy()
        for i in range(wt.shape[0]):
            acc = fma_f32_np(h[i], wt[i], acc)
        if index < n_layers - 1:
            if policy.activation == "tanh":
                acc = tanh_f32_np(acc)
            else:
                acc = np.maximum(acc, np.float32(0.0))
        h = acc
    return h


class _Account:
    """Cash, units and the trade being built, with the fill rule of docs/design.md 5."""

    def __init__(self, capital, commission, slippage):
        self.cash = capital
        self.units = 0.0
        self.commission = commission
        self.slippage = slippage
        self.trades = []  # (entry_bar, exit_bar, direction, entry_px, exit_px, pnl, comm)
        self.traded_notional = 0.0
        self.n_fills = 0
        # the open trade
        self.entry_bar = 0
        self.entry_units = 0.0
        self.entry_value = 0.0
        self.exit_units = 0.0
        self.exit_value = 0.0
        self.trade_pnl = 0.0
        self.trade_commission = 0.0

    def average_entry(self):
        return self.entry_value / self.entry_units

    def fill(self, bar, price, target):
        """Go to `target` * equity at the raw `price` (slippage on top)."""
        old = self.units
        equity = self.cash + old * price
        new = target * equity / price
        d = new - old
        if d == 0.0:
            return
        if d > 0.0:
            fill_price = price * (1.0 + self.slippage)  # buying pays up
        else:
            fill_price = price * (1.0 - self.slippage)  # selling receives less
        commission = self.commission * abs(d) * fill_price
        self.cash = self.cash - (d * fill_price + commission)
        self.units = new
        self.traded_notional += abs(d) * fill_price
        self.n_fills += 1

        if old == 0.0:
            # the position leaves 0: a trade opens
            self._open(bar, new, fill_price, -(new * fill_price) - commission, commission)
        elif new == 0.0:
            # back to 0: the trade closes
            self.exit_units += abs(d)
            self.exit_value += abs(d) * fill_price
            self.trade_pnl += -(d * fill_price) - commission
            self.trade_commission += commission
            self._close(bar, old)
        elif (old > 0.0) == (new > 0.0):
            # same side: enlarging or reducing the open trade
            if abs(new) > abs(old):
                self.entry_units += abs(d)
                self.entry_value += abs(d) * fill_price
            else:
                self.exit_units += abs(d)
                self.exit_value += abs(d) * fill_price
            self.trade_pnl += -(d * fill_price) - commission
            self.trade_commission += commission
        else:
            # a flip: close |old| units, then open |new| units; commission split by units
            commission_close = commission * abs(old) / (abs(old) + abs(new))
            commission_open = commission - commission_close
            self.exit_units += abs(old)
            self.exit_value += abs(old) * fill_price
            self.trade_pnl += old * fill_price - commission_close
            self.trade_commission += commission_close
            self._close(bar, old)
            self._open(bar, new, fill_price, -(new * fill_price) - commission_open,
                       commission_open)

    def _open(self, bar, units, fill_price, pnl, commission):
        self.entry_bar = bar
        self.entry_units = abs(units)
        self.entry_value = abs(units) * fill_price
        self.exit_units = 0.0
        self.exit_value = 0.0
        self.trade_pnl = pnl
        self.trade_commission = commission

    def _close(self, bar, old_units):
        self.trades.append((
            self.entry_bar, bar, 1 if old_units > 0.0 else -1,
            self.entry_value / self.entry_units, self.exit_value / self.exit_units,
            self.trade_pnl, self.trade_commission,
        ))


def naive_simulate(policy, open_, close, feats, start, end, capital=100_000.0,
                   commission=0.0, slippage=0.0, long_only=False, fill="next-open"):
    """Simulate `policy` over bars start..end-1 of one series.

    feats: (T, len(policy.features)) float64, column j holding policy.features[j].
    commission, slippage: rates (bps / 1e4). fill: "next-open", "close" or
    "next-open-late" (the --stress delay: a decision at the close of t fills at the
    open of t+2; one at end-2 never fills; `position` reads the target last filled).
    Returns {"equity": [C, E_start, ..., E_{end-1}], "trades": [(entry_bar, exit_bar,
    direction, entry_price, exit_price, pnl, commission), ...], "exposure_bars",
    "traded_notional", "clipped_shorts", "n_fills"}.
    """
    acct = _Account(float(capital), float(commission), float(slippage))
    equity = [float(capital)]
    held = 0.0  # the target last ordered (a fraction of equity)
    position = 0.0  # the target of the last order filled
    orders = []  # (fill_bar, target) in flight, oldest first
    exposure_bars = 0
    clipped_shorts = 0

    for t in range(start, end):
        # 1. an order from the previous close fills at this bar's open
        while orders and orders[0][0] == t:
            acct.fill(t, float(open_[t]), orders[0][1])
            position = orders[0][1]
            orders.pop(0)

        c = float(close[t])

        # 2. at the close of every bar but the fold's last, the policy decides
        if t <= end - 2:
            obs = []
            for lag in range(policy.window):
                for j in range(len(policy.features)):
                    obs.append(np.float32(feats[t - lag, j]))
            for name in policy.state_features:
                if name == "position":
                    value = position
                elif name == "unrealized_return":
                    if acct.units == 0.0:
                        value = 0.0
                    else:
                        value = c / acct.average_entry() - 1.0
                        if acct.units < 0.0:
                            value = -value
                elif name == "bars_held":
                    value = 0.0 if acct.units == 0.0 else (t - acct.entry_bar) / 100.0
                else:
                    raise ValueError(f"unknown state feature {name!r}")
                obs.append(np.float32(value))
            out = naive_forward(policy, np.array(obs, dtype=np.float32))

            if policy.action_kind == "discrete":
                best = 0
                for j in range(1, len(out)):
                    if out[j] > out[best]:  # strictly greater: lowest index wins ties
                        best = j
                target = float(policy.targets[best])
                if math.isnan(target):  # hold: keep the current target
                    target = held
            else:
                a = min(max(out[0], np.float32(policy.low)), np.float32(policy.high))
                target = float(a)

            if long_only and target < 0.0:
                target = 0.0
                clipped_shorts += 1

            if target != held:
                held = target
                if fill == "next-open":
                    orders.append((t + 1, target))
                elif fill == "next-open-late":
                    orders.append((t + 2, target))  # past end-1: never fills
                else:
                    acct.fill(t, c, target)
                    position = target

        # 3. exposure counts the position after the regular fills of this bar
        if acct.units != 0.0:
            exposure_bars += 1

        # 4. the fold's last close: an open position is closed there
        if t == end - 1 and acct.units != 0.0:
            acct.fill(t, c, 0.0)

        equity.append(acct.cash + acct.units * c)

    return {
        "equity": equity,
        "trades": acct.trades,
        "exposure_bars": exposure_bars,
        "traded_notional": acct.traded_notional,
        "clipped_shorts": clipped_shorts,
        "n_fills": acct.n_fills,
    }
