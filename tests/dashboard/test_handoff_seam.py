"""The conversation page's reply and hand-back controls, over the real handoff API
(``POST /api/v1/conversations/{id}/messages`` and ``.../handback``): the controls appear, and an
agent's session may call the API only with its CSRF token."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.dashboard.conftest import AGENT, sign_in


async def test_an_agents_writes_to_the_handoff_api_need_the_csrf_token(
    client: AsyncTestClient[Litestar],
) -> None:
    csrf = await sign_in(client, *AGENT)
    page = await client.get("/app/conversations/cv_1")
    assert 'id="reply-form"' in page.text and 'data-can-reply="1"' in page.text
    url = "/api/v1/conversations/cv_unknown"
    without = await client.post(f"{url}/messages", json={"text": "Hi, Sam here"})
    assert without.status_code == 403
    # With the token the request reaches the handoff API, which knows no such conversation.
    reply = await client.post(
        f"{url}/messages", json={"text": "Hi, Sam here"}, headers={"X-CSRF-Token": csrf}
    )
    assert reply.status_code == 404, reply.text
    back = await client.post(f"{url}/handback", json={}, headers={"X-CSRF-Token": csrf})
    assert back.status_code == 404, back.text
