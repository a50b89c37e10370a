"""Datasette metadata for run logs: titles, descriptions, sort orders and JSON columns of every table.

The per-database part ships as package data (``data/datasette.json``); Datasette
names each database after its file's stem, so the metadata for a set of logs
repeats that part under each name:

    simledger datasette-metadata results/runs/baseline_101.db > metadata.json
    datasette results/runs/baseline_101.db -m metadata.json
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any, Iterable


def metadata_template() -> dict[str, Any]:
    """Return the shipped metadata: ``title``, ``description`` and the per-database part under ``database``."""
    return json.loads(files("simledger").joinpath("data", "datasette.json").read_text(encoding="utf-8"))


def datasette_metadata(paths: Iterable[str | Path]) -> dict[str, Any]:
    """Return a Datasette metadata document for these run logs (one database per file stem)."""
    template = metadata_template()
    database = template.pop("database")
    return {**template, "databases": {Path(p).stem: database for p in paths}}
