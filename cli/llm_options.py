"""The ``--llm-*`` options shared by ``simledger run --policy llm`` and ``simledger orchestrate``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

Url = Annotated[Optional[str], typer.Option("--llm-url", help="Chat-completions endpoint, e.g. http://127.0.0.1:8080/v1 (API key from $SIMLEDGER_LLM_API_KEY or $OPENAI_API_KEY).")]
Model = Annotated[Optional[str], typer.Option("--llm-model", help="Model name sent with every request.")]
Agents = Annotated[Optional[str], typer.Option("--llm-agents", help="Comma-separated agents the model drives (default: all); the others play the study policy.")]
TemplateFile = Annotated[Optional[Path], typer.Option("--llm-template", help="Prompt template TOML (system, user); default: the shipped one.")]
Temperature = Annotated[Optional[float], typer.Option("--llm-temperature", min=0.0)]
TopP = Annotated[Optional[float], typer.Option("--llm-top-p", min=0.0, max=1.0)]
Seed = Annotated[Optional[int], typer.Option("--llm-seed", help="Sampling seed sent with every request (default: derived from the run's seed).")]
MaxTokens = Annotated[int, typer.Option("--llm-max-tokens", min=1, help="Completion tokens per call at most.")]
Structured = Annotated[str, typer.Option("--llm-structured", help="json_schema, json_object or none (what response_format asks for).")]
Retries = Annotated[int, typer.Option("--llm-retries", min=0, help="Retries after a timeout, 429 or 5xx.")]
Backoff = Annotated[float, typer.Option("--llm-backoff", min=0.0, help="Seconds before the first retry (doubling).")]
Timeout = Annotated[float, typer.Option("--llm-timeout", min=0.01, help="Seconds per call before it counts as timed out.")]
Concurrency = Annotated[int, typer.Option("--llm-concurrency", min=1, help="Calls in flight at once.")]
TurnBudget = Annotated[Optional[int], typer.Option("--llm-turn-budget", min=1, help="Completion tokens per turn, shared by the LLM agents (caps max_tokens).")]
RunBudget = Annotated[Optional[int], typer.Option("--llm-run-budget", min=1, help="Stop before a turn once the run used this many tokens (resumable).")]
Prices = Annotated[Optional[Path], typer.Option("--llm-prices", help="Price table TOML for the money cost (see docs/llm.md).")]


@dataclass(frozen=True)
class LLMOptions:
    url: str | None = None
    model: str | None = None
    agents: str | None = None
    template: Path | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    max_tokens: int = 1024
    structured: str = "json_schema"
    retries: int = 3
    backoff: float = 1.0
    timeout: float = 60.0
    concurrency: int = 4
    turn_budget: int | None = None
    run_budget: int | None = None
    prices: Path | None = None


def options_from(params: dict) -> LLMOptions:
    """Return the LLMOptions among a command's parameters (those named ``llm_<field>``)."""
    return LLMOptions(**{name[4:]: value for name, value in params.items() if name.startswith("llm_")})
