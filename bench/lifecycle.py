"""Benchmark a log's lifecycle: create (genesis), close, reopen for writing, read-only open.

    $ python bench/lifecycle.py            # 40 logs, best of 3 rounds

Each figure is milliseconds per log, printed beside a floor measured in the
same run: bare sqlite3 creating a one-table WAL database, inserting one row
and closing it. The ratio is what simledger adds (keys, genesis, schema,
locks, leaving WAL on close) over the cheapest possible durable file.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from simledger.ledger.run import Run
from simledger.ledger.store import Store

AGENTS = [f"agent_{i}" for i in range(8)]


def floor_ms(folder: Path, n: int) -> float:
    """Return ms per bare sqlite3 WAL create + one insert + close."""
    start = time.perf_counter()
    for i in range(n):
        conn = sqlite3.connect(folder / f"floor_{i}.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (x BLOB)")
        conn.execute("INSERT INTO t VALUES (zeroblob(200))")
        conn.close()
    return 1000 * (time.perf_counter() - start) / n


def lifecycle_ms(folder: Path, n: int) -> dict[str, float]:
    """Return ms per log for each step of the lifecycle."""
    spent = dict.fromkeys(("create", "close", "reopen+close", "read-only open+close"), 0.0)
    clock = time.perf_counter
    for i in range(n):
        path = folder / f"run_{i}.db"
        t0 = clock()
        run = Run.create(path, agents=AGENTS, seed=i)
        t1 = clock()
        run.close()
        t2 = clock()
        Run.open(path).close()
        t3 = clock()
        with Store(path) as store:
            store.head()
        t4 = clock()
        for name, seconds in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            spent[name] += seconds
    return {name: 1000 * seconds / n for name, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    best: dict[str, float] = {}
    floors = []
    for round_ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            floors.append(floor_ms(Path(tmp), args.logs))
            for name, ms in lifecycle_ms(Path(tmp), args.logs).items():
                best[name] = min(best.get(name, ms), ms)
            sidecars = sorted(p.name for p in Path(tmp).iterdir() if not p.name.endswith(".db"))
    floor = min(floors)
    print(f"{args.logs} logs, best of {args.repeat}; floor (sqlite3 WAL create+insert+close) {floor:.2f} ms/log")
    for name, ms in best.items():
        print(f"  {name:<22}{ms:7.2f} ms/log   {ms / floor:5.1f} x floor")
    print(f"  files beside the logs after close: {len(sidecars)} {sidecars[:4]}")


if __name__ == "__main__":
    main()
