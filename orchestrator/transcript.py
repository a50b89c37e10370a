"""An agent's turns as the log recorded them: the calls, what it thought and answered, what happened.

Read from the log alone (texts from the ``blobs`` table): no model is contacted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..events import types as ev
from ..ledger.blobs import get_blob
from ..ledger.errors import BadInput
from ..ledger.replay import positioned_events
from ..ledger.store import Store


@dataclass
class TurnEntry:
    turn: int
    attempts: list[dict[str, Any]] = field(default_factory=list)  # status, error, latency_ms, tokens per attempt
    answer: str = ""  # the final attempt's text, as received
    reasoning: str = ""  # the provider's reasoning text, if it sent one
    verdict: str = ""
    thinking: Any = ""
    action: Any = None
    speech: Any = None
    thinking_units: Any = 0
    output_units: Any = 0
    outcome: str = "accepted"
    fee: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def agent_transcript(store: Store, agent: str) -> list[TurnEntry]:
    """Return one entry per turn ``agent`` submitted an input in, in turn order."""
    entries: dict[int, TurnEntry] = {}
    genesis = None
    text = lambda digest: get_blob(store.conn, digest).decode("utf-8", "surrogatepass") if digest else ""  # noqa: E731
    for _, turn, e in positioned_events(store):
        if isinstance(e, ev.RunGenesis):
            genesis = e
        if getattr(e, "agent", None) != agent:
            continue
        entry = entries.setdefault(turn, TurnEntry(turn=turn))
        match e:
            case ev.ModelCalled():
                entry.attempts.append({"attempt": e.attempt, "status": e.status, "error": e.error,
                                       "latency_ms": e.latency_ms, "prompt_tokens": e.usage.prompt_tokens,
                                       "completion_tokens": e.usage.completion_tokens,
                                       "reasoning_tokens": e.usage.reasoning_tokens})
                entry.answer, entry.reasoning, entry.verdict = text(e.text), text(e.reasoning), e.verdict
            case ev.ActionSubmitted():
                entry.thinking, entry.action, entry.speech = e.thinking, e.action, e.speech
                entry.thinking_units, entry.output_units = e.thinking_units, e.output_units
            case ev.ActionRejected():
                entry.outcome = f"rejected: {e.reason} ({e.detail})"
            case ev.InferenceFeeCharged():
                entry.fee = e.fee
    if genesis is not None and agent not in genesis.agents:
        raise BadInput(f"no agent {agent!r} in this run")
    return [entries[t] for t in sorted(entries)]
