"""The knowledge-base and aiConfig API (the AI feature), and usage/success counting from outcomes.

Runs on every store backend (the ``runtime`` fixture). The app here holds only the plugin under test,
so these tests do not depend on how ``app.main`` lists its plugins."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.ai.knowledge.demo import DEMO_AI_CONFIG, DEMO_QA
from app.ai.knowledge.routes import MAX_IMPORT_ITEMS
from app.ai.knowledge.stats import record_kb_outcome, record_kb_usage
from app.ai.plugin import AiFeature
from app.composition import Runtime
from app.ops.plugin import OpsFeature
from app.tenancy.plugin import TenancyFeature
from tests.app.conftest import ADMIN_KEY

Client = AsyncTestClient[Litestar]
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def tid(runtime: Runtime) -> str:
    """The bootstrapped tenant, whose admin key is ``ADMIN_KEY``."""
    return runtime.settings.default_tenant_id


@pytest.fixture
async def kb_client(runtime: Runtime) -> AsyncIterator[Client]:
    """A client of an app holding the AI feature (with the core and tenancy features it needs) only,
    on the test's runtime."""
    app = Litestar(plugins=[OpsFeature(runtime), TenancyFeature(runtime), AiFeature(runtime)])
    async with AsyncTestClient(app=app) as client:
        yield client


async def entries(client: Client, headers: dict[str, str] = AUTH) -> dict[str, dict[str, Any]]:
    response = await client.get("/api/v1/knowledge", headers=headers)
    assert response.status_code == 200, response.text
    return {e["id"]: e for e in response.json()["entries"]}


async def test_endpoints_need_a_bearer_key(kb_client: Client) -> None:
    for method, path in [
        ("GET", "/api/v1/knowledge"),
        ("POST", "/api/v1/knowledge/import"),
        ("GET", "/api/v1/ai-config"),
        ("DELETE", "/api/v1/knowledge/en-price"),
    ]:
        response = await kb_client.request(method, path, headers={"Authorization": "Bearer lw_nope"})
        assert response.status_code == 401, (method, path)


async def test_list_returns_the_seeded_knowledge_with_camel_case_keys(kb_client: Client) -> None:
    listed = await entries(kb_client)
    assert set(listed) == {e.id for e in DEMO_QA}
    assert {"isCustom", "usageCount", "successRate", "question", "response"} <= listed["en-price"].keys()


async def test_create_update_delete_and_search_index_follows(kb_client: Client, runtime: Runtime) -> None:
    body = {
        "question": "Do you install heat pumps?",
        "response": "Yes, air-to-water heat pumps.",
        "tags": ["heat"],
    }
    created = await kb_client.post("/api/v1/knowledge", headers=AUTH, json={**body, "language": "en"})
    assert created.status_code == 201, created.text
    entry_id = created.json()["id"]
    assert await runtime.knowledge.answer(tid(runtime), "do you install heat pumps", "en") == body["response"]

    again = await kb_client.post("/api/v1/knowledge", headers=AUTH, json={**body, "id": entry_id})
    assert again.status_code == 409

    changed = {**body, "response": "Yes: air-to-water and air-to-air heat pumps."}
    updated = await kb_client.put(f"/api/v1/knowledge/{entry_id}", headers=AUTH, json=changed)
    assert updated.status_code == 200, updated.text
    assert (await entries(kb_client))[entry_id]["response"] == changed["response"]
    assert (
        await runtime.knowledge.answer(tid(runtime), "do you install heat pumps", "en") == changed["response"]
    )

    assert (await kb_client.delete(f"/api/v1/knowledge/{entry_id}", headers=AUTH)).status_code == 204
    assert entry_id not in await entries(kb_client)
    # the deleted entry is gone from the index (the demo "who is SunnyWatt" entry, whose response
    # names heat pumps, may now answer instead)
    assert await runtime.knowledge.answer(tid(runtime), "do you install heat pumps", "en") not in (
        body["response"],
        changed["response"],
    )
    assert (await kb_client.delete(f"/api/v1/knowledge/{entry_id}", headers=AUTH)).status_code == 404
    assert (await kb_client.put(f"/api/v1/knowledge/{entry_id}", headers=AUTH, json=body)).status_code == 404


async def test_invalid_entries_are_400_with_the_field(kb_client: Client) -> None:
    cases = [
        {"question": "", "response": "x"},
        {"question": "q?", "response": "x", "successRate": 1.5},
        {"question": "q?", "response": "x", "language": "english"},
        {"question": "q?", "response": "x", "id": "bad id with spaces"},
        {"response": "x"},
    ]
    for body in cases:
        response = await kb_client.post("/api/v1/knowledge", headers=AUTH, json=body)
        assert response.status_code == 400, body
    mismatch = await kb_client.put(
        "/api/v1/knowledge/en-price", headers=AUTH, json={"id": "other", "question": "q", "response": "r"}
    )
    assert mismatch.status_code == 400


