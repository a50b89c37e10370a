"""Benchmark: one long run at scale, memory bounded by live state, then replay / verify / diff on it.

    python bench/scale.py                                  # 1,000 agents x 1,000 turns, if it fits the budget
    python bench/scale.py --agents 1000 --turns 1000 --budget-min 25
    python bench/scale.py --agents 200 --turns 100 --probe 10   # a quick look

Steps, each printed as it happens:

1. probe: a child process plays ``--probe`` turns (default 20) at ``--agents`` and
   reports turns/s; the full run's time is extrapolated from the slower second
   half of the probe (turns get slower as contracts accumulate).
2. if the extrapolation exceeds ``--budget-min`` minutes, the run is cut to the
   largest multiple of 100 turns that fits, and the script says so.
3. build: a child process plays the run (study policy, baseline regime) and
   prints its RSS at turns 100, 500, 1000 (and at 10 % / 50 % / 100 % of the run)
   beside the log's size and the live state's snapshot size, then its peak RSS.
4. measure (this process): replay with checkpoints to an early, a middle and a
   late turn; verify with 2 workers; diff of the log against itself; events/s.

No figure is estimated except the extrapolation in step 1, which is labelled.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
SAMPLE_TURNS = (100, 500, 1000)


def rss_mb() -> float:
    """Return this process's resident set size now (MiB), from /proc."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def remove_log(path: Path) -> None:
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()


