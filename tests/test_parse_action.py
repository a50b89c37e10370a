"""parse_action gives exactly what converting to the whole Action union gives: the same action or the same error.

parse_action converts an object whose tag names a kind straight to that kind
(msgspec does not cache its plan for a union); the recorded rejection details
depend on the error text, so any input, well-formed or not, must come out
as the union conversion words it.
"""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from simledger.events.actions import ACTION_NAMES, Action, Collateral, ContractOffer, Terms, parse_action


def union_conversion(raw) -> object:
    """The reference: msgspec's conversion to the union itself."""
    try:
        return msgspec.convert(raw, Action, strict=True)
    except msgspec.ValidationError as err:
        return str(err)


FIELDS = sorted({name for cls in (*Action.__args__, ContractOffer, Terms, Collateral) for name in cls.__struct_fields__}
                | {"action", "extra"})
LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0, 1, -1, 10**12, 10**12 + 1, -(10**12) - 1, 5.0, float("nan")]), st.floats(),
    st.sampled_from([*ACTION_NAMES, "agent_1", "core_0", "contract_1", "counterparty", "arbitrator", "service",
                     "attested", "proposer"]),
    st.text(max_size=8),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=5)), inner,
                                            max_size=6)),
    max_leaves=20,
)
TAGS = st.one_of(st.sampled_from(ACTION_NAMES), st.sampled_from(ACTION_NAMES), VALUES)
ACTION_OBJECTS = st.builds(lambda tag, rest, first: {"action": tag, **rest} if first else {**rest, "action": tag},
                           TAGS, st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=8), st.booleans())
SIMPLE = st.one_of(st.integers(min_value=-(10**12) - 2, max_value=10**12 + 2), st.sampled_from(["agent_1", "core_0"]))
OFFERS = st.fixed_dictionaries(
    {"counterparty": st.just("agent_2"), "arbitrator": st.just("agent_3"),
     "contract_type": st.sampled_from(["service", "loan", "lease"]),
     "terms": st.fixed_dictionaries({"price": SIMPLE, "delivery_turn": SIMPLE}, optional={"description": VALUES})},
    optional={"collateral": st.dictionaries(st.sampled_from(sorted(Collateral.__struct_fields__)), SIMPLE),
              "penalty": SIMPLE, "payload": VALUES, "settlement_type": st.sampled_from(["attested", "escrow"])})
# Objects close to a real action: the kind's own fields, each maybe missing, out of bounds or of the wrong type.
NEAR_ACTIONS = st.sampled_from(Action.__args__).flatmap(lambda kind: st.fixed_dictionaries(
    {"action": st.just(kind.__struct_config__.tag)},
    optional={name: (OFFERS if name == "contract" else st.one_of(SIMPLE, st.sampled_from(["counterparty",
                                                                                        "arbitrator"]), LEAVES))
              for name in kind.__struct_fields__}))


@settings(max_examples=1500)
@given(raw=st.one_of(NEAR_ACTIONS, ACTION_OBJECTS, VALUES))
def test_parse_action_equals_the_union_conversion(raw):
    parsed, reference = parse_action(raw), union_conversion(raw)
    assert type(parsed) is type(reference)
    assert parsed == reference


def test_a_known_tag_with_bad_fields_keeps_the_union_error():
    # one thing wrong at a time: a field's type, a bound, a missing field, a nested field
    assert parse_action({"action": "stake", "amount": "5"}) == "Expected `int`, got `str` - at `$.amount`"
    assert parse_action({"action": "stake", "amount": 10**12 + 1}) == "Expected `int` <= 1000000000000 - at `$.amount`"
    assert parse_action({"action": "stake"}) == "Object missing required field `amount`"
    assert parse_action({"action": "propose_contract", "contract": {"counterparty": "a"}}) == (
        "Object missing required field `arbitrator` - at `$.contract`")


def test_a_missing_or_unknown_tag_is_worded_by_the_union():
    assert parse_action({"amount": 5}) == "Object missing required field `action`"
    assert parse_action({"action": "fly"}) == "Invalid value 'fly' - at `$.action`"
    assert parse_action({"action": 3}) == union_conversion({"action": 3})
