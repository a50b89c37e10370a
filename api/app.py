"""The HTTP API: a drop-in for the original sim-engine server, plus read-only audit endpoints.

Original calls (same shapes as the study driver used them)::

    GET  /config                 readiness; the run's config (or the defaults before /init)
    POST /init                   {"config", "agent_ids"[, "seed", "identity", "rules"]} -> genesis
    POST /turn                   {"inputs": [{agent_id, thinking, action, speech, thinking_units,
                                  output_units[, signature]}]} -> {"ok": true, "data": {...}}
    GET  /state                  {"agents": [{agent_id, balance, staked, ...}], "token_supply", "turn", ...}

Beyond the original::

    GET  /events?after_seq=&limit=      the log, paged (limit <= 1000)
    GET  /contracts[?status=]           contracts with their standing
    GET  /contracts/{id}/history        one contract's events in log order
    GET  /verify                        the verifier's verdict on the whole log
    GET  /replay?until_turn=N           the state refolded from the log up to turn N
    GET  /observation?max_turns=N       what each agent sees at the start of the next turn (LLM prompts)
    GET  /texts/{hash}                  a text a model_called event names (prompt, answer, raw response)
    GET  /schema                        OpenAPI docs: Swagger UI served from a package, no CDN
                                        (/schema/swagger too; the document at /schema/openapi.json)

A refused request answers ``{"ok": false, "error": "<message>"}`` with a 4xx
status and appends nothing: 400 for a malformed body, wrong types, an unknown
agent, two inputs from one agent, a bad signature or config; 409 for a turn
before /init or a second /init; 404 for an unknown contract. An invalid but
well-formed *action* is not a refused request: the engine records it as
``action_rejected`` and the turn's ``data.errors`` lists it, as the original did.

``/init`` also takes ``seed`` (default 0: it derives the agents' keys unless the
server runs with ``--keystore``), ``identity`` and ``rules``, all recorded in the
genesis. Sending what ``study.runner.execute_run`` records (the regime's config,
``agent_ids``, the seed, ``identity={"regime", "run_name", "turns"}``) makes the
HTTP log byte-identical to the in-process run.

Inputs without ``signature`` are signed by the server with the agent's key
(custodial; with a keystore the recorded input says ``"custodial": true``); an
input with ``signature`` is verified against the agent's key in the genesis and
recorded as given (see ``api.client_signing.sign_input``). A server started
with ``--require-signatures`` refuses (400) every input its agent did not sign.

Hostile requests get a 4xx, never a 500: a body nesting JSON deeper than
``events.limits.MAX_JSON_DEPTH`` is refused before it is decoded, integer query
parameters are bounded, agent ids are ``[A-Za-z0-9_.-]{1,64}``. ``GET /events``
serves the genesis with its seed redacted (see ``api.service``).

The tables ``contracts`` and ``core_shares`` are read models that every turn's
transaction brings back in line with the log; the engine never reads them, so a client
writing ``core_shares`` (as the study driver did after turn 1) changes nothing.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State as AppState
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from ..events.config import Config, InvalidConfig
from ..events.keys import KeystoreError
from ..events.limits import MAX_JSON_DEPTH, MAX_QUERY_INT, raw_json_depth
from ..ledger.errors import BadInput, LedgerError, StorageError, WriteMismatch, WriterBusy
from .docs import DOCS_PATH, docs_plugins
from .schemas import (
    ErrorResponse, EventsPage, InitData, InitRequest, InitResponse, ReplayView, StateView, TurnData, TurnRequest,
    TurnResponse, VerifyView,
)
from .service import MAX_EVENTS_PAGE, Conflict, LedgerService, NotFound

log = logging.getLogger("simledger.api")

ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (WriterBusy, 409),
    (WriteMismatch, 500),  # the file did not keep what was written (a trigger, another writer): the server's fault
    (StorageError, 507),  # a full disk or read-only file system: the server's trouble, not the client's
    (BadInput, 400),
    (InvalidConfig, 400),
    (KeystoreError, 400),
    (LedgerError, 400),
)


def refusals(**described: str) -> dict[int, ResponseSpec]:
    """Return the OpenAPI responses of an endpoint's refusals (``r409="..."``), each with the error shape.

    Every endpoint may also answer 500 (an engine bug, logged; no traceback in the answer).
    """
    described = {**described, "r500": "internal error: a bug, logged by the server"}
    return {int(code.removeprefix("r")): ResponseSpec(ErrorResponse, description=text, generate_examples=False,
                                                      examples=[Example(value={"ok": False, "error": text})])
            for code, text in described.items()}


NO_RUN = "no run yet: POST /init first"
BAD_QUERY = "a query parameter of the wrong type or out of range"


def get_service(request: Request) -> LedgerService:
    """Return the service this app serves (set in create_app)."""
    return request.app.state.service


# --- the original engine's calls ----------------------------------------------------


@get("/config", sync_to_thread=True, tags=["original"], responses=refusals())
def read_config(request: Request) -> Config:
    """Return the run's engine config, or the defaults before /init (the driver's readiness probe)."""
    return msgspec.convert(get_service(request).config(), Config)


@post("/init", sync_to_thread=True, status_code=200, tags=["original"], responses=refusals(
    r400="invalid config or agent ids, or a malformed body; nothing created",
    r409="the log already holds a run",
))
def init_run(request: Request, data: JSONBody[InitRequest]) -> InitResponse:
    """Create the run: genesis with the agents' public keys, sealed as turn 0."""
    created = get_service(request).init(agent_ids=data.agent_ids, config=data.config, seed=data.seed,
                                        identity=data.identity, rules=data.rules)
    return InitResponse(ok=True, data=InitData(**created))