async def test_update_keeps_counters_unless_given(kb_client: Client, runtime: Runtime) -> None:
    await record_kb_usage(runtime.store, tid(runtime), "en-price")
    body = {"question": "What is the price?", "response": "It depends on your roof."}
    kept = await kb_client.put("/api/v1/knowledge/en-price", headers=AUTH, json=body)
    assert kept.json()["usageCount"] == 1
    reset = await kb_client.put("/api/v1/knowledge/en-price", headers=AUTH, json={**body, "usageCount": 0})
    assert reset.json()["usageCount"] == 0


async def test_bulk_import_accepts_the_seed_shape_and_reports_item_errors(kb_client: Client) -> None:
    items: list[Any] = [
        {
            "id": "en-price",
            "question": "What is the price?",
            "response": "After a free survey.",
            "isCustom": True,
        },
        {"question": "Do you sell EV chargers?", "response": "Yes.", "usageCount": 7, "successRate": 0.5},
        {"question": "  do you SELL ev chargers? ", "response": "Yes, 7 kW wallboxes."},  # same question
        {"question": "No answer"},
        "not an object",
        {"question": "Bad rate", "response": "r", "successRate": "lots"},
        {"id": "dup", "question": "A?", "response": "a"},
        {"id": "dup", "question": "B?", "response": "b"},
    ]
    response = await kb_client.post("/api/v1/knowledge/import", headers=AUTH, json=items)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["created"], result["updated"]) == (2, 1)
    errors = {e["index"]: e["reason"] for e in result["errors"]}
    assert set(errors) == {2, 3, 4, 5, 7}
    assert "twice" in errors[2] and "twice" in errors[7]  # same question, same id
    assert "response" in errors[3]
    assert "successRate" in errors[5]
    listed = await entries(kb_client)
    assert listed["en-price"]["response"] == "After a free survey." and listed["en-price"]["isCustom"] is True
    chargers = [e for e in listed.values() if "chargers" in e["question"].lower()]
    assert len(chargers) == 1
    assert (chargers[0]["response"], chargers[0]["usageCount"], chargers[0]["successRate"]) == (
        "Yes.",
        7,
        0.5,
    )
    again = await kb_client.post("/api/v1/knowledge/import", headers=AUTH, json=[items[2]])
    assert (again.json()["created"], again.json()["updated"]) == (0, 1)  # matched by its question
    assert (await entries(kb_client))[chargers[0]["id"]]["response"] == "Yes, 7 kW wallboxes."


async def test_import_of_the_seed_wrapper_and_garbage_bodies(kb_client: Client) -> None:
    wrapped = await kb_client.post(
        "/api/v1/knowledge/import",
        headers=AUTH,
        json={"qaTraining": [{"question": "Heat pumps?", "response": "Yes."}]},
    )
    assert wrapped.json()["created"] == 1
    for raw in [b"{not json", b'{"foo": 1}', b'"text"', b"\xff\xfe"]:
        response = await kb_client.post("/api/v1/knowledge/import", headers=AUTH, content=raw)
        assert response.status_code == 400, raw
    too_many = [{"question": f"q{i}", "response": "r"} for i in range(MAX_IMPORT_ITEMS + 1)]
    response = await kb_client.post("/api/v1/knowledge/import", headers=AUTH, content=json.dumps(too_many))
    assert response.status_code == 400


async def test_ai_config_read_and_update(kb_client: Client, runtime: Runtime) -> None:
    current = await kb_client.get("/api/v1/ai-config", headers=AUTH)
    assert current.status_code == 200
    data = current.json()
    assert data["companyName"] == DEMO_AI_CONFIG["companyName"]
    assert data["noGoTopics"] == DEMO_AI_CONFIG["noGoTopics"]
    assert data["competitors"] == [DEMO_AI_CONFIG["competitors"]]  # the seed's string, as a list
    assert data["brandMemory"]["keywords"] == DEMO_AI_CONFIG["brandMemory"]["keywords"]

    update = {**DEMO_AI_CONFIG, "competitors": "SolarMax; EcoSolaire", "noGoTopics": ["Politics", " "]}
    response = await kb_client.put("/api/v1/ai-config", headers=AUTH, json=update)
    assert response.status_code == 200, response.text
    stored = await runtime.store.get(tid(runtime), "aiConfig", "default")
    assert stored is not None
    assert stored["competitors"] == ["SolarMax", "EcoSolaire"]
    assert stored["noGoTopics"] == ["Politics"]
    assert stored["brandMemory"]["tone"] == DEMO_AI_CONFIG["brandMemory"]["tone"]
    assert (await kb_client.get("/api/v1/ai-config", headers=AUTH)).json() == response.json()


