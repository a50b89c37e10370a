"""The ``simledger`` command: a thin typer app; each module registers its commands.

Every command maps the library's ``LedgerError`` tree to a one-line message and
a non-zero exit code (see ``cli.common.handle_errors``); no user mistake ends in
a traceback.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="simledger",
    help="The sim-economy agent economy as an event-sourced, hash-chained, signed ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines register(app). Order here is the order in --help.
COMMAND_MODULES = ("study_commands", "report_commands", "sweep_command", "log_commands", "head_command", "serve_command")

for _name in COMMAND_MODULES:
    importlib.import_module(f"simledger.cli.{_name}").register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
