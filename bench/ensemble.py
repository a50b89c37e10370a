"""Benchmark: study runs in memory beside the same runs logged, on one core, with floors from the same run.

    python bench/ensemble.py                 # 3 regimes x 12 seeds in memory, 3 x 4 logged, best of 3
    python bench/ensemble.py --seeds 24 --repeat 5

Printed, all in events per second of one process (one core):

- in memory: ``simulate_spec`` (engine + policy + hashing + fold, no signing or storage),
  the path ``simledger experiment --no-logs`` and ``simledger calibrate`` use;
- logged: ``execute_spec`` (the same, plus Ed25519 signatures and SQLite), the default path;
- floors: folding the same events through the reducers alone (``apply_event``), and
  hashing them alone (``seal_envelope``): the in-memory path does both for every event,
  so it cannot beat either; the ratios say how close it comes.

Wall-clock rates on a shared machine move with its load; every figure is the best of
``--repeat`` runs, and the ratios compare figures measured minutes apart at most.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from simledger.events.envelope import ZERO_HASH, seal_envelope
from simledger.projections.reducers import apply_event
from simledger.projections.state import State
from simledger.study.experiment import execute_spec, simulate_spec, study_specs
from simledger.study.runner import simulate_run


def best_of(repeat: int, func) -> tuple[float, int]:
    """Return the shortest wall time of ``repeat`` calls of ``func`` and the events it reported."""
    best, events = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        events = func()
        best = min(best, time.perf_counter() - started)
    return best, events


def in_memory(specs) -> int:
    return sum(simulate_spec(spec)[1] for spec in specs)


def logged(specs) -> int:
    with tempfile.TemporaryDirectory() as folder:
        return sum(execute_spec(spec, folder).events for spec in specs)


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
    rows = [("in memory (simulate_spec)", len(memory_specs), *best_of(args.repeat, lambda: in_memory(memory_specs))),
            ("logged (execute_spec)", len(logged_specs), *best_of(args.repeat, lambda: logged(logged_specs))),
            ("floor: fold only (apply_event)", len(memory_specs), *best_of(args.repeat, lambda: fold(events))),
            ("floor: hash only (seal_envelope)", len(memory_specs), *best_of(args.repeat, lambda: hash_only(events)))]
    fold_rate = rows[2][3] / rows[2][2]
    print(f"{'path':34} {'runs':>5} {'events':>9} {'seconds':>8} {'events/s':>10} {'/ fold':>7}")
    for name, runs, seconds, count in rows:
        rate = count / seconds
        print(f"{name:34} {runs:5d} {count:9,d} {seconds:8.3f} {rate:10,.0f} {rate / fold_rate:7.2f}")
    memory_rate, logged_rate = rows[0][3] / rows[0][2], rows[1][3] / rows[1][2]
    print(f"in memory / logged: {memory_rate / logged_rate:.1f}x")


if __name__ == "__main__":
    main()
