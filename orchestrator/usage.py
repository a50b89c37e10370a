"""Token and money cost of a run's model calls: per agent, per turn and for the run.

Tokens are the counts each ``model_called`` event recorded as the provider
reported them (every attempt, failed ones included). Money needs a price table
(TOML, per million tokens, per model):

    [prices."my-model"]
    prompt = 0.15          # uncached prompt tokens
    cached_prompt = 0.075  # prompt tokens the provider served from its cache (default: prompt)
    completion = 0.60      # completion tokens, reasoning included
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from ..events import types as ev
from ..ledger.errors import BadInput
from ..ledger.replay import positioned_events
from ..ledger.store import Store

PER = 1_000_000


@dataclass
class Usage:
    calls: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None

    def add(self, model: str, u: ev.ModelUsage, failed: bool, prices: dict[str, dict[str, float]] | None) -> None:
        """Count one call (an attempt) with its reported usage, and its cost when there are prices."""
        self.calls += 1
        self.failed += failed
        self.prompt_tokens += u.prompt_tokens
        self.cached_tokens += u.cached_tokens
        self.completion_tokens += u.completion_tokens
        self.reasoning_tokens += u.reasoning_tokens
        if prices is not None:
            self.cost = (self.cost or 0.0) + call_cost(model, u, prices)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def call_cost(model: str, u: ev.ModelUsage, prices: dict[str, dict[str, float]]) -> float:
    """Return one call's cost: uncached prompt, cached prompt and completion tokens at the model's prices."""
    price = prices.get(model)
    if price is None:
        raise BadInput(f"the price table has no entry for model {model!r}")
    cached = min(u.cached_tokens, u.prompt_tokens)
    return ((u.prompt_tokens - cached) * price["prompt"] + cached * price.get("cached_prompt", price["prompt"])
            + u.completion_tokens * price["completion"]) / PER


def load_prices(path: str | Path | None) -> dict[str, dict[str, float]] | None:
    """Return the price table in ``path`` (None when no path); BadInput when it is not one."""
    if path is None:
        return None
    try:
        doc = tomllib.loads(Path(path).read_text())
    except OSError as err:
        raise BadInput(f"cannot read price table {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise BadInput(f"{path} is not valid TOML: {err}") from None
    prices = doc.get("prices")
    if not isinstance(prices, dict) or not prices:
        raise BadInput(f"{path} needs a [prices.\"MODEL\"] table with prompt and completion prices")
    for model, entry in prices.items():
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), (int, float)) for k in ("prompt", "completion")):
            raise BadInput(f"{path}: prices for {model!r} need numeric prompt and completion")
    return prices


@dataclass
class UsageReport:
    run: Usage
    by_agent: dict[str, Usage]
    by_turn: dict[int, Usage]

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run.to_dict(), "by_agent": {a: u.to_dict() for a, u in self.by_agent.items()},
                "by_turn": {str(t): u.to_dict() for t, u in self.by_turn.items()}}


def usage_of(calls: Iterable[tuple[int, ev.ModelCalled]], prices: dict | None = None) -> UsageReport:
    """Return the usage of ``(turn, call)`` pairs, per agent (first-call order), per turn and in total."""
    report = UsageReport(run=Usage(), by_agent={}, by_turn={})
    for turn, call in calls:
        for usage in (report.run, report.by_agent.setdefault(call.agent, Usage()),
                      report.by_turn.setdefault(turn, Usage())):
            usage.add(call.model, call.usage, bool(call.error), prices)
    return report


def run_usage(store: Store, prices: dict | None = None) -> UsageReport:
    """Return the usage of every model call in a log."""
    return usage_of(((turn, e) for _, turn, e in positioned_events(store) if isinstance(e, ev.ModelCalled)), prices)
