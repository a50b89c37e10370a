"""Write ``study_notebook.ipynb`` from ``study_notebook.py`` (jupytext's percent format), without outputs.

    python examples/make_notebook.py

The ``.py`` is the source (readable diffs, runnable as a script); the notebook is
generated from it, and a test checks the two agree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE, NOTEBOOK = HERE / "study_notebook.py", HERE / "study_notebook.ipynb"
CELL = re.compile(r"^# %%(?: \[(markdown)\])?[^\n]*\n", re.MULTILINE)


def cells(source: str) -> list[dict]:
    """Return the notebook cells of a percent-format script: code as written, markdown without its ``# ``."""
    parts = CELL.split(source)
    out = []
    for index, (kind, body) in enumerate(zip(parts[1::2], parts[2::2])):
        lines = body.strip("\n").split("\n")
        if kind == "markdown":
            lines = [re.sub(r"^# ?", "", line) for line in lines]
        text = "\n".join(lines)
        cell = {"cell_type": kind or "code", "id": f"cell-{index}", "metadata": {},
                "source": [line + "\n" for line in text.split("\n")[:-1]] + [text.split("\n")[-1]]}
        if not kind:
            cell.update(execution_count=None, outputs=[])
        out.append(cell)
    return out


def notebook(source: str) -> dict:
    return {
        "cells": cells(source),
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


def render(source: str) -> str:
    return json.dumps(notebook(source), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    NOTEBOOK.write_text(render(SOURCE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {NOTEBOOK}")
