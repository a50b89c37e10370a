"""What a verified log proves, said in one line.

Verification proves integrity: every hash links, every signature and seal checks
against the keys the genesis records. It cannot prove on its own that those are
the right keys: whoever writes a new genesis can sign a whole new history. So, as
in Trillian and Tessera, authenticity is relative to something the reader kept:

* a pinned head (``verify --expect-head``: a checkpoint or head hash saved
  earlier, e.g. the ``<name>.head`` a study run writes beside its log), or
* a trusted engine key (``verify --engine-key PUBKEY``): the log must be signed
  by that key, which only helps if its private half is secret.

Seed-derived keys are never secret: anyone holding the seed (it is in the
genesis) can re-sign a rewritten log, so for such a log only a pinned head
proves anything about who wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..events import types as ev
from .errors import BadInput


@dataclass(frozen=True)
class EngineKeyCheck:
    """Whether the log's engine key is the one the reader trusts."""

    ok: bool
    message: str

    def to_dict(self) -> dict:
        return {"ok": self.ok, "message": self.message}


def parse_engine_key(text: str) -> str:
    """Return a trusted engine key as lowercase hex; BadInput unless it is 64 hex characters."""
    want = text.strip().lower()
    if len(want) != 64 or any(c not in "0123456789abcdef" for c in want):
        raise BadInput("--engine-key expects the engine's public key as 64 hex characters (the genesis' engine_key)")
    return want


def check_engine_key(genesis: ev.RunGenesis, trusted: str) -> EngineKeyCheck:
    """Return whether ``genesis`` records ``trusted`` (64 hex: a raw Ed25519 public key) as its engine key."""
    want = parse_engine_key(trusted)
    if genesis.engine_key == want:
        return EngineKeyCheck(ok=True, message=f"the log is signed by the engine key you trust ({want[:16]}…)")
    return EngineKeyCheck(ok=False, message=(f"the log's engine key is {str(genesis.engine_key)[:16]}…, not the key "
                                             f"you trust ({want[:16]}…): another engine wrote or re-signed it"))


SIGNED_BY_AGENT, SIGNED_BY_SERVER, SIGNED_BY_SEED_KEY = "agent", "server for agent", "seed key"


def input_signed_by(key_source: str, custodial: bool) -> str:
    """Return who signed a recorded input: its agent, the server on its behalf (custodial), or a seed-derived key.

    A seed-derived key is held by whoever holds the seed (the engine, and anyone
    who reads the genesis), so such an input proves nothing about its agent.
    """
    if custodial:
        return SIGNED_BY_SERVER
    return SIGNED_BY_SEED_KEY if key_source == "seed" else SIGNED_BY_AGENT


def describe_proof(key_source: str, *, pinned: bool, trusted_key: bool) -> str:
    """Return the one line saying what a log that verified has proved (and what it has not)."""
    proved = ["the chain, signatures and seals are intact"]
    if pinned:
        proved.append("the log is the head you pinned (or only grew from it)")
    if trusted_key:
        proved.append("it is signed by the engine key you trust")
    line = "proved: " + ", and ".join(proved)
    if key_source == "seed":
        if pinned:
            return line + "; its keys derive from the seed, so the pinned head is what proves authenticity"
        return (line + "; NOT who wrote it: its keys derive from the seed in the genesis, so anyone holding the "
                "seed could have re-signed a rewritten log (pin a head with --expect-head)")
    if pinned or trusted_key:
        return line
    return (line + " under the keys its genesis names; NOT that those are the real keys "
            "(pin a head with --expect-head, or trust a key with --engine-key)")
