"""The library's exceptions: one shallow tree the CLI and HTTP layers map to messages."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error simledger raises on purpose; its message is for the user."""


class NotALog(LedgerError):
    """Raised when a file is missing, not SQLite, or not a simledger log."""


class NoRunYet(NotALog):
    """Raised when a file is a log whose creation never committed: nothing in it, a run may be created over it."""


class StorageError(LedgerError):
    """Raised when the disk or the file system refuses a write: disk full, permission, read-only folder."""


class UnsupportedFormat(LedgerError):
    """Raised when a log was written by a format version this library cannot read."""


class ChainError(LedgerError):
    """Raised when an event does not verify: bad hash, link, signature, order or seal."""

    def __init__(self, message: str, *, seq: int | None = None, turn: int | None = None, kind: str | None = None):
        where = f"seq {seq}" + (f" (turn {turn}, {kind})" if turn is not None else "") if seq is not None else ""
        super().__init__(f"{where}: {message}" if where else message)
        self.seq, self.turn, self.kind, self.reason = seq, turn, kind, message


class WriterBusy(LedgerError):
    """Raised when another process already holds a log open for writing."""


class RunStateError(LedgerError):
    """Raised when a run is used out of order: a turn before genesis, a second genesis, ..."""


class BadInput(LedgerError):
    """Raised when a turn's inputs are malformed as a request (not as an action)."""


class FolderInUse(LedgerError):
    """Raised when an output folder holds finished logs of other runs (they are replaced only when forced)."""


class WriteMismatch(LedgerError):
    """Raised when the rows read back inside a turn's transaction are not the rows the engine wrote."""
