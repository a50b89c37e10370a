"""Signed heads: a checkpoint of the whole log, to catch truncation and rollback later.

Plain verification proves every event links to the one before it, so a log
cut after its last good turn still verifies. A signed head pins the log's
length and content at a moment: keep it, and :func:`verify_head` later tells
whether the log is still that log or a longer one that contains it.

The export is a C2SP checkpoint (https://c2sp.org/tlog-checkpoint) in the
signed-note format (https://c2sp.org/signed-note)::

    simledger/<run_id>                      origin
    <number of events>                      tree size, decimal
    <base64 RFC 9162 Merkle root>           over every event hash, in seq order
    head <hex hash of the last event>       extension lines
    turn <last sealed turn>

    — simledger/<run_id> <base64(key id (4 bytes) || Ed25519 signature of the text above)>

The key id is SHA-256(key name || 0x0A || 0x01 || public key)[:4]; the key is
the run's engine key, and a checkpoint is trusted only if it verifies against
the engine key the log's genesis records.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..events import merkle
from ..events import types as ev
from ..events.envelope import ENGINE
from ..events.keys import Keystore, KeystoreError, SeedKeys, public_hex, verify_signature
from .errors import LedgerError
from .proofs import HEX_HASH, compute_consistency_proof, compute_root, iter_event_hashes, range_root
from .store import Store

if TYPE_CHECKING:
    from .run import Run

ORIGIN_PREFIX = "simledger/"
ED25519_TYPE = b"\x01"
EM_DASH = "\u2014"
MAX_NOTE_BYTES = 64 * 1024
MAX_SIGNATURES = 16


class BadCheckpoint(LedgerError):
    """Raised when a checkpoint is malformed, or names neither a checkpoint file nor a head hash."""


@dataclass
class TreeHead:
    """The log's size, Merkle root over all event hashes, last hash and last turn."""

    size: int
    root: bytes
    head_hash: bytes
    turn: int


@dataclass
class Checkpoint:
    """A parsed checkpoint note: its signed text, body fields and signature lines."""

    text: str
    origin: str
    size: int
    root: bytes
    extensions: list[str]
    signatures: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # (key name, key id, signature)

    @property
    def head_hash(self) -> str | None:
        return self.extension("head")

    @property
    def turn(self) -> int | None:
        value = self.extension("turn")
        return int(value) if value is not None and value.isdigit() else None

    def extension(self, name: str) -> str | None:
        for line in self.extensions:
            key, _, value = line.partition(" ")
            if key == name:
                return value
        return None


@dataclass
class HeadCheck:
    """Outcome of :func:`verify_head`: ok, a one-line message, and the sizes compared."""

    ok: bool
    message: str
    expected_size: int | None = None
    current_size: int | None = None
    consistency_proof: list[str] = field(default_factory=list)  # hex nodes, when the log grew
    first_missing_seq: int | None = None  # the log stops short of the pinned head from this seq on
    first_new_seq: int | None = None  # the log goes on beyond the pinned head from this seq on

    def to_dict(self) -> dict:
        return {"ok": self.ok, "message": self.message, "expected_size": self.expected_size,
                "current_size": self.current_size, "consistency_proof": self.consistency_proof,
                "first_missing_seq": self.first_missing_seq, "first_new_seq": self.first_new_seq}


# --- the signed-note format ------------------------------------------------------------


def note_key_id(name: str, public_raw: bytes) -> bytes:
    """Return the 4-byte signed-note key id of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_TYPE + public_raw).digest()[:4]


def is_valid_key_name(name: str) -> bool:
    """Return whether ``name`` may name a note key (non-empty, no space, no plus)."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def format_body(origin: str, size: int, root: bytes, extensions: Iterable[str]) -> str:
    """Return the checkpoint text: origin, size, base64 root and extension lines, each ending in a newline."""
    lines = [origin, str(size), base64.b64encode(root).decode(), *extensions]
    return "".join(line + "\n" for line in lines)


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> str:
    """Return ``text`` as a signed note: a blank line and one signature line by ``key`` under ``name``."""
    public_raw = bytes.fromhex(public_hex(key))
    signature = key.sign(text.encode())
    encoded = base64.b64encode(note_key_id(name, public_raw) + signature).decode()
    return f"{text}\n{EM_DASH} {name} {encoded}\n"


