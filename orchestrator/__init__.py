"""The orchestrator: agents driven by language models over the chat-completions API.

Every model call is recorded as a ``model_called`` event (texts in the ``blobs``
table by hash), answers become the agents' inputs, and the tokens the provider
reports are what the engine bills. Replay and re-execution serve calls from the
log and never contact a model. See docs/llm.md.
"""

from ..study.model_runs import ModelRuns, register_model_runs
from ..study.policies import register_policy
from .llm_policy import LLM
from .society_runs import play_society_run, read_llm_table, resume_society_run, society_plan

# The study learns, from the layer above it, the llm policy kind and how to play a model-driven run.
register_policy("llm", LLM)
register_model_runs(ModelRuns(validate=read_llm_table, plan=society_plan, play=play_society_run,
                              resume=resume_society_run))
