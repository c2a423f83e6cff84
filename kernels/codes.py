"""The integer codes and column layouts both simulation twins share (docs/internals.md,
"The simulation kernel"): defined here once, imported by kernels/simulate.py,
kernels/gpu_simulate.py, kernels/inputs.py and engine/batch.py.

Numba reads module-level integers as compile-time constants, so the kernels pay
nothing for the names. Numba's cache is keyed on the kernel's own file: after
changing a value here, delete kernels/__pycache__/*simulate*.nb[ic].
"""

from __future__ import annotations

# model_state_code: the state features an observation may append
STATE_POSITION, STATE_UNREALIZED, STATE_BARS_HELD = 0, 1, 2
STATE_NAMES = {"position": STATE_POSITION, "unrealized_return": STATE_UNREALIZED,
               "bars_held": STATE_BARS_HELD}
# the bars_held state feature is bars since entry / 100 (design's scale for it, so a
# position held a few hundred bars stays in the policy's input range)
BARS_HELD_SCALE = 100.0

# model_act: the hidden layers' activation
ACT_TANH, ACT_RELU = 0, 1
ACT_NAMES = {"tanh": ACT_TANH, "relu": ACT_RELU}

# model_action_kind
ACTION_DISCRETE, ACTION_CONTINUOUS = 0, 1
ACTION_NAMES = {"discrete": ACTION_DISCRETE, "continuous": ACTION_CONTINUOUS}

# fill_mode. FILL_NEXT_OPEN_LATE (the --stress delay scenario): a decision at the close
# of t fills at the open of t+2, so two orders can be in flight; one decided at e-2
# never fills.
FILL_NEXT_OPEN, FILL_CLOSE, FILL_NEXT_OPEN_LATE = 0, 1, 2
# "next-open-late" is the --stress delay scenario (docs/design.md 11), not a --fill choice
FILL_NAMES = {"next-open": FILL_NEXT_OPEN, "close": FILL_CLOSE,
              "next-open-late": FILL_NEXT_OPEN_LATE}
FILL_CODES = tuple(FILL_NAMES.values())

# The float64 account of one trajectory, the slots the fill books into. A trade's
# entry and exit prices are value / units over its fills (so partial fills average).
(A_CASH, A_UNITS, A_ENTRY_UNITS, A_ENTRY_VALUE, A_EXIT_UNITS, A_EXIT_VALUE, A_TRADE_PNL,
 A_TRADE_COMMISSION, A_ENTRY_BAR, A_N_TRADES, A_TRADED_NOTIONAL, A_N_FILLS) = range(12)
ACCOUNT_SIZE = 12

# trade_int columns
T_ENTRY_BAR, T_EXIT_BAR, T_DIRECTION = 0, 1, 2
TRADE_INT_COLS = 3
# trade_float columns
T_ENTRY_PRICE, T_EXIT_PRICE, T_PNL, T_COMMISSION = 0, 1, 2, 3
TRADE_FLOAT_COLS = 4
# stats columns
S_EXPOSURE_BARS, S_TRADED_NOTIONAL, S_CLIPPED_SHORTS, S_N_FILLS = 0, 1, 2, 3
STATS_COLS = 4