@post("/turn", sync_to_thread=True, status_code=200, tags=["original"], responses=refusals(
    r400="malformed request, unknown agent, two inputs from one agent, bad signature; nothing appended",
    r409=NO_RUN,
))
def play_turn(request: Request, data: JSONBody[TurnRequest]) -> TurnResponse:
    """Run the next turn with these inputs and append it to the log atomically."""
    return TurnResponse(ok=True, data=TurnData(**get_service(request).step(data.inputs, data.model_calls, data.texts)))


@get("/state", sync_to_thread=True, tags=["original"], responses=refusals(r409=NO_RUN))
def read_state(request: Request) -> StateView:
    """Return the live state after the last sealed turn: agents, token supply, cores, head."""
    return msgspec.convert(get_service(request).state(), StateView)


# --- beyond the original -------------------------------------------------------------


@get("/events", sync_to_thread=True, tags=["audit"], responses=refusals(r400=BAD_QUERY, r409=NO_RUN))
def read_events(
    request: Request,
    after_seq: Annotated[int, QueryParameter(ge=-1, le=MAX_QUERY_INT,
                                             description="return events with seq > after_seq")] = -1,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_QUERY_INT,
                                         description=f"page size (at most {MAX_EVENTS_PAGE})")] = 100,
) -> EventsPage:
    """Return a page of the log in seq order; follow ``next_after_seq`` while ``more``."""
    return msgspec.convert(get_service(request).events(after_seq=after_seq, limit=limit), EventsPage)


@get("/contracts", sync_to_thread=True, tags=["audit"], responses=refusals(r400=BAD_QUERY, r409=NO_RUN))
def read_contracts(
    request: Request,
    status: Annotated[str | None, QueryParameter(description="only contracts in this status")] = None,
) -> list[dict[str, Any]]:
    """Return every contract (creation order) with its status, signatures and locked collateral."""
    return get_service(request).contracts(status)


@get("/contracts/{contract_id:str}/history", sync_to_thread=True, tags=["audit"],
     responses=refusals(r400="a malformed path", r404="no contract of that id in this run", r409=NO_RUN))
def read_contract_history(
    request: Request, contract_id: Annotated[str, PathParameter(description="e.g. contract_1")],
) -> dict[str, Any]:
    """Return one contract's events in log order."""
    return get_service(request).contract_history(contract_id)


@get("/verify", sync_to_thread=True, tags=["audit"],
     responses=refusals(r409=NO_RUN, r501="this simledger was installed without the verifier"))
def verify(request: Request) -> VerifyView:
    """Verify the whole log (hash chain, signatures, seals) and return the verdict (``ok`` false on a bad log)."""
    return msgspec.convert(get_service(request).verify(), VerifyView)


@get("/replay", sync_to_thread=True, tags=["audit"],
     responses=refusals(r400=BAD_QUERY + ", or a turn beyond the log", r409=NO_RUN))
