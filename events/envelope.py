"""The envelope: where an event sits in the log, and the bytes that are hashed.

Canonical encoding is msgpack from one module-level Encoder with sorted map
keys: integers and strings have one encoding, floats are stored as their
IEEE-754 bits, so the same event gives the same bytes on every machine and
Python version.

    hash = SHA-256(msgpack([format_version, seq, turn, kind, actor, contract_id,
                            payload_version, payload, prev_hash, signer]))

The signature is over ``hash`` for engine events, and over the input message
(see ``events.keys.input_message``) for an agent's ``action_submitted``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

import msgspec

from .config import LEGACY_RULES, RULES_BEFORE_V4, RULES_BEFORE_V5, RULES_BEFORE_V6
from .types import EVENT_TYPES, Event, actor_of, contract_of, kind_of

FORMAT_VERSION = 1
ZERO_HASH = bytes(32)
ENGINE = "engine"

ENCODER = msgspec.msgpack.Encoder(order="sorted")
JSON_ENCODER = msgspec.json.Encoder(order="sorted")
_EVENT_DECODER = msgspec.msgpack.Decoder(Event)


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """One stored event: position, payload bytes, chain link and signature."""

    seq: int
    turn: int
    kind: str
    actor: str
    contract_id: str | None
    payload_version: int
    payload: bytes
    prev_hash: bytes
    signer: str
    hash: bytes
    signature: bytes
    format_version: int = FORMAT_VERSION


HASHED_FIELDS = (
    "format_version", "seq", "turn", "kind", "actor", "contract_id", "payload_version", "payload", "prev_hash",
    "signer",
)


def encode_payload(event: Any) -> bytes:
    """Return the canonical bytes of an event payload."""
    return ENCODER.encode(event)


def hashed_bytes(
    *, format_version: int, seq: int, turn: int, kind: str, actor: str, contract_id: str | None,
    payload_version: int, payload: bytes, prev_hash: bytes, signer: str,
) -> bytes:
    """Return the canonical bytes of an envelope without its hash and signature."""
    return ENCODER.encode(
        [format_version, seq, turn, kind, actor, contract_id, payload_version, payload, prev_hash, signer]
    )


def envelope_hash(env: Envelope) -> bytes:
    """Return the SHA-256 the envelope's ``hash`` must equal."""
    return hashlib.sha256(
        hashed_bytes(
            format_version=env.format_version, seq=env.seq, turn=env.turn, kind=env.kind,
            actor=env.actor, contract_id=env.contract_id, payload_version=env.payload_version,
            payload=env.payload, prev_hash=env.prev_hash, signer=env.signer,
        )
    ).digest()


def seal_envelope(event: Any, *, seq: int, turn: int, prev_hash: bytes, signer: str) -> tuple[tuple, bytes]:
    """Return (header, hash) for a new event at ``seq``; the header lists HASHED_FIELDS' values in order.

    This is the write path's hot loop (once per event), so the header is the very
    tuple that is encoded: msgpack encodes a tuple and a list alike, so the bytes
    are ``hashed_bytes``' own.
    """
    header = (FORMAT_VERSION, seq, turn, kind_of(event), actor_of(event),
              contract_of(event), payload_version(event), ENCODER.encode(event), prev_hash, signer)
    return header, hashlib.sha256(ENCODER.encode(header)).digest()


def payload_version(event: Any, *, since: int | None = None) -> int:
    """Return the version ``event`` is written as: the newest version whose added fields it sets.

    A version that only added optional fields (``ADDED``, UNSET by default)
    does not change the bytes of an event that leaves them unset, so such an
    event is written as the version before them (never below ``since``, by
    default the kind's ``SINCE``), and logs stay byte-identical.
    """
    added = event.ADDED
    if not added:
        return event.VERSION
    # One pass, no list or argument unpacking: every agent input is a kind with an added field.
    version = max(event.SINCE if since is None else since, min(added.values()) - 1)
    for name, added_in in added.items():
        if added_in > version and getattr(event, name) is not msgspec.UNSET:
            version = added_in
    return version


