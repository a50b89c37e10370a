"""Model calls: the request, what came back, and how both are recorded and served again.

A ``CallRequest`` is one attempt (its retry index is part of it); its ``key``
covers agent, turn, attempt, model, parameters and messages, so a retried call
is never served a recorded failure. A ``CallRecord`` is the outcome with its
texts inline. ``to_event`` turns the pair into a ``model_called`` event plus the
texts it names (stored by hash); ``from_event`` reads them back for replay.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

import msgspec

from ..events import types as ev
from ..events.envelope import ENCODER
from ..ledger.blobs import blob_hash
from ..ledger.errors import LedgerError

KEY_DOMAIN = "simledger/model-call/v1"


class NotRecorded(LedgerError):
    """Raised when offline replay is asked for a model call the recording does not hold."""


class CallRequest(msgspec.Struct, frozen=True, kw_only=True):
    agent: str
    turn: int
    attempt: int
    model: str
    params: dict[str, Any]
    messages: list[dict[str, str]]

    @property
    def key(self) -> str:
        return hashlib.sha256(ENCODER.encode(
            [KEY_DOMAIN, self.agent, self.turn, self.attempt, self.model, self.params, self.messages])).hexdigest()

    def describe(self) -> str:
        return f"{self.agent}, turn {self.turn}, attempt {self.attempt}, model {self.model!r} (key {self.key[:16]})"


class CallRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What one attempt got back; ``error`` is "" when the server answered 200 with a completion."""

    status: int = 0
    error: str = ""
    text: str = ""
    reasoning: str = ""
    raw: str = ""
    finish_reason: str | None = None
    provider_model: str | None = None
    system_fingerprint: str | None = None
    usage: ev.ModelUsage = ev.ModelUsage()
    latency_ms: int = 0

    @property
    def total_tokens(self) -> int:
        return self.usage.prompt_tokens + self.usage.completion_tokens


def messages_text(messages: list[dict[str, str]]) -> str:
    return json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def to_event(request: CallRequest, record: CallRecord, verdict: str) -> tuple[ev.ModelCalled, dict[str, bytes]]:
    """Return the ``model_called`` event of one attempt and the texts (hash -> bytes) it names."""
    blobs: dict[str, bytes] = {}

    def put(text: str) -> str:
        if not text:
            return ""
        body = text.encode("utf-8", "surrogatepass")
        digest = blob_hash(body)
        blobs[digest] = body
        return digest

    event = ev.ModelCalled(
        agent=request.agent, attempt=request.attempt, key=request.key, model=request.model, params=request.params,
        messages=put(messages_text(request.messages)), status=record.status, error=record.error,
        text=put(record.text), reasoning=put(record.reasoning), raw=put(record.raw),
        finish_reason=record.finish_reason, provider_model=record.provider_model,
        system_fingerprint=record.system_fingerprint, usage=record.usage, latency_ms=record.latency_ms,
        verdict=verdict,
    )
    return event, blobs


def from_event(event: ev.ModelCalled, get_blob: Callable[[str], bytes | None]) -> CallRecord:
    """Return the outcome a recorded model call holds (its texts read back by hash)."""

    def text(digest: str) -> str:
        if not digest:
            return ""
        body = get_blob(digest)
        if body is None:
            raise NotRecorded(f"the recorded text {digest[:16]} of {event.agent}'s call is missing from the log")
        return body.decode("utf-8", "surrogatepass")

    return CallRecord(status=event.status, error=event.error, text=text(event.text), reasoning=text(event.reasoning),
                      raw=text(event.raw), finish_reason=event.finish_reason, provider_model=event.provider_model,
                      system_fingerprint=event.system_fingerprint, usage=event.usage, latency_ms=event.latency_ms)


def read_completion(status: int, body: str, latency_ms: int) -> CallRecord:
    """Return the record of an HTTP answer: the completion's text, reasons, ids and usage as reported."""
    if status != 200:
        return CallRecord(status=status, error=f"HTTP {status}", raw=body, latency_ms=latency_ms)
    try:
        doc = json.loads(body)
        choice = doc["choices"][0]
        message = choice["message"]
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise TypeError("message content is not text")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
        return CallRecord(status=status, error=f"not a chat completion ({type(err).__name__}: {err})", raw=body,
                          latency_ms=latency_ms)
    reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    return CallRecord(
        status=status, text=content, reasoning=reasoning if isinstance(reasoning, str) else "", raw=body,
        finish_reason=text_or_none(choice.get("finish_reason")), provider_model=text_or_none(doc.get("model")),
        system_fingerprint=text_or_none(doc.get("system_fingerprint")), usage=read_usage(doc.get("usage")),
        latency_ms=latency_ms,
    )


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62 else 0


def read_usage(usage: Any) -> ev.ModelUsage:
    """Return token counts from an OpenAI-style ``usage`` (details where the server gives them)."""
    if not isinstance(usage, dict):
        return ev.ModelUsage()
    completion_details = usage.get("completion_tokens_details") or {}
    prompt_details = usage.get("prompt_tokens_details") or {}
    return ev.ModelUsage(
        prompt_tokens=count(usage.get("prompt_tokens")), completion_tokens=count(usage.get("completion_tokens")),
        reasoning_tokens=count(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0,
        cached_tokens=count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0,
    )
