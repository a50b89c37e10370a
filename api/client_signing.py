"""Signing a ``/turn`` input on the client side (non-custodial agents).

By default the server signs each input with the agent's key from the run's key
source (custodial, as the original engine; a keystore run records the input
with ``"custodial": true``). An agent that keeps its own key signs its input
itself and sends the hex signature in the input's ``signature`` field; the
server verifies it against the agent's public key in the run's genesis and
records it as given (no ``custodial`` field), so the log proves the agent, not
the server, authored the input. A server started with ``--require-signatures``
accepts nothing else.

The run id in the signed message makes a signature good for one run only: a
keystore run's id includes a random nonce from its genesis, so even a run
created with the same parameters and keys refuses it.

What is signed (see ``events.keys.input_message``)::

    SHA-256(msgpack(["simledger/agent-input/v1", run_id, turn, payload]))

where ``payload`` is the canonical encoding of the ``action_submitted`` event
the engine will record for the input. ``run_id`` and the next turn come from
``GET /state`` (``run_id``, ``next_turn``). Example::

    from simledger.api.client_signing import sign_input
    state = httpx.get(f"{base}/state").json()
    item = {"agent_id": "agent_0", "action": {"action": "mine"}, "thinking_units": 10, "output_units": 20}
    item["signature"] = sign_input(my_key, state["run_id"], state["next_turn"], item)
    httpx.post(f"{base}/turn", json={"inputs": [item, ...]})

The input must be sent exactly as signed (same values; key order does not
matter, the encoding sorts keys).
"""

from __future__ import annotations

from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..events.actions import AgentInput
from ..events.envelope import encode_payload
from ..events.keys import input_message
from ..ledger.engine import submitted_event


def input_payload(input_dict: dict[str, Any]) -> bytes:
    """Return the canonical ``action_submitted`` payload the engine will record for this input."""
    fields = {key: value for key, value in input_dict.items() if key != "signature"}
    agent_input = msgspec.convert(fields, AgentInput)
    return encode_payload(submitted_event(agent_input))


def signing_message(run_id: str, turn: int, input_dict: dict[str, Any]) -> bytes:
    """Return the 32 bytes an agent signs for its input of ``turn`` in run ``run_id``."""
    return input_message(run_id, turn, input_payload(input_dict))


def load_private_key(private_key: Ed25519PrivateKey | bytes | str) -> Ed25519PrivateKey:
    """Return an Ed25519 key from a key object, 32 raw bytes, or their hex (a keystore file's content)."""
    if isinstance(private_key, Ed25519PrivateKey):
        return private_key
    raw = bytes.fromhex(private_key.strip()) if isinstance(private_key, str) else private_key
    return Ed25519PrivateKey.from_private_bytes(raw)


def sign_input(private_key: Ed25519PrivateKey | bytes | str, run_id: str, turn: int,
               input_dict: dict[str, Any]) -> str:
    """Return the hex signature to put in ``input_dict["signature"]`` for turn ``turn``."""
    key = load_private_key(private_key)
    return key.sign(signing_message(run_id, turn, input_dict)).hex()
