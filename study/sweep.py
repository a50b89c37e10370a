"""Parameter sweeps: a TOML spec expanded into runs, executed on any Executor, resumable and shardable.

A sweep is the study generalised: instead of three fixed regimes it runs a
cartesian grid of engine knobs (and optionally policy parameters and engine
rules) and/or a list of named scenarios, each over the same seeds. Every run is
its own verified log; its identity (scenario, parameter values, seed, agents,
turns) is recorded in the genesis event (which also records the library
version) and in its file name.

Spec format (TOML; see ``study/data/example_sweep.toml`` for a commented example)::

    regime = "baseline"            # base regime: a shipped one, or one of regimes_file
    regimes_file = "regimes.json"  # optional; relative to the spec file
    seeds = [101, 102]             # or "101-112" / "101,105"; no duplicates
    agents = 8                     # agents per run (>= 3); config.num_agents overrides it
    turns = 40                     # turns per run (>= 1)

    [grid]                         # cartesian product; every knob a non-empty list
    base_inference_rate = [1, 3]   # engine knobs: the 17 fields of events.config.Config
    interest_rate_per_turn = [0.01, 0.02]
    policy.mine_prob = [0.3, 0.46] # policy parameters: policy.<name> (study.regimes.POLICY_KEYS)
    rules.study_cost = [10, 20]    # engine rules: rules.<name> (events.config.Rules)

    [[scenarios]]                  # optional named scenarios; the grid is applied to each
    name = "cheap_compute"         # letters, digits, "_", "-", "."
    regime = "high_compute_cost"   # optional; defaults to the top-level regime
    config = { base_inference_rate = 0.5 }
    policy = { mine_prob = 0.6 }
    rules = { study_cost = 30 }

With only a grid, each grid point is a scenario over the base regime; with only
scenarios, each scenario is run as written; with both, every scenario is
crossed with every grid point (a scenario may not set a knob the grid sweeps).
A scenario is named ``<regime or scenario name>__<knob>=<value>__...`` (grid
knobs in sorted order); a run's log is ``<scenario>__seed=<seed>.db``. A name
longer than 96 characters keeps its leading whole ``knob=value`` pairs and ends
in ``~`` plus ten hex digits of the SHA-256 of the scenario's canonical
parameters (so it stays short, unique and deterministic).

Execution goes through any ``concurrent.futures.Executor`` (a process pool,
``distributed.Client(...).get_executor()``, ...); nothing here is specific to
one. Logs are written by the workers into one folder all of them can see, or,
with ``return_logs``, into a worker-local temporary folder whose bytes are
returned to the client, which writes and verifies them. A rerun skips every run
whose log exists, verifies, has all its turns and records this run's identity
and library version; a run that raises is recorded in ``failures.json`` and the
sweep goes on. ``shard=(i, k)`` keeps the i-th of k round-robin slices of the
runs sorted by name, so k machines can split a sweep with plain shell.

The client writes the study's four summary files (``regime`` = scenario name),
``sweep_summary.csv/json`` (per scenario: its parameter values, and mean and
95% confidence half-width of the headline metrics) and one plot per swept knob
in ``plots/``. Summaries are computed one log at a time (by the workers when
they share the folder), so memory stays bounded by one run per worker plus the
summaries.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import os
import re
import sqlite3
import tempfile
import time
import tomllib
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..events import types as ev
from ..events.config import Config, InvalidConfig, Rules, load_config, load_rules
from ..events.envelope import decode_payload
from ..ledger.errors import LedgerError
from ..ledger.head import head_file_of, write_file_atomically
from ..ledger.store import Store, library_version
from .experiment import RunSpec, execute_spec, execute_specs
from ..projections.metrics import headline_metrics
from .metrics import regime_summary
from .policies import load_policy
from .regimes import POLICY_KEYS, engine_config, load_regimes, validate_regime
from .summary import run_order, summarize_log, to_csv, write_summaries

SPEC_KEYS = ("regime", "regimes_file", "seeds", "agents", "turns", "grid", "scenarios")
SCENARIO_KEYS = ("name", "regime", "config", "policy", "rules")
SECTIONS = ("config", "policy", "rules")
CONFIG_KNOBS = tuple(Config.__struct_fields__)
RULES_FIELDS = tuple(Rules.__struct_fields__)
MIN_AGENTS = 3
MAX_SEED = 2**63 - 1
MAX_SCENARIO_NAME = 96
HASH_CHARS = 10
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
FAILURES_FILE = "failures.json"
UNFINISHED_ERRORS = (LedgerError, ValueError, sqlite3.DatabaseError)  # ValueError: PayloadError, msgspec errors
SWEEP_FILES = ("sweep_summary.json", "sweep_summary.csv")
# two-sided 95% Student t quantiles by degrees of freedom; beyond the table, the nearest smaller anchor
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
       2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
T95_ANCHORS = ((120, 1.980), (60, 2.000), (40, 2.021), (30, 2.042))


# --- the spec -------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One point of the sweep: a base regime with parameter overrides, run over every seed."""

    name: str
    base_regime: str
    label: str  # the explicit scenario's name, or "" for a grid point of the base regime
    params: dict[str, Any]  # canonical knob -> value (the scenario's overrides and its grid point)
    regime: dict[str, Any]  # the effective {"config": ..., "policy": ...}
    rules: dict[str, Any]  # rules overrides (defaults for the rest)
    agents: int


