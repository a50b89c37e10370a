"""Helpers shared by the CLI commands: error mapping and output."""

from __future__ import annotations

import functools
import json
import sqlite3
import sys
from typing import Any, Callable

import typer
from rich.console import Console
from rich.markup import escape

from ..events.config import InvalidConfig
from ..events.keys import KeystoreError
from ..ledger.errors import LedgerError
from ..ledger.store import storage_error

console = Console()
err_console = Console(stderr=True)


MAX_MESSAGE_CHARS = 1000


def fail(message: str, code: int = 2) -> None:
    """Print a one-line error and exit with ``code``.

    The message may quote a hostile file (a 16 MiB cell, newlines, rich markup):
    it is flattened to one line, shortened, and printed literally.
    """
    text = " ".join(str(message).split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + "… (truncated)"
    err_console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handle_errors(func: Callable) -> Callable:
    """Turn the library's exceptions, SQLite's and the file system's into a one-line message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (LedgerError, InvalidConfig, KeystoreError) as err:
            fail(str(err))
        except sqlite3.Error as err:  # one the library did not map: a full disk or damaged file met elsewhere
            fail(str(storage_error(err) or f"SQLite error: {err}"))
        except OSError as err:  # ENOSPC, EACCES, EROFS, EPERM...: the file system's own words
            where = getattr(err, "filename", None)
            fail(f"{where}: {err.strerror or err}" if where else str(err.strerror or err))

    return wrapper


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
