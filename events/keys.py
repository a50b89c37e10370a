"""Ed25519 keys: where they come from, how events are signed and checked.

Two sources of keys:

* ``SeedKeys`` derives every key from the run's seed and the owner's name.
  This makes experiments reproducible byte for byte, and gives **no secrecy**:
  anyone who knows the seed can sign as any agent. Use it for research runs
  whose signatures only need to prove the log was not edited by accident.
* ``Keystore`` keeps one private key file per owner in a directory. It creates
  the directory 0700 and each file 0600 whatever the umask, and refuses a key
  file that group or others can read or write, a folder they can write (where
  anyone could plant a key), and either one owned by another user. Use it for
  runs whose signatures must mean something.

A private key never enters a log, an error message or a repr.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .envelope import ENCODER, ENGINE
from .limits import is_safe_agent_id

SEED_KEY_DOMAIN = b"simledger/seed-derived-key/v1\x00"
INPUT_DOMAIN = "simledger/agent-input/v1"


class KeystoreError(Exception):
    """Raised when a key is missing, unreadable or unsafe (base of key errors)."""


def public_hex(key: Ed25519PrivateKey) -> str:
    """Return the raw public key of ``key`` as hex."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def key_id(public_key_hex: str) -> str:
    """Return the short id a signer is named by in envelopes: 16 hex of SHA-256(pubkey)."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:16]


def load_public(public_key_hex: str) -> Ed25519PublicKey:
    """Return a public key object from hex (raises ValueError when malformed)."""
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))


def verify_signature(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Return whether ``signature`` is ``public_key``'s signature of ``message``."""
    try:
        public_key.verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


def input_message(run_id: str, turn: int, payload: bytes) -> bytes:
    """Return what an agent signs for one turn's input.

    Binding the run id and turn stops an input from being replayed into another
    run or turn. ``payload`` is the canonical encoding of the ``action_submitted``
    payload (``events.envelope.encode_payload``).
    """
    return hashlib.sha256(ENCODER.encode([INPUT_DOMAIN, run_id, turn, payload])).digest()


def check_private_folder(directory: Path) -> None:
    """Raise KeystoreError unless ``directory`` is a folder of this user that nobody else can write."""
    if not directory.is_dir():
        raise KeystoreError(f"keystore {directory} is not a directory")
    info = directory.stat()
    if info.st_uid != os.geteuid():
        raise KeystoreError(f"refusing keystore {directory}: it belongs to another user (uid {info.st_uid})")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise KeystoreError(f"refusing keystore {directory}: others can write to it, so anyone could plant a key "
                            "(chmod 700 it)")


def check_private_file(path: Path) -> None:
    """Raise KeystoreError unless ``path`` is a regular file of this user that nobody else can read or write."""
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise KeystoreError(f"refusing key file {path}: not a regular file (a symlink?)")
    if info.st_uid != os.geteuid():
        raise KeystoreError(f"refusing key file {path}: it belongs to another user (uid {info.st_uid})")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeystoreError(f"refusing key file {path}: readable by others (chmod 600 it)")


class SeedKeys:
    """Keys derived from (seed, owner name): reproducible, not secret."""

    source = "seed"

    def __init__(self, seed: int) -> None:
        self._seed = seed

    def private_key(self, owner: str) -> Ed25519PrivateKey:
        material = SEED_KEY_DOMAIN + str(self._seed).encode() + b"\x00" + owner.encode()
        return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(material).digest())

    def __repr__(self) -> str:
        return "SeedKeys(<seed-derived>)"


class Keystore:
    """A directory of private keys, one ``<owner>.key`` file (hex) each, mode 0600."""

    source = "keystore"

    def __init__(self, directory: str | Path, *, create: bool = True) -> None:
        self.directory = Path(directory)
        self._create = create
        self._cache: dict[str, Ed25519PrivateKey] = {}

    def _path(self, owner: str) -> Path:
        if owner != ENGINE and (not is_safe_agent_id(owner) or owner.startswith(".")):
            raise KeystoreError(f"unsafe key owner name {ascii(owner)[:80]}")
        return self.directory / f"{owner}.key"

    def private_key(self, owner: str) -> Ed25519PrivateKey:
        if owner in self._cache:
            return self._cache[owner]
        path = self._path(owner)
        try:
            key = self._read_or_create(path, owner)
        except OSError as err:
            raise KeystoreError(f"keystore {self.directory}: {err.strerror or err}") from None
        self._cache[owner] = key
        return key

    def _read_or_create(self, path: Path, owner: str) -> Ed25519PrivateKey:
        if self.directory.exists() or not self._create:
            check_private_folder(self.directory)
        if path.exists() or path.is_symlink():
            check_private_file(path)
            try:
                return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text().strip()))
            except ValueError:
                raise KeystoreError(f"key file {path} does not hold a 32-byte hex Ed25519 key") from None
        if not self._create:
            raise KeystoreError(f"no key for {owner!r} in keystore {self.directory}")
        if not self.directory.exists():
            self.directory.mkdir(parents=True, mode=0o700)
            os.chmod(self.directory, 0o700)  # mkdir's mode is filtered by the umask
        key = Ed25519PrivateKey.generate()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)  # likewise
            handle.write(key.private_bytes_raw().hex() + "\n")
        return key

    def __repr__(self) -> str:
        return f"Keystore({str(self.directory)!r})"