@dataclass(frozen=True)
class Sweep:
    """A validated sweep spec: its scenarios, seeds and turns."""

    scenarios: list[Scenario]
    seeds: list[int]
    turns: int
    grid_knobs: list[str]
    source: str = "spec"

    @property
    def knobs(self) -> list[str]:
        """Return every parameter some scenario sets, grid knobs first (the summary's columns)."""
        extra = sorted({k for s in self.scenarios for k in s.params} - set(self.grid_knobs))
        return [*self.grid_knobs, *extra]


def load_sweep(path: str | Path) -> Sweep:
    """Return the validated sweep of a TOML spec file (InvalidConfig names the bad key)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidConfig(f"sweep spec {path} not found") from None
    except tomllib.TOMLDecodeError as err:
        raise InvalidConfig(f"{path}: not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise InvalidConfig(f"{path}: not a UTF-8 text file") from None
    return parse_sweep(data, source=str(path), base_dir=path.parent)


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
    if not grid and not explicit:
        raise InvalidConfig("empty grid: give [grid] knobs (each a non-empty list) and/or [[scenarios]]")
    for index, (label, regime_name, overrides) in enumerate(explicit):
        if clash := sorted(set(overrides) & set(grid)):
            raise InvalidConfig(f"scenarios[{index}] ({label}) sets {clash[0]}, which the grid also sweeps")
    bases = explicit or [("", base, {})]
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]
    scenarios = [make_scenario(label, regime_name, overrides, point, catalogue[regime_name], agents)
                 for label, regime_name, overrides in bases for point in points]
    check_unique([s.name for s in scenarios], "scenario name")
    return Sweep(scenarios=scenarios, seeds=seeds, turns=turns, grid_knobs=list(grid), source=source)


def check_keys(table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise InvalidConfig(f"{where}{key}: unknown key{suggest(key, allowed)}; "
                                f"expected one of: {', '.join(allowed)}")


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


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


# --- knobs and values -------------------------------------------------------------


def canonical_knob(key: str, where: str) -> str:
    """Return a knob's canonical name: config knobs bare, ``policy.<name>``, ``rules.<name>``."""
    section, _, name = key.rpartition(".")
    if section in ("", "config") and name in CONFIG_KNOBS:
        return name
    if section == "policy" and name in POLICY_KEYS:
        return key
    if section == "rules" and name in RULES_FIELDS:
        return key
    known = [*CONFIG_KNOBS, *(f"policy.{k}" for k in POLICY_KEYS), *(f"rules.{k}" for k in RULES_FIELDS)]
    raise InvalidConfig(f"{where}{key}: unknown knob{suggest(key, known)}; engine knobs are the Config fields "
                        f"({', '.join(CONFIG_KNOBS)}), policy parameters policy.<name>, engine rules rules.<name>")


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
            load_rules({name: value})
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
                   agents: int) -> list[tuple[str, str, dict[str, Any]]]:
    """Return the explicit scenarios as (name, base regime, {canonical knob: value})."""
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
        out.append((label, regime_name, overrides))
    check_unique([label for label, _, _ in out], "scenario name")
    return out