async def test_ai_config_validation_and_absence(kb_client: Client, runtime: Runtime) -> None:
    for bad in [
        {"companyName": ""},
        {"industry": "solar"},
        {"companyName": "X", "brandMemory": {"keywords": 3}},
    ]:
        assert (await kb_client.put("/api/v1/ai-config", headers=AUTH, json=bad)).status_code == 400, bad
    await runtime.store.delete(tid(runtime), "aiConfig", "default")
    assert (await kb_client.get("/api/v1/ai-config", headers=AUTH)).status_code == 404


async def test_keys_are_scoped_to_their_tenant(kb_client: Client, runtime: Runtime) -> None:
    await runtime.tenants.add_api_key("other", "lw_other_key")
    other = {"Authorization": "Bearer lw_other_key"}
    assert await entries(kb_client, other) == {}
    await kb_client.post("/api/v1/knowledge", headers=other, json={"question": "Theirs?", "response": "Yes."})
    assert len(await entries(kb_client, other)) == 1
    assert len(await entries(kb_client)) == len(DEMO_QA)
    assert (await kb_client.delete("/api/v1/knowledge/en-price", headers=other)).status_code == 404


# --------------------------------------------------------------------------- usage and success


async def stored(runtime: Runtime, entry_id: str) -> dict[str, Any]:
    """The stored entry, ``usage_count`` read as the repository does (with its counter shards)."""
    data = await runtime.store.get(tid(runtime), "qaTraining", entry_id)
    assert data is not None
    [entry] = [e for e in await runtime.knowledge.entries(tid(runtime)) if e.id == entry_id]
    return {**data, "usage_count": entry.usage_count}


async def test_usage_is_counted_per_send_and_success_per_conversation(runtime: Runtime) -> None:
    store, tenant = runtime.store, tid(runtime)
    # conversation 1 uses en-price twice and en-roof once, then qualifies
    for entry_id in ["en-price", "en-price", "en-roof"]:
        assert await record_kb_usage(store, tenant, entry_id, conversation_id="cv_1")
    # conversation 2 uses en-price, then ends without qualifying
    await record_kb_usage(store, tenant, "en-price", conversation_id="cv_2")
    assert await record_kb_outcome(store, tenant, "cv_1", success=True) == 2
    assert await record_kb_outcome(store, tenant, "cv_1", success=True) == 0  # idempotent
    assert await record_kb_outcome(store, tenant, "cv_1", success=False) == 0  # never success -> failure
    assert await record_kb_outcome(store, tenant, "cv_2", success=False) == 1

    price, roof = await stored(runtime, "en-price"), await stored(runtime, "en-roof")
    assert price["usage_count"] == 3
    assert price["success_rate"] == pytest.approx(0.5)  # 1 of 2 conversations qualified
    assert (roof["usage_count"], roof["success_rate"]) == (1, 1.0)

    # conversation 2 qualifies later: its failure turns into a success
    assert await record_kb_outcome(store, tenant, "cv_2", success=True) == 1
    assert (await stored(runtime, "en-price"))["success_rate"] == pytest.approx(1.0)
    # an entry never used in a conversation is not counted for it
    assert await record_kb_outcome(store, tenant, "cv_unknown", success=True) == 0
    ranked = {e.id: e for e in await runtime.knowledge.entries(tid(runtime))}
    assert ranked["en-price"].success_rate == pytest.approx(1.0)  # mirrored into the indexed entry


async def test_imported_history_weighs_on_the_success_rate(runtime: Runtime, kb_client: Client) -> None:
    item = {"id": "hist", "question": "History?", "response": "Yes.", "usageCount": 4, "successRate": 0.5}
    await kb_client.post("/api/v1/knowledge/import", headers=AUTH, json=[item])
    await record_kb_usage(runtime.store, tid(runtime), "hist", conversation_id="cv_9")
    await record_kb_outcome(runtime.store, tid(runtime), "cv_9", success=True)
    data = await stored(runtime, "hist")
    assert data["usage_count"] == 5
    assert data["success_rate"] == pytest.approx(3 / 5)  # (0.5 * 4 + 1) / (4 + 1)


async def test_counting_a_deleted_entry_is_a_no_op(runtime: Runtime) -> None:
    await runtime.knowledge.delete(tid(runtime), "en-roof")
    assert not await record_kb_usage(runtime.store, tid(runtime), "en-roof", conversation_id="cv_1")
    assert await runtime.store.get(tid(runtime), "qaTraining", "en-roof") is None
