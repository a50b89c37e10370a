"""The canonical encoding: every event kind round-trips, and golden bytes never change.

The golden vectors pin the bytes that are hashed. If one fails, the canonical
encoding changed and every existing log's hashes would break: that needs a new
payload/format version and an upcaster, never an edited vector.
"""

from __future__ import annotations

import hashlib

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simledger.events import types as ev
from simledger.events.actions import Collateral, ContractOffer, Terms
from simledger.events.config import Config, Rules
from simledger.events.envelope import (
    ENCODER, FORMAT_VERSION, ZERO_HASH, Envelope, PayloadError, decode_payload, encode_payload, envelope_hash,
    HASHED_FIELDS, hashed_bytes, payload_json, payload_version, seal_envelope,
)



def sealed_envelope(header: tuple, digest: bytes, signature: bytes) -> Envelope:
    """Return the Envelope of a ``seal_envelope`` header (HASHED_FIELDS order), hash and signature."""
    return Envelope(**dict(zip(HASHED_FIELDS, header)), hash=digest, signature=signature)


OFFER = ContractOffer(counterparty="agent_2", arbitrator="agent_3", contract_type="loan",
                      terms=Terms(description="lend 50", price=50, delivery_turn=12, condition={"repay": 55}),
                      collateral=Collateral(proposer_locked=5, counterparty_locked=7), penalty=3, arbitrator_fee=2)
ENTRIES = [ev.BlockEntry(agent="agent_0", weight_ppm=250_000), ev.BlockEntry(agent="agent_1", weight_ppm=750_000)]


def one_of_each_kind() -> dict[str, object]:
    """Return a hand-built instance of every event kind, keyed by its type id."""
    events = [
        ev.RunGenesis(run_id="run-0123456789abcdef", seed=7, agents=["agent_0", "agent_1"], config=Config(num_agents=2),
                      rules=Rules(), engine_key="11" * 32, agent_keys={"agent_0": "22" * 32, "agent_1": "33" * 32},
                      key_source="seed", library_version="0.1.0", identity={"regime": "baseline", "turns": 6}),
        ev.TurnSealed(turn=3, first_seq=40, event_count=9, merkle_root="aa" * 32, state_digest="bb" * 32),
        ev.ActionSubmitted(agent="agent_0", action={"action": "stake", "amount": 10}, thinking_units=12,
                           output_units=3, thinking="stake a little", speech={"to": "all", "text": "hi"}),
        ev.ActionRejected(agent="agent_1", action="burn", reason="insufficient_balance", detail="needs 900",
                          input_seq=41),
        ev.MiningEntered(agent="agent_0", input_seq=42),
        ev.StakeLocked(agent="agent_0", amount=10, input_seq=43, activates_turn=8),
        ev.StakeActivated(agent="agent_0", amount=10),
        ev.StakeRewarmed(agent="agent_0", amount=10, activates_turn=9),
        ev.BurnsSpent(agent="agent_1", amount=6, matured_by=6),
        ev.UnstakeRequested(agent="agent_0", amount=4, release_turn=8, input_seq=44),
        ev.UnstakeReleased(agent="agent_0", amount=4),
        ev.TokensBurned(agent="agent_1", amount=6, matures_turn=6, input_seq=45),
        ev.TokensTransferred(sender="agent_0", recipient="agent_1", amount=9, fee=1, input_seq=46),
        ev.JobPaid(agent="agent_1", amount=20, input_seq=47),
        ev.StudyCompleted(agent="agent_1", cost=20, discount_until_turn=9, input_seq=48),
        ev.CoreBidPlaced(agent="agent_0", core_id="core_2", amount=30, input_seq=49),
        ev.CoreAuctionResolved(awards=[ev.CoreAward(core_id="core_2", owner="agent_0", price=30, proportion_ppm=250_000,
                                                    by="auction")]),
        ev.InferenceFeeCharged(agent="agent_0", thinking_units=12, output_units=3, fee=2, discounted=False),
        ev.DividendPaid(owner="agent_0", core_id="core_2", amount=1),
        ev.FeesRetained(amount=1),
        ev.InterestCharged(agent="agent_1", amount=2),
        ev.InterestPaid(owner="agent_0", core_id="core_2", amount=2),
        ev.ContractProposed(contract_id="c-0001", proposer="agent_1", offer=OFFER, input_seq=50),
        ev.ContractSigned(contract_id="c-0001", signer="agent_2", role="counterparty", status="signed", input_seq=51),
        ev.CollateralLocked(contract_id="c-0001", agent="agent_2", amount=7),
        ev.ContractActivated(contract_id="c-0001"),
        ev.DeliveryConfirmed(contract_id="c-0001", agent="agent_1", input_seq=52),
        ev.DeliveryDisputed(contract_id="c-0001", agent="agent_2", input_seq=53),
        ev.ArbitratorRuled(contract_id="c-0001", arbitrator="agent_3", ruling_for="agent_1", input_seq=54),
        ev.ContractPayment(contract_id="c-0001", payer="agent_2", payee="agent_1", amount=50, purpose="price"),
        ev.CollateralReleased(contract_id="c-0001", agent="agent_1", amount=5),
        ev.CollateralSlashed(contract_id="c-0001", agent="agent_2", amount=7),
        ev.ContractSettled(contract_id="c-0001", outcome="fulfilled"),
        ev.ContractDefaulted(contract_id="c-0002", reason="expired"),
        ev.ContractExpired(contract_id="c-0003"),
        ev.BlockProduced(height=4, winner="agent_1", reward=10, entrants=ENTRIES, total_weight_ppm=1_000_000,
                         randomness="cc" * 32, draw=612_345),
        ev.BlockNotProduced(entrants=ENTRIES[:1], total_weight_ppm=250_000, threshold_ppm=1_000_000),
        ev.ModelCalled(agent="agent_1", attempt=1, key="ab" * 32, model="m", params={"temperature": 0.0, "seed": 7},
                       messages="cd" * 32, status=200, text="ef" * 32, finish_reason="stop", provider_model="m-1",
                       usage=ev.ModelUsage(prompt_tokens=90, completion_tokens=40, reasoning_tokens=12),
                       latency_ms=31, verdict="ok"),
    ]
    return {ev.kind_of(e): e for e in events}