# --- scenarios and run specs -------------------------------------------------------


def make_scenario(label: str, regime_name: str, overrides: dict[str, Any], point: dict[str, Any],
                  base: dict[str, Any], agents: int) -> Scenario:
    """Return the scenario of an explicit scenario (or the base regime) at one grid point, validated."""
    params = {**overrides, **point}
    config = {k: v for k, v in params.items() if "." not in k}
    policy = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("policy.")}
    rules = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("rules.")}
    regime = {"config": {**base.get("config", {}), **config}, "policy": {**base["policy"], **policy}}
    agents = regime["config"].get("num_agents", agents)
    name = scenario_name(label or regime_name, point, {"regime": regime_name, "scenario": label, "params": params})
    try:
        validate_regime(name, {**regime, "config": {k: v for k, v in regime["config"].items() if k != "num_agents"}})
        load_config(engine_config(regime, agents))
        load_rules(rules)
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


def run_file_name(scenario: Scenario, seed: int) -> str:
    return f"{scenario.name}__seed={seed}"


def run_identity(scenario: Scenario, seed: int, turns: int) -> dict[str, Any]:
    """Return the identity a run's genesis records (what produced it, beside the library version)."""
    return {
        "regime": scenario.name, "run_name": run_file_name(scenario, seed), "turns": turns,
        "agents": scenario.agents, "seed": seed, "base_regime": scenario.base_regime, "scenario": scenario.label,
        "params": dict(scenario.params),
    }


