"""How an agent's action is recorded and read: as the first, plainer formulas did, for any input.

The engine records an input reduced to encodable JSON (``to_plain_json``) and
decides from its parse (``parse_action``); recorded bytes and rejection details
depend on both, so the faster forms must give exactly what the reference forms
give: the same reduced value (same types, same key order), the same action or
the same error text. parse_action converts an object whose tag names a kind
straight to that kind (msgspec does not cache its plan for a union).
"""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from simledger.events.actions import (ACTION_NAMES, Action, Collateral, ContractOffer, Terms, is_encodable, parse_action,
                                      to_plain_json)


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


def reference_plain_json(value, depth: int = 0):
    """The reduction as first written (a generator of str() keys sorted by a lambda; encodability by encoding)."""
    def encodes(text: str) -> bool:
        try:
            text.encode("utf-8")
            return True
        except UnicodeEncodeError:
            return False

    if depth > 32:
        return "<too deep>"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if encodes(value) else "<invalid unicode>"
    if isinstance(value, int):
        return value if value in range(-(2**63), 2**63) else f"<int out of range: {str(value)[:40]}>"
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else f"<float {value!r}>"
    if isinstance(value, (list, tuple)):
        return [reference_plain_json(item, depth + 1) for item in value]
    if isinstance(value, dict):
        items = ((k if encodes(k := str(key)) else "<invalid unicode>", item) for key, item in value.items())
        return {key: reference_plain_json(item, depth + 1) for key, item in sorted(items, key=lambda kv: kv[0])}
    return f"<unsupported {type(value).__name__}>"


def exactly(value):
    """Return ``value`` with every type and every key order made visible (== alone ignores both)."""
    if isinstance(value, dict):
        return "dict", [(exactly(k), exactly(v)) for k, v in value.items()]
    if isinstance(value, list):
        return "list", [exactly(v) for v in value]
    return type(value).__name__, repr(value)


class Name(str):
    """A str subclass whose str() differs from its value."""

    def __str__(self) -> str:
        return "renamed"


def nested(depth: int):
    value = "leaf"
    for _ in range(depth):
        value = {"k": [value]}
    return value


ODD_TEXT = st.sampled_from(["\ud800", "a\udfffb", "é", "💥", "", "x" * 50, Name("agent_1")])
ODD_KEYS = st.one_of(st.text(max_size=4), ODD_TEXT, st.integers(-3, 3), st.booleans(), st.none(), st.floats(),
                     st.tuples(st.integers(0, 2)), st.sampled_from(["1", "True", "None", "(0,)"]))
ODD_LEAVES = st.one_of(LEAVES, ODD_TEXT, st.integers(min_value=-(2**70), max_value=2**70),
                       st.sampled_from([2**63, -(2**63) - 1, 2**63 - 1, float("inf"), -float("inf"), -0.0, 10**60]),
                       st.frozensets(st.integers(0, 3), max_size=2), st.binary(max_size=3),
                       st.sampled_from([nested(31), nested(32), nested(40)]))
ODD_VALUES = st.recursive(ODD_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                              st.tuples(inner, inner),
                                                              st.dictionaries(ODD_KEYS, inner, max_size=5)),
                          max_leaves=20)


@settings(max_examples=1500)
@given(value=st.one_of(ODD_VALUES, NEAR_ACTIONS, ACTION_OBJECTS))
def test_to_plain_json_equals_the_reference_reduction(value):
    assert exactly(to_plain_json(value)) == exactly(reference_plain_json(value))


def test_keys_that_read_alike_keep_the_last_and_sort_as_text():
    # 1 and "1" are one key once reduced: the later one wins, as the reference's dict comprehension
    assert exactly(to_plain_json({"b": 0, 1: "int", "1": "text", Name("x"): 2})) == exactly(
        {"1": "text", "b": 0, "renamed": 2})


@given(text=st.one_of(st.text(), ODD_TEXT, st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010))))
def test_is_encodable_is_whether_utf8_encodes(text):
    try:
        text.encode("utf-8")
        encodes = True
    except UnicodeEncodeError:
        encodes = False
    assert is_encodable(text) is encodes