def build(path: Path, agents: int, turns: int, seed: int, report_every: int) -> None:
    """Play the run into ``path`` and print one JSON line per sample and a final one (child process)."""
    from simledger.ledger.run import Run
    from simledger.projections.state import snapshot_bytes
    from simledger.study.policy import TurnView
    from simledger.study.study_policy import StudyPolicy
    from simledger.study.regimes import engine_config, load_regimes
    from simledger.study.runner import agent_ids

    regime = load_regimes()["baseline"]
    remove_log(path)
    samples = set(SAMPLE_TURNS) | {max(1, turns // 10), max(1, turns // 2), turns}
    started = time.perf_counter()
    run = Run.create(path, agents=agent_ids(agents), seed=seed, config=engine_config(regime, agents),
                     identity={"regime": "baseline", "run_name": f"scale_{agents}x{turns}", "turns": turns})
    policy = StudyPolicy(regime["policy"], seed)
    turn_times: list[float] = []
    for turn in range(1, turns + 1):
        t0 = time.perf_counter()
        run.step(policy.decide(TurnView.from_state(run.state, turn, turns)))
        turn_times.append(time.perf_counter() - t0)
        if turn in samples or turn % report_every == 0:
            print(json.dumps({
                "turn": turn, "elapsed_s": round(time.perf_counter() - started, 2), "rss_mb": round(rss_mb(), 1),
                "events": run.state.events, "contracts": len(run.state.contracts),
                "log_mb": round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20, 1),
                "state_snapshot_mb": round(len(snapshot_bytes(run.state)) / 2**20, 2) if turn in samples else None,
                "sample": turn in samples,
            }), flush=True)
    events = run.state.events
    run.close()
    elapsed = time.perf_counter() - started
    half = turn_times[len(turn_times) // 2:]
    print(json.dumps({"done": True, "turns": turns, "events": events, "elapsed_s": round(elapsed, 2),
                      "turns_per_s": turns / elapsed, "late_turns_per_s": len(half) / sum(half),
                      "events_per_s": events / elapsed, "peak_rss_mb": round(peak_rss_mb(), 1)}), flush=True)


def run_child(args: list[str]) -> list[dict]:
    """Run this script as a child with ``args``; echo and return its JSON lines."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        line = line.strip()
        if line.startswith("{"):
            doc = json.loads(line)
            lines.append(doc)
            print("  " + describe_sample(doc), flush=True)
        elif line:
            print("  " + line, flush=True)
    if proc.wait() != 0:
        raise SystemExit(f"child {args} failed with exit {proc.returncode}")
    return lines


def describe_sample(doc: dict) -> str:
    if doc.get("done"):
        return (f"done: {doc['turns']} turns, {doc['events']:,} events in {doc['elapsed_s']:.1f} s = "
                f"{doc['turns_per_s']:.2f} turns/s ({doc['late_turns_per_s']:.2f} turns/s over the second half), "
                f"{doc['events_per_s']:,.0f} events/s; peak RSS {doc['peak_rss_mb']:,.0f} MiB")
    snap = f", state snapshot {doc['state_snapshot_mb']} MiB" if doc.get("state_snapshot_mb") is not None else ""
    return (f"turn {doc['turn']}: {doc['elapsed_s']:.1f} s, RSS {doc['rss_mb']:,.0f} MiB, {doc['events']:,} events, "
            f"{doc['contracts']:,} contracts, log {doc['log_mb']:,.0f} MiB{snap}")


def timed(func, *args, **kwargs):
    started = time.perf_counter()
    value = func(*args, **kwargs)
    return value, time.perf_counter() - started


def measure(path: Path) -> None:
    """Time replay (checkpoints) to early/middle/late turns, verify (2 workers) and self-diff."""
    from simledger.ledger.diff import diff_runs
    from simledger.ledger.replay import load_state
    from simledger.ledger.store import Store
    from simledger.ledger.verify import verify_log

    with Store(path) as store:
        events, last = store.count(), store.head()[2]
        for turn in sorted({max(1, last // 10 + 5), last // 2 + 5, last - 1}):
            state, seconds = timed(load_state, store, turn)
            print(f"replay --until turn {turn} (checkpoints): {seconds:.2f} s "
                  f"({state.events:,} events in the state)", flush=True)
    result, seconds = timed(verify_log, path, workers=2)
    print(f"verify (workers=2): {'ok' if result.ok else 'FAILED: ' + result.message} in {seconds:.1f} s = "
          f"{events / seconds:,.0f} events/s", flush=True)
    diff, seconds = timed(diff_runs, path, path)
    print(f"diff against itself: {'identical' if diff.identical and diff.divergence is None else 'DIFFERENT'} "
          f"in {seconds:.1f} s = {2 * events / seconds:,.0f} events/s (both sides' hashes compared, "
          "final states folded from checkpoints)", flush=True)
    print(f"peak RSS of the measuring process: {peak_rss_mb():,.0f} MiB", flush=True)


def choose_turns(agents: int, turns: int, seed: int, probe: int, budget_min: float) -> int:
    """Probe the turn rate and return the largest turn count that fits the budget."""
    path = OUT / f"scale_probe_{agents}x{probe}.db"
    print(f"probe: {agents} agents x {probe} turns ...", flush=True)
    done = run_child(["--build-only", "--path", str(path), "--agents", str(agents), "--turns", str(probe),
                      "--seed", str(seed), "--report-every", "5"])[-1]
    remove_log(path)
    rate = done["late_turns_per_s"]
    estimate_min = turns / rate / 60
    print(f"extrapolation (from the probe's second half, {rate:.2f} turns/s; later turns may be slower): "
          f"{agents} x {turns} would take about {estimate_min:.0f} min", flush=True)
    if estimate_min <= budget_min:
        return turns
    fitted = max(100, int(rate * budget_min * 60) // 100 * 100)
    print(f"that exceeds the {budget_min:g} min budget: running {agents} x {fitted} instead", flush=True)
    return fitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--probe", type=int, default=20, help="Turns of the probe run (0: no probe).")
    parser.add_argument("--budget-min", type=float, default=25.0, help="Longest build allowed, in minutes.")
    parser.add_argument("--report-every", type=int, default=50, help=argparse.SUPPRESS)
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.build_only:
        build(args.path, args.agents, args.turns, args.seed, args.report_every)
        return
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"Python {sys.version.split()[0]}", flush=True)
    turns = choose_turns(args.agents, args.turns, args.seed, args.probe, args.budget_min) if args.probe else args.turns
    path = OUT / f"scale_{args.agents}x{turns}_seed{args.seed}.db"
    print(f"build: {args.agents} agents x {turns} turns into {path} ...", flush=True)
    run_child(["--build-only", "--path", str(path), "--agents", str(args.agents), "--turns", str(turns),
               "--seed", str(args.seed), "--report-every", str(args.report_every)])
    print(f"load average before measuring: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    measure(path)


if __name__ == "__main__":
    main()
