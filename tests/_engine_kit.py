"""Pre/post helpers for the engine's tests: build a small run, step it with hand-written inputs, read a turn's events.

The engine test files import it as ``_engine_kit`` (tests/conftest.py puts ``tests/`` on ``sys.path``).

Inputs are plain dicts in the original engine's ``/turn`` shape. Units default to
zero, so a turn bills nothing unless a test asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simledger.events import types as ev
from simledger.events.envelope import decode_payload
from simledger.ledger.run import Run
from simledger.ledger.store import Store

AGENTS = ["a", "b", "c", "d"]
PPM = 1_000_000
# A turn in which nobody mines still records its (empty) lottery.
NO_BLOCK = ev.BlockNotProduced(entrants=[], total_weight_ppm=0, threshold_ppm=20 * PPM)
QUIET = (ev.ActionSubmitted, ev.TurnSealed)


def make_run(tmp_path: Path, *, agents: list[str] | None = None, seed: int = 7, genesis: int = 1000,
             rules: dict | None = None, auction: bool = True, **config: Any) -> Run:
    """Return a fresh run of ``agents`` (default a, b, c, d) holding ``genesis`` tokens each.

    With ``auction`` (the default) turn 1 is played idle, so nobody bid and the
    cores went by fill in core order to a, b, c, d (R13): the run's next turn is 2.
    """
    agents = list(agents or AGENTS)
    cfg = {"num_agents": len(agents), "genesis_tokens_per_agent": genesis, **config}
    run = Run.create(tmp_path / f"run_{len(list(tmp_path.glob('run_*.db')))}.db", agents=agents, seed=seed,
                     config=cfg, rules=rules)
    if auction:
        step(run)
    return run


def act(agent: str, action: str | None = None, *, thinking: Any = 0, output: Any = 0, raw: Any = None,
        **fields: Any) -> dict:
    """Return one input: ``act("a", "stake", amount=5)``; ``raw=`` sends an arbitrary action value."""
    body = raw if action is None else {"action": action, **fields}
    return {"agent_id": agent, "action": body, "thinking_units": thinking, "output_units": output}


def offer(counterparty: str = "b", arbitrator: str = "c", *, price: int = 100, delivery_turn: int = 4,
          proposer_locked: int = 30, counterparty_locked: int = 20, arbitrator_locked: int = 10,
          penalty: int = 40, arbitrator_fee: int = 15, contract_type: str = "service", **extra: Any) -> dict:
    """Return a contract offer in the driver's shape (defaults: the standard contract of the contract tests)."""
    return {
        "counterparty": counterparty, "arbitrator": arbitrator, "contract_type": contract_type,
        "terms": {"description": "deliver", "price": price, "delivery_turn": delivery_turn},
        "collateral": {"proposer_locked": proposer_locked, "counterparty_locked": counterparty_locked,
                       "arbitrator_locked": arbitrator_locked},
        "settlement_type": "attested", "penalty": penalty, "arbitrator_fee": arbitrator_fee, **extra,
    }


@dataclass
class TurnLog:
    """The events one ``step`` appended (seal included) and their seqs."""

    turn: int
    seqs: list[int]
    all: list[Any]
    inputs: list[int] = field(default_factory=list)  # seqs of the turn's action_submitted, in order

    @property
    def events(self) -> list[Any]:
        """The turn's events without its seal."""
        return [e for e in self.all if not isinstance(e, ev.TurnSealed)]

    @property
    def effects(self) -> list[Any]:
        """The turn's events without inputs, seal, and an empty lottery (what the inputs caused)."""
        return [e for e in self.all if not isinstance(e, QUIET) and not is_empty_lottery(e)]

    @property
    def seal(self) -> ev.TurnSealed:
        return self.all[-1]

    def of(self, *kinds: type) -> list[Any]:
        return [e for e in self.all if isinstance(e, kinds)]



def is_empty_lottery(event: Any) -> bool:
    return isinstance(event, ev.BlockNotProduced) and not event.entrants


def read_events(store: Store, start_seq: int = 0) -> list[tuple[int, int, Any]]:
    """Return (seq, turn, event) of the stored log from ``start_seq``."""
    return [(seq, turn, decode_payload(kind, pv, payload))
            for seq, turn, kind, pv, payload in store.rows(start_seq=start_seq,
                                                           columns=("seq", "turn", "kind", "payload_version",
                                                                    "payload"))]


def step(run: Run, *inputs: dict) -> TurnLog:
    """Play one turn with ``inputs`` and return what it appended to the log."""
    start = run.store.head()[0] + 1
    turn = run.next_turn
    run.step(list(inputs))
    rows = read_events(run.store, start)
    log = TurnLog(turn=turn, seqs=[s for s, _, _ in rows], all=[e for _, _, e in rows])
    log.inputs = [s for s, _, e in rows if isinstance(e, ev.ActionSubmitted)]
    return log


def account(run: Run, agent: str):
    return run.state.accounts[agent]


def balances(run: Run) -> dict[str, int]:
    return {agent: a.balance for agent, a in run.state.accounts.items()}


def rejected(log: TurnLog, index: int = 0) -> tuple[str, str]:
    """Return (action, reason) of the turn's ``index``-th rejection."""
    rejection = log.of(ev.ActionRejected)[index]
    return rejection.action, rejection.reason


def assert_accounting(run: Run) -> None:
    """Assert the token identity: everything held equals genesis + minted - sunk."""
    state = run.state
    assert state.held_tokens() == state.expected_tokens()
