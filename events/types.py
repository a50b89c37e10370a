"""The event vocabulary: one frozen Struct per fact the ledger records.

Each class has a stable type id (its ``tag``), never derived from the class
name, so renaming a class never changes hashed bytes, and a ``VERSION`` that
the envelope records. Schema evolution follows msgspec's rules: a later version
may add fields with defaults, never change a field's type; older payloads are
upcast after verification (see ``events.envelope.UPCASTERS``).

Amounts are integer tokens. Fractions (weights) are integers in millionths.

A field added after a kind was first written is typed ``X | UnsetType`` with
default ``UNSET`` and listed in the class's ``ADDED`` with the version that added
it. msgspec leaves an unset field out of the bytes (and the JSON copy), so an
event that does not use it is written, byte for byte, as the version before
(``events.envelope.payload_version``): earlier logs keep their hashes, older
payloads decode directly (the field is UNSET), and a reader that predates the
field refuses the newer version by name instead of misreading it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
from msgspec import UNSET, UnsetType

from .actions import ContractOffer
from .config import Config, Rules


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    VERSION: ClassVar[int] = 1
    ADDED: ClassVar[dict[str, int]] = {}  # field -> the version that added it (fields typed X | UnsetType)
    # The oldest version written and decoded as is; older payloads are upcast (events.envelope.UPCASTERS).
    SINCE: ClassVar[int] = 1
    # The SINCE of earlier library versions: each was written whatever optional fields it set.
    EARLIER_SINCE: ClassVar[tuple[int, ...]] = ()


# --- run ---------------------------------------------------------------------


class RunGenesis(_Event, tag="run_genesis"):
    """The run's constitution: who takes part, their keys, the rules, the seed.

    Version 2 added ``nonce``. Version 3: ``rules`` holds the rule variants of
    ``events.config.LEGACY_RULES``. Version 4: ``rules`` holds the money rules of
    ``events.config.RULES_BEFORE_V4``. Version 5: ``rules`` holds the stake rules of
    ``events.config.RULES_BEFORE_V5``. Version 6: ``rules`` holds the fee rule of
    ``events.config.RULES_BEFORE_V6``. Every genesis is written as version 6, and an
    older one is upcast with the variants it was played with.
    """

    VERSION: ClassVar[int] = 6
    ADDED: ClassVar[dict[str, int]] = {"nonce": 2}
    SINCE: ClassVar[int] = 6
    EARLIER_SINCE: ClassVar[tuple[int, ...]] = (3, 4, 5)
    run_id: str
    seed: int
    agents: list[str]
    config: Config
    rules: Rules
    engine_key: str
    agent_keys: dict[str, str]
    key_source: str
    library_version: str
    identity: dict[str, Any] = {}
    # Version 2 (absent from seed-derived runs, whose keys are the engine's by construction):
    # random bytes the server drew for a keystore run; they enter run_id, so an input signed for
    # one run never verifies in another created with the same parameters and keys.
    nonce: str | UnsetType = UNSET


class TurnSealed(_Event, tag="turn_sealed"):
    """Closes a turn: commits to its events (Merkle root) and the state they produced."""

    turn: int
    first_seq: int
    event_count: int
    merkle_root: str
    state_digest: str


# --- actions -----------------------------------------------------------------


class ActionSubmitted(_Event, tag="action_submitted"):
    """An agent's input for a turn, exactly as received (signed by the agent)."""

    VERSION: ClassVar[int] = 2
    ADDED: ClassVar[dict[str, int]] = {"custodial": 2}
    agent: str
    action: Any
    thinking_units: Any = 0
    output_units: Any = 0
    thinking: Any = ""
    speech: Any = None
    # Version 2: True when the server signed this input with the agent's keystore key on the
    # agent's behalf (custodial); absent when the agent signed it, or in a seed-derived run
    # (its genesis' key_source "seed" already says the engine holds every key).
    custodial: bool | UnsetType = UNSET


class ActionRejected(_Event, tag="action_rejected"):
    """An input the engine refused; the action is lost, the run goes on."""

    agent: str
    action: str
    reason: str
    detail: str
    input_seq: int


class MiningEntered(_Event, tag="mining_entered"):
    agent: str
    input_seq: int


