"""Where model calls are answered: a live chat-completions server, the recording, or both.

``LiveTransport`` speaks the OpenAI-compatible API over httpx (the API key comes
from the environment and is never recorded). ``ReplayTransport`` serves a
turn's recorded calls by key and never contacts a model. ``PendingCalls`` keeps
every answer of a turn that has not committed yet, so a resumed run reuses what
was already paid for instead of asking again.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from typing import Protocol

import httpx
import msgspec

from .calls import CallRecord, CallRequest, NotRecorded, read_completion
from .prompt import response_format

CLOCK = time.monotonic  # latency is a recorded observation; tests replace the clock to make it fixed
API_KEY_VARIABLES = ("SIMLEDGER_LLM_API_KEY", "OPENAI_API_KEY")


class Transport(Protocol):
    live: bool

    async def call(self, request: CallRequest) -> CallRecord:
        """Return the outcome of one attempt."""


def completions_url(url: str) -> str:
    """Return the chat-completions endpoint of a base URL (``http://host:8080/v1`` or the full path)."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


def api_key_from_environment() -> str | None:
    return next((os.environ[name] for name in API_KEY_VARIABLES if os.environ.get(name)), None)


def wire_body(request: CallRequest) -> dict:
    """Return the JSON body sent: model, messages, and the parameters as the API names them."""
    body = {"model": request.model, "messages": request.messages}
    for name, value in request.params.items():
        if name != "response_format" and value is not None:
            body[name] = value
    return body


class LiveTransport:
    """Calls a chat-completions server; every attempt ends in a record (errors included), never raises."""

    live = True

    def __init__(self, url: str, *, timeout_s: float = 60.0) -> None:
        self.url, self.timeout_s = completions_url(url), timeout_s
        self._api_key = api_key_from_environment()

    async def call(self, request: CallRequest) -> CallRecord:
        body = wire_body(request)
        structured = response_format(request.params.get("response_format", "none"))
        if structured is not None:
            body["response_format"] = structured
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        started = CLOCK()
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(self.url, json=body, headers=headers)
        except httpx.TimeoutException:
            return CallRecord(error=f"timeout after {self.timeout_s:g} s", latency_ms=elapsed_ms(started))
        except httpx.HTTPError as err:
            return CallRecord(error=f"connection failed ({type(err).__name__})", latency_ms=elapsed_ms(started))
        return read_completion(response.status_code, response.text, elapsed_ms(started))


def elapsed_ms(started: float) -> int:
    return max(0, int(round((CLOCK() - started) * 1000)))


class ReplayTransport:
    """Serves recorded outcomes by request key; a request the recording lacks is an error naming it."""

    live = False

    def __init__(self, recorded: dict[str, CallRecord]) -> None:
        self.recorded = recorded

    async def call(self, request: CallRequest) -> CallRecord:
        record = self.recorded.get(request.key)
        if record is None:
            raise NotRecorded(f"model call not in the recording: {request.describe()}")
        return record


PENDING = "model_calls_pending"
_RECORD = msgspec.msgpack.Decoder(CallRecord)
_ENCODER = msgspec.msgpack.Encoder()


class PendingCalls:
    """Answers received for turns not yet committed, in an SQLite table (the run's file or the orchestrator's)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.execute(f"CREATE TABLE IF NOT EXISTS {PENDING} (key TEXT PRIMARY KEY, turn INTEGER, record BLOB)")

    def get(self, key: str) -> CallRecord | None:
        row = self.conn.execute(f"SELECT record FROM {PENDING} WHERE key = ?", [key]).fetchone()
        return _RECORD.decode(row[0]) if row else None

    def put(self, request: CallRequest, record: CallRecord) -> None:
        """Keep one answer at once (its own committed write): a kill a moment later does not lose it."""
        self.conn.execute(f"INSERT OR REPLACE INTO {PENDING}(key, turn, record) VALUES (?, ?, ?)",
                          [request.key, request.turn, _ENCODER.encode(record)])

    def count(self) -> int:
        return self.conn.execute(f"SELECT COUNT(*) FROM {PENDING}").fetchone()[0]


def clear_pending(conn: sqlite3.Connection, turn: int) -> None:
    """Forget the kept answers of ``turn`` and earlier (call in the transaction that records them)."""
    try:
        conn.execute(f"DELETE FROM {PENDING} WHERE turn <= ?", [turn])
    except sqlite3.OperationalError:  # no pending table: nothing was kept
        pass


class KeptTransport:
    """A live transport that first serves answers kept for the current turn, and keeps every new answer."""

    live = True

    def __init__(self, live: LiveTransport, pending: PendingCalls) -> None:
        self.inner, self.pending = live, pending
        self.reused = 0

    async def call(self, request: CallRequest) -> CallRecord:
        kept = self.pending.get(request.key)
        if kept is not None:
            self.reused += 1
            return kept
        record = await self.inner.call(request)
        if not record.error:  # failures cost nothing and may be transient: a resume asks again
            self.pending.put(request, record)
        return record


async def pause(transport: Transport, seconds: float) -> None:
    """Wait before a retry when talking to a live server (replay never waits)."""
    if transport.live and seconds > 0:
        await asyncio.sleep(seconds)
