"""The ``--llm-*`` options shared by ``simledger run`` and ``simledger orchestrate``, declared once.

``with_llm_options`` adds them to a command's signature (typer reads it) and
hands the command one ``LLMOptions`` as its ``llm`` argument.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

Prices = Annotated[Optional[Path], typer.Option("--llm-prices", help="Price table TOML for the money cost (see docs/llm.md).")]

OPTIONS: dict[str, tuple[Any, Any]] = {  # LLMOptions field -> (annotation, default)
    "url": (Annotated[Optional[str], typer.Option("--llm-url", help="Chat-completions endpoint, e.g. http://127.0.0.1:8080/v1 (API key from $SIMLEDGER_LLM_API_KEY or $OPENAI_API_KEY).")], None),
    "model": (Annotated[Optional[str], typer.Option("--llm-model", help="Model name sent with every request.")], None),
    "agents": (Annotated[Optional[str], typer.Option("--llm-agents", help="Comma-separated agents the model plays (default: all); the others play the regime's policy.")], None),
    "template": (Annotated[Optional[Path], typer.Option("--llm-template", help="Prompt template TOML (system, user); default: the shipped one.")], None),
    "temperature": (Annotated[Optional[float], typer.Option("--llm-temperature", min=0.0, max=10.0)], None),
    "top_p": (Annotated[Optional[float], typer.Option("--llm-top-p", min=0.0, max=1.0)], None),
    "seed": (Annotated[Optional[int], typer.Option("--llm-seed", min=0, help="Sampling seed sent with every request (default: derived from the run's seed).")], None),
    "max_tokens": (Annotated[int, typer.Option("--llm-max-tokens", min=1, help="Completion tokens per call at most.")], 1024),
    "structured": (Annotated[str, typer.Option("--llm-structured", help="json_schema, json_object or none (what response_format asks for).")], "json_schema"),
    "retries": (Annotated[int, typer.Option("--llm-retries", min=0, max=20, help="Retries after a timeout, 429 or 5xx.")], 3),
    "backoff": (Annotated[float, typer.Option("--llm-backoff", min=0.0, max=600.0, help="Seconds before the first retry (doubling).")], 1.0),
    "timeout": (Annotated[float, typer.Option("--llm-timeout", min=0.01, help="Seconds per call before it counts as timed out.")], 60.0),
    "concurrency": (Annotated[int, typer.Option("--llm-concurrency", min=1, help="Calls in flight at once.")], 4),
    "turn_budget": (Annotated[Optional[int], typer.Option("--llm-turn-budget", min=1, help="Completion tokens per turn, shared by the LLM agents (caps max_tokens).")], None),
    "run_budget": (Annotated[Optional[int], typer.Option("--llm-run-budget", min=1, help="Stop before a turn once the run used this many tokens (resumable).")], None),
    "prices": (Prices, None),
}


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


assert [f.name for f in fields(LLMOptions)] == list(OPTIONS), "every option is a field, in the same order"


def with_llm_options(command: Callable) -> Callable:
    """Return ``command`` with the ``--llm-*`` options added; it receives them as ``llm=LLMOptions(...)``."""
    signature = inspect.signature(command, eval_str=True)  # typer reads the annotations of __signature__ as given
    added = [inspect.Parameter(f"llm_{name}", inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
             for name, (annotation, default) in OPTIONS.items()]

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        options = LLMOptions(**{name: kwargs.pop(f"llm_{name}", getattr(LLMOptions, name)) for name in OPTIONS})
        return command(*args, llm=options, **kwargs)

    kept = [p for p in signature.parameters.values() if p.name != "llm"]
    wrapper.__signature__ = signature.replace(parameters=kept + added)
    return wrapper
