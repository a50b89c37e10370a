"""The orchestrator as a client of ``simledger serve``, the way sim-orchestrator drove the Rust engine.

``RemoteEngine`` creates the run with the same genesis an in-process run
records (config, agents, seed, identity), reads each turn's observation from
``GET /observation`` (the same function in-process runs call), and sends the
inputs with their model calls and texts in ``POST /turn``: the log the server
writes is the log ``simledger run --policy llm`` writes. Answers of a turn not
yet committed are kept in a local SQLite file (``--pending``).
"""

from __future__ import annotations

from typing import Any, Iterator

import httpx
import msgspec

from ..events import types as ev
from ..ledger.errors import LedgerError
from .society import TurnDecision
from .transport import PendingCalls, clear_pending

EVENTS_PAGE = 1000


class EngineError(LedgerError):
    """Raised when the engine server cannot be reached or refuses a request."""


class RemoteEngine:
    def __init__(self, url: str, pending: PendingCalls, *, seed: int, timeout_s: float = 120.0) -> None:
        """``seed``: the run's seed, which the server redacts from the genesis it serves (the caller knows it)."""
        self.url, self.pending, self.seed = url.rstrip("/"), pending, seed
        self.client = httpx.Client(base_url=self.url, timeout=timeout_s)

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, *, allow: tuple[int, ...] = (), **kwargs) -> tuple[int, Any]:
        """Return (status, JSON body); EngineError when unreachable or refused (other than ``allow``)."""
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise EngineError(f"cannot reach the engine at {self.url} ({type(err).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 and response.status_code not in allow:
            message = body.get("error") if isinstance(body, dict) else response.text[:200]
            raise EngineError(f"the engine refused {method} {path}: {message}")
        return response.status_code, body

    # --- the run -------------------------------------------------------------------

    def has_run(self) -> bool:
        status, _ = self.request("GET", "/state", allow=(409,))
        return status != 409

    def init(self, *, agent_ids: list[str], config: dict[str, Any], seed: int, identity: dict[str, Any]) -> None:
        self.request("POST", "/init", json={"agent_ids": agent_ids, "config": config, "seed": seed,
                                            "identity": identity})

    def positioned_events(self) -> Iterator[tuple[int, int, Any]]:
        """Yield the server's log as (seq, turn, event), page by page."""
        after = -1
        while True:
            _, page = self.request("GET", "/events", params={"after_seq": after, "limit": EVENTS_PAGE})
            for item in page["events"]:
                yield item["seq"], item["turn"], msgspec.convert(self.unredacted(item["payload"]), ev.Event)
            after = page["next_after_seq"]
            if not page["more"]:
                return

    def genesis(self) -> ev.RunGenesis:
        _, page = self.request("GET", "/events", params={"after_seq": -1, "limit": 1})
        return msgspec.convert(self.unredacted(page["events"][0]["payload"]), ev.RunGenesis)

    def unredacted(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Return a payload with the genesis seed the server withheld put back."""
        if payload.get("type") == "run_genesis" and payload.get("seed") is None:
            return {**payload, "seed": self.seed}
        return payload

    def text(self, digest: str) -> bytes | None:
        status, body = self.request("GET", f"/texts/{digest}", allow=(404,))
        return None if status == 404 else body["text"].encode("utf-8", "surrogatepass")

    # --- turns (the Engine protocol of orchestrator.driver) ------------------------------

    @property
    def next_turn(self) -> int:
        return self.request("GET", "/state")[1]["next_turn"]

    def observation(self, max_turns: int) -> dict[str, Any]:
        return self.request("GET", "/observation", params={"max_turns": max_turns})[1]

    def commit(self, decision: TurnDecision, turn: int) -> None:
        body = {"inputs": msgspec.to_builtins(decision.inputs), "model_calls": msgspec.to_builtins(decision.calls),
                "texts": {digest: text.decode("utf-8", "surrogatepass") for digest, text in sorted(decision.blobs.items())}}
        self.request("POST", "/turn", json=body)
        clear_pending(self.pending.conn, turn)
