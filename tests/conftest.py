"""Shared test setup: the helper modules beside the tests are importable from every test file.

pytest runs in importlib mode (pyproject.toml), which puts nothing on ``sys.path``;
the tests import ``_seed`` and ``_engine_kit`` from ``tests/`` and ``logtools``
from ``tests/fixtures/``, so both folders are added here once.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
for folder in (HERE, HERE / "fixtures"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
