"""The orchestrator: agents driven by language models over the chat-completions API.

Every model call is recorded as a ``model_called`` event (texts in the ``blobs``
table by hash), answers become the agents' inputs, and the tokens the provider
reports are what the engine bills. Replay and re-execution serve calls from the
log and never contact a model. See docs/llm.md.
"""

from ..study.policies import register_policy
from .llm_policy import LLM

register_policy("llm", LLM)  # the study's registry learns the llm kind from the layer above it