ALL = one_of_each_kind()


def test_every_event_kind_has_a_hand_built_instance():
    # A kind added to events/types.py must get an instance here (and so a round-trip test).
    assert set(ALL) == set(ev.EVENT_TYPES)


@pytest.mark.parametrize("kind", sorted(ALL))
def test_event_round_trips_through_canonical_bytes(kind):
    event = ALL[kind]
    payload = encode_payload(event)
    assert decode_payload(kind, type(event).VERSION, payload) == event
    assert encode_payload(decode_payload(kind, type(event).VERSION, payload)) == payload


@pytest.mark.parametrize("kind", sorted(ALL))
def test_readable_json_copy_says_what_the_payload_says(kind):
    event = ALL[kind]
    assert msgspec.json.decode(payload_json(event)) == msgspec.msgpack.decode(encode_payload(event))
    assert msgspec.json.decode(payload_json(event))["type"] == kind


@pytest.mark.parametrize("kind", sorted(ALL))
def test_envelope_hash_covers_every_header_field(kind):
    event = ALL[kind]
    header, digest = seal_envelope(event, seq=9, turn=2, prev_hash=bytes(32), signer="0123456789abcdef")
    env = sealed_envelope(header, digest, bytes(64))
    payload = env.payload
    assert envelope_hash(env) == digest  # the header tuple hashes exactly as hashed_bytes() encodes
    changed = {"seq": 10, "turn": 3, "kind": "x", "actor": "y", "contract_id": "z", "payload_version": env.payload_version + 1,
               "payload": payload + b"\x00", "prev_hash": b"\x01" * 32, "signer": "fedcba9876543210",
               "format_version": 2}
    for field, value in changed.items():
        assert envelope_hash(msgspec.structs.replace(env, **{field: value})) != digest, field


def test_header_copies_come_from_the_payload():
    env = sealed_envelope(*seal_envelope(ALL["contract_signed"], seq=1, turn=1, prev_hash=ZERO_HASH, signer="s"),
                          bytes(64))
    assert (env.kind, env.actor, env.contract_id) == ("contract_signed", "agent_2", "c-0001")
    env = sealed_envelope(*seal_envelope(ALL["fees_retained"], seq=1, turn=1, prev_hash=ZERO_HASH, signer="s"),
                          bytes(64))
    assert (env.actor, env.contract_id) == ("engine", None)


def test_decode_unknown_kind_fails():
    with pytest.raises(PayloadError, match="unknown event kind"):
        decode_payload("mystery", 1, encode_payload(ALL["fees_retained"]))


def test_decode_bad_msgpack_fails():
    with pytest.raises(PayloadError, match="does not decode"):
        decode_payload("fees_retained", 1, b"\xc1\xff")


def test_decode_payload_of_another_kind_fails():
    with pytest.raises(PayloadError, match="payload is a fees_retained"):
        decode_payload("stake_locked", 1, encode_payload(ALL["fees_retained"]))


def test_decode_newer_payload_version_fails():
    with pytest.raises(PayloadError, match="newer"):
        decode_payload("fees_retained", 2, encode_payload(ALL["fees_retained"]))


