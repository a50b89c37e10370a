"""Content-addressed texts: what a ``model_called`` event names by its SHA-256.

Prompts and answers are large and repeat across calls, so an event carries
their hashes and the texts live here, keyed by hash. The chain covers them
through those hashes: ``check_blobs`` (run by ``verify``) recomputes each
named text's hash. Rows are written in the transaction of the turn that names
them; a text two calls share is stored once.
"""

from __future__ import annotations

import hashlib
import sqlite3

from ..events import types as ev
from ..events.envelope import decode_payload
from .errors import BadInput, ChainError

TABLE = "blobs"
CREATE = f"CREATE TABLE IF NOT EXISTS {TABLE} (hash TEXT PRIMARY KEY, body BLOB NOT NULL)"
TEXT_FIELDS = ("messages", "text", "reasoning", "raw")


def blob_hash(body: bytes) -> str:
    """Return the name a text is stored under: its SHA-256, lowercase hex."""
    return hashlib.sha256(body).hexdigest()


def put_blobs(conn: sqlite3.Connection, blobs: dict[str, bytes]) -> None:
    """Store ``blobs`` (hash -> body) inside the caller's transaction; existing ones are kept."""
    conn.execute(CREATE)
    conn.executemany(f"INSERT OR IGNORE INTO {TABLE}(hash, body) VALUES (?, ?)", sorted(blobs.items()))


def get_blob(conn: sqlite3.Connection, digest: str) -> bytes | None:
    """Return the text stored under ``digest``, or None (also when the log has no blobs table)."""
    try:
        row = conn.execute(f"SELECT body FROM {TABLE} WHERE hash = ?", [digest]).fetchone()
    except sqlite3.OperationalError:
        return None
    return bytes(row[0]) if row else None


def check_texts_given(conn: sqlite3.Connection, calls: list[ev.ModelCalled], texts: dict[str, str]) -> dict[str, bytes]:
    """Return the texts (hash -> bytes) a client sent with its model calls; BadInput unless each is complete and true."""
    blobs = {}
    for digest, text in sorted(texts.items()):
        body = text.encode("utf-8", "surrogatepass")
        if blob_hash(body) != digest:
            raise BadInput(f"the text sent as {digest[:16]} does not hash to that name")
        blobs[digest] = body
    for call in calls:
        for digest in named_blobs(call):
            if digest not in blobs and get_blob(conn, digest) is None:
                raise BadInput(f"{call.agent}'s model call names the text {digest[:16]}, which the request does not carry")
    return blobs


def named_blobs(event: ev.ModelCalled) -> list[str]:
    """Return the hashes a model call names, in field order ("" means no such text)."""
    return [getattr(event, name) for name in TEXT_FIELDS if getattr(event, name)]


def check_blobs(conn: sqlite3.Connection) -> None:
    """Raise ChainError naming the first model call whose text is missing or does not hash to its name."""
    rows = conn.execute("SELECT seq, turn, payload_version, payload FROM events WHERE kind = 'model_called' ORDER BY seq")
    for seq, turn, version, payload in rows:
        event = decode_payload("model_called", version, payload)
        for digest in named_blobs(event):
            body = get_blob(conn, digest)
            if body is None:
                raise ChainError(f"the text {digest[:16]} this model call names is missing", seq=seq, turn=turn,
                                 kind="model_called")
            if blob_hash(body) != digest:
                raise ChainError(f"the text stored as {digest[:16]} does not hash to that name", seq=seq, turn=turn,
                                 kind="model_called")
