"""A run: create it (genesis), step it turn by turn, reopen it to continue.

This is the adapter between the pure engine and the store. Each turn's events
are enveloped, hashed, signed and folded into the live state as the engine
emits them, then written in one SQLite transaction together with the derived
read models and checkpoint, so a turn is in the log whole or not at all.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import msgspec

from ..events import types as ev
from ..events.actions import AgentInput
from ..events.config import Config, Rules, load_config, load_rules
from ..events.envelope import ENGINE, encode_payload, payload_json, seal_envelope
from ..events.keys import Keystore, SeedKeys, input_message, key_id, load_public, public_hex, verify_signature
from ..events.limits import TooDeep, check_depth, is_safe_agent_id
from ..projections.reducers import apply_event
from ..projections.state import State, TurnMetrics, snapshot_bytes
from . import engine
from .errors import BadInput, RunStateError, WriteMismatch
from .readmodels import refresh_read_models
from .replay import load_state
from .store import Store, event_row, library_version
from .writer_lock import WriterLock

CHECKPOINT_EVERY = 10


class Recorder:
    """Envelopes, signs and folds events for one turn; keeps their rows until the turn commits."""

    def __init__(self, state: State, head_seq: int, head_hash: bytes, signers: dict[str, Any],
                 engine_key_id: str, agent_key_ids: dict[str, str], turn: int, *, mark_custodial: bool = False) -> None:
        self.state, self._mark_custodial = state, mark_custodial
        self.seq, self.prev_hash, self.turn = head_seq, head_hash, turn
        self._signers, self._engine_key_id, self._agent_key_ids = signers, engine_key_id, agent_key_ids
        self.rows: list[tuple] = []
        self.hashes: list[bytes] = []
        self.events: list[Any] = []

    def emit(self, event: Any, *, signature: bytes | None = None) -> int:
        seq = self.seq + 1
        if isinstance(event, ev.ActionSubmitted):
            if signature is None and self._mark_custodial:
                event = msgspec.structs.replace(event, custodial=True)
            header, digest = seal_envelope(event, seq=seq, turn=self.turn, prev_hash=self.prev_hash,
                                           signer=self._agent_key_ids[event.agent])
            if signature is None:
                message = input_message(self.state.run_id, self.turn, encode_payload(event))
                signature = self._signers[event.agent].sign(message)
        else:
            header, digest = seal_envelope(event, seq=seq, turn=self.turn, prev_hash=self.prev_hash,
                                           signer=self._engine_key_id)
            signature = self._signers[ENGINE].sign(digest)
        apply_event(self.state, event, seq, self.turn)
        self.rows.append(event_row(header, digest, signature, payload_json(event)))
        self.hashes.append(digest)
        self.events.append(event)
        self.seq, self.prev_hash = seq, digest
        return seq

    def turn_hashes(self) -> list[bytes]:
        return self.hashes


class Run:
    """A run.db open for writing: the live state and the log's head."""

    def __init__(self, store: Store, state: State, keys, *, require_signatures: bool = False) -> None:
        self.store, self.state, self._keys = store, state, keys
        # Non-custodial: refuse every input its agent did not sign (the server signs nothing for agents).
        self.require_signatures = require_signatures
        self._seq, self._head, _ = store.head()
        self._data_version: int | None = None  # as of this writer's last turn; None: check every read model
        self._signers: dict[str, Any] = {}
        self._derive_key_ids()
        if state.engine_key:
            self._load_signers()

    def _derive_key_ids(self) -> None:
        """Name each signer by the key id of its genesis public key (what envelopes record)."""
        self._agent_key_ids = {agent: key_id(pub) for agent, pub in self.state.agent_keys.items()}
        self._engine_key_id = key_id(self.state.engine_key) if self.state.engine_key else ""

    # --- creating and opening -------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, *, agents: list[str], seed: int, config: Config | dict | None = None,
               rules: Rules | dict | None = None, keystore: str | Path | None = None,
               identity: dict | None = None, run_id: str | None = None,
               require_signatures: bool = False, writer_lock: WriterLock | None = None) -> "Run":
        """Create ``path`` with its genesis (turn 0, sealed) and return the open run.

        With a keystore the genesis records a random nonce that enters the run id:
        two runs made with the same parameters and keys still differ, so an input
        signed for one never verifies in the other. A seed-derived run has none
        (its id, like its whole log, is a function of its parameters).

        The schema, meta rows and genesis commit in one transaction: until then the
        file is empty (creating a run over it replaces it), after it the run exists.
        ``writer_lock`` hands over the file's lock a caller already holds (a server
        waiting for ``/init``).
        """
        config, rules, identity = load_settings(agents, config, rules, identity)
        keys = Keystore(keystore) if keystore else SeedKeys(seed)
        nonce = os.urandom(16).hex() if keystore else msgspec.UNSET
        signers = {name: keys.private_key(name) for name in [ENGINE, *agents]}
        genesis = build_genesis(agents=agents, seed=seed, config=config, rules=rules, signers=signers,
                                key_source=keys.source, identity=identity, run_id=run_id, nonce=nonce)
        store = Store(path, create=True, lock=writer_lock)
        try:
            run = cls(store, State(), keys, require_signatures=require_signatures)
            run._signers = signers
            run._engine_key_id = key_id(genesis.engine_key)  # the genesis itself is signed before it is folded
            run._commit_turn(0, lambda rec: (rec.emit(genesis), engine.process_seal(rec, 0)))
        except BaseException:
            store.close()
            raise
        run._derive_key_ids()
        return run

    @classmethod
    def open(cls, path: str | Path, *, keystore: str | Path | None = None,
             require_signatures: bool = False) -> "Run":
        """Reopen a run for writing; an unsealed last turn cannot exist (turns commit whole)."""
        store = Store(path, write=True)
        try:
            state = load_state(store)
            if not state.run_id:
                raise RunStateError(f"{path} has no genesis")
            keys = Keystore(keystore, create=False) if keystore else SeedKeys(state.seed)
            return cls(store, state, keys, require_signatures=require_signatures)
        except Exception:
            store.close()
            raise

    def _load_signers(self) -> None:
        self._signers = {name: self._keys.private_key(name) for name in [ENGINE, *self.state.agents]}
        if public_hex(self._signers[ENGINE]) != self.state.engine_key:
            raise RunStateError("the key source's engine key does not match the log's genesis")

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- stepping ---------------------------------------------------------------

    @property
    def next_turn(self) -> int:
        return self.state.sealed_turn + 1

    def step(self, inputs: Iterable[AgentInput | dict], *, calls: Sequence[ev.ModelCalled] = (),
             write_extra: Callable[[Any], None] | None = None) -> TurnMetrics:
        """Run the next turn with these inputs, append it atomically, return its metrics.

        ``calls`` are the model calls that produced the inputs (recorded first in
        the turn); ``write_extra(conn)`` runs inside the turn's transaction (the
        texts those calls name go in with the turn, or not at all).
        """
        inputs = [coerce_input(i) for i in inputs]
        turn = self.next_turn
        self.check_inputs(turn, inputs)
        self.check_calls(calls)

        def body(rec: Recorder) -> None:
            for call in calls:
                rec.emit(call)
            engine.process_turn(rec, turn, inputs)

        self._commit_turn(turn, body, write_extra)
        return self.state.turns[-1]

    def check_calls(self, calls: Sequence[ev.ModelCalled]) -> None:
        """Raise BadInput unless every call is a model call made for an agent of this run."""
        for call in calls:
            if not isinstance(call, ev.ModelCalled):
                raise BadInput(f"a turn's calls must be model calls, got {type(call).__name__}")
            if call.agent not in self.state.accounts:
                raise BadInput(f"model call for unknown agent {call.agent!r}")

    def check_inputs(self, turn: int, inputs: list[AgentInput]) -> None:
        """Raise BadInput for what cannot be recorded: unknown agents, bad or (when required) missing signatures."""
        check_inputs(self.state, turn, inputs, require_signatures=self.require_signatures)

    def _commit_turn(self, turn: int, body, write_extra: Callable[[Any], None] | None = None) -> None:
        rec = Recorder(self.state, self._seq, self._head, self._signers, self._engine_key_id,
                       self._agent_key_ids, turn, mark_custodial=self._keys.source == "keystore")
        try:
            body(rec)
            with self.store.transaction():
                self.store.insert_events(rec.rows)
                check_written(self.store, rec.rows)
                if write_extra is not None:
                    write_extra(self.store.conn)
                if turn == 0:
                    self.store.set_meta("run_id", self.state.run_id)
                data_version = self.store.data_version()
                refresh_read_models(self.store, self.state, rec.events,
                                    rewrite_all=data_version != self._data_version)
                if turn % CHECKPOINT_EVERY == 0:
                    self.store.conn.execute("INSERT OR REPLACE INTO checkpoints(turn, seq, state) VALUES (?, ?, ?)",
                                            [turn, rec.seq, snapshot_bytes(self.state)])
        except BaseException:
            # Rebuild the head and the live state from the log: the turn did not land, or (an
            # interrupt just after its COMMIT) it did.
            self._seq, self._head, _ = self.store.head()
            self.state = load_state(self.store) if self._seq >= 0 else State()
            raise
        self._seq, self._head, self._data_version = rec.seq, rec.prev_hash, data_version

    @property
    def head_hash(self) -> bytes:
        return self._head

    def engine_signing_key(self):
        """Return the engine's private key (held by this writer) to sign the log's head with."""
        return self._signers[ENGINE]


