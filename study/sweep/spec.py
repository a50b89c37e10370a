"""The sweep spec: a TOML file (or the study's regimes) expanded into validated scenarios and run specs."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ...events.config import InvalidConfig, check_keys, load_config, load_rules, read_toml, suggest
from ..experiment import DEFAULT_SEEDS, RunSpec
from ..policies import load_policy
from ..regimes import DEFAULT_REGIMES, SECTIONS, canonical_knob, engine_config, load_regimes, validate_regime
from ..runner import run_name

SPEC_KEYS = ("regime", "regimes_file", "seeds", "agents", "turns", "grid", "scenarios", "llm")
SCENARIO_KEYS = ("name", "regime", "config", "policy", "rules", "llm")
MIN_AGENTS = 3
MAX_SEED = 2**63 - 1
MAX_SCENARIO_NAME = 96
HASH_CHARS = 10
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# --- the spec -------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One point of the sweep: a base regime with parameter overrides, run over every seed."""

    name: str
    base_regime: str
    label: str  # the explicit scenario's name, or "" for a grid point of the base regime
    params: dict[str, Any]  # canonical knob -> value (the scenario's overrides and its grid point)
    regime: dict[str, Any]  # the effective {"config": ..., "policy": ..., ["rules": ...]}
    rules: dict[str, Any]  # rules: the base regime's and the scenario's overrides (defaults for the rest)
    agents: int


@dataclass(frozen=True)
class Sweep:
    """A validated sweep spec: its scenarios, seeds and turns."""

    scenarios: list[Scenario]
    seeds: list[int]
    turns: int
    grid_knobs: list[str]
    source: str = "spec"
    study: bool = False
    """The paper's study layout: runs named ``<regime>_<seed>``, identities as the study driver's runs."""

    @property
    def knobs(self) -> list[str]:
        """Return every parameter some scenario sets, grid knobs first (the summary's columns)."""
        extra = sorted({k for s in self.scenarios for k in s.params} - set(self.grid_knobs))
        return [*self.grid_knobs, *extra]


def load_sweep(path: str | Path) -> Sweep:
    """Return the validated sweep of a TOML spec file (InvalidConfig names the bad key)."""
    path = Path(path)
    return parse_sweep(read_toml(path, "sweep spec"), source=str(path), base_dir=path.parent)


def parse_sweep(data: dict[str, Any], *, source: str = "spec", base_dir: str | Path = ".") -> Sweep:
    """Return the validated sweep of a parsed spec; errors are one line naming the spec and key."""
    try:
        return build_sweep(data, source, Path(base_dir))
    except InvalidConfig as err:
        raise InvalidConfig(f"{source}: {err}") from None


def build_sweep(data: dict[str, Any], source: str, base_dir: Path) -> Sweep:
    check_keys(data, SPEC_KEYS, "")
    regimes_file = data.get("regimes_file")
    if regimes_file is not None and not isinstance(regimes_file, str):
        raise InvalidConfig(f"regimes_file must be a path string, got {regimes_file!r}")
    catalogue = load_regimes(base_dir / regimes_file if regimes_file else None)
    base = get_regime_name(data.get("regime", "baseline"), catalogue, "regime")
    seeds = parse_seeds(data.get("seeds"))
    agents = get_int(data.get("agents", 8), "agents", MIN_AGENTS)
    turns = get_int(data.get("turns", 40), "turns", 1)
    grid = read_grid(data.get("grid"), catalogue[base], agents)
    explicit = read_scenarios(data.get("scenarios"), catalogue, base, agents)
    spec_llm = llm_table(data.get("llm"), "llm")
    if not grid and not explicit:
        raise InvalidConfig("empty grid: give [grid] knobs (each a non-empty list) and/or [[scenarios]]")
    for index, (label, regime_name, overrides, _) in enumerate(explicit):
        if clash := sorted(set(overrides) & set(grid)):
            raise InvalidConfig(f"scenarios[{index}] ({label}) sets {clash[0]}, which the grid also sweeps")
    bases = explicit or [("", base, {}, {})]
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]
    scenarios = [make_scenario(label, regime_name, overrides, point, catalogue[regime_name], agents,
                               {**spec_llm, **llm})
                 for label, regime_name, overrides, llm in bases for point in points]
    check_unique([s.name for s in scenarios], "scenario name")
    return Sweep(scenarios=scenarios, seeds=seeds, turns=turns, grid_knobs=list(grid), source=source)


