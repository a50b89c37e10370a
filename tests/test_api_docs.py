"""The API's docs: served from the app alone (no outside URL), every action shape, typed answers, every status."""

from __future__ import annotations

import logging
import re

import msgspec
import pytest
from litestar.testing import TestClient

from simledger.api.app import create_app
from simledger.api.schemas import StateView, TurnData, TurnError
from simledger.api.service import LedgerService
from simledger.events.actions import ACTION_NAMES, Action

logging.getLogger("httpx").setLevel(logging.WARNING)

AGENTS = ["agent_0", "agent_1"]
LINKS = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.fixture
def client(tmp_path):
    service = LedgerService(tmp_path / "run.db")
    with TestClient(create_app(service)) as test_client:
        yield test_client
    service.close()


@pytest.fixture
def document(client) -> dict:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()


def init(client) -> None:
    body = {"config": {"num_agents": len(AGENTS)}, "agent_ids": AGENTS, "seed": 3}
    assert client.post("/init", json=body).status_code == 200


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger"])
def test_docs_page_and_its_assets_load_from_the_app_with_no_outside_url(client, page):
    response = client.get(page)
    assert response.status_code == 200 and "SwaggerUIBundle(" in response.text
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", response.text, re.I), "an outside URL in the page"
    links = LINKS.findall(response.text)
    assert {link.rsplit("/", 1)[-1] for link in links} >= {"swagger-ui-bundle.js", "swagger-ui.css",
                                                         "swagger-ui-standalone-preset.js"}
    for link in links:
        asset = client.get(link)
        assert asset.status_code == 200 and len(asset.content) > 500, link
    assert "SwaggerUIBundle" in client.get("/schema/assets/swagger-ui-bundle.js").text


def test_docs_assets_do_not_serve_outside_their_folder(client):
    assert client.get("/schema/assets/../../etc/passwd").status_code == 404
    assert client.get("/schema/assets/no-such-file.js").status_code == 404


def test_an_inputs_action_is_the_tagged_union_of_every_action_shape(document):
    schemas = document["components"]["schemas"]
    action = schemas["AgentInput"]["properties"]["action"]
    assert action["discriminator"]["propertyName"] == "action"
    assert set(action["discriminator"]["mapping"]) == set(ACTION_NAMES)
    refs = [item["$ref"] for item in action["oneOf"]]
    assert sorted(refs) == sorted(action["discriminator"]["mapping"].values())
    for cls in Action.__args__:
        shape = schemas[cls.__name__]
        assert shape["properties"]["action"] == {"enum": [cls.__struct_config__.tag]}
        assert set(shape["properties"]) == {"action", *cls.__struct_fields__}
    offer = schemas["ContractOffer"]["properties"]
    assert offer["terms"] == {"$ref": "#/components/schemas/Terms"} and "Terms" in schemas


def test_a_malformed_action_is_still_accepted_and_rejected_by_the_engine(client):
    """The docs describe the shapes; the API still takes anything and the engine records the rejection."""
    init(client)
    inputs = [{"agent_id": "agent_0", "action": {"action": "fly"}}, {"agent_id": "agent_1", "action": 7}]
    response = client.post("/turn", json={"inputs": inputs})
    assert response.status_code == 200
    assert [e["reason"] for e in response.json()["data"]["errors"]] == ["malformed", "malformed"]


def schema_of(document: dict, path: str, method: str = "get", status: str = "200") -> dict:
    return document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]


def test_state_and_turn_answers_are_typed_and_match_what_the_app_sends(client, document):
    schemas = document["components"]["schemas"]
    assert schema_of(document, "/state") == {"$ref": "#/components/schemas/StateView"}
    init(client)
    state = client.get("/state").json()
    assert set(state) == set(schemas["StateView"]["properties"]) == set(StateView.__struct_fields__)
    assert set(state["agents"][0]) == set(schemas["AgentView"]["properties"])
    assert set(state["last_seal"]) == set(schemas["SealView"]["properties"])
    turn = client.post("/turn", json={"inputs": [{"agent_id": "agent_0", "action": {"action": "stake",
                                                                                      "amount": -1}}]})
    data = turn.json()["data"]
    assert set(data) == set(schemas["TurnData"]["properties"]) == set(TurnData.__struct_fields__)
    assert schemas["TurnData"]["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/TurnError"}
    assert set(data["errors"][0]) == set(TurnError.__struct_fields__)
    msgspec.convert(data, TurnData)


# (method, path, body or None, whether /init ran first, the status the app answers)
CALLS = [
    ("get", "/state", None, False, 409), ("post", "/turn", {"inputs": []}, False, 409),
    ("get", "/events", None, False, 409), ("get", "/contracts", None, False, 409),
    ("get", "/verify", None, False, 409), ("get", "/replay", None, False, 409),
    ("get", "/contracts/contract_1/history", None, False, 409), ("get", "/config", None, False, 200),
    ("post", "/init", {"agent_ids": "agent_0"}, False, 400), ("post", "/init", {"agent_ids": AGENTS}, True, 409),
    ("post", "/turn", {"inputs": [{"agent_id": "nobody"}]}, True, 400), ("post", "/turn", {"inputs": []}, True, 200),
    ("get", "/state", None, True, 200), ("get", "/events?limit=0", None, True, 400),
    ("get", "/events?limit=2", None, True, 200), ("get", "/contracts", None, True, 200),
    ("get", "/contracts/contract_9/history", None, True, 404), ("get", "/verify", None, True, 200),
    ("get", "/replay?until_turn=99", None, True, 400), ("get", "/replay?until_turn=0", None, True, 200),
]


@pytest.mark.parametrize("method,path,body,after_init,status", CALLS)
def test_every_status_the_api_answers_is_documented(client, document, method, path, body, after_init, status):
    if after_init:
        init(client)
    response = client.request(method.upper(), path, json=body)
    assert response.status_code == status, response.text
    route = re.sub(r"contract_\d+", "{contract_id}", path.split("?")[0])
    responses = document["paths"][route][method]["responses"]
    assert str(status) in responses and "500" in responses
    if status != 200:
        assert schema_of(document, route, method, str(status)) == {"$ref": "#/components/schemas/ErrorResponse"}
        assert set(response.json()) == {"ok", "error"}
