"""Helpers shared by the CLI commands: error mapping and output."""

from __future__ import annotations

import functools
import json
import re
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

# What a log may hold but a terminal must never receive raw: C0/C1 controls (ESC starts ANSI sequences;
# newline and tab are layout and pass), DEL, zero-width characters, bidirectional overrides and isolates.
UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def printable(text: str) -> str:
    """Return ``text`` with every terminal control, zero-width or bidi character shown as an escape (``\\x1b``)."""
    return UNPRINTABLE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


class SafeConsole(Console):
    """A rich Console that passes every string it renders (prints, table cells, titles) through ``printable``.

    Text from a log (agent ids, contract ids, payloads, reasons) reaches the
    terminal only this way, so an id holding ANSI or RTL escapes is shown, never obeyed.
    """

    def render_str(self, text: str, **kwargs):
        return super().render_str(printable(text), **kwargs)


console = SafeConsole()
err_console = SafeConsole(stderr=True)


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
