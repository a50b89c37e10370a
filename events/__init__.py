"""simledger.events: the event vocabulary, its canonical encoding, keys and Merkle proofs."""

from .config import Config, InvalidConfig, Rules, exact, load_config, load_rules
from .envelope import ENGINE, FORMAT_VERSION, ZERO_HASH, Envelope, PayloadError, decode_payload, envelope_hash
from .types import EVENT_TYPES, Event, kind_of

__all__ = [
    "Config", "InvalidConfig", "Rules", "exact", "load_config", "load_rules", "ENGINE",
    "FORMAT_VERSION", "ZERO_HASH", "Envelope", "PayloadError", "decode_payload", "envelope_hash",
    "EVENT_TYPES", "Event", "kind_of",
]
