"""Benchmark: study runs in memory beside the same runs logged, on one core, with floors from the same run.

    python bench/ensemble.py                 # 3 regimes x 12 seeds in memory, 3 x 4 logged, best of 3
    python bench/ensemble.py --seeds 24 --repeat 5

Printed, all in events per second of one process (one core), by wall clock and by the
process's own CPU time (``time.process_time``, which other processes' load does not
inflate as much; on a shared machine it is the fairer per-core figure):

- in memory: ``simulate_spec`` (engine + policy + hashing + fold, no signing or storage),
  the path ``simledger experiment --no-logs`` and ``simledger calibrate`` use;
- logged: ``execute_spec`` (the same, plus Ed25519 signatures and SQLite), the default path;
- floors: folding the same events through the reducers alone (``apply_event``),
  hashing them alone (``seal_envelope``): the in-memory path does both for every event,
  so it cannot beat either; and replaying the logged runs (SQLite read, decode, fold:
  ``load_state``), the rate a stored log is read back at.

Then the ratios: in memory to logged, in memory to each floor it cannot beat, and the
verdict on the target of 100,000 in-memory events/s on one core.

Wall-clock rates on a shared machine move with its load; every figure is the best of
``--repeat`` runs, and the ratios compare figures measured minutes apart at most.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from simledger.events.envelope import ZERO_HASH, seal_envelope
from simledger.ledger.replay import load_state
from simledger.ledger.store import Store
from simledger.projections.reducers import apply_event
from simledger.projections.state import State
from simledger.study.experiment import execute_spec, simulate_spec
from simledger.study.sweep import study_specs
from simledger.study.runner import simulate_run

TARGET = 100_000  # in-memory events per second on one core


def best_of(repeat: int, func) -> tuple[float, float, int]:
    """Return the shortest wall and CPU times of ``repeat`` calls of ``func``, and the events it reported."""
    wall = cpu = float("inf")
    events = 0
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        events = func()
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - started_cpu)
    return wall, cpu, events


def in_memory(specs) -> int:
    return sum(simulate_spec(spec)[1] for spec in specs)


def logged(specs, folder: str) -> int:
    return sum(execute_spec(spec, folder).events for spec in specs)


def replay(folder: str) -> int:
    events = 0
    for path in sorted(Path(folder).glob("*.db")):
        with Store(path) as store:
            events += load_state(store, use_checkpoints=False).events
    return events


def collect_events(specs) -> list:
    """Return every (seq, turn, event) of the specs' runs, run by run."""
    out = []
    for spec in specs:
        run = simulate_run(regime_name=spec.regime_name, regime=spec.regime, seed=spec.seed, agents=spec.agents,
                           turns=spec.turns, keep_events=True)
        out.append(run.events)
    return out


def fold(runs) -> int:
    for events in runs:
        state = State()
        for seq, turn, event in events:
            apply_event(state, event, seq, turn)
    return sum(len(events) for events in runs)


def hash_only(runs) -> int:
    for events in runs:
        prev = ZERO_HASH
        for seq, turn, event in events:
            _, prev = seal_envelope(event, seq=seq, turn=turn, prev_hash=prev, signer="0123456789abcdef")
    return sum(len(events) for events in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12, help="seeds per regime in memory (from 1001)")
    parser.add_argument("--logged-seeds", type=int, default=4, help="seeds per regime logged")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    memory_specs = study_specs(seeds=range(1001, 1001 + args.seeds))
    logged_specs = study_specs(seeds=range(1001, 1001 + args.logged_seeds))
    print(f"load average at start: {os.getloadavg()[0]:.2f}; best of {args.repeat}; one process")
    events = collect_events(memory_specs)
    with tempfile.TemporaryDirectory() as folder:
        rows = [("in memory (simulate_spec)", len(memory_specs), *best_of(args.repeat, lambda: in_memory(memory_specs))),
                ("logged (execute_spec)", len(logged_specs), *best_of(args.repeat, lambda: logged(logged_specs, folder))),
                ("floor: fold only (apply_event)", len(memory_specs), *best_of(args.repeat, lambda: fold(events))),
                ("floor: hash only (seal_envelope)", len(memory_specs), *best_of(args.repeat, lambda: hash_only(events))),
                ("floor: replay a log (load_state)", len(logged_specs), *best_of(args.repeat, lambda: replay(folder)))]
    print(f"{'path':34} {'runs':>5} {'events':>9} {'wall s':>7} {'events/s':>10} {'cpu s':>7} {'events/cpu-s':>12}")
    for name, runs, wall, cpu, count in rows:
        print(f"{name:34} {runs:5d} {count:9,d} {wall:7.3f} {count / wall:10,.0f} {cpu:7.3f} {count / cpu:12,.0f}")
    wall_rate = {name: count / wall for name, _, wall, _, count in rows}
    cpu_rate = {name: count / cpu for name, _, _, cpu, count in rows}
    memory, logged_path, fold_floor, hash_floor = (name for name, *_ in rows[:4])
    print(f"in memory / logged: {wall_rate[memory] / wall_rate[logged_path]:.1f}x by wall clock, "
          f"{cpu_rate[memory] / cpu_rate[logged_path]:.1f}x by CPU time")
    print(f"in memory / floors (by CPU time): {cpu_rate[memory] / cpu_rate[fold_floor]:.3f}x the fold alone, "
          f"{cpu_rate[memory] / cpu_rate[hash_floor]:.3f}x the hashing alone")
    verdict = {True: "met", False: "NOT met"}
    print(f"target >= {TARGET:,} events/s on one core: {verdict[cpu_rate[memory] >= TARGET]} by CPU time, "
          f"{verdict[wall_rate[memory] >= TARGET]} by wall clock")

if __name__ == "__main__":
    main()
