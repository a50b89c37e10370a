"""Running a sweep: specs executed on any Executor, existing logs checked and skipped, failures recorded."""

from __future__ import annotations

import itertools
import os
import sqlite3
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ...events import types as ev
from ...events.config import load_config, load_rules
from ...ledger.errors import FolderInUse, LedgerError
from ...ledger.head import head_file_of, write_file_atomically
from ...ledger.store import Store, library_version
from ..model_runs import plays_llm
from ..experiment import RunSpec, execute_spec, execute_specs
from ..regimes import engine_config
from ..runner import remove_log_files
from ..summary import run_order, summarize_log
from .spec import Sweep, select_shard, sweep_specs
from .tables import write_outputs

UNFINISHED_ERRORS = (LedgerError, ValueError, sqlite3.DatabaseError)  # ValueError: PayloadError, msgspec errors


# --- checking and returning logs (top-level: workers run these) ------------------------


@dataclass(frozen=True)
class LogCheck:
    """Whether a log is a finished, verified run of a given spec; its summary if so."""

    summary: dict[str, Any] | None
    reason: str = ""
    foreign: bool = False
    """The log verifies but is another run (identity, shape or library version): never replaced unasked."""


def inspect_log(path: str, spec: RunSpec) -> LogCheck:
    """Return the verified run summary of the log at ``path`` if it is ``spec``'s run, finished; else why not.

    A log that is unreadable, fails verification, or is this run but unfinished
    (a killed run) counts as "not finished" and will be replaced. A log that
    verifies but records another run is ``foreign``: the sweep refuses to
    replace it unless forced. Any other exception is a fault of this
    installation and is raised, so an existing log is never discarded because of it.
    """
    if not os.path.isfile(path):
        return LogCheck(None, "no log file")
    try:
        genesis = read_genesis(path)
        summary = summarize_log(path)
    except UNFINISHED_ERRORS as err:  # unreadable or unverifiable: not finished (a bug elsewhere propagates)
        return LogCheck(None, f"{type(err).__name__}: {err}")
    other = describe_other_run(genesis, spec)
    if other:
        return LogCheck(None, other, foreign=True)
    if summary["turns"] != spec.turns:
        return LogCheck(None, f"the log has {summary['turns']} of {spec.turns} turns")
    return LogCheck(summary)


def describe_other_run(genesis: ev.RunGenesis, spec: RunSpec) -> str:
    """Return how the run a genesis records differs from ``spec`` ("" when it is this run)."""
    recorded, wanted = genesis.identity, spec.genesis_identity()
    differ = sorted(k for k in {*recorded, *wanted} if recorded.get(k) != wanted.get(k))
    if differ:
        return "it records " + ", ".join(f"{k}={recorded.get(k)!r} (this run: {wanted.get(k)!r})" for k in differ)
    if genesis.library_version != library_version():
        return f"it was written by simledger {genesis.library_version} (this is {library_version()})"
    if genesis.seed != spec.seed or len(genesis.agents) != spec.agents:
        return (f"it has seed {genesis.seed} and {len(genesis.agents)} agents "
                f"(this run: seed {spec.seed}, {spec.agents} agents)")
    if genesis.config != load_config(engine_config(spec.regime, spec.agents)):
        return "it was played with another engine config"
    if genesis.rules != load_rules(spec.rules):
        return "it was played with other engine rules"
    return ""


def read_genesis(path: str | Path) -> ev.RunGenesis:
    """Return the genesis event of a log (unverified: callers verify the whole log after)."""
    with Store(path) as store:
        return store.genesis()


def run_to_bytes(spec: RunSpec) -> tuple[str, bytes, str]:
    """Run ``spec`` into a worker-local temporary folder; return (file name, the finished log's bytes, its signed head)."""
    with tempfile.TemporaryDirectory(prefix="simledger-sweep-") as folder:
        outcome = execute_spec(spec, folder)
        checkpoint(outcome.path)
        return f"{spec.name}.db", Path(outcome.path).read_bytes(), head_file_of(outcome.path).read_text()