# --- golden vectors -----------------------------------------------------------------------

GOLDEN_EVENTS = {
    "stake_locked": ev.StakeLocked(agent="agent_1", amount=250, input_seq=17),
    "action_submitted": ev.ActionSubmitted(
        agent="agent_2", action={"action": "transfer", "to": "agent_3", "amount": 5, "fee": 1},
        thinking_units=1.5, output_units=40, thinking="why not", speech=None),
    "block_produced": ev.BlockProduced(
        height=3, winner="agent_0", reward=10,
        entrants=[ev.BlockEntry(agent="agent_0", weight_ppm=600_000),
                  ev.BlockEntry(agent="agent_1", weight_ppm=400_000)],
        total_weight_ppm=1_000_000, randomness="ab" * 32, draw=123_456),
    "inference_fee_charged": ev.InferenceFeeCharged(agent="agent_4", thinking_units=300, output_units=-2, fee=7,
                                                    discounted=True),
    "contract_proposed": ev.ContractProposed(
        contract_id="c-0007", proposer="agent_1",
        offer=ContractOffer(counterparty="agent_2", arbitrator="agent_3", contract_type="service",
                            terms=Terms(description="deliver", price=40, delivery_turn=9),
                            collateral=Collateral(proposer_locked=5)),
        input_seq=44),
    "turn_sealed": ev.TurnSealed(turn=2, first_seq=30, event_count=12, merkle_root="cd" * 32, state_digest="ef" * 32),
}

# kind -> (payload hex, envelope hash hex at seq 5, turn 2, prev_hash 00..1f, signer 0123456789abcdef)
GOLDEN = {
    "stake_locked": (
        "84a56167656e74a76167656e745f31a6616d6f756e74ccfaa9696e7075745f73657111a474797065ac7374616b655f6c6f636b6564",
        "28f7de92c929bf7bbef39f3efd369026a9c75c9041c8723d639eb6bf82cf89e6",
    ),
    "action_submitted": (
        "87a6616374696f6e84a6616374696f6ea87472616e73666572a6616d6f756e7405a366656501a2746fa76167656e745f33a56167656e"
        "74a76167656e745f32ac6f75747075745f756e69747328a6737065656368c0a87468696e6b696e67a7776879206e6f74ae7468696e6b"
        "696e675f756e697473cb3ff8000000000000a474797065b0616374696f6e5f7375626d6974746564",
        "1d19dfd2d30391c4bf7d7fa21d895e0d565d629afafdd0901ba3c6b0b5ee9aa1",
    ),
    "block_produced": (
        "88a464726177ce0001e240a8656e7472616e74739292a76167656e745f30ce000927c092a76167656e745f31ce00061a80a668656967"
        "687403aa72616e646f6d6e657373d9406162616261626162616261626162616261626162616261626162616261626162616261626162"
        "6162616261626162616261626162616261626162616261626162a67265776172640ab0746f74616c5f7765696768745f70706dce000f"
        "4240a474797065ae626c6f636b5f70726f6475636564a677696e6e6572a76167656e745f30",
        "0f8b0c277fea363f1e070602f67240abb785838ddc433cd7e376a86dc7acd8f3",
    ),
    "inference_fee_charged": (
        "86a56167656e74a76167656e745f34aa646973636f756e746564c3a366656507ac6f75747075745f756e697473feae7468696e6b696e"
        "675f756e697473cd012ca474797065b5696e666572656e63655f6665655f63686172676564",
        "58f8ee91f009d5c82b324eb7e843584771a75e8e0ee82a4e513abfecb1ac6222",
    ),
    "contract_proposed": (
        "85ab636f6e74726163745f6964a6632d30303037a9696e7075745f7365712ca56f6666657289aa61726269747261746f72a76167656e"
        "745f33ae61726269747261746f725f66656500aa636f6c6c61746572616c83b161726269747261746f725f6c6f636b656400b3636f75"
        "6e74657270617274795f6c6f636b656400af70726f706f7365725f6c6f636b656405ad636f6e74726163745f74797065a77365727669"
        "6365ac636f756e7465727061727479a76167656e745f32a77061796c6f6164c0a770656e616c747900af736574746c656d656e745f74"
        "797065a86174746573746564a57465726d7385a9636f6e646974696f6ec0ad64656c69766572795f7475726e09ab6465736372697074"
        "696f6ea764656c69766572ac706f6f6c5f6d656d62657273c0a5707269636528a870726f706f736572a76167656e745f31a474797065"
        "b1636f6e74726163745f70726f706f736564",
        "9f5af97bd2e3e594151bf18b724779c9e87fbcae2bbd7bafa17b31e84c18b14f",
    ),
    "turn_sealed": (
        "86ab6576656e745f636f756e740ca966697273745f7365711eab6d65726b6c655f726f6f74d940636463646364636463646364636463"
        "64636463646364636463646364636463646364636463646364636463646364636463646364636463646364636463646364ac73746174"
        "655f646967657374d9406566656665666566656665666566656665666566656665666566656665666566656665666566656665666566"
        "6566656665666566656665666566656665666566a47475726e02a474797065ab7475726e5f7365616c6564",
        "27e320a6eaa1aae38338071d0d7c7b00736ce03ec4a0c7e3ca8bfb6a0e8e675c",
    ),
}


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_golden_payload_bytes_never_change(kind):
    assert encode_payload(GOLDEN_EVENTS[kind]).hex() == GOLDEN[kind][0], (
        f"canonical payload encoding of {kind} changed: existing logs would no longer verify"
    )


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_golden_envelope_hash_never_changes(kind):
    event = GOLDEN_EVENTS[kind]
    header, digest = seal_envelope(event, seq=5, turn=2, prev_hash=bytes(range(32)), signer="0123456789abcdef")
    assert sealed_envelope(header, digest, bytes(64)).format_version == FORMAT_VERSION == 1
    assert digest.hex() == GOLDEN[kind][1], f"envelope hash of {kind} changed: existing logs would no longer verify"


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_golden_payload_decodes_to_the_golden_event(kind):
    assert decode_payload(kind, 1, bytes.fromhex(GOLDEN[kind][0])) == GOLDEN_EVENTS[kind]


