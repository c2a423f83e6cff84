"""Gating of trained models on their final training metrics (docs/design.md 7), and the
thresholds file that configures gating and the deployment decision (docs/design.md 8).

Classes, with the seed's v2.4.5 defaults (engine/defaults/thresholds.toml):

    APPROVED  fitness >= 0.70, profit factor >= 1.8, consistency >= 0.85, max_dd <= 0.08
    REVIEW    fitness >= 0.50, profit factor >= 1.3, consistency >= 0.65, max_dd <= 0.15
    DROP      anything else, and any missing or non-finite metric

Flag codes (each flag also carries a one-sentence message):

    MISSING_METRIC     a final metric is absent (None) or not a number: DROP
    NON_FINITE_METRIC  a final metric is NaN or infinite: DROP
    OUT_OF_RANGE       a metric outside its possible range (negative profit factor or
                       consistency, a percent above 100): DROP
    PERCENT_UNITS      consistency or max_dd above 1, read as a percent (87 -> 0.87)
    NEGATIVE_MAX_DD    max_dd given as a negative number, read as its magnitude
    PROXY_MAX_DD       the training max_dd (a proxy: reward volatility, not equity
                       drawdown) is what holds the model below the class its other
                       three metrics reach
    INFLATED_PROXY_DD  the training max_dd is above the inflated-proxy bound (0.30):
                       the inflated proxy of the old reward_scale 0.1
    CHECKPOINT_BETTER  an earlier checkpoint's fitness beats the final one by at least
                       the checkpoint margin (0.05)
    MODEL_MISSING      the summary's model file is not in the archive: gated, not
                       backtested (set by the pipeline, docs/design.md 7)

TOML keys (a --config file may set any subset; unknown keys and non-numbers are
refused): [approved] and [review]: fitness, profit_factor, consistency,
max_drawdown; [checkpoint] min_improvement; [proxy] inflated_max_drawdown;
[decision] profile ("evidence" | "seed") and the seed's live_min_positive_fraction,
live_max_sharpe_std, paper_min_positive_fraction, paper_max_sharpe_std,
drop_max_positive_fraction, drop_mean_return_below, carried_fold_share;
[decision.evidence] live_min_psr, paper_min_psr, drop_max_psr, min_positive_fraction,
cochran_min_p, q_fdr, min_oos_folds (an integer >= 2), hurdle_sharpe (annual),
benchmark ("zero" | "buy_and_hold").
"""

from __future__ import annotations

import math
import numbers
import tomllib
from dataclasses import dataclass, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

from .errors import ConfigError
from .limits import CONFIG_FILE, read_bounded
from .limits import show as _shown

APPROVED = "APPROVED"
REVIEW = "REVIEW"
DROP = "DROP"
CLASSES = (APPROVED, REVIEW, DROP)

METRIC_KEYS = ("fitness_score", "profit_factor", "consistency", "max_drawdown")

# Histories are subtracted, so a margin met exactly on paper (0.75 - 0.70) can land a
# few ulps short of 0.05 in binary floating point.
_MARGIN_EPS = 1e-9


# ---------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class ClassBounds:
    fitness: float
    profit_factor: float
    consistency: float
    max_drawdown: float


@dataclass(frozen=True)
class CheckpointRule:
    min_improvement: float


@dataclass(frozen=True)
class ProxyRule:
    inflated_max_drawdown: float


@dataclass(frozen=True)
class DecisionRules:
    live_min_positive_fraction: float
    live_max_sharpe_std: float
    paper_min_positive_fraction: float
    paper_max_sharpe_std: float
    drop_max_positive_fraction: float
    drop_mean_return_below: float
    carried_fold_share: float


@dataclass(frozen=True)
class EvidenceRules:
    """[decision.evidence]: the evidence profile of docs/design.md 8."""
    live_min_psr: float
    paper_min_psr: float
    drop_max_psr: float
    min_positive_fraction: float
    cochran_min_p: float
    q_fdr: float
    min_oos_folds: int
    hurdle_sharpe: float
    benchmark: str


PROFILES = ("evidence", "seed")
# The LIVE level (live_min_psr) is also MinTRL's: z = PhiInv(level) must be finite and
# above 0, so the level lies strictly between these (at 1.0 no track record suffices).
LIVE_LEVEL_RANGE = (0.5, 1.0)
BENCHMARKS = ("zero", "buy_and_hold")