def check_written(store: Store, rows: list[tuple]) -> None:
    """Raise WriteMismatch unless the log now ends with exactly ``rows`` (read back before the commit).

    A trigger, a second writer or a faulty disk layer could drop, alter or add a
    row; the turn must not be acknowledged then. Raising inside the transaction
    rolls the whole turn back.
    """
    written = store.select("seq >= ?", [rows[0][0]]) if rows else []
    if written == rows:
        return
    for want, got in itertools.zip_longest(rows, written):
        if want != got:
            break
    what = "extra" if want is None else "missing" if got is None or got[0] != want[0] else "altered"
    seq = (want or got)[0]
    raise WriteMismatch(f"the log on disk does not hold the turn just written: seq {seq} is {what}; "
                        "the turn was rolled back (a trigger or another writer on this file?)")


def load_settings(agents: list[str], config: Config | dict | None, rules: Rules | dict | None,
                  identity: dict | None) -> tuple[Config, Rules, dict]:
    """Return the validated config, rules and identity of a new run (BadInput/InvalidConfig before any key is made)."""
    config = load_config(config if config is not None else {"num_agents": len(agents)})
    rules = load_rules(rules)
    validate_agents(agents, config)
    identity = dict(identity or {})
    try:
        check_depth(identity, "identity")
    except TooDeep as err:
        raise BadInput(str(err)) from None
    return config, rules, identity


