"""The SQLite recorder: the only module that speaks SQL to a run.db.

Tables
  events       the log: one row per event, append-only (the truth)
  meta         format version, run id, library version
  checkpoints  projection snapshots (derived, rebuildable, never trusted over the log)
  contracts, core_shares   read models for tools written for the original engine

Every hashed field has a readable copy (turn, kind, actor, contract_id, payload_json);
``ledger.verify`` checks each copy against the hashed bytes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
from pathlib import Path
from typing import Iterator, NamedTuple

import sqlite_utils

from ..events import types as ev
from ..events.envelope import FORMAT_VERSION, Envelope, PayloadError, decode_payload
from .errors import LedgerError, NoRunYet, NotALog, StorageError, UnsupportedFormat
from .writer_lock import WriterLock, connection_closed, connection_opened, file_key

class EventRow(NamedTuple):
    """One row of the ``events`` table, as stored (hashes and signatures are lowercase hex)."""

    seq: int
    turn: int
    kind: str
    actor: str
    contract_id: str | None
    payload_version: int
    payload: bytes
    payload_json: str
    prev_hash: str
    hash: str
    signer: str
    signature: str
    format_version: int


EVENT_COLUMNS = EventRow._fields
_SELECT = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
_INSERT = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
MAX_COLUMN_BYTES = 16 * 1024 * 1024
NO_RUN_YET = "no run yet (its creation did not finish; creating a run over it replaces it)"


def envelope_from_row(row: tuple) -> Envelope:
    """Return the Envelope of an ``events`` row; raise ValueError on a malformed cell."""
    seq, turn, kind, actor, contract_id, pv, payload, _json, prev, hsh, signer, sig, fv = row
    for name, value, kind_ in (("seq", seq, int), ("turn", turn, int), ("kind", kind, str), ("actor", actor, str),
                               ("payload_version", pv, int), ("payload", payload, bytes), ("signer", signer, str),
                               ("format_version", fv, int)):
        if not isinstance(value, kind_):
            raise ValueError(f"column {name} holds {type(value).__name__}, expected {kind_.__name__}")
    if contract_id is not None and not isinstance(contract_id, str):
        raise ValueError("column contract_id is not text")
    if len(payload) > MAX_COLUMN_BYTES:
        raise ValueError("payload is oversized")
    return Envelope(
        seq=seq, turn=turn, kind=kind, actor=actor, contract_id=contract_id, payload_version=pv,
        payload=payload, prev_hash=_unhex(prev, "prev_hash"), signer=signer, hash=_unhex(hsh, "hash"),
        signature=_unhex(sig, "signature"), format_version=fv,
    )


def _unhex(value, name: str) -> bytes:
    """Return the bytes of a hex column, which must be exactly the lowercase hex simledger writes.

    ``bytes.fromhex`` also takes upper case and spaces; tools that look hashes up as
    text (``WHERE hash = ?``) would then disagree with a log that verifies.
    """
    if not isinstance(value, str):
        raise ValueError(f"column {name} is not hex text")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"column {name} is not valid hex") from None
    if raw.hex() != value:
        raise ValueError(f"column {name} is not lowercase hex without separators")
    return raw


def event_row(header: tuple, digest: bytes, signature: bytes, payload_json: str) -> tuple:
    """Return the ``events`` row (EVENT_COLUMNS order) of a ``seal_envelope`` header, hash and signature."""
    format_version, seq, turn, kind, actor, contract_id, payload_version, payload, prev_hash, signer = header
    # bytearray: sqlite3 binds it as a BLOB directly, where ``bytes`` first goes through its adapter lookup.
    return (seq, turn, kind, actor, contract_id, payload_version, bytearray(payload), payload_json, prev_hash.hex(),
            digest.hex(), signer, signature.hex(), format_version)


class Store:
    """An open run.db: append turns atomically, stream events back by seq or turn.

    A writer (``write`` or ``create``) holds the file's writer lock and keeps the log
    in WAL mode while it is open, so readers work beside it. Closing it folds the WAL
    back and switches the file to a rollback journal: a closed log is one
    self-contained file, readable in a read-only folder. A reader opens the file
    read-only; on a closed log it needs and leaves nothing beside it.

    A created store writes its schema inside its first transaction, so the schema,
    the meta rows and the genesis commit together: a kill at any moment leaves no
    run (nothing, or an empty file that creation replaces) or a run with its genesis.
    """

    def __init__(self, path: str | Path, *, create: bool = False, write: bool = False,
                 lock: WriterLock | None = None) -> None:
        self.path = Path(path)
        self.conn: sqlite3.Connection | None = None
        self._lock = lock
        self._key: tuple[int, int] | None = None
        self._pending_schema = False
        self._in_wal = False  # this writer switched the file to WAL: it switches it back on close
        if not create and not self.path.is_file():
            raise NotALog(f"{self.path}: no such file")
        try:
            if write or create:
                self._open_writer(create)
            else:
                self._open_reader()
        except BaseException:
            self.close()
            raise

    # --- opening -------------------------------------------------------------

    def _connect(self, query: str) -> sqlite3.Connection:
        """Open (and count, see ``writer_lock``) a connection; read the schema once so open errors surface here."""
        # as_uri() percent-escapes the path: a '#' or '?' in a folder name must not cut it.
        uri = f"{self.path.resolve().as_uri()}?{query}"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        key = file_key(self.path)
        connection_opened(key)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except BaseException:
            conn.close()
            connection_closed(key)
            raise
        self.conn, self._key = conn, key
        self.db = sqlite_utils.Database(conn)
        return conn

    def _open_writer(self, create: bool) -> None:
        if self._lock is None:
            self._lock = WriterLock.acquire(self.path, create=create)
        if create and self.path.stat().st_size > 0 and not is_unstarted_log(self.path):
            # Checked read-only: a refused creation must not even fold the WAL of the log it found.
            raise LedgerError(f"{self.path} already exists; refusing to overwrite a log")
        if create and self.path.stat().st_size == 0:
            # A WAL-mode database never has an empty main file: a -wal or -shm beside an empty
            # file is another (deleted) log's, and SQLite would replay it into this one.
            for suffix in ("-wal", "-shm"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        try:
            conn = self._connect("mode=rw")  # rolls back a hot journal an interrupted write left
            if create and not self.db.table_names():
                self._pending_schema = True
            else:
                self._check_schema(for_create=create)
            # Only now that the file is known to be a log (or empty): switching to WAL writes to it.
            conn.execute("PRAGMA journal_mode = WAL")
            self._in_wal = True
            conn.execute("PRAGMA synchronous = NORMAL")
            # 64 MiB page cache: index inserts on a long log stay in memory instead of re-reading pages.
            conn.execute("PRAGMA cache_size = -65536")
        except sqlite3.DatabaseError as err:
            raise storage_error(err, self.path) or NotALog(f"{self.path}: not a SQLite database ({err})") from None

    def _open_reader(self) -> None:
        try:
            try:
                conn = self._connect("mode=ro")
            except sqlite3.OperationalError as err:
                conn = self._reconnect_reader(err)
            # A reader sees one snapshot for its whole life (WAL): what it returns is the log as of
            # its first read, even while a writer appends turns (e.g. a statement and its reconciliation).
            conn.execute("BEGIN")
        except sqlite3.DatabaseError as err:
            raise storage_error(err, self.path) or NotALog(f"{self.path}: not a SQLite database ({err})") from None
        self._check_schema()

    def _reconnect_reader(self, err: sqlite3.OperationalError) -> sqlite3.Connection:
        """Open a reader the plain read-only open refused: after an interrupted write, or in a read-only folder."""
        reason = getattr(err, "sqlite_errorname", "")
        journal, wal = (self.path.with_name(self.path.name + suffix) for suffix in ("-journal", "-wal"))
        if reason == "SQLITE_READONLY_ROLLBACK":
            # A hot journal: a write was interrupted. Rolling it back restores the last commit, as any
            # SQLite writer would on open; only where the file cannot be written is that impossible.
            try:
                with contextlib.closing(sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True)) as rw:
                    rw.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.Error:
                raise NotALog(f"{self.path}: an interrupted write left {journal.name}; open the log once where it "
                              "can be written to roll it back") from None
            return self._connect("mode=ro")
        unwritable_folder = reason.startswith("SQLITE_READONLY") or reason == "SQLITE_CANTOPEN"
        if unwritable_folder and not wal.exists() and not journal.exists():
            # A WAL-mode file with no WAL in a folder a reader cannot write (no -shm can be made): with
            # no write-ahead log and no journal, the file alone is the whole log.
            return self._connect("mode=ro&immutable=1")
        raise err

    def _check_schema(self, *, for_create: bool = False) -> None:
        try:
            tables = set(self.db.table_names())
        except sqlite3.DatabaseError as err:
            raise NotALog(f"{self.path}: not a SQLite database ({err})") from None
        if not tables:
            raise NoRunYet(f"{self.path}: {NO_RUN_YET}")
        if "events" not in tables or "meta" not in tables:
            raise NotALog(f"{self.path}: not a simledger log (no events/meta table)")
        try:
            meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
            columns = {c.name for c in self.db["events"].columns}
            started = self.conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None
        except sqlite3.DatabaseError as err:
            raise NotALog(f"{self.path}: unreadable meta table ({err})") from None
        if meta.get("application") != "simledger":
            raise NotALog(f"{self.path}: not a simledger log (meta.application is {meta.get('application')!r})")
        if missing := set(EVENT_COLUMNS) - columns:
            raise NotALog(f"{self.path}: events table lacks column(s) {', '.join(sorted(missing))}")
        if meta.get("format_version") != str(FORMAT_VERSION):
            raise UnsupportedFormat(
                f"{self.path}: log format version {meta.get('format_version')!r}; this simledger reads {FORMAT_VERSION}"
            )
        if not started and not for_create:  # the schema of an older simledger, whose genesis never committed
            raise NoRunYet(f"{self.path}: {NO_RUN_YET}")
        self.meta = meta

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            if self._in_wal:
                leave_wal(conn)
            conn.close()
            connection_closed(self._key)
        if self._lock is not None:
            if self._pending_schema and self._lock.created:  # nothing committed: leave no file behind
                for suffix in ("", "-wal", "-shm", "-journal"):
                    self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- writing -------------------------------------------------------------

    def transaction(self):
        """Return a context manager: everything inside commits together or not at all."""
        return _Transaction(self)

    def insert_events(self, rows: list[tuple]) -> None:
        """Insert event rows (tuples in EVENT_COLUMNS order); call inside :meth:`transaction`."""
        self.conn.executemany(_INSERT, rows)

    def set_meta(self, key: str, value: str) -> None:
        self.db["meta"].upsert({"key": key, "value": value}, pk="key")

    def _create_schema(self) -> None:
        """Create the tables and meta rows (inside the store's first transaction)."""
        self.db["meta"].create({"key": str, "value": str}, pk="key")
        self.db["events"].create(
            {
                "seq": int, "turn": int, "kind": str, "actor": str, "contract_id": str,
                "payload_version": int, "payload": bytes, "payload_json": str, "prev_hash": str,
                "hash": str, "signer": str, "signature": str, "format_version": int,
            },
            pk="seq",
        )
        for column in ("turn", "kind", "actor"):
            self.db["events"].create_index([column])
        # Most events concern no contract: a partial index stays small and cheap to maintain.
        self.conn.execute("CREATE INDEX idx_events_contract_id ON events(contract_id) WHERE contract_id IS NOT NULL")
        self.db["checkpoints"].create({"turn": int, "seq": int, "state": bytes}, pk="turn")
        self.db["contracts"].create({"contract_id": str, "status": str, "data": str, "rank": int}, pk="contract_id")
        self.db["core_shares"].create({"core_id": str, "owner": str, "proportion": float}, pk="core_id")
        self.db["meta"].insert_all(
            [
                {"key": "application", "value": "simledger"},
                {"key": "format_version", "value": str(FORMAT_VERSION)},
                {"key": "library_version", "value": library_version()},
            ]
        )

    # --- reading -------------------------------------------------------------

    def data_version(self) -> int:
        """Return SQLite's data version: it changes when another connection commits to the file."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def head(self) -> tuple[int, bytes, int]:
        """Return (last seq, last hash, last turn), or (-1, zero hash, -1) for an empty log."""
        if self._pending_schema:  # created, nothing committed yet
            return -1, bytes(32), -1
        row = self.conn.execute("SELECT seq, hash, turn FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return -1, bytes(32), -1
        return row[0], bytes.fromhex(row[1]), row[2]

    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def rows(self, *, start_seq: int = 0, end_seq: int | None = None, until_turn: int | None = None,
             batch: int = 2000, columns: tuple[str, ...] = EVENT_COLUMNS) -> Iterator[tuple]:
        """Yield event rows in seq order (``EventRow``s), streaming in batches (bounded memory).

        ``columns`` (seq first, then any of EVENT_COLUMNS) narrows the read to plain
        tuples of those columns: a fold needs five of the thirteen, and SQLite hands
        back a narrow row far faster.
        """
        if columns[0] != "seq" or not set(columns) <= set(EVENT_COLUMNS):
            raise ValueError(f"columns must start with seq and be among {EVENT_COLUMNS}")
        select = _SELECT if columns == EVENT_COLUMNS else f"SELECT {', '.join(columns)} FROM events"
        seq = start_seq
        while True:
            sql, args = f"{select} WHERE seq >= ?", [seq]
            if end_seq is not None:
                sql += " AND seq <= ?"
                args.append(end_seq)
            if until_turn is not None:
                sql += " AND turn <= ?"
                args.append(until_turn)
            chunk = self.conn.execute(sql + " ORDER BY seq LIMIT ?", [*args, batch]).fetchall()
            yield from (map(EventRow._make, chunk) if select is _SELECT else chunk)
            if len(chunk) < batch:
                return
            seq = chunk[-1][0] + 1

    def envelopes(self, **kwargs) -> Iterator[Envelope]:
        for row in self.rows(**kwargs):
            yield envelope_from_row(row)

    def select(self, where: str, args: list, *, limit: int | None = None, offset: int = 0) -> list[EventRow]:
        """Return the event rows matching a WHERE clause built by this package (never user SQL)."""
        sql = f"{_SELECT} WHERE {where} ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        return [EventRow._make(row) for row in self.conn.execute(sql, args).fetchall()]

    def genesis(self) -> ev.RunGenesis:
        """Return the run's genesis (seq 0), decoded but not verified (``simledger verify`` checks it).

        The one genesis reader: LedgerError when the log has no seq 0 or it is not a readable run_genesis.
        """
        rows = self.select("seq = ?", [0])
        if not rows:
            raise LedgerError(f"{self.path} has no genesis (the log is empty)")
        try:
            genesis = decode_payload(rows[0].kind, rows[0].payload_version, rows[0].payload)
        except (PayloadError, TypeError, ValueError):
            genesis = None
        if not isinstance(genesis, ev.RunGenesis):
            raise LedgerError(f"{self.path}: seq 0 is not a readable run_genesis; run `simledger verify`")
        return genesis

    def last_turn_seq(self, turn: int) -> int | None:
        """Return the seq of turn ``turn``'s seal, or None when that turn is not sealed."""
        row = self.conn.execute(
            "SELECT seq FROM events WHERE turn = ? AND kind = 'turn_sealed' ORDER BY seq DESC LIMIT 1", [turn]
        ).fetchone()
        return row[0] if row else None


class _Transaction:
    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self):
        conn = self.store.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            if self.store._pending_schema:
                self.store._create_schema()
        except sqlite3.Error as err:
            self._end(err)
            raise
        return conn

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                self.store.conn.execute("COMMIT")
            except sqlite3.Error as err:
                self._end(err)
                raise
            self.store._pending_schema = False
        else:
            self._end(exc)
        return False

    def _end(self, err: BaseException) -> None:
        """Roll back (SQLite may already have, e.g. on a full disk); raise a storage failure as StorageError."""
        if self.store.conn.in_transaction:
            self.store.conn.execute("ROLLBACK")
        if isinstance(err, sqlite3.Error) and (mapped := storage_error(err, self.store.path)) is not None:
            raise mapped from None