def get_regime_name(value: Any, catalogue: dict[str, Any], where: str) -> str:
    if not isinstance(value, str) or value not in catalogue:
        raise InvalidConfig(f"{where}: unknown regime {value!r}{suggest(str(value), catalogue)}; "
                            f"known: {', '.join(catalogue)}")
    return value


def get_int(value: Any, where: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidConfig(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def parse_seeds(value: Any) -> list[int]:
    """Return the seeds of ``[101, 102]``, ``"101-112"`` or ``"101,105"`` (ranges inclusive)."""
    if value is None:
        raise InvalidConfig("seeds: missing; e.g. seeds = [101, 102] or seeds = \"101-112\"")
    if isinstance(value, str):
        seeds = parse_seed_text(value)
    elif isinstance(value, list):
        seeds = value
    else:
        raise InvalidConfig(f"seeds must be a list of integers or a range like \"101-112\", got {value!r}")
    if not seeds:
        raise InvalidConfig("seeds names no seed")
    for index, seed in enumerate(seeds):
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
            raise InvalidConfig(f"seeds[{index}] must be an integer in 0..2**63-1, got {seed!r}")
    check_unique([str(s) for s in seeds], "seed")
    return list(seeds)


def parse_seed_text(text: str) -> list[int]:
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not match:
            raise InvalidConfig(f"seeds: {part!r} is not a seed or a range like 101-112")
        low, high = int(match[1]), int(match[2] or match[1])
        if high < low:
            raise InvalidConfig(f"seeds: range {part!r} is empty")
        seeds.extend(range(low, high + 1))
    return seeds


def check_unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidConfig(f"duplicate {what} {name!r}")
        seen.add(name)


def study_sweep(regimes: Iterable[str] = DEFAULT_REGIMES, seeds: Iterable[int] = DEFAULT_SEEDS, agents: int = 8,
                turns: int = 40, regimes_file: str | Path | None = None) -> Sweep:
    """Return the study as a sweep: one named scenario per regime, no grid, in the study's layout."""
    catalogue = load_regimes(regimes_file)
    names = [get_regime_name(name, catalogue, "--regimes") for name in regimes]
    if not names:
        raise InvalidConfig("--regimes names no regime")
    check_unique(names, "regime")
    agents = get_int(agents, "--agents", MIN_AGENTS)
    scenarios = [make_scenario(name, name, {}, {}, catalogue[name], agents) for name in names]
    return Sweep(scenarios=scenarios, seeds=parse_seeds(list(seeds)), turns=get_int(turns, "--turns", 1),
                 grid_knobs=[], source="study", study=True)


# --- knobs and values -------------------------------------------------------------


def flatten_knobs(table: dict[str, Any], where: str) -> dict[str, Any]:
    """Return {canonical knob: value} of a table that may nest config/policy/rules sub-tables."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if key in SECTIONS and isinstance(value, dict):
            items = [(f"{key}.{name}", inner) for name, inner in value.items()]
        else:
            items = [(key, value)]
        for name, inner in items:
            knob = canonical_knob(name, where)
            if knob in flat:
                raise InvalidConfig(f"{where}{name}: the knob {knob} is given twice")
            flat[knob] = inner
    return flat


def check_value(knob: str, value: Any, regime: dict[str, Any], agents: int, where: str) -> None:
    """Raise InvalidConfig (naming ``where``) unless ``value`` is valid for ``knob`` over ``regime``."""
    section, _, name = knob.rpartition(".")
    try:
        if section == "policy":
            load_policy({**regime["policy"], name: value})
        elif section == "rules":
            load_rules({**regime.get("rules", {}), name: value})
        else:
            if name == "num_agents":
                get_int(value, "num_agents", MIN_AGENTS)
            load_config({**engine_config(regime, agents), name: value})
    except InvalidConfig as err:
        raise InvalidConfig(f"{where}: {err}") from None


def read_grid(table: Any, regime: dict[str, Any], agents: int) -> dict[str, list]:
    """Return the grid as {canonical knob: [values]} in sorted knob order, each value validated."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise InvalidConfig("grid must be a table of knob = [values]")
    grid = {}
    for knob, values in sorted(flatten_knobs(table, "grid.").items()):
        where = f"grid.{knob}"
        if not isinstance(values, list):
            raise InvalidConfig(f"{where} must be a list of values, got {values!r} (write {knob} = [{values!r}])")
        if not values:
            raise InvalidConfig(f"{where}: empty grid (the list of values is empty)")
        for index, value in enumerate(values):
            check_value(knob, value, regime, agents, f"{where}[{index}] = {value!r}")
        check_unique([repr(v) for v in values], f"value in {where}:")
        grid[knob] = values
    return grid


def read_scenarios(items: Any, catalogue: dict[str, Any], base: str,
                   agents: int) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """Return the explicit scenarios as (name, base regime, {canonical knob: value}, llm table)."""
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InvalidConfig("scenarios must be an array of tables ([[scenarios]])")
    out = []
    for index, item in enumerate(items):
        where = f"scenarios[{index}]"
        check_keys(item, SCENARIO_KEYS, f"{where}.")
        label = item.get("name")
        if not isinstance(label, str) or not SAFE_NAME.match(label):
            raise InvalidConfig(f"{where}.name must be letters, digits, '_', '-' or '.', got {label!r}")
        regime_name = get_regime_name(item.get("regime", base), catalogue, f"{where}.regime")
        overrides: dict[str, Any] = {}
        for section in SECTIONS:
            table = item.get(section, {})
            if not isinstance(table, dict):
                raise InvalidConfig(f"{where}.{section} must be a table, got {table!r}")
            for knob, value in flatten_knobs({section: table}, f"{where}.").items():
                check_value(knob, value, catalogue[regime_name], agents, f"{where}.{knob} = {value!r}")
                overrides[knob] = value
        out.append((label, regime_name, overrides, llm_table(item.get("llm"), f"{where}.llm")))
    check_unique([label for label, *_ in out], "scenario name")
    return out


def llm_table(table: Any, where: str) -> dict[str, Any]:
    """Return a spec's or scenario's ``llm`` table (the model that plays agents; checked with its regime)."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise InvalidConfig(f"{where} must be a table, got {table!r}")
    return table


# --- scenarios and run specs -------------------------------------------------------


def make_scenario(label: str, regime_name: str, overrides: dict[str, Any], point: dict[str, Any],
                  base: dict[str, Any], agents: int, llm: dict[str, Any] | None = None) -> Scenario:
    """Return the scenario of an explicit scenario (or the base regime) at one grid point, validated.

    ``llm`` (the spec's and the scenario's ``llm`` tables) overrides the base regime's ``llm`` table key by key.
    """
    params = {**overrides, **point}
    config = {k: v for k, v in params.items() if "." not in k}
    policy = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("policy.")}
    rules = {**base.get("rules", {}), **{k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("rules.")}}
    regime = {"config": {**base.get("config", {}), **config}, "policy": {**base["policy"], **policy}}
    if rules:
        regime["rules"] = rules
    if llm or "llm" in base:
        regime["llm"] = {**base.get("llm", {}), **(llm or {})}
    agents = regime["config"].get("num_agents", agents)
    name = scenario_name(label or regime_name, point, {"regime": regime_name, "scenario": label, "params": params})
    try:
        validate_regime(name, {**regime, "config": {k: v for k, v in regime["config"].items() if k != "num_agents"}})
        load_config(engine_config(regime, agents))
    except InvalidConfig as err:
        raise InvalidConfig(f"scenario {name}: {err}") from None
    return Scenario(name=name, base_regime=regime_name, label=label, params=dict(sorted(params.items())),
                    regime=regime, rules=rules, agents=agents)


def format_value(value: Any) -> str:
    """Return a filesystem-safe spelling of a knob value (``0.02``, ``3``, ``true``, ``reject``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return safe_text(str(value))


def safe_text(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text) or "-"


def scenario_name(prefix: str, point: dict[str, Any], canonical: dict[str, Any]) -> str:
    """Return ``prefix__knob=value__...``, or a readable prefix plus a short hash when too long."""
    name = "__".join([safe_text(prefix), *(f"{knob}={format_value(v)}" for knob, v in sorted(point.items()))])
    if len(name) <= MAX_SCENARIO_NAME:
        return name
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:HASH_CHARS]
    prefix = name[:MAX_SCENARIO_NAME - HASH_CHARS - 1]
    if "__" in prefix:  # whole knob=value pairs only: a cut value would read as another value
        prefix = prefix[:prefix.rindex("__")]
    return f"{prefix}~{digest}"


def run_file_name(sweep: Sweep, scenario: Scenario, seed: int) -> str:
    if sweep.study:
        return run_name(scenario.name, seed)
    return f"{scenario.name}__seed={seed}"


def run_identity(sweep: Sweep, scenario: Scenario, seed: int) -> dict[str, Any]:
    """Return the identity a run's genesis records (what produced it, beside the library version).

    A study run records what the study driver's runs record (regime, run name,
    turns); the genesis holds its config and rules, and its file name the seed.
    """
    turns = sweep.turns
    if sweep.study:
        return {"regime": scenario.name, "run_name": run_file_name(sweep, scenario, seed), "turns": turns}
    return {
        "regime": scenario.name, "run_name": run_file_name(sweep, scenario, seed), "turns": turns,
        "agents": scenario.agents, "seed": seed, "base_regime": scenario.base_regime, "scenario": scenario.label,
        "params": dict(scenario.params),
    }


def sweep_specs(sweep: Sweep) -> list[RunSpec]:
    """Return every run of the sweep, sorted by file name."""
    specs = [RunSpec(regime_name=s.name, regime=s.regime, seed=seed, agents=s.agents, turns=sweep.turns,
                     rules=s.rules or None, identity=run_identity(sweep, s, seed),
                     file_name=run_file_name(sweep, s, seed))
             for s in sweep.scenarios for seed in sweep.seeds]
    check_unique([s.name for s in specs], "run name")
    return sorted(specs, key=lambda s: s.name)


def parse_shard(text: str) -> tuple[int, int]:
    """Return (i, k) of ``"i/k"`` with 1 <= i <= k."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise InvalidConfig(f"--shard must look like i/k with 1 <= i <= k (got {text!r})")
    return int(match[1]), int(match[2])


def select_shard(specs: list[RunSpec], shard: tuple[int, int] | None) -> list[RunSpec]:
    """Return the i-th of k round-robin slices of the runs sorted by name (all runs without a shard)."""
    ordered = sorted(specs, key=lambda s: s.name)
    if shard is None:
        return ordered
    index, count = shard
    return ordered[index - 1::count]




def study_specs(regimes: Iterable[str] = DEFAULT_REGIMES, seeds: Iterable[int] = DEFAULT_SEEDS, agents: int = 8,
                turns: int = 40, regimes_file: str | Path | None = None) -> list[RunSpec]:
    """Return the study's runs, regime by regime (in the order given), seed by seed."""
    sweep = study_sweep(regimes, seeds, agents, turns, regimes_file)
    order = {scenario.name: i for i, scenario in enumerate(sweep.scenarios)}
    return sorted(sweep_specs(sweep), key=lambda spec: (order[spec.regime_name], sweep.seeds.index(spec.seed)))
