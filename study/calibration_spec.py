"""The calibration spec: which rules may move, over what, fitted on which seeds, judged on which.

A TOML file (``study/data/example_calibration.toml`` documents every key)::

    [calibration]   name, trials, sampler_seed, regimes, agents, turns
    [seeds]         fit = "1001-1024", held_out = "9001-9120"   (per regime)
    [targets]       sections = ["4.1", "4.7", ...]              (default: every figure)
    [candidates.<Rules field>]  type = "int" | "float" with low, high (and log); or choices = [...]
    [fixed]         <Rules field> = value                       (the same in every trial)

Any field of ``events.config.Rules`` may be a candidate, including discrete rule
variants exposed there as choices; every bound and choice is validated by
building ``Rules`` from it. The seed protocol is enforced: fitting seeds lie in
1000-8999, held-out seeds from 9001 on, and the two sets never overlap.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..events.config import InvalidConfig, Rules, load_rules, read_toml
from .experiment import DEFAULT_HELD_OUT, FIT_SEEDS, HELD_OUT_FIRST, held_out_seeds
from .regimes import DEFAULT_REGIMES
from .sweep.spec import get_int, parse_seeds

SECTIONS = ("4.1", "4.2", "4.3", "4.4/4.8", "4.6", "4.7", "4.8")


@dataclass(frozen=True)
class Candidate:
    """One Rules field the optimiser may set: an int or float range, or a list of choices."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()


@dataclass(frozen=True)
class CalibrationSpec:
    name: str
    trials: int
    sampler_seed: int
    regimes: tuple[str, ...]
    agents: int
    turns: int
    fit_seeds: tuple[int, ...]
    held_out_seeds: tuple[int, ...]
    sections: tuple[str, ...]
    candidates: tuple[Candidate, ...]
    fixed: dict[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        """Return a fingerprint of everything that defines the fit (not ``trials``: more may be asked for later)."""
        doc = {k: v for k, v in self.__dict__.items() if k not in ("trials", "held_out_seeds")}
        doc["candidates"] = [c.__dict__ for c in self.candidates]
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=list).encode()).hexdigest()[:16]


def load_calibration(path: str | Path) -> CalibrationSpec:
    """Return the validated spec of a TOML file (InvalidConfig names the file and the bad key)."""
    path = Path(path)
    data = read_toml(path, "calibration spec")
    try:
        return parse_calibration(data)
    except InvalidConfig as err:
        raise InvalidConfig(f"{path}: {err}") from None


def parse_calibration(data: dict[str, Any]) -> CalibrationSpec:
    """Return the validated spec of parsed TOML."""
    check_keys(data, {"calibration", "seeds", "targets", "candidates", "fixed"}, "top level")
    head = table(data, "calibration")
    check_keys(head, {"name", "trials", "sampler_seed", "regimes", "agents", "turns"}, "[calibration]")
    seeds = table(data, "seeds")
    check_keys(seeds, {"fit", "held_out"}, "[seeds]")
    fit = parse_seeds(seeds.get("fit"))
    held = parse_seeds(seeds["held_out"]) if "held_out" in seeds else held_out_seeds(DEFAULT_HELD_OUT)
    check_seed_protocol(fit, held)
    fixed = table(data, "fixed")
    candidates = parse_candidates(table(data, "candidates"), fixed)
    regimes = head.get("regimes", list(DEFAULT_REGIMES))
    if not isinstance(regimes, list) or not regimes or not all(isinstance(r, str) for r in regimes):
        raise InvalidConfig(f"[calibration] regimes must be a list of regime names, got {regimes!r}")
    return CalibrationSpec(
        name=get_name(head.get("name", "calibration")), trials=get_int(head.get("trials", 30), "trials", 1),
        sampler_seed=get_int(head.get("sampler_seed", 0), "sampler_seed", 0), regimes=tuple(regimes),
        agents=get_int(head.get("agents", 8), "agents", 3), turns=get_int(head.get("turns", 40), "turns", 1),
        fit_seeds=tuple(fit), held_out_seeds=tuple(held), sections=parse_sections(table(data, "targets")),
        candidates=candidates, fixed=dict(sorted(fixed.items())))


