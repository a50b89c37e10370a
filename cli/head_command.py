"""``simledger head``: export a signed checkpoint of a run's log (C2SP tlog-checkpoint format)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import console, handle_errors, print_json, printable


@handle_errors
def head(
    path: Annotated[Path, typer.Argument(metavar="RUN.db", help="A run's log.", show_default=False, readable=False)],
    out: Annotated[Optional[Path], typer.Option("--out", metavar="FILE", help="Write the checkpoint here.")] = None,
    keystore: Annotated[Optional[Path], typer.Option(
        "--keystore", metavar="DIR", help="The engine key of a keystore-signed log.")] = None,
    verify: Annotated[bool, typer.Option(help="Verify the log before signing its head.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print size, root, head hash (hex) and the note as JSON.")] = (
        False),
) -> None:
    """Print (or write) the log's signed head: a checkpoint of its size and Merkle root, signed by the engine key.

    Keep it somewhere the log's owner cannot rewrite. Later,
    `simledger verify RUN.db --expect-head FILE` fails if the log was truncated
    or rolled back, and proves with a consistency proof that a longer log only grew.
    The note itself is the C2SP checkpoint format, whose root line is base64;
    everything else simledger prints shows hashes in hex.

    Example: simledger head runs/baseline_101.db --out baseline_101.head
    """
    from ..ledger.head import export_head, parse_checkpoint, write_file_atomically

    note = export_head(path, keystore=keystore, verify=verify)
    checkpoint = parse_checkpoint(note)
    if out is not None:
        write_file_atomically(out, note)
    if as_json:
        print_json({"path": str(path), "size": checkpoint.size, "root": checkpoint.root.hex(),
                    "head_hash": checkpoint.head_hash, "turn": checkpoint.turn, "note": note,
                    "out": None if out is None else str(out)})
    elif out is None:
        typer.echo(printable(note), nl=False)  # a legitimate note has no control characters: unchanged
    else:
        console.print(f"wrote {out}: {checkpoint.size} events to turn {checkpoint.turn}, Merkle root "
                      f"{checkpoint.root.hex()}, head {checkpoint.head_hash}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(head)