def replay(request: Request,
           until_turn: Annotated[int | None, QueryParameter(ge=0, le=MAX_QUERY_INT)] = None) -> ReplayView:
    """Return the state refolded from the log up to the end of ``until_turn`` (default: all of it)."""
    return msgspec.convert(get_service(request).replay(until_turn), ReplayView)


@get("/observation", sync_to_thread=True, tags=["orchestrator"])
def read_observation(request: Request, max_turns: Annotated[int, QueryParameter(ge=1)]) -> dict[str, Any]:
    """Return what each agent sees at the start of the next turn (what LLM prompts are built from)."""
    return get_service(request).observation(max_turns)


@get("/texts/{digest:str}", sync_to_thread=True, tags=["orchestrator"])
def read_text(request: Request, digest: Annotated[str, PathParameter(description="SHA-256 hex")]) -> dict[str, Any]:
    """Return a text a ``model_called`` event names by its hash (prompt, answer, reasoning, raw response)."""
    return get_service(request).text(digest)


# --- errors ----------------------------------------------------------------------------


async def refuse_deep_json(request: Request) -> None:
    """Refuse a body nesting deeper than MAX_JSON_DEPTH before anything decodes it (decoders recurse)."""
    if request.method in ("POST", "PUT", "PATCH"):
        if raw_json_depth(await request.body()) > MAX_JSON_DEPTH:
            raise BadInput(f"request body nests JSON deeper than {MAX_JSON_DEPTH} levels")


def error_response(status: int, message: str) -> Response:
    return Response(ErrorResponse(ok=False, error=message), status_code=status)


def get_error_status(err: Exception) -> int:
    return next(status for kind, status in ERROR_STATUS if isinstance(err, kind))


def handle_library_error(request: Request, err: Exception) -> Response:
    """Map the library's exceptions to a 4xx and their one-line message."""
    return error_response(get_error_status(err), str(err))


def handle_http_error(request: Request, err: HTTPException) -> Response:
    """Give Litestar's own refusals (bad JSON, wrong types, unknown route) the API's error shape."""
    message = err.detail
    if isinstance(err, ValidationException):
        message = describe_validation(err)
    elif is_decode_error(err):
        message = f"malformed JSON: {message}"
    return error_response(err.status_code, message)


def is_decode_error(err: Exception) -> bool:
    """Return whether ``err`` came from a request body that is not JSON at all."""
    cause = err.__cause__
    while cause is not None and not isinstance(cause, msgspec.DecodeError):
        cause = cause.__cause__
    return cause is not None and not isinstance(cause, msgspec.ValidationError)


def describe_validation(err: ValidationException) -> str:
    """Return one line saying what in the request is wrong (msgspec names the JSON path)."""
    details = [describe_item(item) for item in (err.extra or []) if isinstance(item, dict)]
    return f"invalid request: {'; '.join(details) if details else err.detail}"


def describe_item(item: dict) -> str:
    """Return ``where: what`` for one of Litestar's validation messages."""
    key, message = item.get("key"), str(item.get("message", "invalid"))
    source = getattr(item.get("source"), "value", item.get("source"))
    if key == "data":
        return "request body: " + ("a JSON object is required" if message == "'data'" else message)
    where = f"{source} {key}" if key and source else key
    return f"{where}: {message}" if where else message


def handle_unexpected(request: Request, err: Exception) -> Response:
    """Log an engine bug once, answer 500 without a traceback."""
    log.exception("unexpected error handling %s %s", request.method, request.url.path)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, f"internal error: {type(err).__name__}")


# --- the app -----------------------------------------------------------------------------


def create_app(service: LedgerService) -> Litestar:
    """Return the Litestar app serving ``service`` (the caller owns and closes the service)."""
    return Litestar(
        route_handlers=[read_config, init_run, play_turn, read_state, read_events, read_contracts,
                        read_contract_history, verify, replay, read_observation, read_text],
        state=AppState({"service": service}),
        before_request=refuse_deep_json,
        exception_handlers={
            LedgerError: handle_library_error,
            InvalidConfig: handle_library_error,
            KeystoreError: handle_library_error,
            HTTPException: handle_http_error,
            Exception: handle_unexpected,
        },
        openapi_config=OpenAPIConfig(
            title="simledger", version="1",
            description=__doc__.split("\n\n")[0] + " Refused requests answer {\"ok\": false, \"error\": ...}.",
            path=DOCS_PATH,
            render_plugins=docs_plugins(),
            use_handler_docstrings=True,
        ),
        debug=False,
    )
