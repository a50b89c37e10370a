"""One writer per log: an exclusive ``flock`` on the database file itself.

The lock belongs to the file (its inode), not to the path naming it: a second
writer reaching the same log through a symlink, a hard link or another relative
path is refused, and no lock file is left beside the log.

SQLite keeps its own POSIX record locks on the same file, and POSIX drops every
record lock a process holds on a file when the process closes *any* descriptor
of it. So the lock's descriptor is closed only once no connection this process
opened through :func:`connection_opened` is left on that file (SQLite defers
its own closes the same way).
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from .errors import WriterBusy

_registry = threading.Lock()
_open_connections: dict[tuple[int, int], int] = {}  # (st_dev, st_ino) -> SQLite connections open in this process
_deferred_closes: dict[tuple[int, int], list[int]] = {}  # descriptors waiting for those connections to close


def file_key(path: str | Path) -> tuple[int, int]:
    """Return (device, inode) of the file ``path`` names, through symlinks."""
    st = os.stat(path)
    return st.st_dev, st.st_ino


def connection_opened(key: tuple[int, int]) -> None:
    with _registry:
        _open_connections[key] = _open_connections.get(key, 0) + 1


def connection_closed(key: tuple[int, int]) -> None:
    """Count a connection on ``key`` closed; close the lock descriptors that waited for the last one."""
    with _registry:
        left = _open_connections.get(key, 1) - 1
        if left:
            _open_connections[key] = left
            return
        _open_connections.pop(key, None)
        waiting = _deferred_closes.pop(key, [])
    for fd in waiting:
        os.close(fd)


def _close_descriptor(fd: int, key: tuple[int, int]) -> None:
    with _registry:
        if _open_connections.get(key):
            _deferred_closes.setdefault(key, []).append(fd)
            return
    os.close(fd)


class WriterLock:
    """An exclusive lock on a database file, held for as long as one writer lives."""

    def __init__(self, fd: int, key: tuple[int, int], created: bool) -> None:
        self._fd: int | None = fd
        self.key, self.created = key, created

    @classmethod
    def acquire(cls, path: str | Path, *, create: bool = False) -> "WriterLock":
        """Lock ``path``'s file (creating it empty when ``create`` and missing); raise WriterBusy if held.

        After locking, the path must still name the locked file: a log replaced
        meanwhile (a run created over an empty file) is locked afresh.
        """
        for _ in range(5):
            fd, created = _open(path, create)
            key = (os.fstat(fd).st_dev, os.fstat(fd).st_ino)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                _close_descriptor(fd, key)
                raise WriterBusy(f"{path} is already open for writing by another process") from None
            try:
                still_there = file_key(path) == key
            except FileNotFoundError:
                still_there = False
            if still_there:
                return cls(fd, key, created)
            fcntl.flock(fd, fcntl.LOCK_UN)
            _close_descriptor(fd, key)
        raise WriterBusy(f"{path} keeps being replaced by another process")

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            _close_descriptor(self._fd, self.key)
            self._fd = None


def _open(path: str | Path, create: bool) -> tuple[int, bool]:
    """Return (a descriptor of ``path``, whether this call created the file)."""
    flags = os.O_RDWR | os.O_CLOEXEC
    if create:
        try:
            return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            pass
    return os.open(path, flags), False
