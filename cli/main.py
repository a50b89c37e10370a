"""The ``simledger`` command: a thin typer app; each module registers its commands.

Every command maps the library's ``LedgerError`` tree to a one-line message and
a non-zero exit code (see ``cli.common.handle_errors``); no user mistake ends in
a traceback.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer
import typer.core

from .. import orchestrator  # noqa: F401  (registers the llm policy kind in the study's registry)

app = typer.Typer(
    name="simledger",
    help="The sim-economy agent economy as an event-sourced, hash-chained, signed ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def get_version() -> str:
    """Return the installed simledger's version ("unknown" when run from a tree that is not installed)."""
    try:
        return version("simledger")
    except PackageNotFoundError:
        return "unknown"


def print_version(value: bool) -> None:
    if value:
        typer.echo(f"simledger {get_version()}")
        raise typer.Exit()


@app.callback()
def main_options(
    show_version: Annotated[bool, typer.Option(
        "--version", callback=print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """The sim-economy agent economy as an event-sourced, hash-chained, signed ledger."""


def hide_flag_types() -> None:
    """Show no type beside a flag in --help (typer prints ``<bool>``, as if ``--json`` took a value)."""
    shown = typer.core.TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        return None if self.is_flag and self.metavar is None else shown(self, ctx)

    typer.core.TyperOption.display_type_rich = display_type_rich


hide_flag_types()

# Each module defines register(app). Order here is the order in --help.
COMMAND_MODULES = ("study_commands", "report_commands", "calibrate_command", "sweep_command", "log_commands",
                   "head_command", "export_command", "serve_command",
                   "llm_commands")

for _name in COMMAND_MODULES:
    importlib.import_module(f"simledger.cli.{_name}").register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
