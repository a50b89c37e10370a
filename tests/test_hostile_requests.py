"""Hundreds of hostile HTTP requests: every one gets an answer, none a 500 or a traceback.

The requests are a fixed, deterministic list (no timing, no randomness): bodies
that are not JSON or not UTF-8, wrong types everywhere, JSON nested thousands
deep, integers far beyond int64, agent ids with NUL, ANSI, zero-width and RTL
characters, junk signatures, odd paths and query strings. They are sent to one
served run with seed-derived keys and one with a keystore, before and after
``/init``; afterwards each log still verifies.
"""

from __future__ import annotations

import itertools
import json
import logging

import pytest
from litestar.testing import TestClient

from simledger.api.app import create_app
from simledger.api.service import LedgerService
from simledger.ledger.verify import verify_log

logging.getLogger("httpx").setLevel(logging.WARNING)

AGENTS = ["agent_0", "agent_1", "agent_2"]
HOSTILE_IDS = ["agent\x00", "\x00", "agent_\u200b0", "a\u202egnp", "\x1b[2J\x1b[31mred", "has space", "x" * 65,
               "engine", "", "../etc/passwd", "agent_0/..", "é", "💥", "a\nb", "a\tb", None, 7, [], {}]
HUGE_INTS = [10**20, -(10**20), 2**63, -(2**63) - 1, 10**400]
JUNK = [None, True, -1, 1.5, "x", "", [], {}, [[]], {"a": {}}, "\x00", "\ud800", 10**30, "9" * 5000]


def deep(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


def deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def raw(route: str, text: str | bytes, method: str = "POST") -> tuple:
    return (method, route, {"content": text if isinstance(text, bytes) else text.encode(),
                            "headers": {"content-type": "application/json"}})


def post(route: str, body) -> tuple:
    return ("POST", route, {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}})


def get(route: str, params: dict | None = None) -> tuple:
    return ("GET", route, {"params": params or {}})


def init_body(**overrides) -> dict:
    return {"config": {"num_agents": 3}, "agent_ids": AGENTS, "seed": 1, **overrides}


def mine(**overrides) -> dict:
    return {"agent_id": "agent_0", "action": {"action": "mine"}, "thinking_units": 1, "output_units": 1, **overrides}


def hostile_inits() -> list[tuple]:
    requests = [raw("/init", text) for text in [b"", b"{", b"null", b"[]", b'"x"', b"\xff\xfe", b"{}" * 3,
                                               deep(5000), deep_object(3000), b'{"agent_ids": NaN}']]
    requests += [raw("/init", json.dumps(init_body(**{field: "DEEP"})).replace('"DEEP"', deep(depth)))
                 for field in ("identity", "config", "rules", "agent_ids") for depth in (100, 999, 1000, 20_000)]
    requests += [post("/init", init_body(agent_ids=["agent_0", "agent_1", bad])) for bad in HOSTILE_IDS]
    requests += [post("/init", init_body(seed=n)) for n in HUGE_INTS]
    requests += [post("/init", init_body(config={"num_agents": 3, "genesis_tokens_per_agent": n})) for n in HUGE_INTS]
    requests += [post("/init", init_body(config={"num_agents": n})) for n in [*HUGE_INTS, 0, -1, 10**6]]
    requests += [post("/init", init_body(**{field: value})) for field in ("config", "rules", "seed")
                 for value in JUNK if value not in (None, {}, -1)]  # (valid: null or {} config/rules, seed -1)
    requests += [post("/init", init_body(identity=value)) for value in JUNK if not isinstance(value, dict | None)]
    requests += [post("/init", init_body(rules={"study_cost": n})) for n in HUGE_INTS]
    return requests


def hostile_turns() -> list[tuple]:
    requests = [raw("/turn", text) for text in [b"", b"{", b"[]", deep(3000), deep_object(3000), b"\xc3\x28"]]
    requests += [raw("/turn", json.dumps({"inputs": [mine(**{field: "DEEP"})]}).replace('"DEEP"', deep(depth)))
                 for field in ("speech", "thinking", "action", "thinking_units") for depth in (65, 999, 1000, 50_000)]
    requests += [post("/turn", {"inputs": [mine(agent_id=bad)]}) for bad in HOSTILE_IDS]
    requests += [post("/turn", {"inputs": [mine(**{field: value})]})
                 for field, value in itertools.product(("thinking_units", "output_units", "action", "speech",
                                                        "thinking", "signature"), [*JUNK, *HUGE_INTS])]
    requests += [post("/turn", {"inputs": [mine(signature=sig)]})
                 for sig in ["", "zz", "00", "0" * 127, "0" * 128, "f" * 128, "0" * 100_000, "\x00" * 128]]
    requests += [post("/turn", {"inputs": value}) for value in JUNK]
    return requests


def hostile_reads() -> list[tuple]:
    requests = [get("/events", {"after_seq": v}) for v in [*HUGE_INTS, "x", "1.5", "", "-1e9", "0x10", "\x00"]]
    requests += [get("/events", {"limit": v}) for v in [*HUGE_INTS, 0, -1, "x", ""]]
    requests += [get("/replay", {"until_turn": v}) for v in [*HUGE_INTS, -1, "x", "", "1e3"]]
    requests += [get("/contracts", {"status": v}) for v in ["\x00", "x" * 10_000, "open", "💥", ""]]
    requests += [get(f"/contracts/{cid}/history") for cid in ["contract_1", "%00", "x" * 5000, "%E2%80%AE", "..",
                                                               "contract_1%0A", "%FF"]]
    requests += [get(route) for route in ["/state", "/config", "/verify", "/nope", "/events/1", "/schema"]]
    requests += [("DELETE", route, {}) for route in ["/state", "/turn", "/init"]]
    requests += [("GET", route, {}) for route in ["/turn", "/init"]]
    return requests


def served(tmp_path, keystore: bool):
    service = LedgerService(tmp_path / "run.db", keystore=tmp_path / "keys" if keystore else None)
    return service, TestClient(create_app(service))


def send_all(client, requests: list[tuple]) -> list[tuple]:
    """Send every request; return those answered with a 500 or with traceback text."""
    bad = []
    for method, route, kwargs in requests:
        response = client.request(method, route, **kwargs)
        if response.status_code >= 500 or "Traceback" in response.text or 'File "' in response.text:
            bad.append((method, route, str(kwargs)[:120], response.status_code, response.text[:200]))
    return bad


@pytest.mark.parametrize("keystore", [False, True])
def test_hostile_requests_never_get_a_500_or_a_traceback(tmp_path, keystore):
    before_init = [*hostile_turns()[:20], *hostile_reads()]
    after_init = [*hostile_inits(), *hostile_turns(), *hostile_reads()]
    assert len(before_init) + len(hostile_inits()) + len(after_init) >= 300
    service, test_client = served(tmp_path, keystore)
    try:
        with test_client as client:
            bad = send_all(client, before_init) + send_all(client, hostile_inits())
            assert service.run is None  # every hostile /init was refused
            assert client.post("/init", json=init_body()).status_code == 200
            bad += send_all(client, after_init)
    finally:
        service.close()
    assert bad == []
    assert verify_log(tmp_path / "run.db").ok
