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


class TurnData(msgspec.Struct, kw_only=True):
    """What the original engine reported about a turn."""

    turn: int
    block_winner: str | None
    inference_fees_collected: int
    contracts_settled: list[str]
    contracts_defaulted: list[str]
    errors: list[dict[str, Any]]
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
