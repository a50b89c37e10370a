"""Benchmark: a notebook's first look at a run, ``open_run(path)`` then ``.accounts()`` and ``.turns()``.

    python bench/workbench.py                   # the study's 8 agents x 40 turns (built into bench/out/)
    python bench/workbench.py --turns 200 --repeat 3

Beside it, in the same process: one fold of the whole log from genesis
(``load_state`` without checkpoints, the floor: the frames need this one fold) and
one replay per turn (what a reader needed before, one ``simledger replay --until
turn N`` per N, checkpoints allowed). Then the whole cold command a user types,
``python -c "import simledger; ...shape"``, beside ``python -c "import pandas"``
(its floor: the interpreter and pandas). Times are the best of ``--repeat``.
Target: < 1 s for a 40-turn run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def best_of(repeat: int, func) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - started)
    return best


def first_look(path: Path) -> tuple[tuple, tuple]:
    import simledger

    run = simledger.open_run(path)
    return run.accounts().shape, run.turns().shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from simledger.ledger.replay import load_state
    from simledger.ledger.store import Store
    from simledger.study.regimes import load_regimes
    from simledger.study.runner import execute_run

    OUT.mkdir(exist_ok=True)
    path = OUT / f"workbench_baseline_101_{args.turns}.db"
    if not path.exists():
        execute_run(path, regime_name="baseline", regime=load_regimes()["baseline"], seed=101,
                    turns=args.turns).close()
    import pandas  # noqa: F401 - imported once up front, as a notebook has it

    def replay_once() -> None:
        with Store(path) as store:
            load_state(store, use_checkpoints=False)

    def replay_every_turn() -> None:
        with Store(path) as store:
            for turn in range(args.turns + 1):
                load_state(store, turn)

    shapes = first_look(path)
    frames = best_of(args.repeat, lambda: first_look(path))
    floor = best_of(args.repeat, replay_once)
    per_turn = best_of(args.repeat, replay_every_turn)
    command = f"import simledger; r = simledger.open_run({str(path)!r}); print(r.accounts().shape, r.turns().shape)"
    cold = best_of(args.repeat, lambda: subprocess.run([sys.executable, "-c", command], check=True, capture_output=True))
    cold_floor = best_of(args.repeat, lambda: subprocess.run([sys.executable, "-c", "import pandas"], check=True))
    print(f"log: {path.name}, accounts {shapes[0]}, turns {shapes[1]}")
    print(f"open_run + accounts() + turns(): {frames * 1000:8.1f} ms   (target < 1000 ms)")
    print(f"floor, one fold from genesis:    {floor * 1000:8.1f} ms   frames / floor = {frames / floor:.1f}")
    print(f"cold command (new interpreter):  {cold * 1000:8.1f} ms   (target < 1000 ms)")
    print(f"floor, python -c 'import pandas': {cold_floor * 1000:7.1f} ms   cold / floor = {cold / cold_floor:.2f}")
    print(f"one replay per turn ({args.turns + 1}):       {per_turn * 1000:8.1f} ms   per-turn / frames = "
          f"{per_turn / frames:.1f}")


if __name__ == "__main__":
    main()