# SQLite's result codes for a disk or file system that refuses a write, and what to tell the user.
_STORAGE_FAILURES = {
    "SQLITE_FULL": "the disk is full; the log is intact up to its last complete turn",
    "SQLITE_READONLY": "cannot write there (read-only file, folder or file system)",
    "SQLITE_CANTOPEN": "cannot open the file (permission denied, or its folder is missing)",
    "SQLITE_PERM": "permission denied",
    "SQLITE_IOERR": "disk I/O error",
    "SQLITE_BUSY": "busy: another process holds a lock on it; try again",
}


def storage_error(err: sqlite3.Error, path: str | Path | None = None) -> StorageError | None:
    """Return the StorageError for a sqlite3 error the disk or file system caused, else None."""
    name = getattr(err, "sqlite_errorname", "") or ""
    for code, meaning in _STORAGE_FAILURES.items():
        if name == code or name.startswith(code + "_"):
            return StorageError(f"{path}: {meaning} ({err})" if path else f"{meaning} ({err})")
    return None


def leave_wal(conn: sqlite3.Connection) -> None:
    """Fold the WAL into the file and switch to a rollback journal, so the closed log is one file.

    Refused (a reader still open, a full disk) the log stays in WAL mode, whole
    either way; the next writer to close it tries again.
    """
    try:
        conn.execute("PRAGMA busy_timeout = 1000")
        conn.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.Error:
        pass


def is_unstarted_log(path: str | Path) -> bool:
    """Return whether ``path`` is a log whose creation was killed before its genesis committed.

    Such a file (empty, SQLite with no table, or an older simledger's schema
    with no event) holds nothing, so a run may be created over it instead of
    leaving it stuck.
    """
    if not Path(path).is_file():
        return False
    if Path(path).stat().st_size == 0:
        return True
    try:
        Store(path).close()
    except NoRunYet:
        return True
    except (LedgerError, sqlite3.Error):
        return False
    return False


@functools.lru_cache(maxsize=1)
def library_version() -> str:
    """Return the installed simledger version (recorded in every log's genesis)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("simledger")
    except PackageNotFoundError:
        return os.environ.get("SIMLEDGER_VERSION", "0+unknown")
