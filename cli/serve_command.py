"""``simledger serve``: the engine over HTTP, a drop-in for the original sim-engine server."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import err_console, fail, handle_errors


class LogLevel(str, Enum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


def serve(
    db: Annotated[Path, typer.Option("--db", envvar="DB_PATH",
                                     help="The run.db to serve (env DB_PATH). Reopened if it exists, "
                                          "else created by POST /init.")],
    port: Annotated[int, typer.Option("--port", envvar="PORT", min=0, max=65535, help="TCP port (env PORT).")] = 3100,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    keystore: Annotated[Optional[Path], typer.Option(
        "--keystore", help="Directory of private keys (0600 files); default: keys derived from the run's seed.")] = None,
    log_level: Annotated[LogLevel, typer.Option("--log-level", help="uvicorn log level.")] = LogLevel.warning,
    require_signatures: Annotated[bool, typer.Option(
        "--require-signatures", help="Refuse every input not signed by its agent (the server signs for no agent).",
    )] = False,
    read_only: Annotated[bool, typer.Option(
        "--read-only", help="Serve an existing log without writing: /init and /turn are refused.")] = False,
    extend: Annotated[bool, typer.Option(
        "--extend", help="Allow appending turns to a study run that has played all its recorded turns.")] = False,
) -> None:
    """Serve a run over HTTP: the original /config, /init, /turn, /state, plus /events, /verify, /replay...

    One server per log: a second one on the same db refuses to start. Docs at /schema.

    Inputs without a signature are signed by the server for their agent (custodial), unless --require-signatures.

    A finished study run is served only with --read-only, or --extend to play on past its end.

    Example: simledger serve --db run.db --port 3100 --keystore keys --require-signatures
    """
    run_serve(db=db, port=port, host=host, keystore=keystore, log_level=log_level.value,
              require_signatures=require_signatures, read_only=read_only, extend=extend)


@handle_errors
def run_serve(*, db: Path, port: int, host: str, keystore: Path | None, log_level: str,
              require_signatures: bool = False, read_only: bool = False, extend: bool = False) -> None:
    """Take the log (or its writer lock) first, so a second server fails before it listens."""
    import uvicorn

    from ..api.app import create_app
    from ..api.service import LedgerService

    if read_only and (extend or require_signatures or keystore is not None):
        fail("--read-only writes nothing: it takes no --extend, --require-signatures or --keystore")
    service = LedgerService(db, keystore=keystore, require_signatures=require_signatures, read_only=read_only,
                            extend=extend)
    try:
        if read_only:
            status = "read-only"
        elif service.run:
            status = f"run {service.run.state.run_id} at turn {service.run.state.sealed_turn}"
        else:
            status = "no run yet, waiting for POST /init"
        if require_signatures:
            status += ", every input must be signed by its agent"
        err_console.print(f"serving {db}: {status}; http://{host}:{port} (docs at /schema)",
                          highlight=False, soft_wrap=True)
        uvicorn.run(create_app(service), host=host, port=port, log_level=log_level, access_log=False)
    finally:
        service.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


if __name__ == "__main__":  # python -m simledger.cli.serve_command (the serve command alone)
    typer.run(serve)