@dataclass(frozen=True)
class Thresholds:
    approved: ClassBounds
    review: ClassBounds
    checkpoint: CheckpointRule
    proxy: ProxyRule
    decision: DecisionRules
    evidence: EvidenceRules
    profile: str = "evidence"
    source: str = "defaults"

    def to_dict(self) -> dict:
        """The TOML's shape: [decision] holds profile and the [decision.evidence] table."""
        out = {
            name: {f.name: getattr(getattr(self, name), f.name) for f in fields(kind)}
            for name, kind in _SECTIONS.items()
        }
        out["decision"]["profile"] = self.profile
        out["decision"]["evidence"] = {f.name: getattr(self.evidence, f.name) for f in fields(EvidenceRules)}
        return out


_SECTIONS: dict[str, type] = {
    "approved": ClassBounds,
    "review": ClassBounds,
    "checkpoint": CheckpointRule,
    "proxy": ProxyRule,
    "decision": DecisionRules,
}

# Keys whose value is a fraction; a percent here (85) would silently make a class
# unreachable, so it is refused rather than guessed.
_FRACTION_KEYS = {
    "consistency", "max_drawdown", "inflated_max_drawdown",
    "live_min_positive_fraction", "paper_min_positive_fraction",
    "drop_max_positive_fraction", "carried_fold_share",
    "live_min_psr", "paper_min_psr", "drop_max_psr", "min_positive_fraction", "cochran_min_p", "q_fdr",
}
_NON_NEGATIVE_KEYS = {"profit_factor", "min_improvement", "live_max_sharpe_std", "paper_max_sharpe_std"}


def _read_toml(path: Path) -> dict:
    """The file's tables; every failure on a hostile file is one ConfigError line: over
    its size bound (checked before reading), invalid TOML, nesting past the parser's
    recursion limit, an integer past Python's digit limit."""
    try:
        raw = read_bounded(path, CONFIG_FILE, ConfigError, "thresholds file")
        data = tomllib.loads(raw.decode("utf-8"))
        # a quoted key may hold a newline; messages name keys, so they must print on one line
        stack = [data]
        while stack:
            table = stack.pop()
            for k, v in table.items():
                if not k.isprintable():
                    raise ConfigError(f"{path}: key {_shown(k)} holds a control character")
                if isinstance(v, dict):
                    stack.append(v)
        return data
    except FileNotFoundError:
        raise ConfigError(f"thresholds file {path} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"thresholds file {path} is a directory") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {' '.join(str(exc).split())[:160]}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 text") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply to read") from None
    except ValueError as exc:  # an integer past int()'s 4300-digit limit
        raise ConfigError(f"{path}: invalid TOML: {' '.join(str(exc).split())[:160]}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read thresholds file {path}: {exc.strerror}") from None