def parse_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """Return (signed text, signature lines) of a signed note; raise BadCheckpoint when malformed."""
    if len(note.encode()) > MAX_NOTE_BYTES:
        raise BadCheckpoint("checkpoint is too large to be a signed note")
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise BadCheckpoint("checkpoint contains control characters")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise BadCheckpoint("checkpoint has no blank line before its signatures")
    text, signature_block = note[:split + 1], note[split + 2:]
    signatures = []
    for line in signature_block[:-1].split("\n"):
        match = re.fullmatch(EM_DASH + r" (\S+) (\S+)", line)
        if match is None:
            raise BadCheckpoint(f"malformed signature line {line[:60]!r}")
        try:
            raw = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            raise BadCheckpoint("a signature line is not base64") from None
        if len(raw) < 5:
            raise BadCheckpoint("a signature line is too short")
        signatures.append((match.group(1), raw[:4], raw[4:]))
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise BadCheckpoint(f"checkpoint has {len(signatures)} signatures (1 to {MAX_SIGNATURES} expected)")
    return text, signatures


def parse_checkpoint(note: str) -> Checkpoint:
    """Return the checkpoint in a signed note; raise BadCheckpoint when its text is not a checkpoint body."""
    text, signatures = parse_note(note)
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise BadCheckpoint("checkpoint text needs an origin, a size and a root hash, each on its own line")
    origin, size_text, root_text, *extensions = lines
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", size_text):
        raise BadCheckpoint(f"checkpoint size {size_text[:30]!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        root = b""
    if len(root) != 32:
        raise BadCheckpoint("checkpoint root hash is not 32 bytes of base64")
    return Checkpoint(text=text, origin=origin, size=int(size_text), root=root, extensions=extensions,
                      signatures=signatures)


def check_signature(checkpoint: Checkpoint, name: str, public_raw: bytes) -> str | None:
    """Return why the checkpoint is not signed by the key (name, public key), or None when it is."""
    key_id = note_key_id(name, public_raw)
    mine = [sig for sig_name, sig_id, sig in checkpoint.signatures if sig_name == name and sig_id == key_id]
    if not mine:
        return f"the checkpoint is not signed by this run's engine key ({name}, key id {key_id.hex()})"
    public = Ed25519PublicKey.from_public_bytes(public_raw)
    if not all(verify_signature(public, sig, checkpoint.text.encode()) for sig in mine):
        return "the checkpoint's signature does not verify against this run's engine key"
    return None


# --- the log's tree head -----------------------------------------------------------------


def compute_tree_head(store: Store) -> TreeHead:
    """Return the tree head of the whole log (it must be non-empty and end on a seal)."""
    head_seq, head_hash, turn = store.head()
    if head_seq < 0:
        raise LedgerError(f"{store.path} has no events")
    root, size = compute_root(iter_event_hashes(store))
    if size != head_seq + 1:
        raise LedgerError(f"{store.path}: {size} events but the last seq is {head_seq}; run `simledger verify`")
    if store.last_turn_seq(turn) != head_seq:
        raise LedgerError(f"{store.path}: turn {turn} is not sealed; a head is only exported at a turn's seal")
    return TreeHead(size=size, root=root, head_hash=head_hash, turn=turn)


def engine_public_raw(genesis: ev.RunGenesis) -> bytes:
    try:
        raw = bytes.fromhex(genesis.engine_key)
    except (TypeError, ValueError):
        raw = b""
    if len(raw) != 32:
        raise LedgerError("the genesis records no usable engine key")
    return raw


def origin_of(genesis: ev.RunGenesis) -> str:
    """Return the checkpoint origin (and key name) of a run: ``simledger/<run_id>``."""
    return origin_of_run(genesis.run_id)


def origin_of_run(run_id: str) -> str:
    origin = ORIGIN_PREFIX + run_id
    if not is_valid_key_name(origin):
        raise LedgerError(f"run id {run_id!r} cannot name a checkpoint (it holds a space or '+')")
    return origin


# --- export ------------------------------------------------------------------------------


def get_engine_key(genesis: ev.RunGenesis, keystore: str | Path | None) -> Ed25519PrivateKey:
    """Return the engine's private key (seed-derived, or from the keystore) checked against the genesis."""
    try:
        key = Keystore(keystore, create=False).private_key(ENGINE) if keystore else SeedKeys(genesis.seed).private_key(ENGINE)
    except KeystoreError as err:
        raise LedgerError(str(err)) from None
    if public_hex(key) != genesis.engine_key:
        source = f"keystore {keystore}" if keystore else "the run's seed (a keystore run needs --keystore)"
        raise LedgerError(f"the engine key from {source} is not the key this log's genesis records")
    return key


def export_head(path: str | Path, *, keystore: str | Path | None = None, verify: bool = True) -> str:
    """Return the signed checkpoint of the log at ``path`` (its whole length, at its last seal).

    The log is verified first (``verify=False`` skips it): the engine key must not
    vouch for a log it did not write.
    """
    if verify:
        from .verify import require_verified

        require_verified(path, "refusing to sign the head of a log that does not verify")
    with Store(path) as store:
        genesis = store.genesis()
        return sign_head(store, origin_of(genesis), get_engine_key(genesis, keystore))


def sign_head(store: Store, origin: str, key: Ed25519PrivateKey) -> str:
    """Return the signed checkpoint of the whole log in ``store``."""
    head = compute_tree_head(store)
    body = format_body(origin, head.size, head.root, [f"head {head.head_hash.hex()}", f"turn {head.turn}"])
    return sign_note(body, origin, key)


def head_file_of(log_path: str | Path) -> Path:
    """Return where a log's signed head is kept beside it: ``runs/baseline_101.db`` -> ``runs/baseline_101.head``."""
    return Path(log_path).with_suffix(".head")


def write_run_head(run: "Run") -> Path:
    """Write the signed head of the open ``run`` beside its log (``<name>.head``); return the file.

    The writer signs what it just wrote (each turn was read back before its commit),
    so this costs one pass over the event hashes, not a verification. Pin the file
    somewhere the log's owner cannot rewrite: ``verify --expect-head`` checks a log
    against it later.
    """
    note = sign_head(run.store, origin_of_run(run.state.run_id), run.engine_signing_key())
    path = head_file_of(run.store.path)
    write_file_atomically(path, note)
    return path


def write_file_atomically(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` completely or not at all (a temporary file renamed into place)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


# --- verification ------------------------------------------------------------------------


def load_expected(expected: str | Path) -> Checkpoint | str:
    """Return the checkpoint in the file ``expected``, or ``expected`` itself when it is a hex head hash."""
    text = str(expected).strip()
    if HEX_HASH.match(text.lower()) and not Path(text).is_file():
        return text.lower()
    path = Path(expected)
    if not path.is_file():
        raise BadCheckpoint(f"{expected}: neither a checkpoint file nor a 64-hex head hash")
    raw = path.read_bytes()
    if len(raw) > MAX_NOTE_BYTES:
        raise BadCheckpoint(f"{path}: too large to be a checkpoint")
    try:
        note = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadCheckpoint(f"{path}: not UTF-8 text, so not a checkpoint") from None
    try:
        return parse_checkpoint(note)
    except BadCheckpoint as err:
        raise BadCheckpoint(f"{path}: {err}") from None


def verify_head(path: str | Path, expected: str | Path) -> HeadCheck:
    """Return whether the log at ``path`` is the head ``expected`` names, or a log that only grew from it.

    ``expected`` is a checkpoint file (from ``simledger head``) or a hex head hash.
    Fails on a log shorter than the checkpoint (truncated, or a rolled-back copy),
    on a different root or head at the checkpoint's size (rewritten history), and
    on a checkpoint not signed by the engine key the log's genesis records. A
    longer log passes only with a verifying RFC 9162 consistency proof.
    """
    want = load_expected(expected)
    with Store(path) as store:
        if isinstance(want, str):
            return check_head_hash(store, want)
        return check_checkpoint(store, want)


def check_head_hash(store: Store, want: str) -> HeadCheck:
    """Check the log against a bare head hash: that event must be in the log (a signed checkpoint says more)."""
    size = store.head()[0] + 1
    rows = store.conn.execute("SELECT seq FROM events WHERE hash = ? ORDER BY seq LIMIT 1", [want]).fetchall()
    if not rows:
        return HeadCheck(ok=False, current_size=size, message=(
            f"expected head {want[:16]}… is not in this log of {size} events: the log was truncated, "
            "rolled back or rewritten (or it is another run)"))
    seq = rows[0][0]
    if seq == size - 1:
        return HeadCheck(ok=True, expected_size=size, current_size=size,
                         message=f"head matches: seq {seq} is the expected head {want[:16]}…")
    return HeadCheck(ok=True, expected_size=seq + 1, current_size=size, first_new_seq=seq + 1, message=(
        f"the log grew from the expected head (seq {seq}, {want[:16]}…) to {size} events: seqs {seq + 1}-{size - 1} "
        "are beyond the pinned head; the hash chain links them (plain verify checks every link)"))


def check_checkpoint(store: Store, checkpoint: Checkpoint) -> HeadCheck:
    """Check the log against a signed checkpoint: signature, origin, size, root, head and consistency."""
    genesis = store.genesis()
    origin = origin_of(genesis)
    old = checkpoint.size
    if checkpoint.origin != origin:
        return HeadCheck(ok=False, expected_size=old, message=(
            f"the checkpoint is for {checkpoint.origin!r}, this log is {origin!r}"))
    if problem := check_signature(checkpoint, origin, engine_public_raw(genesis)):
        return HeadCheck(ok=False, expected_size=old, message=problem)
    size = store.head()[0] + 1
    if size < old:
        return HeadCheck(ok=False, expected_size=old, current_size=size, first_missing_seq=size, message=(
            f"TRUNCATED or ROLLED BACK: the log has {size} events, the checkpoint commits to {old}"
            + (f" (through turn {checkpoint.turn})" if checkpoint.turn is not None else "")
            + f": seqs {size}-{old - 1} of the pinned head are missing"))
    if old == 0:
        return HeadCheck(ok=False, expected_size=old, current_size=size, message="the checkpoint is of an empty log")
    old_root = range_root(store, 0, old)
    if old_root != checkpoint.root:
        return HeadCheck(ok=False, expected_size=old, current_size=size, message=(
            f"REWRITTEN or ROLLED BACK: the log's first {old} events do not have the checkpoint's Merkle root "
            f"(an event at or before seq {old - 1} differs from the pinned head's)"))
    at_size = store.select("seq = ?", [old - 1])[0].hash
    if checkpoint.head_hash is not None and checkpoint.head_hash != at_size:
        return HeadCheck(ok=False, expected_size=old, current_size=size, message=(
            f"the event at seq {old - 1} is not the checkpoint's head {checkpoint.head_hash[:16]}…"))
    if size == old:
        return HeadCheck(ok=True, expected_size=old, current_size=size, message=(
            f"head matches the signed checkpoint: {size} events, root {checkpoint.root.hex()[:16]}…"))
    new_root, _ = compute_root(iter_event_hashes(store, 0, size))
    proof = compute_consistency_proof(store, old, size)
    if not merkle.verify_consistency(old, size, old_root, new_root, proof):
        return HeadCheck(ok=False, expected_size=old, current_size=size, message=(
            f"the consistency proof from {old} to {size} events does not verify"))
    return HeadCheck(ok=True, expected_size=old, current_size=size, consistency_proof=[p.hex() for p in proof],
                     first_new_seq=old,
                     message=(f"the log only grew: {old} -> {size} events (seqs {old}-{size - 1} are beyond the "
                              f"pinned head), consistency proof of {len(proof)} hashes verifies against the signed "
                              "checkpoint"))
