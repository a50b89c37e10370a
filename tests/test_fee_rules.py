"""The fee rule of older logs (R3: fractional billable units, the fee rounded once) and the version-5 genesis
that predates whole billable units. The rule itself is tested in test_billing.py's R3 section."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

from simledger.events import types as ev
from simledger.events.config import RULES_BEFORE_V6, Rules
from simledger.events.envelope import decode_payload, get_written_version
from simledger.ledger.engine import compute_inference_fee
from simledger.ledger.reexecute import reexecute
from simledger.ledger.verify import verify_log, verify_state_digests

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))  # importlib mode adds nothing to sys.path
import logtools as lt  # noqa: E402

V5_LOG = Path(__file__).parent / "fixtures" / "genesis_v5.db"


def test_version_5_genesis_upcasts_to_the_fee_rule_it_was_played_with():
    genesis = ev.RunGenesis(run_id="r", seed=1, agents=["a"], config=msgspec.convert({}, ev.Config),
                            rules=Rules(job_pay_units=33, stake_warmup=False), engine_key="", agent_keys={},
                            key_source="seed", library_version="x")
    data = msgspec.to_builtins(genesis)
    data["rules"] = {k: v for k, v in data["rules"].items() if k not in RULES_BEFORE_V6}
    decoded = decode_payload("run_genesis", 5, msgspec.msgpack.encode(data))
    assert decoded.rules.billable_units == RULES_BEFORE_V6["billable_units"] == "fractional"
    assert decoded.rules.job_pay_units == 33 and decoded.rules.stake_warmup is False  # what the log recorded stays
    assert get_written_version(decoded, 5) == 5 and get_written_version(decoded, 6) == 6


def test_a_version_5_log_verifies_and_reexecutes_exactly():
    """genesis_v5.db was written by the last version-5 writer (commit 25a8417: `simledger run
    tests/fixtures/genesis_v5.db --regime high_compute_cost --seed 11 --turns 10`, 8 agents); it replays with
    the fee rule it was played with."""
    assert verify_log(V5_LOG).ok
    (genesis_row, *rows) = lt.read_rows(V5_LOG)
    assert genesis_row["payload_version"] == 5
    genesis = lt.decoded(genesis_row)
    assert genesis.rules.billable_units == "fractional"
    fees = [lt.decoded(r) for r in rows if r["kind"] == "inference_fee_charged"]
    differs = [f for f in fees if compute_inference_fee(genesis.config, f.thinking_units, f.output_units)
               != compute_inference_fee(genesis.config, f.thinking_units, f.output_units, whole_units=False)]
    assert differs, "some fee of the log differs between the two rules, so re-execution tests the old one"
    result = reexecute(V5_LOG)
    assert result.ok, result.divergence


def test_a_version_5_log_keeps_every_state_digest():
    result = verify_state_digests(V5_LOG)
    assert result.ok, result.message