def sweep_specs(sweep: Sweep) -> list[RunSpec]:
    """Return every run of the sweep, sorted by file name."""
    specs = [RunSpec(regime_name=s.name, regime=s.regime, seed=seed, agents=s.agents, turns=sweep.turns,
                     rules=s.rules or None, identity=run_identity(s, seed, sweep.turns),
                     file_name=run_file_name(s, seed))
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


# --- checking and returning logs (top-level: workers run these) ------------------------


@dataclass(frozen=True)
class LogCheck:
    """Whether a log is a finished, verified run of a given identity; its summary if so."""

    summary: dict[str, Any] | None
    reason: str = ""


def inspect_log(path: str, identity: dict[str, Any], turns: int) -> LogCheck:
    """Return the verified run summary of the log at ``path`` if it is this run, finished; else why not.

    Only a log that is unreadable, fails verification or records another run
    counts as "not finished" (and will be replaced); any other exception is a
    fault of this installation and is raised, so an existing log is never
    discarded because of it.
    """
    if not os.path.isfile(path):
        return LogCheck(None, "no log file")
    try:
        genesis = read_genesis(path)
        if genesis.identity != identity:
            return LogCheck(None, "the log records another identity")
        if genesis.library_version != library_version():
            return LogCheck(None, f"the log was written by simledger {genesis.library_version}")
        summary = summarize_log(path)
    except UNFINISHED_ERRORS as err:  # unreadable or unverifiable: not finished (a bug elsewhere propagates)
        return LogCheck(None, f"{type(err).__name__}: {err}")
    if summary["turns"] != turns:
        return LogCheck(None, f"the log has {summary['turns']} of {turns} turns")
    return LogCheck(summary)


def read_genesis(path: str | Path) -> ev.RunGenesis:
    """Return the genesis event of a log (unverified: callers verify the whole log after)."""
    with Store(path) as store:
        envelope = next(store.envelopes(end_seq=0), None)
    if envelope is None:
        raise ValueError("the log has no events")
    genesis = decode_payload(envelope.kind, envelope.payload_version, envelope.payload)
    if not isinstance(genesis, ev.RunGenesis):
        raise ValueError("the log does not start with a run_genesis")
    return genesis


def run_to_bytes(spec: RunSpec) -> tuple[str, bytes, str]:
    """Run ``spec`` into a worker-local temporary folder; return (file name, the finished log's bytes, its signed head)."""
    with tempfile.TemporaryDirectory(prefix="simledger-sweep-") as folder:
        outcome = execute_spec(spec, folder)
        checkpoint(outcome.path)
        return f"{spec.name}.db", Path(outcome.path).read_bytes(), head_file_of(outcome.path).read_text()


def checkpoint(path: str | Path) -> None:
    """Fold any write-ahead log into the database file, so the file alone is the whole log."""
    if Path(f"{path}-wal").exists():
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def write_log_bytes(path: Path, data: bytes) -> None:
    """Write a returned log atomically, removing any stale file (and its WAL) of the same name first."""
    remove_log(path)
    partial = path.with_name(path.name + ".part")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def remove_log(path: Path) -> None:
    """Remove a log, its SQLite side files and its signed head if present (never a folder)."""
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"), head_file_of(path)):
        if stale.is_file():
            stale.unlink()


class InlineExecutor(Executor):
    """An Executor that runs each call at once in this process (one worker, no pickling)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as err:  # noqa: BLE001 - delivered through the future, as a pool would
            future.set_exception(err)
        return future


# --- running a sweep ----------------------------------------------------------------------


@dataclass
class SweepResult:
    """What a sweep did: runs skipped (already finished), run now, failed; and its summaries."""

    runs: list[str]
    skipped: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    sweep_rows: list[dict[str, Any]] = field(default_factory=list)
    run_seconds: float = 0.0
    summary_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def run_sweep(sweep: Sweep, out_dir: str | Path, *, executor: Executor | None = None, workers: int = 1,
              shard: tuple[int, int] | None = None, runs_dir: str | Path | None = None, return_logs: bool = False,
              window: int | None = None, report: bool = True, plots: bool = True,
              on_progress: Callable[[str, str], None] | None = None) -> SweepResult:
    """Run the sweep's (shard of) runs not finished yet; write failures, summaries and plots into ``out_dir``.

    ``executor`` is any concurrent.futures Executor (default: a process pool of
    ``workers``, or this process for one worker). ``runs_dir`` (default
    ``out_dir/runs``) must be visible to every worker unless ``return_logs``.
    ``window`` bounds the runs in flight when logs are returned (default: twice
    ``workers``). ``on_progress(event, run name)`` hears "skipped", "done" and "failed".
    """
    out = Path(out_dir)
    runs = Path(runs_dir or out / "runs").resolve()
    runs.mkdir(parents=True, exist_ok=True)
    specs = select_shard(sweep_specs(sweep), shard)
    result = SweepResult(runs=[s.name for s in specs])
    notify = on_progress or (lambda event, name: None)
    started = time.perf_counter()
    own = executor is None and workers > 1
    pool = executor or (ProcessPoolExecutor(max_workers=workers) if workers > 1 else InlineExecutor())
    try:
        checker = InlineExecutor() if return_logs else pool
        summaries = skip_finished(specs, runs, checker, result, notify)
        unchecked = {f["run"] for f in result.failures}
        todo = [s for s in specs if s.name not in summaries and s.name not in unchecked]
        if return_logs:
            summaries.update(run_returning(todo, runs, pool, result, notify, window or 2 * max(1, workers)))
        else:
            summaries.update(run_shared(todo, runs, pool, result, notify))
    finally:
        if own:
            pool.shutdown(cancel_futures=True)
    result.run_seconds = time.perf_counter() - started
    result.failures.sort(key=lambda f: f["run"])
    result.summaries = sorted(summaries.values(), key=run_order)
    write_outputs(sweep, result, out, report=report, plots=plots)
    result.summary_seconds = time.perf_counter() - started - result.run_seconds
    return result


def log_path(runs: Path, spec: RunSpec) -> Path:
    return runs / f"{spec.name}.db"


def skip_finished(specs: list[RunSpec], runs: Path, checker: Executor, result: SweepResult,
                  notify: Callable[[str, str], None]) -> dict[str, dict]:
    """Return the summaries of runs whose log already exists, verifies and is finished (they are skipped)."""
    existing = [s for s in specs if log_path(runs, s).exists()]
    futures = {checker.submit(inspect_log, str(log_path(runs, s)), s.identity, s.turns): s for s in existing}
    summaries = {}
    for future in as_completed(futures):
        spec = futures.pop(future)
        try:
            check = future.result()
        except Exception as err:  # noqa: BLE001 - the log is left alone and the run reported, not replayed
            record_failure(result, spec, f"could not check the existing log (left untouched): "
                                         f"{type(err).__name__}: {err}", notify)
            continue
        if check.summary is not None:
            summaries[spec.name] = check.summary
            result.skipped.append(spec.name)
            notify("skipped", spec.name)
    result.skipped.sort()
    return summaries


def record_failure(result: SweepResult, spec: RunSpec, error: BaseException | str,
                   notify: Callable[[str, str], None]) -> None:
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    result.failures.append({"run": spec.name, "scenario": spec.regime_name, "seed": spec.seed, "error": message})
    notify("failed", spec.name)


def run_shared(todo: list[RunSpec], runs: Path, pool: Executor, result: SweepResult,
               notify: Callable[[str, str], None]) -> dict[str, dict]:
    """Run specs with workers writing into ``runs``; each new log is then verified and summarised by a worker."""
    by_name = {s.name: s for s in todo}
    checks: dict[Future, RunSpec] = {}

    def done(outcome) -> None:
        spec = by_name[outcome.name]
        checks[pool.submit(inspect_log, outcome.path, spec.identity, spec.turns)] = spec

    def failed(spec: RunSpec, err: BaseException) -> None:
        remove_partial(log_path(runs, spec))
        record_failure(result, spec, err, notify)

    inline = isinstance(pool, InlineExecutor)
    execute_specs(todo, runs, executor=None if inline else pool, workers=1, on_done=done, on_error=failed)
    summaries = {}
    for future in as_completed(checks):
        spec = checks.pop(future)
        accept_check(spec, future, summaries, result, notify)
    return summaries


def remove_partial(path: Path) -> None:
    try:
        remove_log(path)
    except OSError:
        pass


def accept_check(spec: RunSpec, future: Future, summaries: dict[str, dict], result: SweepResult,
                 notify: Callable[[str, str], None]) -> None:
    """Keep a new log's summary, or record why the log written for ``spec`` is not acceptable."""
    try:
        check = future.result()
    except Exception as err:  # noqa: BLE001 - e.g. a worker lost while checking
        record_failure(result, spec, err, notify)
        return
    if check.summary is None:
        record_failure(result, spec, f"the written log is not a finished run: {check.reason}", notify)
        return
    summaries[spec.name] = check.summary
    result.ran.append(spec.name)
    notify("done", spec.name)


def run_returning(todo: list[RunSpec], runs: Path, pool: Executor, result: SweepResult,
                  notify: Callable[[str, str], None], window: int) -> dict[str, dict]:
    """Run specs in worker-local folders; write each returned log here and verify it before keeping it.

    At most ``window`` runs are in flight, so at most that many returned logs
    wait in memory for the client, however fast the workers are.
    """
    summaries: dict[str, dict] = {}
    for spec, future in completed_in_window(pool, run_to_bytes, todo, window):
        path = log_path(runs, spec)
        try:
            name, data, head = future.result()
            if name != path.name:
                raise ValueError(f"a worker returned {name!r} for {path.name!r}")
            write_log_bytes(path, data)
            write_file_atomically(head_file_of(path), head)
            del data
        except Exception as err:  # noqa: BLE001 - a failed run is recorded, the sweep goes on
            record_failure(result, spec, err, notify)
            continue
        check = InlineExecutor().submit(inspect_log, str(path), spec.identity, spec.turns)  # verified here
        accept_check(spec, check, summaries, result, notify)
        if spec.name not in summaries:
            remove_partial(path)
    return summaries


def completed_in_window(pool: Executor, fn: Callable, items: list, window: int):
    """Yield (item, finished future) of ``fn(item)`` with at most ``window`` calls submitted at a time."""
    queue = iter(items)
    pending: dict[Future, Any] = {}

    def fill() -> None:
        for item in itertools.islice(queue, max(1, window) - len(pending)):
            pending[pool.submit(fn, item)] = item

    fill()
    while pending:
        finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in finished:
            yield pending.pop(future), future
        fill()


# --- outputs -------------------------------------------------------------------------------


def write_outputs(sweep: Sweep, result: SweepResult, out: Path, *, report: bool, plots: bool) -> None:
    """Write failures.json, the study's four summary files, sweep_summary.csv/json and the plots."""
    out.mkdir(parents=True, exist_ok=True)
    (out / FAILURES_FILE).write_text(json.dumps(result.failures, indent=2) + "\n")
    rows = regime_summary(result.summaries)
    write_summaries(result.summaries, rows, out)
    if report:
        write_study_report(out, result.summaries, rows)
    result.sweep_rows = sweep_rows(sweep, result.summaries)
    write_sweep_summary(result.sweep_rows, sweep.knobs, out)
    if plots:
        plot_sweep(sweep, result.summaries, out / "plots")


def write_study_report(out: Path, runs: list[dict], rows: list[dict]) -> None:
    """Write the study's report.md and plots when the report module is installed (as ``experiment`` does)."""
    try:
        from .report import write_report
    except ModuleNotFoundError:
        return
    write_report(out, runs, rows)


def headline(run: dict[str, Any]) -> dict[str, float]:
    """Return a run's headline metrics (the registry's, by run-summary key)."""
    return {m.run: m.value(run) for m in headline_metrics()}


def t_quantile(df: int) -> float:
    """Return the two-sided 95% Student t quantile for ``df`` degrees of freedom (conservative past 30)."""
    if df <= len(T95):
        return T95[df - 1]
    return next(t for limit, t in T95_ANCHORS if df >= limit)


def mean_ci(values: list[float]) -> tuple[float, float | None]:
    """Return (mean, 95% confidence half-width); the half-width is None for a single value."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, t_quantile(n - 1) * sd / math.sqrt(n)


def effective_value(scenario: Scenario, knob: str) -> Any:
    """Return the value a scenario runs with for ``knob`` (its override, else its base regime's, else the default)."""
    section, _, name = knob.rpartition(".")
    if section == "policy":
        return scenario.regime["policy"].get(name)
    if section == "rules":
        return scenario.rules.get(name, getattr(Rules(), name))
    if name == "num_agents":
        return scenario.agents
    return scenario.regime["config"].get(name, getattr(Config(), name))


def sweep_rows(sweep: Sweep, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one row per scenario that has runs: its parameter values, run count, metric means and CIs."""
    grouped: dict[str, list[dict]] = {}
    for run in runs:
        grouped.setdefault(run["regime"], []).append(run)
    rows = []
    for scenario in sorted(sweep.scenarios, key=lambda s: s.name):
        members = grouped.get(scenario.name)
        if not members:
            continue
        row: dict[str, Any] = {"scenario": scenario.name, "base_regime": scenario.base_regime}
        row.update({knob: effective_value(scenario, knob) for knob in sweep.knobs})
        row["n_runs"] = len(members)
        metrics = [headline(r) for r in members]
        for name in metrics[0]:
            row[f"{name}_mean"], row[f"{name}_ci95"] = mean_ci([m[name] for m in metrics])
        rows.append(row)
    return rows


def sweep_fields(knobs: list[str]) -> list[str]:
    metrics = [f"{m.run}_{stat}" for m in headline_metrics() for stat in ("mean", "ci95")]
    return ["scenario", "base_regime", *knobs, "n_runs", *metrics]


def write_sweep_summary(rows: list[dict[str, Any]], knobs: list[str], out: Path) -> None:
    """Write sweep_summary.json and sweep_summary.csv (a missing half-width is null / empty)."""
    (out / "sweep_summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "sweep_summary.csv").write_text(to_csv(sweep_fields(knobs), rows))


def swept_knobs(sweep: Sweep) -> list[str]:
    """Return the knobs whose value differs between scenarios (one plot each)."""
    return [k for k in sweep.knobs if len({repr(effective_value(s, k)) for s in sweep.scenarios}) > 1]


def plot_sweep(sweep: Sweep, runs: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Write ``plots/sweep_<knob>.png`` and ``.svg`` per swept knob: one panel per headline metric, 95% CIs."""
    from .figures import plot_sweep_metrics

    knobs = swept_knobs(sweep)
    if not runs or not knobs:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    by_name = {s.name: s for s in sweep.scenarios}
    points = [(by_name[r["regime"]], headline(r)) for r in runs if r["regime"] in by_name]
    metrics = headline_metrics()
    written = []
    for knob in knobs:
        groups = knob_groups(knob, points, sweep.knobs)
        lines = {label: {m.run: knob_points(knob, m.run, members) for m in metrics}
                 for label, members in groups.items()}
        note = "" if len(groups) > 1 else " (averaged over the other knobs)" if len(sweep.knobs) > 1 else ""
        written += plot_sweep_metrics(knob, [(m.run, m.label) for m in metrics], lines, format_value,
                                      folder / f"sweep_{safe_text(knob)}.png", note)
    return written


def knob_groups(knob: str, points: list[tuple[Scenario, dict]], knobs: list[str],
                max_lines: int = 6) -> dict[str, list[tuple[Scenario, dict]]]:
    """Return one line per setting of the other knobs (if few), else a single line averaging them."""
    others = [k for k in knobs if k != knob]
    groups: dict[str, list] = {}
    for scenario, metrics in points:
        label = ", ".join(f"{k}={format_value(effective_value(scenario, k))}" for k in others) or knob
        groups.setdefault(label, []).append((scenario, metrics))
    return groups if len(groups) <= max_lines else {"all": points}


def knob_points(knob: str, metric: str, members: list[tuple[Scenario, dict]]) -> list[tuple[Any, float, float | None]]:
    """Return (knob value, mean, 95% CI half-width) of ``metric`` per value of ``knob``, values in order."""
    by_value: dict[Any, list[float]] = {}
    for scenario, metrics in members:
        by_value.setdefault(effective_value(scenario, knob), []).append(metrics[metric])
    values = sorted(by_value, key=lambda v: (isinstance(v, str), v if not isinstance(v, str) else 0, str(v)))
    return [(v, *mean_ci(by_value[v])) for v in values]


def load_failures(out_dir: str | Path) -> list[dict[str, Any]]:
    """Return the failures recorded by the last sweep into ``out_dir`` ([] if none)."""
    path = Path(out_dir) / FAILURES_FILE
    return json.loads(path.read_text()) if path.exists() else []


__all__ = [
    "Scenario", "Sweep", "SweepResult", "LogCheck", "InlineExecutor", "load_sweep", "parse_sweep", "sweep_specs",
    "parse_shard", "select_shard", "inspect_log", "run_to_bytes", "run_sweep", "sweep_rows",
]