def _check_value(where: str, key: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = type(value).__name__
        raise ConfigError(f"{where}: key '{key}' must be a number, got {kind} {_shown(value)}")
    try:
        v = float(value)
    except OverflowError:  # an integer like 10**400
        v = math.inf
    if not math.isfinite(v):
        raise ConfigError(f"{where}: key '{key}' must be finite, got {_shown(value)}")
    if name in _FRACTION_KEYS and not 0.0 <= v <= 1.0:
        raise ConfigError(f"{where}: key '{key}' is a fraction in [0, 1] (0.85 = 85%), got {value!r}")
    if name in _NON_NEGATIVE_KEYS and v < 0:
        raise ConfigError(f"{where}: key '{key}' must be >= 0, got {value!r}")
    return v


def _check_choice(where: str, key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{where}: key '{key}' must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _build_evidence(where: str, table: Any, merged: dict) -> None:
    """[decision.evidence] over `merged` (its base values), checked key by key."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: key 'decision.evidence' must be a table [decision.evidence]")
    names = {f.name for f in fields(EvidenceRules)}
    for name, value in table.items():
        key = f"decision.evidence.{name}"
        if name not in names:
            raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(names))})")
        if name == "benchmark":
            merged[name] = _check_choice(where, key, value, BENCHMARKS)
        elif name == "min_oos_folds":
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ConfigError(f"{where}: key '{key}' must be an integer >= 2 (Cochran's Q compares "
                                  f"folds), got {value!r}")
            merged[name] = int(value)
        else:
            merged[name] = _check_value(where, key, name, value)
    missing = [n for n in sorted(names) if n not in merged]
    if missing:
        raise ConfigError(f"{where}: missing key 'decision.evidence.{missing[0]}'")
    lo, hi = LIVE_LEVEL_RANGE
    if not lo < merged["live_min_psr"] < hi:
        raise ConfigError(f"{where}: key 'decision.evidence.live_min_psr' must be above {lo:g} and below {hi:g} "
                          f"(it is also MinTRL's level), got {merged['live_min_psr']!r}")
    if merged["drop_max_psr"] >= merged["paper_min_psr"]:
        raise ConfigError(f"{where}: key 'decision.evidence.drop_max_psr' ({merged['drop_max_psr']}) must be "
                          f"below 'decision.evidence.paper_min_psr' ({merged['paper_min_psr']})")
    if merged["paper_min_psr"] > merged["live_min_psr"]:
        raise ConfigError(f"{where}: key 'decision.evidence.paper_min_psr' ({merged['paper_min_psr']}) is "
                          f"stricter than 'decision.evidence.live_min_psr' ({merged['live_min_psr']})")


def _build(data: Mapping, where: str, base: dict[str, dict[str, float]] | None) -> Thresholds:
    merged = {s: dict(base[s]) if base else {} for s in _SECTIONS}
    # [decision] also holds the profile (a word) and the [decision.evidence] table
    profile = merged["decision"].pop("profile", "evidence")
    evidence = dict(merged["decision"].pop("evidence", None) or {})
    for section, table in data.items():
        if section not in _SECTIONS:
            known = ", ".join(_SECTIONS)
            raise ConfigError(f"{where}: unknown key '{section}' (known sections: {known})")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: key '{section}' must be a table [{section}]")
        names = {f.name for f in fields(_SECTIONS[section])}
        for name, value in table.items():
            if section == "decision" and name == "profile":
                profile = _check_choice(where, "decision.profile", value, PROFILES)
                continue
            if section == "decision" and name == "evidence":
                _build_evidence(where, value, evidence)
                continue
            key = f"{section}.{name}"
            if name not in names:
                raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(names))})")
            merged[section][name] = _check_value(where, key, name, value)
    for section, kind in _SECTIONS.items():
        missing = [f.name for f in fields(kind) if f.name not in merged[section]]
        if missing:
            raise ConfigError(f"{where}: missing key '{section}.{missing[0]}'")
    a, r = merged["approved"], merged["review"]
    for name in ("fitness", "profit_factor", "consistency"):
        if a[name] < r[name]:
            raise ConfigError(f"{where}: key 'approved.{name}' ({a[name]}) is looser than 'review.{name}' ({r[name]})")
    if a["max_drawdown"] > r["max_drawdown"]:
        raise ConfigError(
            f"{where}: key 'approved.max_drawdown' ({a['max_drawdown']}) is looser than "
            f"'review.max_drawdown' ({r['max_drawdown']})"
        )
    if not evidence:
        _build_evidence(where, {}, evidence)  # names the first missing key
    return Thresholds(**{s: kind(**merged[s]) for s, kind in _SECTIONS.items()},
                      evidence=EvidenceRules(**evidence), profile=profile, source=where)


@lru_cache(maxsize=1)
def default_thresholds() -> Thresholds:
    """The seed's v2.4.5 table and docs/design.md 8's rules, from the packaged TOML."""
    text = resources.files("engine").joinpath("defaults/thresholds.toml").read_text("utf-8")
    return _build(tomllib.loads(text), "defaults", None)


def load_thresholds(path: str | Path | None = None) -> Thresholds:
    """Defaults overlaid with the keys set in `path` (None: the defaults alone).
    Raises ConfigError naming the key and the file for unknown keys, non-numbers,
    non-finite values, percents where a fraction belongs, or APPROVED looser than REVIEW."""
    if path is None:
        return default_thresholds()
    p = Path(path)
    return _build(_read_toml(p), str(p), default_thresholds().to_dict())


def as_thresholds(value: Thresholds | Mapping | None) -> Thresholds:
    """A Thresholds, or a mapping in the TOML's shape ({"approved": {...}, "review": {...},
    ...}, any subset, over the defaults), or None for the defaults."""
    if value is None:
        return default_thresholds()
    if isinstance(value, Thresholds):
        return value
    if isinstance(value, Mapping):
        return _build(value, "thresholds", default_thresholds().to_dict())
    raise ConfigError(f"thresholds must be a Thresholds or a mapping like the TOML file, got {type(value).__name__}")


# ---------------------------------------------------------------------- flags


class Flag(str):
    """A gating remark: `code` for machines, `message` (one sentence) for people.

    It is a str, "CODE: message", so code written against the seed's list of flag
    strings keeps working (`"percent" in flag.lower()`, `", ".join(flags)`); it also
    equals its bare code, so `"PERCENT_UNITS" in flags` works."""

    __slots__ = ("code", "message")

    def __new__(cls, code: str, message: str):
        self = super().__new__(cls, f"{code}: {message}")
        self.code = code
        self.message = message
        return self

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str) and not isinstance(other, Flag) and other == self.code:
            return True
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self.code)

    def __repr__(self) -> str:
        return f"Flag({self.code!r}, {self.message!r})"

    def __reduce__(self):
        return (Flag, (self.code, self.message))

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


FLAG_CODES = (
    "MISSING_METRIC", "NON_FINITE_METRIC", "OUT_OF_RANGE", "PERCENT_UNITS", "NEGATIVE_MAX_DD",
    "PROXY_MAX_DD", "INFLATED_PROXY_DD", "CHECKPOINT_BETTER", "MODEL_MISSING",
)


# -------------------------------------------------------------------- gating


@dataclass(frozen=True)
class GatingResult:
    classification: str
    flags: tuple[Flag, ...]
    use_checkpoint: bool
    checkpoint_index: int | None
    checkpoint: str | None
    # final metrics after unit handling (fractions); None where missing or non-finite
    metrics: dict[str, float | None]
    # why the model is not one class higher, e.g. "profit factor 1.50 < 1.8 (APPROVED)"
    shortfalls: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """The report's `gating` object (docs/internals.md)."""
        return {
            "classification": self.classification,
            "metrics": dict(self.metrics),
            "flags": [f.to_dict() for f in self.flags],
            "use_checkpoint": self.use_checkpoint,
            "checkpoint_index": self.checkpoint_index,
            "checkpoint": self.checkpoint,
        }


