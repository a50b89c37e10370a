"""The stake and win rules of new runs (R7 a stake warms up before it counts; R9 a win re-warms the winner's
stake and spends its matured burns), their old values, and the version-4 genesis that predates them."""

from __future__ import annotations

import sys
from pathlib import Path

from simledger.ledger.reexecute import reexecute
from simledger.ledger.verify import verify_log

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))  # importlib mode adds nothing to sys.path
import logtools as lt  # noqa: E402

V4_LOG = Path(__file__).parent / "fixtures" / "genesis_v4.db"


# --- the version-4 genesis -----------------------------------------------------------------------


def test_a_version_4_log_verifies_and_reexecutes_exactly():
    """genesis_v4.db was written by the last version-4 writer (commit e38313d: `simledger run --regime
    high_compute_cost --seed 11 --turns 10`, 8 agents); it replays with the stake rules it was played with."""
    assert verify_log(V4_LOG).ok
    (genesis_row, *rows) = lt.read_rows(V4_LOG)
    assert genesis_row["payload_version"] == 4
    result = reexecute(V4_LOG)
    assert result.ok, result.divergence