def table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise InvalidConfig(f"[{key}] must be a table")
    return value


def check_keys(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidConfig(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")


def get_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidConfig(f"[calibration] name must be a non-empty string, got {value!r}")
    return value


def check_seed_protocol(fit: list[int], held: list[int]) -> None:
    """Refuse fitting seeds outside 1000-8999, held-out seeds below 9001, and any seed in both."""
    outside = [s for s in fit if s not in FIT_SEEDS]
    if outside:
        raise InvalidConfig(f"fitting seed {outside[0]} is outside {FIT_SEEDS.start}-{FIT_SEEDS.stop - 1} "
                            f"(101-112 are the paper's, {HELD_OUT_FIRST} on are held out)")
    low = [s for s in held if s < HELD_OUT_FIRST]
    if low:
        raise InvalidConfig(f"held-out seed {low[0]} is below {HELD_OUT_FIRST}")
    both = sorted(set(fit) & set(held))
    if both:
        raise InvalidConfig(f"seed {both[0]} is both a fitting and a held-out seed")


def parse_sections(targets: dict[str, Any]) -> tuple[str, ...]:
    check_keys(targets, {"sections"}, "[targets]")
    sections = targets.get("sections", list(SECTIONS))
    if not isinstance(sections, list) or not sections:
        raise InvalidConfig('[targets] sections must be a non-empty list, e.g. ["4.1", "4.7"]')
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise InvalidConfig(f"[targets] unknown section {unknown[0]!r} (known: {', '.join(SECTIONS)})")
    return tuple(sections)


def parse_candidates(data: dict[str, Any], fixed: dict[str, Any]) -> tuple[Candidate, ...]:
    """Return the candidates, each checked against Rules: a known field, bounds and choices it accepts."""
    if not data:
        raise InvalidConfig("[candidates] names no Rules field to fit (e.g. [candidates.job_pay_units])")
    fields = Rules.__struct_fields__
    for name in [*data, *fixed]:
        if name not in fields:
            raise InvalidConfig(f"{name!r} is not a Rules field (known: {', '.join(fields)})")
    both = sorted(set(data) & set(fixed))
    if both:
        raise InvalidConfig(f"{both[0]!r} is both a candidate and fixed")
    check_rules(fixed, "[fixed]")
    return tuple(parse_candidate(name, value, fixed) for name, value in sorted(data.items()))


def parse_candidate(name: str, value: Any, fixed: dict[str, Any]) -> Candidate:
    where = f"[candidates.{name}]"
    if not isinstance(value, dict):
        raise InvalidConfig(f"{where} must be a table")
    check_keys(value, {"type", "low", "high", "log", "choices"}, where)
    if "choices" in value:
        choices = value["choices"]
        if not isinstance(choices, list) or not choices:
            raise InvalidConfig(f"{where} choices must be a non-empty list")
        for choice in choices:
            check_rules({**fixed, name: choice}, where)
        return Candidate(name=name, kind="choice", choices=tuple(choices))
    kind = value.get("type")
    if kind not in ("int", "float"):
        raise InvalidConfig(f"{where} needs type = \"int\" or \"float\" with low and high, or choices = [...]")
    low, high = value.get("low"), value.get("high")
    number = int if kind == "int" else (int, float)
    if not all(isinstance(v, number) and not isinstance(v, bool) for v in (low, high)) or low >= high:
        raise InvalidConfig(f"{where} needs {kind} low < high, got low = {low!r}, high = {high!r}")
    log = value.get("log", False)
    if not isinstance(log, bool) or (log and low <= 0):
        raise InvalidConfig(f"{where} log must be true or false (true needs low > 0)")
    for bound in (low, high):
        check_rules({**fixed, name: bound if kind == "int" else float(bound)}, where)
    return Candidate(name=name, kind=kind, low=low, high=high, log=log)


def check_rules(values: dict[str, Any], where: str) -> Rules:
    try:
        return load_rules(values)
    except InvalidConfig as err:
        raise InvalidConfig(f"{where}: {err}") from None


__all__ = ["Candidate", "CalibrationSpec", "SECTIONS", "load_calibration", "parse_calibration"]