_LABELS = {"fitness": "fitness", "profit_factor": "profit factor",
           "consistency": "consistency", "max_drawdown": "max_dd"}


def _fmt(name: str, v: float) -> str:
    return f"{v:.1%}" if name in ("consistency", "max_drawdown") else f"{v:.2f}"


def _to_float(x: Any) -> float:
    # A float32 0.7 is 0.699999988 as a double and would fall short of a 0.70 bound; read
    # narrow floats as the decimal they print as, the value the training run meant.
    dtype = getattr(x, "dtype", None)
    if dtype is not None and dtype.kind == "f" and dtype.itemsize < 8:
        return float(str(x))
    return float(x)


def _as_float(name: str, raw: Any, flags: list[Flag]) -> float | None:
    label = _LABELS[name]
    if raw is None:
        flags.append(Flag("MISSING_METRIC", f"final {label} is missing, so the model is DROP."))
        return None
    if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
        flags.append(Flag("MISSING_METRIC", f"final {label} is not a number ({raw!r}), so the model is DROP."))
        return None
    v = _to_float(raw)
    if not math.isfinite(v):
        flags.append(Flag("NON_FINITE_METRIC", f"final {label} is {v}, not a finite number, so the model is DROP."))
        return None
    return v


def _as_fraction(name: str, v: float | None, flags: list[Flag]) -> float | None:
    if v is None:
        return None
    label = _LABELS[name]
    if name == "max_drawdown" and v < 0:
        flags.append(Flag("NEGATIVE_MAX_DD", f"max_dd {v:g} is negative and was read as its magnitude {-v:g}."))
        v = -v
    if v < 0:
        flags.append(Flag("OUT_OF_RANGE", f"{label} {v:g} is negative, which is impossible, so the model is DROP."))
        return None
    if v > 1.0:
        if v > 100.0:
            flags.append(Flag("OUT_OF_RANGE", f"{label} {v:g} is above 100%, which is impossible, so the model is DROP."))
            return None
        flags.append(Flag("PERCENT_UNITS", f"{label} {v:g} is above 1 and was read as a percent ({v / 100:.4g})."))
        v = v / 100.0
    return v


def metric_level(name: str, v: float, t: Thresholds) -> int:
    """2 = meets APPROVED, 1 = meets REVIEW, 0 = neither; >= and <= as in the table.
    name: fitness | profit_factor | consistency | max_drawdown (a fraction)."""
    a, r = getattr(t.approved, name), getattr(t.review, name)
    if name == "max_drawdown":
        return 2 if v <= a else 1 if v <= r else 0
    return 2 if v >= a else 1 if v >= r else 0


def _checkpoint(final: float | None, history: Sequence | None, margin: float) -> tuple[bool, int | None, float | None]:
    if final is None or history is None:
        return False, None, None
    best, best_i = None, None
    for i, h in enumerate(history):
        if isinstance(h, bool) or not isinstance(h, numbers.Real) or not math.isfinite(_to_float(h)):
            continue  # a broken epoch cannot be recommended
        # strict > keeps the FIRST best on ties
        if best is None or _to_float(h) > best:
            best, best_i = _to_float(h), i
    if best is None or best - final < margin - _MARGIN_EPS:
        return False, None, best
    return True, best_i, best


