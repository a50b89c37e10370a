"""The engine behind the HTTP API: one writer per log, turns serialized.

``LedgerService`` owns the run.db for as long as the server lives. It holds the
log's writer lock from startup (before ``/init`` too), so a second server on
the same db fails at start, and a lock around every use of the live run, so
concurrent requests never interleave a turn. Read-only endpoints (events,
history, verify, replay) open their own read-only connection and never wait
for a turn. Nothing here speaks HTTP: errors are the library's exceptions and
``app.py`` maps them to status codes.

Three choices the operator makes at start:

* ``require_signatures``: every input must carry its agent's signature; the
  server signs nothing for an agent (non-custodial).
* ``read_only``: serve an existing log without a writer (``/init`` and
  ``/turn`` are refused); reads fold the log as it is on disk.
* ``extend``: a finished study run (its genesis identity says ``turns`` and the
  log has them all) is only reopened for writing when asked.

``GET /events`` never serves the genesis' seed: with seed-derived keys the seed
is every agent's and the engine's private key. The genesis payload comes with
``"seed": null`` and the event with ``"redacted": ["seed"]``; its ``hash`` is
still the stored one (the hash is over the stored bytes, which only the file
holds: verify the file, or ask ``GET /verify``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import msgspec

from ..events.actions import AgentInput
from ..events.config import Config, load_config, load_rules
from ..ledger.authenticity import describe_proof
from ..events.types import ModelCalled
from ..ledger.blobs import check_texts_given, get_blob, put_blobs
from ..ledger.errors import BadInput, LedgerError, WriterBusy
from ..ledger.audit import contract_history as audit_contract
from ..ledger.observation import observe
from ..ledger.replay import load_state
from ..ledger.run import Run, validate_agents
from ..ledger.store import Store
from ..ledger.verify import verify_log
from ..ledger.views import contract_view, event_view, state_view, turn_view
from ..ledger.writer_lock import WriterLock
from ..projections.state import State, state_digest

MAX_EVENTS_PAGE = 1000
DEFAULT_EVENTS_PAGE = 100
REDACTED_GENESIS_FIELDS = ("seed",)


class Conflict(LedgerError):
    """Raised when a request does not fit the run's lifecycle: a turn before /init, a second /init."""


class NotFound(LedgerError):
    """Raised when a request names something the log does not hold (a contract id)."""


# --- the writer lock before there is a log -----------------------------------------


def take_writer_lock(db_path: Path) -> WriterLock:
    """Hold the log's writer lock (creating an empty db file to lock); raise WriterBusy if taken."""
    try:
        return WriterLock.acquire(db_path, create=True)
    except WriterBusy:
        raise WriterBusy(f"{db_path} is already open for writing by another process (another server?)") from None


def release_writer_lock(lock: WriterLock, db_path: Path) -> None:
    """Let go of the lock taken before /init, removing the empty file it made if no run came."""
    if lock.created and db_path.is_file() and db_path.stat().st_size == 0:
        db_path.unlink()
    lock.release()


def is_existing_log(db_path: Path) -> bool:
    """Return whether ``db_path`` holds something to reopen (an empty file waits for /init)."""
    return db_path.is_file() and db_path.stat().st_size > 0


# --- what the endpoints return (the library's views, ledger.views) -------------------------


def public_event_view(row) -> dict[str, Any]:
    """Return a stored event as the API serves it: its view, with the genesis' seed redacted."""
    view = event_view(row)
    if view["kind"] == "run_genesis" and isinstance(view["payload"], dict):
        view["payload"].update(dict.fromkeys(REDACTED_GENESIS_FIELDS))
        view["redacted"] = list(REDACTED_GENESIS_FIELDS)
    return view


def finished_study_turns(state: State) -> int | None:
    """Return the recorded turn count of a study run that has played all of it, else None."""
    turns = state.identity.get("turns") if isinstance(state.identity, dict) else None
    if isinstance(turns, int) and not isinstance(turns, bool) and state.sealed_turn >= turns:
        return turns
    return None


