"""Stress scenarios (docs/design.md 11, `--stress`): the same models and folds under harder
execution, and how the evidence statistics move.

A scenario is extra trajectories beside the base ones: costs scale commission and
slippage together; the delay scenario fills every order one bar later (the kernel's
FILL_NEXT_OPEN_LATE). Decisions stay on the base scenario; the only verdict drawn from
the others is FRAGILE_TO_COSTS."""

from __future__ import annotations

from dataclasses import dataclass

BASE = "base"


@dataclass(frozen=True)
class Scenario:
    name: str
    cost_multiplier: float
    late_fill: bool
    label: str


SCENARIOS = (
    Scenario(BASE, 1.0, False, "base"),
    Scenario("costs_x2", 2.0, False, "costs x2"),
    Scenario("costs_x3", 3.0, False, "costs x3"),
    Scenario("fill_late", 1.0, True, "fills 1 bar later"),
)
"""The base first, in report order."""

STRESSED = tuple(s for s in SCENARIOS if s.name != BASE)
FRAGILE_SCENARIO = "costs_x2"
"""The scenario the FRAGILE_TO_COSTS test reads (docs/design.md 11)."""

STAT_KEYS = ("psr0", "psr_hurdle", "sr_annual")
"""The evidence statistics each scenario reports beside its fold returns and Sharpes."""

def fragile_to_costs(base_psr0, stressed_psr0, paper_min_psr: float) -> bool:
    """PSR(0) reaches the PAPER level at base costs but not at 2x (None: not reached)."""
    return (base_psr0 is not None and base_psr0 >= paper_min_psr
            and (stressed_psr0 is None or stressed_psr0 < paper_min_psr))


def stress_section(scenarios: dict[str, dict]) -> dict:
    """The report's `stress` of one model: {scenarios: [...]} in SCENARIOS order, each
    with its statistics and their change from the base (None where either is None)."""
    base = scenarios.get(BASE, {})
    rows = []
    for sc in SCENARIOS:
        row = scenarios.get(sc.name)
        if row is None:
            continue
        delta = {}
        for key in STAT_KEYS + ("return_mean", "sharpe_mean"):
            a, b = row.get(key), base.get(key)
            delta[key] = None if a is None or b is None else float(a - b)
        rows.append({"scenario": sc.name, "label": sc.label,
                     "cost_multiplier": sc.cost_multiplier, "late_fill": sc.late_fill,
                     **row, "change": delta})
    return {"scenarios": rows}


__all__ = ["SCENARIOS", "STRESSED", "BASE", "Scenario", "FRAGILE_SCENARIO", "STAT_KEYS",
           "fragile_to_costs", "stress_section"]