def checkpoint(path: str | Path) -> None:
    """Fold any write-ahead log into the database file, so the file alone is the whole log."""
    if Path(f"{path}-wal").exists():
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def write_log_bytes(path: Path, data: bytes) -> None:
    """Write a returned log atomically, removing any stale file (and its WAL) of the same name first."""
    remove_log_files(path)
    partial = path.with_name(path.name + ".part")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


class InlineExecutor(Executor):
    """An Executor that runs each call at once in this process (one worker, no pickling)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as err:  # noqa: BLE001 - delivered through the future, as a pool would
            future.set_exception(err)
        return future


# --- running a sweep ----------------------------------------------------------------------


@dataclass
class SweepResult:
    """What a sweep did: runs skipped (already finished), run now, failed; and its summaries."""

    runs: list[str]
    skipped: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # finished logs of another run, replaced (force)
    ran: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    regime_rows: list[dict[str, Any]] = field(default_factory=list)
    sweep_rows: list[dict[str, Any]] = field(default_factory=list)
    run_seconds: float = 0.0
    summary_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def run_sweep(sweep: Sweep, out_dir: str | Path, *, executor: Executor | None = None, workers: int = 1,
              shard: tuple[int, int] | None = None, runs_dir: str | Path | None = None, return_logs: bool = False,
              window: int | None = None, report: bool = True, plots: bool = True, force: bool = False,
              on_progress: Callable[[str, str], None] | None = None) -> SweepResult:
    """Run the sweep's (shard of) runs not finished yet; write failures, summaries and plots into ``out_dir``.

    ``executor`` is any concurrent.futures Executor (default: a process pool of
    ``workers``, or this process for one worker). ``runs_dir`` (default
    ``out_dir/runs``) must be visible to every worker unless ``return_logs``.
    ``window`` bounds the runs in flight when logs are returned (default: twice
    ``workers``). ``on_progress(event, run name)`` hears "skipped", "done" and "failed".
    """
    out = Path(out_dir)
    runs = Path(runs_dir or out / "runs").resolve()
    runs.mkdir(parents=True, exist_ok=True)
    specs = select_shard(sweep_specs(sweep), shard)
    result = SweepResult(runs=[s.name for s in specs])
    notify = on_progress or (lambda event, name: None)
    started = time.perf_counter()
    own = executor is None and workers > 1
    pool = executor or (ProcessPoolExecutor(max_workers=workers) if workers > 1 else InlineExecutor())
    try:
        checker = InlineExecutor() if return_logs else pool
        summaries, foreign = skip_finished(specs, runs, checker, result, notify)
        if foreign and not force:
            name, reason = foreign[0]
            raise FolderInUse(f"{runs} holds {len(foreign)} finished run(s) of another study or sweep "
                              f"({name}.db: {reason}); nothing was run or replaced; pass --force to replace "
                              f"them, or choose another output folder")
        result.replaced = sorted(name for name, _ in foreign)
        unchecked = {f["run"] for f in result.failures}
        todo = [s for s in specs if s.name not in summaries and s.name not in unchecked]
        if return_logs:
            summaries.update(run_returning(todo, runs, pool, result, notify, window or 2 * max(1, workers)))
        else:
            summaries.update(run_shared(todo, runs, pool, result, notify))
    finally:
        if own:
            pool.shutdown(cancel_futures=True)
    result.run_seconds = time.perf_counter() - started
    result.failures.sort(key=lambda f: f["run"])
    result.summaries = sorted(summaries.values(), key=run_order)
    write_outputs(sweep, result, out, runs, report=report, plots=plots)
    result.summary_seconds = time.perf_counter() - started - result.run_seconds
    return result


def log_path(runs: Path, spec: RunSpec) -> Path:
    return runs / f"{spec.name}.db"


def skip_finished(specs: list[RunSpec], runs: Path, checker: Executor, result: SweepResult,
                  notify: Callable[[str, str], None]) -> tuple[dict[str, dict], list[tuple[str, str]]]:
    """Return the summaries of runs whose log already exists, verifies and is finished (they are skipped),
    and the (run, reason) of logs that verify but record another run."""
    existing = [s for s in specs if log_path(runs, s).exists()]
    futures = {checker.submit(inspect_log, str(log_path(runs, s)), s): s for s in existing}
    summaries, foreign = {}, []
    for future in as_completed(futures):
        spec = futures.pop(future)
        try:
            check = future.result()
        except Exception as err:  # noqa: BLE001 - the log is left alone and the run reported, not replayed
            record_failure(result, spec, f"could not check the existing log (left untouched): "
                                         f"{type(err).__name__}: {err}", notify)
            continue
        if check.foreign:
            foreign.append((spec.name, check.reason))
        elif check.summary is not None:
            summaries[spec.name] = check.summary
            result.skipped.append(spec.name)
            notify("skipped", spec.name)
    result.skipped.sort()
    return summaries, sorted(foreign)


def record_failure(result: SweepResult, spec: RunSpec, error: BaseException | str,
                   notify: Callable[[str, str], None]) -> None:
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    result.failures.append({"run": spec.name, "scenario": spec.regime_name, "seed": spec.seed, "error": message})
    notify("failed", spec.name)


def run_shared(todo: list[RunSpec], runs: Path, pool: Executor, result: SweepResult,
               notify: Callable[[str, str], None]) -> dict[str, dict]:
    """Run specs with workers writing into ``runs``; each new log is then verified and summarised by a worker."""
    by_name = {s.name: s for s in todo}
    checks: dict[Future, RunSpec] = {}

    def done(outcome) -> None:
        spec = by_name[outcome.name]
        checks[pool.submit(inspect_log, outcome.path, spec)] = spec

    def failed(spec: RunSpec, err: BaseException) -> None:
        if not plays_llm(spec.regime):  # a model-played run's partial log holds paid calls: a rerun continues it
            remove_partial(log_path(runs, spec))
        record_failure(result, spec, err, notify)

    inline = isinstance(pool, InlineExecutor)
    execute_specs(todo, runs, executor=None if inline else pool, workers=1, on_done=done, on_error=failed)
    summaries = {}
    for future in as_completed(checks):
        spec = checks.pop(future)
        accept_check(spec, future, summaries, result, notify)
    return summaries


def remove_partial(path: Path) -> None:
    try:
        remove_log_files(path)
    except OSError:
        pass


def accept_check(spec: RunSpec, future: Future, summaries: dict[str, dict], result: SweepResult,
                 notify: Callable[[str, str], None]) -> None:
    """Keep a new log's summary, or record why the log written for ``spec`` is not acceptable."""
    try:
        check = future.result()
    except Exception as err:  # noqa: BLE001 - e.g. a worker lost while checking
        record_failure(result, spec, err, notify)
        return
    if check.summary is None:
        record_failure(result, spec, f"the written log is not a finished run: {check.reason}", notify)
        return
    summaries[spec.name] = check.summary
    result.ran.append(spec.name)
    notify("done", spec.name)