def get_written_version(event: Any, stored_version: int) -> int:
    """Return the version a writer of ``stored_version``'s era gave an event with the fields it decoded
    (and maybe upcast) to: from a ``SINCE`` of that era on, that version; below the first, the version its
    optional fields alone imply."""
    since = max((v for v in (*event.EARLIER_SINCE, event.SINCE) if v <= stored_version), default=0)
    return payload_version(event, since=since)


def get_direct_versions(cls: type) -> range:
    """Return the payload versions of ``cls`` that decode as they are (the current one, and any older one
    from ``SINCE`` on that lacks only fields added as UNSET)."""
    return range(max(cls.SINCE, min(cls.ADDED.values(), default=cls.VERSION + 1) - 1), cls.VERSION + 1)


_DIRECT_VERSIONS = {kind: get_direct_versions(cls) for kind, cls in EVENT_TYPES.items()}


def upcast_genesis_to_v3(data: dict) -> dict:
    """Return a v1/v2 genesis as v3: the rule variants it predates take the values it was played with."""
    return {**data, "rules": {**LEGACY_RULES, **(data.get("rules") or {})}}


def upcast_genesis_to_v4(data: dict) -> dict:
    """Return a v3 genesis as v4: the money rules it predates (R4, R11) take the values it was played with."""
    return {**data, "rules": {**RULES_BEFORE_V4, **(data.get("rules") or {})}}


def upcast_genesis_to_v5(data: dict) -> dict:
    """Return a v4 genesis as v5: the stake rules it predates (R7, R9) take the values it was played with."""
    return {**data, "rules": {**RULES_BEFORE_V5, **(data.get("rules") or {})}}


def upcast_genesis_to_v6(data: dict) -> dict:
    """Return a v5 genesis as v6: the fee rule it predates (R3) takes the value it was played with."""
    return {**data, "rules": {**RULES_BEFORE_V6, **(data.get("rules") or {})}}


# Upcasters: (kind, from_version) -> function(dict) -> dict of version + 1, for a
# version that changed more than adding UNSET fields. A later version adds
# entries here and never rewrites stored bytes.
UPCASTERS: dict[tuple[str, int], Callable[[dict], dict]] = {
    ("run_genesis", 1): dict,  # version 2 only added the optional nonce
    ("run_genesis", 2): upcast_genesis_to_v3,
    ("run_genesis", 3): upcast_genesis_to_v4,
    ("run_genesis", 4): upcast_genesis_to_v5,
    ("run_genesis", 5): upcast_genesis_to_v6,
}


class PayloadError(ValueError):
    """Raised when payload bytes do not decode to the event kind they claim."""


def decode_payload(kind: str, version: int, payload: bytes) -> Any:
    """Return the typed event for stored payload bytes, upcasting older versions."""
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise PayloadError(f"unknown event kind {kind!r}")
    try:
        if version in _DIRECT_VERSIONS[kind]:
            event = _EVENT_DECODER.decode(payload)
        else:
            data = msgspec.msgpack.decode(payload)
            while version < cls.VERSION:
                step = UPCASTERS.get((kind, version))
                if step is None:
                    raise PayloadError(f"no upcaster for {kind} v{version}")
                data, version = step(data), version + 1
            if version != cls.VERSION:
                raise PayloadError(f"{kind} payload version {version} is newer than this library reads")
            event = msgspec.convert(data, Event)
    except (msgspec.DecodeError, msgspec.ValidationError) as err:
        raise PayloadError(f"payload does not decode as {kind}: {err}") from None
    if type(event) is not cls:  # the same test as kind_of(event) != kind, without the attribute walk
        raise PayloadError(f"payload is a {kind_of(event)}, envelope says {kind}")
    return event


def payload_json(event: Any) -> str:
    """Return the readable JSON copy of a payload stored beside the bytes."""
    return JSON_ENCODER.encode(event).decode()