class StakeLocked(_Event, tag="stake_locked"):
    """Tokens leave the balance as stake: staked at once, or pending until ``activates_turn`` (R7)."""

    VERSION: ClassVar[int] = 2
    ADDED: ClassVar[dict[str, int]] = {"activates_turn": 2}
    agent: str
    amount: int
    input_seq: int
    # Version 2 (rules.stake_warmup): the stake is pending, with no lottery weight, until this turn starts.
    activates_turn: int | UnsetType = UNSET


class StakeActivated(_Event, tag="stake_activated"):
    """A pending stake whose turn has come becomes staked: it weighs in the lottery from now on (R7)."""

    agent: str
    amount: int


class StakeRewarmed(_Event, tag="stake_rewarmed"):
    """A block's winner's whole stake goes back to pending until ``activates_turn`` (R9)."""

    agent: str
    amount: int
    activates_turn: int


class BurnsSpent(_Event, tag="burns_spent"):
    """A block's winner's burns that weighed in its draw, those matured by ``matured_by`` (the block's turn),
    are used up (R9)."""

    agent: str
    amount: int  # the burnt tokens of the spent burns
    matured_by: int


class UnstakeRequested(_Event, tag="unstake_requested"):
    agent: str
    amount: int
    release_turn: int
    input_seq: int


class UnstakeReleased(_Event, tag="unstake_released"):
    agent: str
    amount: int


class TokensBurned(_Event, tag="tokens_burned"):
    agent: str
    amount: int
    matures_turn: int
    input_seq: int


class TokensTransferred(_Event, tag="tokens_transferred"):
    sender: str
    recipient: str
    amount: int
    fee: int
    input_seq: int


class JobPaid(_Event, tag="job_paid"):
    agent: str
    amount: int
    input_seq: int


class StudyCompleted(_Event, tag="study_completed"):
    agent: str
    cost: int
    discount_until_turn: int
    input_seq: int


class CoreBidPlaced(_Event, tag="core_bid_placed"):
    agent: str
    core_id: str
    amount: int
    input_seq: int


class CoreAward(msgspec.Struct, frozen=True, kw_only=True):
    """One core's owner; ``price`` is the winning bid (already spent when placed), 0 for a fill."""

    core_id: str
    owner: str
    price: int
    proportion_ppm: int
    by: str


class CoreAuctionResolved(_Event, tag="core_auction_resolved"):
    awards: list[CoreAward]


# --- billing -----------------------------------------------------------------


class InferenceFeeCharged(_Event, tag="inference_fee_charged"):
    agent: str
    thinking_units: int
    output_units: int
    fee: int
    discounted: bool


class DividendPaid(_Event, tag="dividend_paid"):
    owner: str
    core_id: str
    amount: int


class FeesRetained(_Event, tag="fees_retained"):
    """The part of a turn's fees no core paid out: leaves the supply."""

    amount: int


class InterestCharged(_Event, tag="interest_charged"):
    agent: str
    amount: int


class InterestPaid(_Event, tag="interest_paid"):
    """Interest collected this turn, paid to a core owner (the lenders of compute credit)."""

    owner: str
    core_id: str
    amount: int


# --- contracts ---------------------------------------------------------------


class ContractProposed(_Event, tag="contract_proposed"):
    contract_id: str
    proposer: str
    offer: ContractOffer
    input_seq: int


class ContractSigned(_Event, tag="contract_signed"):
    contract_id: str
    signer: str
    role: str
    status: str
    input_seq: int


class CollateralLocked(_Event, tag="collateral_locked"):
    contract_id: str
    agent: str
    amount: int


class ContractActivated(_Event, tag="contract_activated"):
    contract_id: str


class DeliveryConfirmed(_Event, tag="delivery_confirmed"):
    contract_id: str
    agent: str
    input_seq: int


class DeliveryDisputed(_Event, tag="delivery_disputed"):
    contract_id: str
    agent: str
    input_seq: int


class ArbitratorRuled(_Event, tag="arbitrator_ruled"):
    contract_id: str
    arbitrator: str
    ruling_for: str
    input_seq: int


class ContractPayment(_Event, tag="contract_payment"):
    """Tokens moved by a contract's terms: price, penalty or arbitrator fee."""

    contract_id: str
    payer: str
    payee: str
    amount: int
    purpose: str