def run_returning(todo: list[RunSpec], runs: Path, pool: Executor, result: SweepResult,
                  notify: Callable[[str, str], None], window: int) -> dict[str, dict]:
    """Run specs in worker-local folders; write each returned log here and verify it before keeping it.

    At most ``window`` runs are in flight, so at most that many returned logs
    wait in memory for the client, however fast the workers are.
    """
    summaries: dict[str, dict] = {}
    for spec, future in completed_in_window(pool, run_to_bytes, todo, window):
        path = log_path(runs, spec)
        try:
            name, data, head = future.result()
            if name != path.name:
                raise ValueError(f"a worker returned {name!r} for {path.name!r}")
            write_log_bytes(path, data)
            write_file_atomically(head_file_of(path), head)
            del data
        except Exception as err:  # noqa: BLE001 - a failed run is recorded, the sweep goes on
            record_failure(result, spec, err, notify)
            continue
        check = InlineExecutor().submit(inspect_log, str(path), spec)  # verified here
        accept_check(spec, check, summaries, result, notify)
        if spec.name not in summaries:
            remove_partial(path)
    return summaries


def completed_in_window(pool: Executor, fn: Callable, items: list, window: int):
    """Yield (item, finished future) of ``fn(item)`` with at most ``window`` calls submitted at a time."""
    queue = iter(items)
    pending: dict[Future, Any] = {}

    def fill() -> None:
        for item in itertools.islice(queue, max(1, window) - len(pending)):
            pending[pool.submit(fn, item)] = item

    fill()
    while pending:
        finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for future in finished:
            yield pending.pop(future), future
        fill()


