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

import fcntl
import functools
import os
import sqlite3
from pathlib import Path
from typing import Iterator, NamedTuple

import sqlite_utils

from ..events import types as ev
from ..events.envelope import FORMAT_VERSION, Envelope, PayloadError, decode_payload
from .errors import LedgerError, NotALog, UnsupportedFormat, WriterBusy

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
    """An open run.db: append turns atomically, stream events back by seq or turn."""

    def __init__(self, path: str | Path, *, create: bool = False, write: bool = False) -> None:
        self.path = Path(path)
        self._lock_handle = None
        if not create and not self.path.is_file():
            raise NotALog(f"{self.path}: no such file")
        if create and self.path.exists() and self.path.stat().st_size > 0 and not is_unstarted_log(self.path):
            raise LedgerError(f"{self.path} already exists; refusing to overwrite a log")
        if write or create:
            self._take_writer_lock()
        # as_uri() percent-escapes the path: a '#' or '?' in a folder name must not cut it.
        uri = self.path.resolve().as_uri() + ("" if (write or create) else "?mode=ro")
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
            if create:
                conn.execute("PRAGMA journal_mode = WAL")
            if write or create:
                conn.execute("PRAGMA synchronous = NORMAL")
                # 64 MiB page cache: index inserts on a long log stay in memory instead of re-reading pages.
                conn.execute("PRAGMA cache_size = -65536")
            else:
                # A reader sees one snapshot for its whole life (WAL): what it returns is the log as of
                # its first read, even while a writer appends turns (e.g. a statement and its reconciliation).
                conn.execute("BEGIN")
        except sqlite3.DatabaseError as err:
            self.close()
            raise NotALog(f"{self.path}: not a SQLite database ({err})") from None
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        try:
            if create:
                # An interrupted creation may have left the (empty) schema: keep it, add the genesis.
                self._check_schema() if self.db.table_names() else self._create_schema()
            else:
                self._check_schema()
                if write:  # only now that the file is known to be a log: switching to WAL writes to it
                    conn.execute("PRAGMA journal_mode = WAL")
        except BaseException:
            self.close()
            raise

    # --- opening -------------------------------------------------------------

    def _take_writer_lock(self) -> None:
        """Hold an exclusive OS lock beside the db for as long as this writer lives."""
        lock_path = self.path.with_name(self.path.name + ".writer-lock")
        handle = open(lock_path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise WriterBusy(f"{self.path} is already open for writing by another process") from None
        self._lock_handle = handle

    def _create_schema(self) -> None:
        with self.transaction():
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

    def _check_schema(self) -> None:
        try:
            tables = set(self.db.table_names())
        except sqlite3.DatabaseError as err:
            raise NotALog(f"{self.path}: not a SQLite database ({err})") from None
        if "events" not in tables or "meta" not in tables:
            raise NotALog(f"{self.path}: not a simledger log (no events/meta table)")
        try:
            meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
            columns = {c.name for c in self.db["events"].columns}
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
        self.meta = meta

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()
            self.conn = None
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- writing -------------------------------------------------------------

    def transaction(self):
        """Return a context manager: everything inside commits together or not at all."""
        return _Transaction(self.conn)

    def insert_events(self, rows: list[tuple]) -> None:
        """Insert event rows (tuples in EVENT_COLUMNS order); call inside :meth:`transaction`."""
        self.conn.executemany(_INSERT, rows)

    def set_meta(self, key: str, value: str) -> None:
        self.db["meta"].upsert({"key": key, "value": value}, pk="key")

    # --- reading -------------------------------------------------------------

    def data_version(self) -> int:
        """Return SQLite's data version: it changes when another connection commits to the file."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def head(self) -> tuple[int, bytes, int]:
        """Return (last seq, last hash, last turn), or (-1, zero hash, -1) for an empty log."""
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
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
        return False


def is_unstarted_log(path: str | Path) -> bool:
    """Return whether ``path`` is a log whose creation was killed before its genesis committed.

    Such a file (SQLite with no table, or simledger's schema and no event) holds
    nothing, so a run may be created over it instead of leaving it stuck.
    """
    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return True
        if not {"events", "meta"} <= tables:
            return False
        application = conn.execute("SELECT value FROM meta WHERE key = 'application'").fetchone()
        return application == ("simledger",) and conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
    except sqlite3.Error:
        return False
    finally:
        conn.close()


@functools.lru_cache(maxsize=1)
def library_version() -> str:
    """Return the installed simledger version (recorded in every log's genesis)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("simledger")
    except PackageNotFoundError:
        return os.environ.get("SIMLEDGER_VERSION", "0+unknown")
