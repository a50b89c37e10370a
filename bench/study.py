"""Benchmark: the full default study (3 regimes x 12 seeds, 8 agents, 40 turns), then the paper comparison.

    python bench/study.py                  # all cores, into a temp folder (removed afterwards)
    python bench/study.py --workers 1      # one process
    python bench/study.py --keep results   # keep logs, summaries and report in ./results

Times what ``simledger experiment`` does, phase by phase: execute every run
into its own log (process pool), verify and summarize every log, write the
report (with trajectories folded from the logs). Prints wall time, runs/s,
events/s and peak RSS (this process and its worker children), then the
statistical verdict against the paper (``simledger compare``) with the old
12-seed band as context. The full-study check lives here, not in CI.

Target: full study < 20 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 20.0


def peak_rss_mb() -> tuple[float, float]:
    """Return the peak resident set size (MB) of this process and of its largest waited-for child."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / (1024 * 1024)  # ru_maxrss: KB on Linux, bytes on macOS
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return own, children


def cpu_seconds() -> float:
    """Return user + system CPU time of this process and its waited-for children (load-independent)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(func, *args, **kwargs):
    """Return (value, wall seconds, CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    value = func(*args, **kwargs)
    return value, time.perf_counter() - wall, cpu_seconds() - cpu


def run_study(out: Path, workers: int, turns: int, agents: int) -> dict:
    """Run, summarize and report the default study into ``out``; return the timings and results."""
    from simledger.study.experiment import execute_specs
    from simledger.study.sweep import study_specs
    from simledger.study.report import write_report
    from simledger.study.summary import summarize

    specs = study_specs(agents=agents, turns=turns)
    outcomes, execute, execute_cpu = timed(execute_specs, specs, out / "runs", workers=workers)
    (runs, rows), summary, summary_cpu = timed(summarize, [o.path for o in outcomes], out, workers=workers)
    _, report, report_cpu = timed(write_report, out, runs, rows, runs_dir=out / "runs")
    return {"specs": specs, "outcomes": outcomes, "runs": runs, "rows": rows,
            "execute": execute, "summarize": summary, "report": report, "total": execute + summary + report,
            "cpu": {"execute": execute_cpu, "summarize": summary_cpu, "report": report_cpu,
                    "total": execute_cpu + summary_cpu + report_cpu}}


def main() -> int:
    from simledger.study.experiment import default_workers

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0 = all cores)")
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--keep", type=Path, default=None, help="write into this folder and keep it")
    args = parser.parse_args()
    workers = args.workers or default_workers()

    out = args.keep or Path(tempfile.mkdtemp(prefix="simledger-bench-study-"))
    try:
        result = run_study(out, workers, args.turns, args.agents)
        from simledger.study.compare import judge_study

        started = time.perf_counter()
        comparison = judge_study(result["runs"], result["rows"])
        compare_seconds = time.perf_counter() - started
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)

    n_runs = len(result["outcomes"])
    events = sum(o.events for o in result["outcomes"])
    own_rss, child_rss = peak_rss_mb()
    total, cpu = result["total"], result["cpu"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"study: {n_runs} runs ({len(set(s.regime_name for s in result['specs']))} regimes x "
          f"{len(set(s.seed for s in result['specs']))} seeds), {args.agents} agents, {args.turns} turns, "
          f"{workers} worker(s)")
    print(f"  phase             wall s    CPU s   (1-min load average at the end: {load:.2f} on {os.cpu_count()} cores)")
    print(f"  execute runs      {result['execute']:7.2f} {cpu['execute']:8.2f}   {n_runs / result['execute']:6.2f} runs/s   "
          f"{events / result['execute']:9,.0f} events/s   ({events:,} events)")
    print(f"  verify+summarize  {result['summarize']:7.2f} {cpu['summarize']:8.2f}   "
          f"{events / result['summarize']:9,.0f} events/s")
    print(f"  report + plots    {result['report']:7.2f} {cpu['report']:8.2f}")
    print(f"  total             {total:7.2f} {cpu['total']:8.2f}   {n_runs / total:6.2f} runs/s   "
          f"{events / total:9,.0f} events/s   (target < {TARGET_SECONDS:g} s wall: "
          f"{'met' if total < TARGET_SECONDS else 'MISSED'})")
    print(f"  compare           {compare_seconds:7.3f} s")
    print(f"  peak RSS          {own_rss:7.1f} MB this process, {child_rss:.1f} MB largest worker")
    if args.keep is not None:
        print(f"  results kept in {out}/")
    print()
    sys.stdout.write(comparison.to_markdown())
    print()
    print(f"verdict: {comparison.headline()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
