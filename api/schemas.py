"""Request and response shapes of the HTTP API (msgspec Structs, also the OpenAPI schema).

The original engine's four calls keep their shapes exactly: ``POST /init``
``{"config", "agent_ids"}``, ``POST /turn`` ``{"inputs": [...]}`` answering
``{"ok", "data"}``, ``GET /state`` with ``agents``/``token_supply``, ``GET /config``.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from ..events.actions import AgentInput
from ..events.types import ModelCalled

Int64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]


class InitRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Create the run. ``seed`` (default 0) derives the agents' keys unless the server has a keystore.

    ``identity`` and ``rules`` are recorded in the genesis as given: a client
    that sends the same config, agents, seed, identity and rules as an
    in-process ``execute_run`` gets a byte-identical log.
    """

    agent_ids: list[str]
    config: dict[str, Any] | None = None
    seed: Int64 = 0
    identity: dict[str, Any] | None = None
    rules: dict[str, Any] | None = None


class TurnRequest(msgspec.Struct, kw_only=True):
    """One turn: at most one input per agent, applied in the order given.

    An orchestrator that asked a model for the inputs sends its calls too
    (``model_calls``, recorded first in the turn) with the texts they name by
    SHA-256 (``texts``: hash -> text), so the log holds them as in-process runs do.
    """

    inputs: list[AgentInput]
    model_calls: list[ModelCalled] = []
    texts: dict[str, str] = {}


class TurnError(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An input the engine rejected this turn (recorded as ``action_rejected``), with the reason code."""

    agent: str
    action: str  # the action's name as submitted, "unknown" when it names none
    reason: str
    detail: str


class TurnData(msgspec.Struct, kw_only=True):
    """What the original engine reported about a turn."""

    turn: int
    block_winner: str | None
    inference_fees_collected: int
    contracts_settled: list[str]
    contracts_defaulted: list[str]
    errors: list[TurnError]
    dividends_paid: dict[str, int]
    interest_charged: dict[str, int]


class TurnResponse(msgspec.Struct, kw_only=True):
    ok: bool
    data: TurnData


class InitData(msgspec.Struct, kw_only=True):
    run_id: str
    turn: int
    agents: list[str]
    agent_keys: dict[str, str]
    engine_key: str
    head_hash: str


class InitResponse(msgspec.Struct, kw_only=True):
    ok: bool
    data: InitData


class ErrorResponse(msgspec.Struct, kw_only=True):
    """Every refused request: nothing was appended to the log."""

    ok: bool
    error: str


# --- what the read endpoints answer -------------------------------------------------------
# The handlers convert the service's answers into these, so a field the service adds without its
# documentation here is an error the tests see (forbid_unknown_fields), never a silent drop.


class AgentView(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One agent's account (tokens): the original's fields first."""

    agent_id: str
    balance: int
    staked: int
    locked: int  # collateral held by open contracts
    pending_unstake: int
    pending_stake: int  # staked tokens still warming up: no lottery weight, not in wealth (R7)
    burned: int
    wealth: int  # balance + staked
    study_until: int


class CoreView(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    core_id: str
    owner: str
    proportion: float  # the original's share, 0..1
    proportion_ppm: int  # the same share exactly, in millionths


class BlockView(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The last block produced: its height, turn and seq, winner, reward and number of entrants."""

    height: int
    turn: int
    seq: int
    winner: str
    reward: int
    entrants: int
    randomness: str  # the seal-derived draw's seed (hex)


class SealView(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The last turn's seal: the Merkle root of its events and the digest of the state after it (hex)."""

    turn: int
    seq: int
    merkle_root: str
    state_digest: str
    event_count: int


class ProjectionView(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The projected state at the end of a sealed turn."""

    run_id: str
    turn: int
    next_turn: int
    agents: list[AgentView]
    token_supply: int
    block_height: int
    cores: list[CoreView]
    contracts_total: int
    contracts_open: int
    events: int
    last_block: BlockView | None
    last_seal: SealView | None


class StateView(ProjectionView, kw_only=True, forbid_unknown_fields=True):
    """The live state after the last sealed turn, and the log's head (seq and hash, hex)."""

    head_seq: int
    head_hash: str


class ReplayView(ProjectionView, kw_only=True, forbid_unknown_fields=True):
    """The state refolded from the log up to a turn, with its state digest (hex)."""

    state_digest: str


class EventView(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One logged event: position, kind, readable payload, chain link, engine signature (hex).

    The genesis is served with its seed redacted (``"seed": null``, ``"redacted": ["seed"]``).
    """

    seq: int
    turn: int
    kind: str
    actor: str | None
    contract_id: str | None
    payload_version: int
    payload: Any
    prev_hash: str
    hash: str
    signer: str
    signature: str
    format_version: int
    redacted: list[str] = []


class EventsPage(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A page of the log; ask again with ``after_seq=next_after_seq`` while ``more``."""

    events: list[EventView]
    next_after_seq: int
    head_seq: int
    more: bool


class VerifyFailure(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    seq: int | None
    turn: int | None
    kind: str | None
    reason: str


class VerifyView(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The verifier's verdict: on failure the counts and head describe the verified prefix."""

    ok: bool
    events: int
    turns: int
    head_seq: int
    head_hash: str
    error: VerifyFailure | None
    message: str
    proved: str | None = None  # on success: what the verdict proves (integrity; authenticity needs a pinned head)
