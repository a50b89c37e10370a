"""What an agent may ask for in a turn: one typed Struct per action kind.

An input arrives as loose JSON; :func:`parse_action` turns it into one of these
or says why it cannot (the engine records that as a ``malformed`` rejection).
Field shapes follow the study driver's requests exactly, so an orchestrator
written for the original engine needs no change.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

# Amounts beyond a trillion tokens are malformed: sums of them (balances) must stay far inside int64.
MAX_AMOUNT = 10**12
Amount = Annotated[int, Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
ContractType = Literal["service", "information_sale", "forward", "loan"]


class _Action(msgspec.Struct, frozen=True, kw_only=True, tag_field="action"):
    pass


class Mine(_Action, tag="mine"):
    pass


class Job(_Action, tag="job"):
    pass


class Study(_Action, tag="study"):
    pass


class Stake(_Action, tag="stake"):
    amount: Amount


class Unstake(_Action, tag="unstake"):
    amount: Amount


class Burn(_Action, tag="burn"):
    amount: Amount


class Transfer(_Action, tag="transfer"):
    to: str
    amount: Amount
    fee: Amount = 0


class BidCore(_Action, tag="bid_core"):
    core_id: str
    amount: Amount


class Terms(msgspec.Struct, frozen=True, kw_only=True):
    description: str = ""
    price: Amount
    delivery_turn: Amount
    condition: Any = None
    pool_members: Any = None


class Collateral(msgspec.Struct, frozen=True, kw_only=True):
    proposer_locked: Amount = 0
    counterparty_locked: Amount = 0
    arbitrator_locked: Amount = 0


class ContractOffer(msgspec.Struct, frozen=True, kw_only=True):
    counterparty: str
    arbitrator: str
    contract_type: ContractType
    terms: Terms
    collateral: Collateral = Collateral()
    settlement_type: Literal["attested"] = "attested"
    penalty: Amount = 0
    arbitrator_fee: Amount = 0
    payload: Any = None


class ProposeContract(_Action, tag="propose_contract"):
    contract: ContractOffer


class SignContract(_Action, tag="sign_contract"):
    contract_id: str
    role: Literal["counterparty", "arbitrator"]


class ConfirmDelivery(_Action, tag="confirm_delivery"):
    contract_id: str


class DisputeDelivery(_Action, tag="dispute_delivery"):
    contract_id: str


class ArbitratorRuling(_Action, tag="arbitrator_ruling"):
    contract_id: str
    ruling_for: str


Action = (
    Mine | Job | Study | Stake | Unstake | Burn | Transfer | BidCore | ProposeContract
    | SignContract | ConfirmDelivery | DisputeDelivery | ArbitratorRuling
)

ACTION_TYPES: dict[str, type] = {cls.__struct_config__.tag: cls for cls in Action.__args__}
ACTION_NAMES: tuple[str, ...] = tuple(ACTION_TYPES)


def parse_action(raw: Any) -> Action | str:
    """Return the typed action, or a one-line reason why ``raw`` is not one.

    msgspec caches how to convert to a Struct class but not to a union, which it
    plans afresh on every call (30 times the cost, once per input). An object whose tag
    names a kind goes straight to that kind, the one the union would pick, so the
    result and the error text are the same; anything else goes through the union,
    which words the error for a missing or unknown tag.
    """
    tag = raw.get("action") if type(raw) is dict else None
    kind = ACTION_TYPES.get(tag) if type(tag) is str else None
    try:
        return msgspec.convert(raw, kind or Action, strict=True)
    except msgspec.ValidationError as err:
        return str(err)


def action_name(raw: Any) -> str:
    """Return the action's name as submitted, or ``"unknown"``."""
    name = raw.get("action") if isinstance(raw, dict) else None
    return name if isinstance(name, str) and name in ACTION_NAMES else "unknown"


_INT64 = range(-(2**63), 2**63)


def is_encodable(text: str) -> bool:
    """Return whether ``text`` is valid Unicode (a lone surrogate cannot be encoded as UTF-8)."""
    if text.isascii():  # the common case, answered without encoding
        return True
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def to_plain_json(value: Any, depth: int = 0) -> Any:
    """Return ``value`` reduced to what the canonical encoding can hold.

    Agents may send anything. Integers outside int64, non-finite floats, and
    nesting deeper than 32 are replaced by a marker string, so the input is still
    recorded (and then rejected as malformed) instead of crashing the encoder.
    Keys come out sorted, as the encoder writes them, so the engine decides from
    exactly what re-execution will read back from the log.
    """
    if depth > 32:
        return "<too deep>"
    # What agents send almost always, answered first: ASCII text, and objects keyed by ASCII text
    # (such keys are their own reduction, and sort as they are).
    kind = type(value)
    if kind is str and value.isascii():
        return value
    if kind is dict and has_ascii_keys(value):
        return {key: to_plain_json(value[key], depth + 1) for key in sorted(value)}
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if is_encodable(value) else "<invalid unicode>"
    if isinstance(value, int):
        return value if value in _INT64 else f"<int out of range: {str(value)[:40]}>"
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else f"<float {value!r}>"
    if isinstance(value, (list, tuple)):
        return [to_plain_json(item, depth + 1) for item in value]
    if isinstance(value, dict):
        items = sorted([(to_plain_key(key), item) for key, item in value.items()], key=itemgetter(0))
        return {key: to_plain_json(item, depth + 1) for key, item in items}
    return f"<unsupported {type(value).__name__}>"


def has_ascii_keys(value: dict) -> bool:
    """Return whether every key of ``value`` is a ``str`` (not a subclass) of ASCII text."""
    for key in value:
        if type(key) is not str or not key.isascii():
            return False
    return True


def to_plain_key(key: Any) -> str:
    """Return an object key as the text the canonical encoding holds (``str`` of anything else)."""
    text = key if type(key) is str else str(key)
    return text if is_encodable(text) else "<invalid unicode>"


class AgentInput(msgspec.Struct, frozen=True, kw_only=True):
    """One agent's input for a turn, in the original engine's ``/turn`` shape.

    ``signature`` (hex) is for non-custodial clients that sign their own input
    (see ``events.keys.input_message``); without it the run signs with the
    agent's key from its key source (custodial mode, as the original engine).
    """

    agent_id: str
    action: Any = None
    thinking: Any = ""
    speech: Any = None
    thinking_units: Any = 0
    output_units: Any = 0
    signature: str | None = None
