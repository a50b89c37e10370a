"""Benchmark: the engine's turn rate, and whether a turn gets slower as the log grows.

    python bench/engine.py                          # 8 x 40, then 1,000 agents x 200 turns
    python bench/engine.py --agents 200 --turns 60  # a quicker large run
    python bench/engine.py --profile                # also cProfile the large run's late turns

Each run plays the study policy with the baseline regime (``Run`` + ``StudyPolicy``,
as ``study.runner.execute_run`` does) into a log in a temporary folder, timing every
turn. A turn's time is split into the policy's decision (``TurnView`` + ``decide``,
not the engine) and ``run.step``, itself split into the engine (``process_turn``:
rules, envelopes, Ed25519 signatures, folding into the state) and the store (the
SQLite transaction, read models, a checkpoint every 10 turns); garbage-collector
time inside ``run.step`` is shown too. Printed per run: wall time, turns/s and events/s, then the
mean step time of a few turns around turn 10 and around the last turn
(checkpoint turns excluded, reported apart), per turn and per event, so one can
see whether the per-turn cost grows with history (state is O(live objects), the
log is only appended to).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TurnTiming:
    turn: int
    decide_s: float
    step_s: float  # run.step: engine + store
    engine_s: float  # engine.process_turn: the rules, envelopes, signatures, folding into the state
    gc_s: float  # cyclic garbage collection during run.step
    events: int


class PhaseClock:
    """Times engine.process_turn and the garbage collector (bench instrumentation only, no behaviour change)."""

    def __init__(self) -> None:
        self.engine_s = self.gc_s = 0.0
        self._gc_started = 0.0

    def install(self):
        import gc

        from simledger.ledger import engine

        original = engine.process_turn

        def timed(rec, turn, inputs):
            t0 = time.perf_counter()
            try:
                return original(rec, turn, inputs)
            finally:
                self.engine_s += time.perf_counter() - t0

        def on_gc(phase, info):
            if phase == "start":
                self._gc_started = time.perf_counter()
            else:
                self.gc_s += time.perf_counter() - self._gc_started

        engine.process_turn = timed
        gc.callbacks.append(on_gc)

        def uninstall():
            engine.process_turn = original
            gc.callbacks.remove(on_gc)

        return uninstall

    def take(self) -> tuple[float, float]:
        taken = (self.engine_s, self.gc_s)
        self.engine_s = self.gc_s = 0.0
        return taken


@dataclass
class RunTiming:
    agents: int
    turns: int
    wall_s: float = 0.0
    events: int = 0
    contracts: int = 0
    open_contracts: int = 0
    head_hash: str = ""
    per_turn: list[TurnTiming] = field(default_factory=list)


def play(path: Path, agents: int, turns: int, seed: int, profile_from: int | None = None) -> tuple[RunTiming, str]:
    """Play the study policy for ``turns`` turns into ``path``; return timings (and a profile report)."""
    from simledger.ledger.run import Run
    from simledger.projections.state import OPEN_STATUSES
    from simledger.study.policy import TurnView
    from simledger.study.study_policy import StudyPolicy
    from simledger.study.regimes import engine_config, load_regimes
    from simledger.study.runner import agent_ids

    regime = load_regimes()["baseline"]
    timing = RunTiming(agents=agents, turns=turns)
    profiler = cProfile.Profile() if profile_from is not None else None
    started = time.perf_counter()
    run = Run.create(path, agents=agent_ids(agents), seed=seed, config=engine_config(regime, agents),
                     identity={"regime": "baseline", "run_name": f"bench_{agents}x{turns}", "turns": turns})
    policy = StudyPolicy(regime["policy"], seed)
    clock = PhaseClock()
    uninstall = clock.install()
    try:
        for turn in range(1, turns + 1):
            before = run.state.events
            t0 = time.perf_counter()
            inputs = policy.decide(TurnView.from_state(run.state, turn, turns))
            t1 = time.perf_counter()
            if profiler is not None and turn >= profile_from:
                profiler.enable()
            run.step(inputs)
            if profiler is not None:
                profiler.disable()
            t2 = time.perf_counter()
            engine_s, gc_s = clock.take()
            timing.per_turn.append(TurnTiming(turn, t1 - t0, t2 - t1, engine_s, gc_s, run.state.events - before))
        timing.wall_s = time.perf_counter() - started
        timing.events = run.state.events
        timing.contracts = len(run.state.contracts)
        timing.open_contracts = sum(c.status in OPEN_STATUSES for c in run.state.contracts.values())
        timing.head_hash = run.head_hash.hex()
    finally:
        uninstall()
        run.close()
    report = ""
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        out.write("\n--- by own time ---\n")
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
        report = out.getvalue()
    return timing, report


def window(timing: RunTiming, around: int, width: int = 5) -> list[TurnTiming]:
    """Return the non-checkpoint turns nearest ``around`` (up to ``width`` of them)."""
    plain = [t for t in timing.per_turn if t.turn % 10 != 0]
    return sorted(plain, key=lambda t: (abs(t.turn - around), t.turn))[:width]


def describe(turns: list[TurnTiming]) -> str:
    def ms(attr: str) -> float:
        return statistics.mean(getattr(t, attr) for t in turns) * 1000

    step, engine, gc_ms = ms("step_s"), ms("engine_s"), ms("gc_s")
    events = statistics.mean(t.events for t in turns)
    span = f"{min(t.turn for t in turns)}-{max(t.turn for t in turns)}"
    return (f"turns {span:>7}: step {step:7.1f} ms/turn = engine {engine:6.1f} + store {step - engine:6.1f}"
            f" (gc {gc_ms:5.1f}); {events:5.0f} events, {step / events * 1000:6.1f} us/event;"
            f" policy {ms('decide_s'):5.1f} ms")


def print_run(timing: RunTiming) -> None:
    print(f"\n{timing.agents} agents x {timing.turns} turns (study policy, baseline regime)")
    print(f"  wall {timing.wall_s:.2f} s   {timing.turns / timing.wall_s:,.2f} turns/s   "
          f"{timing.events / timing.wall_s:,.0f} events/s   ({timing.events:,} events, "
          f"{timing.contracts:,} contracts, {timing.open_contracts:,} open at the end)")
    engine_s = sum(t.step_s for t in timing.per_turn)  # run.step
    policy_s = sum(t.decide_s for t in timing.per_turn)
    rules_s = sum(t.engine_s for t in timing.per_turn)
    print(f"  of which run.step {engine_s:.2f} s ({timing.events / engine_s:,.0f} events/s; engine {rules_s:.2f} s,"
          f" store {engine_s - rules_s:.2f} s), policy {policy_s:.2f} s")
    early = window(timing, 10)
    late = window(timing, timing.turns)
    print(f"  around turn {10:<4} {describe(early)}")
    print(f"  around turn {timing.turns:<4} {describe(late)}")
    checkpoints = [t for t in timing.per_turn if t.turn % 10 == 0]
    if checkpoints:
        first, last = checkpoints[0], checkpoints[-1]
        print(f"  checkpoint turns: turn {first.turn} step {first.step_s * 1000:.1f} ms, "
              f"turn {last.turn} step {last.step_s * 1000:.1f} ms")
    def per_event(turns: list[TurnTiming], attr: str) -> float:
        return statistics.mean(getattr(t, attr) / t.events for t in turns)

    print(f"  late / early time per event: step {per_event(late, 'step_s') / per_event(early, 'step_s'):.2f}x, "
          f"engine {per_event(late, 'engine_s') / per_event(early, 'engine_s'):.2f}x")
    print(f"  head hash {timing.head_hash}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000, help="agents in the large run (default 1,000)")
    parser.add_argument("--turns", type=int, default=200, help="turns in the large run (default 200)")
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--profile", action="store_true", help="cProfile run.step over the large run's last 20 turns")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="simledger-bench-engine-") as tmp:
        small, _ = play(Path(tmp) / "small.db", 8, 40, args.seed)
        print_run(small)
        profile_from = max(1, args.turns - 19) if args.profile else None
        large, report = play(Path(tmp) / "large.db", args.agents, args.turns, args.seed, profile_from)
        print_run(large)
        if report:
            print(f"\ncProfile of run.step, turns {profile_from}-{args.turns}:\n{report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
