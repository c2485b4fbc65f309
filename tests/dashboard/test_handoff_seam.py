"""The conversation page's reply and hand-back controls, against stand-in handoff endpoints.

The human-handoff feature (``POST /api/v1/conversations/{id}/messages`` and ``.../handback``) is
built elsewhere; until it is on this branch the page says so. These tests serve stand-ins with the
same paths to check the seam: the controls appear, and an agent's session (with its CSRF token)
may call them while the token is still required."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.core.features import Feature
from app.features import FEATURES
from app.main import create_app
from kernel.clock import ManualClock
from tests.app.conftest import make_settings
from tests.dashboard.conftest import AGENT, T0, setup_runtime, sign_in
from tests.support.recording import RecordingServer

CALLS: list[tuple[str, str, str, Any]] = []


@post("/api/v1/conversations/{conversation_id:str}/messages", status_code=201)
async def stand_in_reply(
    tenant_id: NamedDependency[str], conversation_id: FromPath[str], data: JSONBody[dict[str, Any]]
) -> dict[str, bool]:
    CALLS.append(("reply", tenant_id, conversation_id, data))
    return {"ok": True}


@post("/api/v1/conversations/{conversation_id:str}/handback", status_code=200)
async def stand_in_handback(
    tenant_id: NamedDependency[str], conversation_id: FromPath[str]
) -> dict[str, bool]:
    CALLS.append(("handback", tenant_id, conversation_id, None))
    return {"ok": True}


class StandInHandoff(Feature):
    route_handlers = (stand_in_reply, stand_in_handback)


@pytest.fixture
async def client_with_handoff(
    tmp_path: Path, graph: RecordingServer
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    rt = Runtime.build(
        make_settings(tmp_path / "data", graph.base_url),
        clock=ManualClock(T0),
        features=(*FEATURES, StandInHandoff),
    )
    await setup_runtime(rt)
    CALLS.clear()
    async with AsyncTestClient(
        app=create_app(runtime=rt, start_worker=False), base_url="http://127.0.0.1"
    ) as c:
        yield c
    await rt.channels.aclose()
    await rt.store.close()


async def test_without_the_handoff_feature_the_page_says_so(client: AsyncTestClient[Litestar]) -> None:
    await sign_in(client, *AGENT)
    page = await client.get("/app/conversations/cv_any")
    assert 'id="reply-form"' not in page.text
    assert "Replying and handing back arrive with the handoff feature." in page.text


async def test_an_agent_replies_and_hands_back_through_the_handoff_api(
    client_with_handoff: AsyncTestClient[Litestar],
) -> None:
    client = client_with_handoff
    csrf = await sign_in(client, *AGENT)
    page = await client.get("/app/conversations/cv_1")
    assert 'id="reply-form"' in page.text and 'data-can-reply="1"' in page.text
    url = "/api/v1/conversations/cv_1"
    assert (await client.post(f"{url}/messages", json={"text": "Hi, Sam here"})).status_code == 403
    assert CALLS == []
    reply = await client.post(
        f"{url}/messages", json={"text": "Hi, Sam here"}, headers={"X-CSRF-Token": csrf}
    )
    assert reply.status_code == 201
    back = await client.post(f"{url}/handback", json={}, headers={"X-CSRF-Token": csrf})
    assert back.status_code == 200
    assert CALLS == [("reply", "demo", "cv_1", {"text": "Hi, Sam here"}), ("handback", "demo", "cv_1", None)]
