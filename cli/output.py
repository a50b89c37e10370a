"""How every command prints a table: rich for a terminal, plain text for a pipe.

A rich table squeezed into a pipe (80 columns, no terminal) cuts its headers
to ``scena… base_…``. ``show_table`` prints the same rows as TSV when stdout
is not a terminal (full headers and cells, one row a line, ready for ``cut``,
``column -t`` or a spreadsheet) and, on a terminal, lets cells and headers
wrap instead of ending in an ellipsis, so a narrow window loses nothing.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from .common import console, printable


def plain(cell: Any) -> str:
    """Return a table cell as one line of plain text: rich markup removed, terminal controls shown as escapes."""
    if isinstance(cell, Text):
        text = cell.plain
    else:
        text = Text.from_markup(str(cell)).plain if isinstance(cell, str) else str(cell)
    return printable(" ".join(text.split()))


def table_rows(table: Table) -> list[list[str]]:
    """Return a rich table's header and rows as plain text."""
    columns = table.columns
    header = [plain(column.header) for column in columns]
    cells = [list(column.cells) for column in columns]
    return [header] + [[plain(column[i]) for column in cells] for i in range(table.row_count)]


def format_tsv(table: Table) -> str:
    """Return ``table`` as tab-separated lines, its title first as a ``#`` comment."""
    lines = [f"# {plain(table.title)}"] if table.title else []
    lines += ["\t".join(row) for row in table_rows(table)]
    return "\n".join(lines) + "\n"


def show_table(table: Table) -> None:
    """Print ``table``: TSV when stdout is not a terminal, else rich with wrapping (never cut) cells."""
    if not console.is_terminal:
        console.file.write(format_tsv(table))
        console.file.flush()
        return
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = False
    console.print(table)


def show_markdown(text: str) -> None:
    """Print Markdown: rendered (headings, rich tables) on a terminal, as written when piped (plain text tables)."""
    if not console.is_terminal:
        console.file.write(printable(text))
        console.file.flush()
        return
    from rich.markdown import Markdown

    console.print(Markdown(text))


__all__ = ["show_table", "show_markdown", "format_tsv", "table_rows"]
