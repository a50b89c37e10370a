"""The ``llm`` policy: each agent's turn is one chat-completions answer, read as one action.

Agents' calls for a turn run in parallel (bounded by ``concurrency``); results
come back in agent order whatever order the server answers in. A failed attempt
(timeout, connection error, 429, 5xx) is retried with exponential backoff, each
attempt recorded. Whatever the answer is, it becomes the agent's input as is:
an answer that is not JSON, names another agent, or holds no valid action is
submitted unchanged and the engine records it as a ``malformed`` rejection.

Billing (see docs/llm.md): ``thinking_units`` are the reasoning tokens the
provider reports, ``output_units`` the rest of the completion tokens, summed
over the agent's attempts this turn; prompt tokens are input, not output, and
the engine's fee prices model output only (they are in the cost accounting).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Callable, Literal

import msgspec
from msgspec import Meta

from ..events import types as ev
from ..events.actions import AgentInput, parse_action
from ..ledger.errors import BadInput, RunStateError
from ..study.policy import AgentView, PolicyKind
from .calls import CallRecord, CallRequest, to_event
from .observation import agent_observation
from .prompt import check_template, default_template, render_messages
from .transport import Transport, pause

RETRY_STATUSES = frozenset({408, 409, 429})


class LLMSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="llm",
                  tag_field="kind"):
    """The ``llm`` policy's parameters: what decides the requests, recorded in the genesis with the
    agents they play (endpoint, timeout and concurrency are not: they may change on a resume)."""

    model: Annotated[str, Meta(min_length=1, max_length=200)]
    template: dict[str, str] = msgspec.field(default_factory=default_template)  # recorded in full
    temperature: Annotated[float, Meta(ge=0, le=10)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] | None = None
    max_tokens: Annotated[int, Meta(ge=1, le=10**7)] = 1024
    structured: Literal["json_schema", "json_object", "none"] = "json_schema"
    max_retries: Annotated[int, Meta(ge=0, le=20)] = 3
    backoff_s: Annotated[float, Meta(ge=0, le=600)] = 1.0
    turn_token_budget: Annotated[int, Meta(ge=1)] | None = None  # completion tokens per turn, shared by the LLM agents

    def __post_init__(self) -> None:
        try:
            check_template(self.template, "the llm policy's template")
        except BadInput as err:
            raise ValueError(str(err)) from None


class AgentDecision(msgspec.Struct, frozen=True, kw_only=True):
    input: AgentInput
    calls: list[ev.ModelCalled]
    blobs: dict[str, bytes]


def is_retryable(record: CallRecord) -> bool:
    """Return whether an attempt failed in a way worth retrying (no answer, overload, server error)."""
    if not record.error:
        return False
    return record.status == 0 or record.status >= 500 or record.status in RETRY_STATUSES


def strip_fences(text: str) -> str:
    """Return ``text`` without a surrounding Markdown code fence (```json ... ```), which models often add."""
    body = text.strip()
    if body.startswith("```") and body.endswith("```") and len(body) >= 6:
        body = body[3:-3]
        first_line, _, rest = body.partition("\n")
        body = rest if first_line.strip().isalpha() or not first_line.strip() else body
    return body.strip()


def read_answer(agent: str, record: CallRecord) -> tuple[Any, str, Any, str]:
    """Return (action as submitted, thinking, speech, verdict) for the final attempt's answer."""
    if record.error:
        return None, "", None, f"no answer: {record.error}"
    try:
        answer = json.loads(strip_fences(record.text))
    except ValueError as err:
        return record.text, "", None, f"answer is not JSON ({err})"
    if not isinstance(answer, dict):
        return answer, "", None, "answer is not a JSON object"
    for field in ("agent_id", "agent"):
        claimed = answer.get(field)
        if claimed is not None and claimed != agent:
            return record.text, "", None, f"answer is for {claimed!r}, not {agent}"
    thinking = answer.get("thinking") if isinstance(answer.get("thinking"), str) else ""
    speech = answer.get("speech") if isinstance(answer.get("speech"), str) else None
    if "action" not in answer:
        return answer, thinking, speech, "answer holds no action"
    action = answer["action"]
    parsed = parse_action(action)
    return action, thinking, speech, "ok" if not isinstance(parsed, str) else f"not a valid action: {parsed}"