def plain(value: Any) -> Any:
    """Return ``value`` (a Struct, dataclass, bytes...) as JSON-ready builtins."""
    return msgspec.to_builtins(value, enc_hook=lambda obj: obj.hex() if isinstance(obj, bytes) else str(obj))


# --- the service ------------------------------------------------------------------------


class LedgerService:
    """The server's hold on one run.db: the live run (or the lock awaiting /init)."""

    def __init__(self, db_path: str | Path, *, keystore: str | Path | None = None, require_signatures: bool = False,
                 read_only: bool = False, extend: bool = False) -> None:
        self.db_path = Path(db_path)
        self.keystore = keystore
        self.require_signatures, self.read_only = require_signatures, read_only
        self.run: Run | None = None
        self._pre_init_lock = None
        self._lock = threading.Lock()
        if not self.db_path.parent.is_dir():
            raise LedgerError(f"{self.db_path.parent}: no such directory")
        if read_only:
            if not is_existing_log(self.db_path):
                raise LedgerError(f"{self.db_path}: no log to serve read-only")
            with Store(self.db_path) as store:
                load_state(store)  # refuse a file that is not a readable log now, not at the first request
        elif is_existing_log(self.db_path):
            self.run = Run.open(self.db_path, keystore=keystore, require_signatures=require_signatures)
            if not extend and (turns := finished_study_turns(self.run.state)) is not None:
                self.run.close()
                self.run = None
                raise LedgerError(f"{self.db_path} is a finished study run ({turns} of {turns} turns): serve it with "
                                  "--read-only, or --extend to append turns beyond its recorded end")
        else:
            self._pre_init_lock = take_writer_lock(self.db_path)

    def close(self) -> None:
        with self._lock:
            if self.run is not None:
                self.run.close()
                self.run = None
            if self._pre_init_lock is not None:
                release_writer_lock(self._pre_init_lock, self.db_path)
                self._pre_init_lock = None

    # --- lifecycle ----------------------------------------------------------------

    def require_run(self) -> Run:
        if self.read_only:
            raise Conflict("this server is read-only (serve --read-only): it appends nothing")
        if self.run is None:
            raise Conflict("no run yet: POST /init first")
        return self.run

    def current_state(self) -> tuple[State, tuple[int, bytes, int]]:
        """Return the state after the last sealed turn and the log's head (read-only: folded from disk)."""
        if self.read_only:
            with Store(self.db_path) as store:
                return load_state(store), store.head()
        run = self.require_run()
        return run.state, run.store.head()

    def init(self, *, agent_ids: list[str], config: dict | None, seed: int, identity: dict | None,
             rules: dict | None) -> dict[str, Any]:
        """Create the run (genesis); refused when the log already holds one."""
        with self._lock:
            if self.read_only:
                self.require_run()  # refuses: a read-only server appends nothing
            if self.run is not None:
                raise Conflict(f"the log already holds run {self.run.state.run_id}; /init needs an empty log")
            # Verify everything that can be refused before letting go of the lock for Run.create
            checked = load_config(config if config is not None else {"num_agents": len(agent_ids)})
            load_rules(rules)
            validate_agents(agent_ids, checked)
            lock, self._pre_init_lock = self._pre_init_lock, None
            try:  # the held lock passes to the run: no moment without a writer lock
                self.run = Run.create(self.db_path, agents=agent_ids, seed=seed, config=checked, rules=rules,
                                      keystore=self.keystore, identity=identity,
                                      require_signatures=self.require_signatures, writer_lock=lock)
            except BaseException:  # the lock stays ours, or is taken again if the failed creation let it go
                self._pre_init_lock = lock if lock.held else take_writer_lock(self.db_path)
                raise
            state = self.run.state
            return {"run_id": state.run_id, "turn": state.sealed_turn, "agents": list(state.agents),
                    "agent_keys": dict(state.agent_keys), "engine_key": state.engine_key,
                    "head_hash": self.run.head_hash.hex()}

    # --- turns ----------------------------------------------------------------------

    def step(self, inputs: list[AgentInput], calls: list[ModelCalled] = (),
             texts: dict[str, str] | None = None) -> dict[str, Any]:
        """Run the next turn (its model calls first); nothing is appended when the request itself is bad."""
        with self._lock:
            run = self.require_run()
            check_one_input_per_agent(inputs)
            blobs = check_texts_given(run.store.conn, list(calls), texts or {})
            write = (lambda conn: put_blobs(conn, blobs)) if blobs else None
            return turn_view(run.step(inputs, calls=calls, write_extra=write))

    def observation(self, max_turns: int) -> dict[str, Any]:
        """Return what every agent sees at the start of the next turn (the in-process orchestrator's view)."""
        with self._lock:
            run = self.require_run()
            return observe(run.state, run.next_turn, max_turns)

    def text(self, digest: str) -> dict[str, Any]:
        """Return a text a model call names by its hash."""
        with self.reader() as store:
            body = get_blob(store.conn, digest)
        if body is None:
            raise NotFound(f"no text {digest[:16]} in this log")
        return {"hash": digest, "text": body.decode("utf-8", "surrogatepass")}

    # --- reads of the live projection ---------------------------------------------------

    def config(self) -> dict[str, Any]:
        with self._lock:
            if self.run is None and not self.read_only:
                return plain(Config())
            return plain(self.current_state()[0].config)

    def state(self) -> dict[str, Any]:
        with self._lock:
            state, (head_seq, head_hash, _) = self.current_state()
            return {**state_view(state), "head_seq": head_seq, "head_hash": head_hash.hex()}

    def contracts(self, status: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            contracts = self.current_state()[0].contracts.values()
            return [contract_view(c) for c in contracts if status is None or c.status == status]

    def has_contract(self, contract_id: str) -> bool:
        with self._lock:
            return contract_id in self.current_state()[0].contracts

    # --- reads of the log (own read-only connection, no waiting on turns) -----------------

    def reader(self) -> Store:
        """Return a read-only Store on the log (the caller closes it)."""
        if not self.read_only:
            self.require_run()
        return Store(self.db_path)

    def events(self, after_seq: int = -1, limit: int = DEFAULT_EVENTS_PAGE) -> dict[str, Any]:
        """Return up to ``limit`` events after ``after_seq``, and where the next page starts."""
        if limit < 1:
            raise BadInput("limit must be >= 1")
        limit = min(limit, MAX_EVENTS_PAGE)
        with self.reader() as store:
            rows = store.select("seq > ?", [after_seq], limit=limit)
            head_seq = store.head()[0]
        events = [public_event_view(row) for row in rows]
        last = events[-1]["seq"] if events else after_seq
        return {"events": events, "next_after_seq": last, "head_seq": head_seq, "more": last < head_seq}

    def contract_history(self, contract_id: str) -> dict[str, Any]:
        """Return a contract's audited history: every event, the tokens it moved, and its checks."""
        if not self.has_contract(contract_id):
            raise NotFound(f"no contract {contract_id!r} in this run")
        with self.reader() as store:
            return plain(audit_contract(store, contract_id).to_dict())

    def verify(self) -> dict[str, Any]:
        """Return the verifier's verdict on the whole log (chain, signatures, seals)."""
        if not self.read_only:
            self.require_run()
        result = verify_log(self.db_path, workers=1)
        fields = ("ok", "events", "turns", "head_seq", "head_hash", "error", "message")
        verdict = {name: plain(getattr(result, name, None)) for name in fields}
        if result.ok:  # what that proves: integrity; authenticity needs a head the client kept (verify --expect-head)
            with self.reader() as store:
                verdict["proved"] = describe_proof(store.genesis().key_source, pinned=False, trusted_key=False)
        return verdict

    def replay(self, until_turn: int | None = None) -> dict[str, Any]:
        """Return the state refolded from the log up to the end of ``until_turn`` (None: all)."""
        with self.reader() as store:
            state = load_state(store, until_turn)
        return {**state_view(state), "state_digest": state_digest(state)}


def check_one_input_per_agent(inputs: list[AgentInput]) -> None:
    """Raise BadInput when an agent has more than one input in the request."""
    seen: set[str] = set()
    for agent_input in inputs:
        if agent_input.agent_id in seen:
            raise BadInput(f"two inputs from {agent_input.agent_id!r} in one turn; send one input per agent")
        seen.add(agent_input.agent_id)
