"""``simledger head``: export a signed checkpoint of a run's log (C2SP tlog-checkpoint format)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import console, handle_errors


@handle_errors
def head(
    path: Annotated[Path, typer.Argument(metavar="RUN.db", help="A run's log.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", metavar="FILE", help="Write the checkpoint here.")] = None,
    keystore: Annotated[Optional[Path], typer.Option(
        "--keystore", metavar="DIR", help="The engine key of a keystore-signed log.")] = None,
    verify: Annotated[bool, typer.Option(help="Verify the log before signing its head.")] = True,
) -> None:
    """Print (or write) the log's signed head: a checkpoint of its size and Merkle root, signed by the engine key.

    Keep it somewhere the log's owner cannot rewrite. Later,
    `simledger verify RUN.db --expect-head FILE` fails if the log was truncated
    or rolled back, and proves with a consistency proof that a longer log only grew.

    Example: simledger head runs/baseline_101.db --out baseline_101.head
    """
    from ..ledger.head import export_head, write_file_atomically

    note = export_head(path, keystore=keystore, verify=verify)
    if out is None:
        typer.echo(note, nl=False)
        return
    write_file_atomically(out, note)
    lines = note.split("\n")
    console.print(f"wrote {out}: {lines[1]} events, root {lines[2]}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(head)