def billed_units(records: list[CallRecord]) -> tuple[int, int]:
    """Return (thinking_units, output_units): reported reasoning tokens, and the other completion tokens."""
    reasoning = sum(r.usage.reasoning_tokens for r in records)
    completion = sum(r.usage.completion_tokens for r in records)
    return reasoning, max(0, completion - reasoning)


class LLMPolicy:
    """Decides for the agents it plays by asking a model through a transport, all of a turn's calls at once."""

    def __init__(self, settings: LLMSettings, *, run_seed: int, concurrency: int = 4) -> None:
        self.settings, self.run_seed, self.concurrency = settings, run_seed, max(1, concurrency)

    def act(self, view: AgentView) -> AgentInput:
        """The registry's one-agent interface: refused, a model's calls must be recorded with the turn."""
        raise RunStateError(f"{view.agent_id} is played by a language model: run it with `simledger run --policy llm` "
                            "or `simledger orchestrate`, which record every model call")

    def params(self, agents: int) -> dict[str, Any]:
        """Return the request parameters of this run's calls (part of every call's key)."""
        s = self.settings
        max_tokens = s.max_tokens
        if s.turn_token_budget is not None:
            max_tokens = max(1, min(max_tokens, s.turn_token_budget // max(1, agents)))
        params = {"temperature": s.temperature, "top_p": s.top_p, "max_tokens": max_tokens,
                  "seed": s.seed if s.seed is not None else self.run_seed,
                  "response_format": s.structured}
        return {name: value for name, value in params.items() if value is not None}

    def decide(self, observation: dict[str, Any], agents: list[str], transport: Transport,
               on_call: Callable[[CallRequest, CallRecord], None] | None = None) -> list[AgentDecision]:
        """Return one decision per agent, in the order of ``agents``."""
        return asyncio.run(self._decide_all(observation, agents, transport, on_call))

    async def _decide_all(self, observation, agents, transport, on_call) -> list[AgentDecision]:
        gate = asyncio.Semaphore(self.concurrency)
        params = self.params(len(agents))
        tasks = [self._decide_one(observation, agent, params, transport, gate, on_call) for agent in agents]
        return list(await asyncio.gather(*tasks))

    async def _decide_one(self, observation, agent, params, transport, gate, on_call) -> AgentDecision:
        messages = render_messages(self.settings.template, agent_observation(observation, agent))
        attempts: list[tuple[CallRequest, CallRecord]] = []
        for attempt in range(self.settings.max_retries + 1):
            request = CallRequest(agent=agent, turn=observation["turn"], attempt=attempt, model=self.settings.model,
                                  params=params, messages=messages)
            async with gate:
                record = await transport.call(request)
            attempts.append((request, record))
            if on_call is not None:
                on_call(request, record)
            if not is_retryable(record) or attempt == self.settings.max_retries:
                break
            await pause(transport, self.settings.backoff_s * 2**attempt)
        action, thinking, speech, verdict = read_answer(agent, attempts[-1][1])
        thinking_units, output_units = billed_units([record for _, record in attempts])
        calls, blobs = [], {}
        for index, (request, record) in enumerate(attempts):
            event, texts = to_event(request, record, verdict if index == len(attempts) - 1 else "")
            calls.append(event)
            blobs.update(texts)
        agent_input = AgentInput(agent_id=agent, action=action, thinking=thinking, speech=speech,
                                 thinking_units=thinking_units, output_units=output_units)
        return AgentDecision(input=agent_input, calls=calls, blobs=blobs)


LLM = PolicyKind(params=LLMSettings, build=lambda params, seed: LLMPolicy(params, run_seed=seed), replayable=False)
