"""Parameter sweeps (and the study): a TOML spec expanded into runs, executed on any Executor, resumable and shardable.

A sweep runs a cartesian grid of engine knobs (and optionally policy
parameters and engine rules) and/or a list of named scenarios, each over the
same seeds. The study itself is a sweep (``study_sweep``): one named scenario
per regime, no grid, with the study driver's run names and identities. Every run is
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
    llm = { temperature = 0.8 }    # optional; overrides the spec's [llm] table key by key

    [llm]                          # optional: agents played by a language model (docs/llm.md)
    url = "http://127.0.0.1:8080/v1"
    model = "qwen2.5-7b-instruct"
    agents = ["agent_1"]           # default: all; the others play the regime's policy

With only a grid, each grid point is a scenario over the base regime; with only
scenarios, each scenario is run as written; with both, every scenario is
crossed with every grid point (a scenario may not set a knob the grid sweeps).
A scenario is named ``<regime or scenario name>__<knob>=<value>__...`` (grid
knobs in sorted order); a run's log is ``<scenario>__seed=<seed>.db``. A name
longer than 96 characters keeps its leading whole ``knob=value`` pairs and ends
in ``~`` plus ten hex digits of the SHA-256 of the scenario's canonical
parameters (so it stays short, unique and deterministic).

The modules: ``spec`` (parsing and validation, scenario names, run specs,
shards), ``execute`` (running, checking and skipping logs), ``tables`` (summary
files, per-scenario means and confidence intervals, plots).

Execution goes through any ``concurrent.futures.Executor`` (a process pool,
``distributed.Client(...).get_executor()``, ...); nothing here is specific to
one. Logs are written by the workers into one folder all of them can see, or,
with ``return_logs``, into a worker-local temporary folder whose bytes are
returned to the client, which writes and verifies them. A rerun skips every run
whose log exists, verifies, has all its turns and records this run's identity,
shape (seed, agents, config, rules) and library version, and replaces logs that
do not verify or are unfinished. A log that verifies but records another run
is never replaced unasked: the sweep refuses the folder (``FolderInUse``)
before running anything, unless ``force``. A run that raises is recorded in
``failures.json`` and the sweep goes on. ``shard=(i, k)`` keeps the i-th of k round-robin slices of the
runs sorted by name, so k machines can split a sweep with plain shell.

The client writes the study's four summary files (``regime`` = scenario name),
``sweep_summary.csv/json`` (per scenario: its parameter values, and mean and
95% confidence half-width of the headline metrics, 1.96 SD / sqrt(n) as in the
study's report: one convention in one folder) and one plot per swept knob
in ``plots/``. Summaries are computed one log at a time (by the workers when
they share the folder), so memory stays bounded by one run per worker plus the
summaries.
"""

from .execute import InlineExecutor, LogCheck, SweepResult, inspect_log, read_genesis, run_sweep, run_to_bytes
from .spec import (
    Scenario, Sweep, format_value, load_sweep, parse_seeds, parse_shard, parse_sweep, scenario_name, select_shard,
    study_specs, study_sweep, sweep_specs,
)
from .tables import FAILURES_FILE, load_failures, mean_ci, sweep_rows

__all__ = [
    "Scenario", "Sweep", "SweepResult", "LogCheck", "InlineExecutor", "load_sweep", "parse_sweep", "sweep_specs",
    "parse_shard", "select_shard", "inspect_log", "run_to_bytes", "run_sweep", "sweep_rows", "study_sweep",
    "study_specs", "parse_seeds", "format_value", "scenario_name", "read_genesis", "load_failures", "mean_ci",
    "FAILURES_FILE",
]