def assess(final_fitness, final_pf, final_consistency, final_max_dd, fitness_history,
           thresholds: Thresholds | None = None, checkpoints: Sequence | None = None) -> GatingResult:
    """Full gating result; `assess_model_quality` is its seed-compatible tuple form."""
    t = as_thresholds(thresholds)
    flags: list[Flag] = []
    fitness = _as_float("fitness", final_fitness, flags)
    pf = _as_float("profit_factor", final_pf, flags)
    if pf is not None and pf < 0:
        flags.append(Flag("OUT_OF_RANGE", f"profit factor {pf:g} is negative, which is impossible, so the model is DROP."))
        pf = None
    consistency = _as_fraction("consistency", _as_float("consistency", final_consistency, flags), flags)
    max_dd = _as_fraction("max_drawdown", _as_float("max_drawdown", final_max_dd, flags), flags)
    values = {"fitness": fitness, "profit_factor": pf, "consistency": consistency, "max_drawdown": max_dd}

    shortfalls: list[str] = []
    if any(v is None for v in values.values()):
        classification = DROP
    else:
        levels = {n: metric_level(n, v, t) for n, v in values.items()}
        top = min(levels.values())
        classification = (DROP, REVIEW, APPROVED)[top]
        if top < 2:
            target, bounds = ((REVIEW, t.review), (APPROVED, t.approved))[top]
            for n, v in values.items():
                if levels[n] == top:
                    op = ">" if n == "max_drawdown" else "<"
                    shortfalls.append(f"{_LABELS[n]} {_fmt(n, v)} {op} {_fmt(n, getattr(bounds, n))} ({target})")
        inflated = max_dd > t.proxy.inflated_max_drawdown
        others = min(levels[n] for n in levels if n != "max_drawdown")
        if inflated:
            flags.append(Flag(
                "INFLATED_PROXY_DD",
                f"training max_dd {max_dd:.1%} is above {t.proxy.inflated_max_drawdown:.0%}: the inflated proxy "
                f"(reward volatility) of the old reward_scale 0.1, not an equity drawdown; a backtest (foldgate backtest or validate) measures the real one.",
            ))
        elif levels["max_drawdown"] < others:
            flags.append(Flag(
                "PROXY_MAX_DD",
                f"training max_dd {max_dd:.1%} is a proxy (reward volatility), not an equity drawdown, and it alone "
                f"holds the model at {classification}; a backtest (foldgate backtest or validate) measures the real one.",
            ))

    use_cp, cp_idx, best = _checkpoint(fitness, fitness_history, t.checkpoint.min_improvement)
    checkpoint = None
    if use_cp:
        if checkpoints is not None and cp_idx < len(checkpoints) and isinstance(checkpoints[cp_idx], str):
            checkpoint = checkpoints[cp_idx]
        where = f" ({checkpoint})" if checkpoint else ""
        flags.append(Flag(
            "CHECKPOINT_BETTER",
            f"checkpoint {cp_idx}{where} has fitness {best:.3f}, {best - fitness:.3f} above the final "
            f"{fitness:.3f}: consider it instead of the final model.",
        ))
    return GatingResult(classification, tuple(flags), use_cp, cp_idx, checkpoint, values, tuple(shortfalls))


def assess_model_quality(final_fitness, final_pf, final_consistency, final_max_dd, fitness_history,
                         thresholds: Thresholds | None = None) -> tuple[str, list[Flag], bool, int | None]:
    """docs/design.md 7: (classification, flags, use_checkpoint, cp_idx), classification one
    of "APPROVED" | "REVIEW" | "DROP"; cp_idx is the first index of the best fitness
    when it beats the final by >= the checkpoint margin, else None."""
    r = assess(final_fitness, final_pf, final_consistency, final_max_dd, fitness_history, thresholds)
    return r.classification, list(r.flags), r.use_checkpoint, r.checkpoint_index


def gate_metrics(metrics: Mapping[str, Sequence], checkpoints: Sequence | None = None,
                 thresholds: Thresholds | None = None) -> GatingResult:
    """Gate a symbol from its metric histories (keys METRIC_KEYS, as in the training
    summary); the final value of each history is the one gated."""
    def final(key: str):
        h = metrics.get(key)
        return h[-1] if h is not None and len(h) else None

    return assess(final("fitness_score"), final("profit_factor"), final("consistency"),
                  final("max_drawdown"), metrics.get("fitness_score"), thresholds, checkpoints)
