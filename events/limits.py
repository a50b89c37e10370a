"""Bounds on what a caller may hand simledger, checked before anything recurses, binds or touches a file.

* Agent ids are 1-64 characters of ``[A-Za-z0-9_.-]`` (and not ``engine``): they
  name key files, appear in every table the CLI prints and in SQL parameters, so
  no NUL, control, zero-width or bidirectional character ever gets that far.
* JSON nesting is bounded (``MAX_JSON_DEPTH``) before a request body is decoded
  (``raw_json_depth``) or a caller's structure is encoded (``check_depth``):
  msgspec and Python recurse once per level and fail near 1,000.
* Integers that reach SQLite (seqs, turns in queries) fit in ``MAX_QUERY_INT``.
"""

from __future__ import annotations

import re
from typing import Any

AGENT_ID_PATTERN = r"[A-Za-z0-9_.-]{1,64}"
MAX_JSON_DEPTH = 64
MAX_QUERY_INT = 2**62

_AGENT_ID = re.compile(AGENT_ID_PATTERN)
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


class TooDeep(ValueError):
    """Raised when a structure nests deeper than MAX_JSON_DEPTH."""


def is_safe_agent_id(value: Any) -> bool:
    """Return whether ``value`` is an agent id simledger accepts: ``[A-Za-z0-9_.-]{1,64}``, not ``engine``."""
    return isinstance(value, str) and value != "engine" and _AGENT_ID.fullmatch(value) is not None


def raw_json_depth(raw: bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """Return the bracket nesting of JSON text (counting stops just past ``limit``); strings are skipped."""
    depth = peak = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > peak:
                peak = depth
                if peak > limit:
                    break
        else:
            depth -= 1
    return peak


def check_depth(value: Any, where: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise TooDeep when lists/dicts in ``value`` nest deeper than ``limit`` (walked without recursion)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, tuple, dict)):
            if depth >= limit:
                raise TooDeep(f"{where} nests deeper than {limit} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
