"""Runs on any Executor, each its own verified log (the study and sweeps plan them: ``study.sweep``).

A run is described by a picklable ``RunSpec`` and executed by ``execute_spec``
(a top-level function, so process pools and Dask workers can run it). The
bytes of a log depend only on its spec, never on which worker ran it or when.
Summaries are always recomputed from the stored logs (``study.summary``).

``simulate_specs`` plays the same runs in memory (``ledger.memory``) and returns
their summaries directly: the same economy, for ensembles too large to log.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..projections.metrics import run_summary
from .model_runs import plays_llm, refuse_in_memory
from .runner import execute_run, genesis_identity, remove_log_files, run_name, simulate_run

DEFAULT_SEEDS = tuple(range(101, 113))
# The seed protocol: the paper's seeds 101-112 are the study's default; rules may be
# fitted or explored on FIT_SEEDS; seeds from HELD_OUT_FIRST on are held out, used only
# for final checks, never to choose anything.
FIT_SEEDS = range(1000, 9000)
HELD_OUT_FIRST = 9001
DEFAULT_HELD_OUT = 120


def held_out_seeds(count: int) -> list[int]:
    """Return the first ``count`` held-out seeds (9001 on)."""
    return list(range(HELD_OUT_FIRST, HELD_OUT_FIRST + count))


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run; its log is a pure function of this."""

    regime_name: str
    regime: dict[str, Any]
    seed: int
    agents: int = 8
    turns: int = 40
    rules: dict[str, Any] | None = None
    identity: dict[str, Any] = field(default_factory=dict)
    file_name: str = ""

    def __post_init__(self) -> None:
        from ..events.config import InvalidConfig

        try:
            self.genesis_identity()  # a regime's llm table that cannot be played fails here, before anything runs
        except InvalidConfig as err:
            raise InvalidConfig(f"{self.regime_name}: {err}") from None

    def genesis_identity(self) -> dict[str, Any]:
        """Return the identity this run's genesis records (with every agent's policy when a model plays some)."""
        return genesis_identity(self.regime_name, self.regime, self.seed, self.agents, self.turns, self.identity)

    @property
    def name(self) -> str:
        return self.file_name or run_name(self.regime_name, self.seed)


@dataclass(frozen=True)
class RunOutcome:
    name: str
    path: str
    events: int
    head_hash: str
    seconds: float


def execute_spec(spec: RunSpec, runs_dir: str) -> RunOutcome:
    """Run ``spec`` into ``runs_dir/<name>.db`` (replacing a partial file, or continuing a model-played run's)
    and return what was written."""
    path = Path(runs_dir) / f"{spec.name}.db"
    if not plays_llm(spec.regime):  # a model-played run continues its unfinished log (execute_run)
        remove_log_files(path)
    started = time.perf_counter()
    run = execute_run(path, regime_name=spec.regime_name, regime=spec.regime, seed=spec.seed, agents=spec.agents,
                      turns=spec.turns, identity=spec.identity, rules=spec.rules)
    try:
        events, head = run.state.events, run.head_hash.hex()
    finally:
        run.close()
    return RunOutcome(name=spec.name, path=str(path), events=events, head_hash=head,
                      seconds=time.perf_counter() - started)


def simulate_spec(spec: RunSpec) -> tuple[dict[str, Any], int]:
    """Play ``spec`` in memory; return its run summary (as read back from its log, less ``log_file``) and event count."""
    run = simulate_run(regime_name=spec.regime_name, regime=spec.regime, seed=spec.seed, agents=spec.agents,
                       turns=spec.turns, identity=spec.identity, rules=spec.rules)
    return run_summary(run.state), run.state.events


def simulate_specs(specs: list[RunSpec], *, workers: int = 1, executor: ProcessPoolExecutor | None = None,
                   on_done: Callable[[dict[str, Any], int], None] | None = None) -> list[dict[str, Any]]:
    """Play specs in memory (on ``executor``, or a pool of ``workers``); return their summaries in spec order.

    ``on_done(summary, events)`` is called once per run, in spec order. A run
    that raises stops the ensemble: an in-memory run has no log to keep. Runs
    played by a language model are refused before any run starts.
    """
    for spec in specs:
        refuse_in_memory(spec.regime_name, spec.regime)
    if executor is None and (workers <= 1 or len(specs) <= 1):
        return [_report(result, on_done) for result in map(simulate_spec, specs)]
    chunk = max(1, len(specs) // (max(workers, 2) * 8))
    if executor is not None:
        return [_report(result, on_done) for result in executor.map(simulate_spec, specs, chunksize=chunk)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [_report(result, on_done) for result in pool.map(simulate_spec, specs, chunksize=chunk)]


def _report(result: tuple[dict[str, Any], int], on_done) -> dict[str, Any]:
    if on_done is not None:
        on_done(*result)
    return result[0]


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def execute_specs(specs: list[RunSpec], runs_dir: str | Path, *, executor: Executor | None = None, workers: int = 1,
                  on_done: Callable[[RunOutcome], None] | None = None,
                  on_error: Callable[[RunSpec, BaseException], None] | None = None) -> list[RunOutcome]:
    """Execute specs on ``executor`` (default: a process pool of ``workers``); return outcomes in spec order.

    A run that raises is reported to ``on_error`` (when given) and left out;
    without ``on_error`` the first failure is raised after the others finish.
    """
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, RunOutcome] = {}
    failures: list[BaseException] = []
    if executor is None and workers <= 1:
        for spec in specs:
            _collect(spec, lambda s=spec: execute_spec(s, str(runs_dir)), outcomes, failures, on_done, on_error)
    else:
        own = executor is None
        pool = executor or ProcessPoolExecutor(max_workers=workers)
        try:
            futures: dict[Future, RunSpec] = {pool.submit(execute_spec, spec, str(runs_dir)): spec for spec in specs}
            for future in as_completed(futures):
                _collect(futures[future], future.result, outcomes, failures, on_done, on_error)
        finally:
            if own:
                pool.shutdown()
    if failures and on_error is None:
        raise failures[0]
    return [outcomes[s.name] for s in specs if s.name in outcomes]


def _collect(spec, result, outcomes, failures, on_done, on_error) -> None:
    try:
        outcome = result()
    except Exception as err:  # noqa: BLE001 - a failed run is reported, the study goes on
        failures.append(err)
        if on_error is not None:
            on_error(spec, err)
        return
    outcomes[spec.name] = outcome
    if on_done is not None:
        on_done(outcome)


__all__ = ["FIT_SEEDS", "HELD_OUT_FIRST", "DEFAULT_HELD_OUT", "held_out_seeds", "RunSpec", "RunOutcome",
           "execute_spec", "execute_specs", "simulate_spec", "simulate_specs", "default_workers", "asdict"]