def test_hashed_bytes_layout_is_a_ten_element_msgpack_array():
    # The envelope hash is SHA-256 over exactly this array, in this order.
    raw = hashed_bytes(format_version=1, seq=5, turn=2, kind="fees_retained", actor="engine", contract_id=None,
                       payload_version=1, payload=b"\x01\x02", prev_hash=bytes(32), signer="0123456789abcdef")
    assert raw == ENCODER.encode([1, 5, 2, "fees_retained", "engine", None, 1, b"\x01\x02", bytes(32),
                                  "0123456789abcdef"])
    assert raw.hex() == (
        "9a010502ad666565735f72657461696e6564a6656e67696e65c001c4020102c42000000000000000000000000000000000000000"
        "00000000000000000000000000b030313233343536373839616263646566"
    )
    assert hashlib.sha256(raw).hexdigest() == "e318f2e6624bac931c9d3011b2130943da80bd5f8ac5aa33d10e1b8362724cf3"


def test_floats_are_stored_as_ieee_754_bits():
    # 0.1 must be the same eight bytes everywhere; msgpack float64 is 0xcb + big-endian bits.
    assert ENCODER.encode(0.1) == bytes.fromhex("cb3fb999999999999a")


def test_every_event_kind_has_a_reducer():
    from simledger.projections.reducers import REDUCERS

    assert set(REDUCERS) == set(ev.Event.__args__)


# --- payload_version: the one-pass reading equals the formula it replaced ----------


class ThreeAdded(msgspec.Struct, frozen=True, kw_only=True):
    """A stand-in kind with three optional fields added over its versions (no real kind has more than one yet)."""

    a: int | msgspec.UnsetType = msgspec.UNSET
    b: int | msgspec.UnsetType = msgspec.UNSET
    c: int | msgspec.UnsetType = msgspec.UNSET


def reference_payload_version(event, since=None) -> int:
    """The formula payload_version was first written as."""
    added = event.ADDED
    if not added:
        return event.VERSION
    used = [version for name, version in added.items() if getattr(event, name) is not msgspec.UNSET]
    return max(*used, event.SINCE if since is None else since, min(added.values()) - 1)


@given(added=st.dictionaries(st.sampled_from("abc"), st.integers(1, 9)), set_fields=st.sets(st.sampled_from("abc")),
       own_since=st.integers(1, 9), since=st.none() | st.integers(0, 9))
def test_payload_version_equals_the_reference_formula(added, set_fields, own_since, since):
    kind = type("Kind", (ThreeAdded,), {"ADDED": added, "VERSION": max([1, *added.values()]), "SINCE": own_since})
    event = kind(**{name: 1 for name in set_fields})
    assert payload_version(event, since=since) == reference_payload_version(event, since=since)


@pytest.mark.parametrize("kind", sorted(ALL))
def test_payload_version_of_every_hand_built_event_equals_the_reference_formula(kind):
    for event in (ALL[kind], type(ALL[kind])(**{**msgspec.structs.asdict(ALL[kind]),
                                                   **{name: msgspec.UNSET for name in ALL[kind].ADDED}})):
        for since in (None, *range(0, 7)):
            assert payload_version(event, since=since) == reference_payload_version(event, since=since)
