"""Benchmark: fold, replay and verify speed on a long study log.

    python bench/replay.py                      # 1,000 agents x 200 turns (builds once into bench/out/)
    python bench/replay.py --agents 200 --turns 50
    python bench/replay.py --profile            # also profile the fold from genesis (cProfile)

The log is built once by a child process (the study policy with the baseline
regime's parameters) and reused; the measurements then run in this process, so
the peak RSS printed is that of replay and verification, not of the build.

Targets: fold >= 200,000 events/s on one core; replay to any turn < 1 s with checkpoints.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def build_log(path: Path, agents: int, turns: int, seed: int) -> None:
    """Write a study run of ``agents`` x ``turns`` (baseline regime) to ``path``, reporting progress."""
    from simledger.ledger.run import Run
    from simledger.study.policy import TurnView
    from simledger.study.study_policy import StudyPolicy
    from simledger.study.regimes import engine_config, load_regimes
    from simledger.study.runner import agent_ids

    regime = load_regimes()["baseline"]
    started = time.perf_counter()
    run = Run.create(path, agents=agent_ids(agents), seed=seed, config=engine_config(regime, agents),
                     identity={"regime": "baseline", "run_name": f"bench_{agents}x{turns}", "turns": turns})
    policy = StudyPolicy(regime["policy"], seed)
    for turn in range(1, turns + 1):
        run.step(policy.decide(TurnView.from_state(run.state, turn, turns)))
        if turn % 20 == 0 or turn == turns:
            elapsed = time.perf_counter() - started
            print(f"  built turn {turn}/{turns}: {run.state.events:,} events, {len(run.state.contracts):,} contracts, "
                  f"{elapsed:.1f} s", flush=True)
    run.close()
    print(f"build: {time.perf_counter() - started:.1f} s", flush=True)


def timed(func, *args, repeat: int = 1, **kwargs):
    """Return (value, best wall time of ``repeat`` calls): the best run is the least disturbed by other load."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        value = func(*args, **kwargs)
        best = min(best, time.perf_counter() - started)
    return value, best


def count_rows(store) -> int:
    from simledger.ledger.replay import FOLD_COLUMNS

    return sum(1 for _ in store.rows(columns=FOLD_COLUMNS))


def count_decoded(store) -> int:
    from simledger.ledger.replay import positioned_events

    return sum(1 for _ in positioned_events(store))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: Path, profile: bool) -> None:
    from simledger.ledger.replay import load_state
    from simledger.ledger.store import Store
    from simledger.ledger.verify import verify_log

    with Store(path) as store:
        events, last = store.count(), store.head()[2]
        checkpoints = store.conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        print(f"log: {path.name}, {events:,} events, {last} turns, {checkpoints} checkpoints, "
              f"{path.stat().st_size / 2**20:.0f} MiB")
        # Warm the page cache once so the figures measure the code, not the disk.
        count_rows(store)
        n, t_rows = timed(count_rows, store, repeat=3)
        n, t_decode = timed(count_decoded, store, repeat=3)
        state, t_fold = timed(load_state, store, None, use_checkpoints=False, repeat=3)
        assert state.events == events
        print(f"fold from genesis (no checkpoints): {t_fold:.2f} s = {events / t_fold:,.0f} events/s")
        print(f"  of which store.rows (fold columns) {t_rows:.2f} s ({events / t_rows:,.0f} rows/s), "
              f"decoding {t_decode - t_rows:.2f} s, reducers {t_fold - t_decode:.2f} s")
        for turn in sorted({max(1, last // 10 + 5), last // 2 + 5, last - 1, last}):
            if turn > last:
                continue
            _, with_cp = timed(load_state, store, turn, repeat=3)
            _, without = timed(load_state, store, turn, use_checkpoints=False)
            print(f"replay --until turn {turn}: {with_cp * 1000:,.0f} ms with checkpoints, "
                  f"{without * 1000:,.0f} ms without")
        if profile:
            profile_fold(store)
    for workers in (1, 2):
        result, t_verify = timed(verify_log, path, workers=workers)
        print(f"verify (workers={workers}): {'ok' if result.ok else 'FAILED'} in {t_verify:.2f} s = "
              f"{events / t_verify:,.0f} events/s")
    print(f"peak RSS (replay + verify): {peak_rss_mb():,.0f} MiB")


def profile_fold(store) -> None:
    """Print where the fold from genesis spends its time (cProfile, by own time)."""
    from simledger.ledger.replay import load_state

    profiler = cProfile.Profile()
    profiler.enable()
    load_state(store, use_checkpoints=False)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(12)
    print("profile of the fold (top 12 by own time):")
    print("\n".join(line for line in text.getvalue().splitlines() if line.strip())[:4000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="Build the log again even if it exists.")
    parser.add_argument("--profile", action="store_true", help="Profile the fold from genesis.")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"replay_{args.agents}x{args.turns}_seed{args.seed}.db"
    if args.build_only:
        build_log(path, args.agents, args.turns, args.seed)
        return
    if args.rebuild or not path.exists():
        for stale in OUT.glob(path.name + "*"):
            stale.unlink()
        print(f"building {args.agents} agents x {args.turns} turns into {path} ...", flush=True)
        subprocess.run([sys.executable, __file__, "--build-only", "--agents", str(args.agents), "--turns",
                        str(args.turns), "--seed", str(args.seed)], check=True)
    from simledger.ledger.errors import LedgerError

    try:
        measure(path, args.profile)
    except LedgerError as err:
        sys.exit(f"{path.name}: {err}\n(the stored log may predate a schema change: run again with --rebuild)")


if __name__ == "__main__":
    main()