class CollateralReleased(_Event, tag="collateral_released"):
    contract_id: str
    agent: str
    amount: int


class CollateralSlashed(_Event, tag="collateral_slashed"):
    contract_id: str
    agent: str
    amount: int


class ContractSettled(_Event, tag="contract_settled"):
    contract_id: str
    outcome: str


class ContractDefaulted(_Event, tag="contract_defaulted"):
    contract_id: str
    reason: str


class ContractExpired(_Event, tag="contract_expired"):
    """An offer not fully signed by its delivery turn lapses; nothing was locked."""

    contract_id: str


# --- model calls ---------------------------------------------------------------


class ModelUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Token counts as the provider reported them (0 where it reported none)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0


class ModelCalled(_Event, tag="model_called"):
    """One attempt at a chat-completions call made for an agent's turn, as asked and as answered.

    Texts (the messages sent, the answer, the provider's reasoning text, the raw
    response body) live in the ``blobs`` table under their SHA-256, which this
    event carries, so the chain covers them. ``key`` is what offline replay
    looks the call up by (model, parameters, messages, agent, turn, attempt).
    ``latency_ms`` is a wall-clock observation: recorded, never decided on.
    ``verdict`` is how the policy read the answer of the attempt it used
    ("ok" or why the answer is not a valid action); "" on attempts it did not use.
    """

    agent: str
    attempt: int
    key: str
    model: str
    params: dict[str, Any]
    messages: str
    status: int
    error: str = ""
    text: str = ""
    reasoning: str = ""
    raw: str = ""
    finish_reason: str | None = None
    provider_model: str | None = None
    system_fingerprint: str | None = None
    usage: ModelUsage = ModelUsage()
    latency_ms: int = 0
    verdict: str = ""


# --- blocks ------------------------------------------------------------------


class BlockEntry(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    agent: str
    weight_ppm: int


class BlockProduced(_Event, tag="block_produced"):
    """A lottery block: everything needed to recheck the draw is here."""

    height: int
    winner: str
    reward: int
    entrants: list[BlockEntry]
    total_weight_ppm: int
    randomness: str
    draw: int


class BlockNotProduced(_Event, tag="block_not_produced"):
    entrants: list[BlockEntry]
    total_weight_ppm: int
    threshold_ppm: int


Event = (
    RunGenesis | TurnSealed | ActionSubmitted | ActionRejected | MiningEntered | StakeLocked | StakeActivated
    | StakeRewarmed | BurnsSpent | UnstakeRequested | UnstakeReleased | TokensBurned | TokensTransferred | JobPaid
    | StudyCompleted | CoreBidPlaced | CoreAuctionResolved | InferenceFeeCharged | DividendPaid
    | FeesRetained | InterestCharged | InterestPaid | ContractProposed | ContractSigned | CollateralLocked
    | ContractActivated | DeliveryConfirmed | DeliveryDisputed | ArbitratorRuled
    | ContractPayment | CollateralReleased | CollateralSlashed | ContractSettled | ContractDefaulted | ContractExpired
    | BlockProduced | BlockNotProduced | ModelCalled
)

EVENT_TYPES: dict[str, type] = {cls.__struct_config__.tag: cls for cls in Event.__args__}


def kind_of(event: Any) -> str:
    """Return the stable type id of ``event``."""
    return event.__struct_config__.tag


ACTOR_FIELDS = ("agent", "proposer", "sender", "owner", "signer", "winner", "arbitrator", "payer")
# Per kind, the actor fields it has, in ACTOR_FIELDS order: actor_of runs once per event
# written or verified, and a getattr miss on a struct costs an exception.
_ACTOR_FIELDS_OF = {cls: tuple(f for f in ACTOR_FIELDS if f in cls.__struct_fields__) for cls in EVENT_TYPES.values()}


def actor_of(event: Any) -> str:
    """Return who an event is about: the agent that acted or is affected, else ``engine``."""
    for field in _ACTOR_FIELDS_OF.get(type(event), ACTOR_FIELDS):
        value = getattr(event, field, None)
        if isinstance(value, str):
            return value
    return "engine"


def contract_of(event: Any) -> str | None:
    """Return the contract an event concerns, if any (indexed for audits)."""
    return getattr(event, "contract_id", None)