def build_genesis(*, agents: list[str], seed: int, config: Config, rules: Rules, signers: dict[str, Any],
                  key_source: str, identity: dict, run_id: str | None, nonce: Any = msgspec.UNSET) -> ev.RunGenesis:
    """Return a run's genesis event: settings from load_settings, the signers' public keys, the run id."""
    return ev.RunGenesis(
        run_id=run_id or compute_run_id(seed, agents, config, rules, identity, nonce), seed=seed,
        agents=list(agents), config=config, rules=rules, engine_key=public_hex(signers[ENGINE]),
        agent_keys={a: public_hex(signers[a]) for a in agents}, key_source=key_source,
        library_version=library_version(), identity=identity, nonce=nonce,
    )


def check_inputs(state: State, turn: int, inputs: list[AgentInput], *, require_signatures: bool = False) -> None:
    """Raise BadInput for what cannot be recorded: unknown agents, bad or (when required) missing signatures."""
    for agent_input in inputs:
        if agent_input.agent_id not in state.accounts:
            raise BadInput(f"unknown agent {ascii(agent_input.agent_id)[:80]}")
        if agent_input.signature is None and require_signatures:
            raise BadInput(f"{agent_input.agent_id}'s input is not signed, and this run requires every input "
                           "signed by its agent (see api/client_signing.py)")
        if agent_input.signature is not None:
            if not verify_input_signature(state, turn, agent_input):
                raise BadInput(f"signature of {agent_input.agent_id}'s input does not verify")


def coerce_input(value: AgentInput | dict) -> AgentInput:
    """Return an AgentInput from a dict in the ``/turn`` shape (BadInput when it is not one)."""
    if isinstance(value, AgentInput):
        return value
    try:
        return msgspec.convert(value, AgentInput)
    except msgspec.ValidationError as err:
        raise BadInput(f"malformed input: {err}") from None


def verify_input_signature(state: State, turn: int, agent_input: AgentInput) -> bool:
    """Return whether a non-custodial input's signature is its agent's, for this run and turn."""
    try:
        signature = bytes.fromhex(agent_input.signature or "")
        public = load_public(state.agent_keys[agent_input.agent_id])
    except (ValueError, KeyError):
        return False
    payload = encode_payload(engine.submitted_event(agent_input))
    return verify_signature(public, signature, input_message(state.run_id, turn, payload))


def validate_agents(agents: list[str], config: Config) -> None:
    if len(agents) != config.num_agents:
        raise BadInput(f"{len(agents)} agent ids given but config.num_agents is {config.num_agents}")
    for agent in agents:
        if not is_safe_agent_id(agent):
            raise BadInput(f"invalid agent id {ascii(agent)[:80]}: agent ids are 1-64 characters of "
                           f"A-Z a-z 0-9 _ . - (and not {ENGINE!r})")
    if len(set(agents)) != len(agents):
        raise BadInput("agent ids must be unique")


def compute_run_id(seed: int, agents: list[str], config: Config, rules: Rules, identity: dict,
                   nonce: str | msgspec.UnsetType = msgspec.UNSET) -> str:
    """Return a run id derived from what defines the run, and its genesis nonce when it has one."""
    from ..events.envelope import ENCODER

    defining = [seed, agents, config, rules, identity] + ([] if nonce is msgspec.UNSET else [nonce])
    digest = hashlib.sha256(ENCODER.encode(defining)).hexdigest()
    return f"run-{digest[:16]}"
