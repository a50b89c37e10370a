"""Summaries recomputed from stored logs: the seed's four files, byte-stable.

``summarize`` verifies each log, folds it, and writes ``run_summaries.json/.csv``
and ``regime_summary.json/.csv`` with the seed's names, columns and meanings.
The experiment calls the same function, so ``simledger summarize`` on the same
logs yields identical bytes.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from pathlib import Path
from typing import Any, Callable, Iterable

from ..ledger.replay import load_state
from ..ledger.store import Store
from ..projections.metrics import run_csv_fields, run_summary
from .metrics import regime_summary

SUMMARY_FILES = ("run_summaries.json", "run_summaries.csv", "regime_summary.json", "regime_summary.csv")
# What may sit beside a log without being one: SQLite's sidecars, lock files, signed heads.
NOT_LOGS = ("-wal", "-shm", "-journal", ".writer-lock", ".lock", ".head")


def log_files(paths: Iterable[str | Path]) -> list[str]:
    """Return the paths that name logs, sorted and unique (so ``summarize runs/*`` skips sidecars)."""
    return sorted({str(p) for p in paths if not Path(p).name.endswith(NOT_LOGS)})


def summarize_log(path: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """Return the run summary of one log, after verifying it end to end."""
    if verify:
        from ..ledger.verify import require_verified

        require_verified(path, str(path))
    with Store(path) as store:
        state = load_state(store)
    summary = run_summary(state)
    summary["log_file"] = Path(path).name
    return summary


def run_order(summary: dict[str, Any]) -> tuple:
    return (summary["regime"], summary["seed"], summary["run_id"])


def summarize(paths: Iterable[str | Path], out_dir: str | Path, *, verify: bool = True, workers: int = 1,
              on_log: Callable[[str], None] | None = None) -> tuple[list[dict], list[dict]]:
    """Write the four summary files for ``paths`` into ``out_dir``; return (runs, regime rows).

    Logs are verified and folded one per worker process; only their summaries
    are held in memory. Files that only accompany logs (see ``NOT_LOGS``) are skipped. The result does not depend on the worker count.
    """
    ordered = log_files(paths)
    runs = []
    if workers > 1 and len(ordered) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            for path, summary in zip(ordered, pool.map(functools.partial(summarize_log, verify=verify), ordered)):
                runs.append(summary)
                if on_log:
                    on_log(path)
    else:
        for path in ordered:
            runs.append(summarize_log(path, verify=verify))
            if on_log:
                on_log(path)
    runs.sort(key=run_order)
    rows = regime_summary(runs)
    write_summaries(runs, rows, out_dir)
    return runs, rows


def write_summaries(runs: list[dict], rows: list[dict], out_dir: str | Path) -> None:
    """Write the seed's four files (same names, columns, float formatting)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "run_summaries.json", json.dumps(runs, indent=2) + "\n")
    write_text(out / "regime_summary.json", json.dumps(rows, indent=2) + "\n")
    write_text(out / "run_summaries.csv", to_csv(run_csv_fields(), runs))
    write_text(out / "regime_summary.csv", to_csv(list(rows[0]) if rows else [], rows))


def write_text(path: Path, text: str) -> None:
    """Write ``path``; an OSError from the write itself (a full disk) names the file too."""
    try:
        path.write_text(text)
    except OSError as err:
        if err.filename is None:
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise


def to_csv(fields: list[str], rows: list[dict]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row[k] for k in fields})
    return buffer.getvalue()
