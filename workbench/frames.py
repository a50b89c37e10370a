"""Tables as (columns, rows), turned into pandas DataFrames only when asked: pandas is an optional extra."""

from __future__ import annotations

from typing import Any, Sequence

PANDAS_MISSING = "DataFrames need pandas: pip install 'simledger[frames]'"


def require_pandas():
    """Return the pandas module, or raise ImportError with the one line that fixes it."""
    try:
        import pandas
    except ImportError:
        raise ImportError(PANDAS_MISSING) from None
    return pandas


def to_frame(columns: Sequence[str], rows: list[tuple], *, dtypes: dict[str, str] | None = None) -> Any:
    """Return a DataFrame of ``rows``, with ``dtypes`` for the columns SQLite-style rows cannot type
    (0/1 flags as ``bool``, turns that may be None as pandas' nullable ``Int64`` rather than floats)."""
    frame = require_pandas().DataFrame(rows, columns=list(columns))
    return frame.astype(dtypes) if dtypes else frame
