"""WhatsApp sending: against Prism running Meta's OpenAPI description (real HTTP on 127.0.0.1),
and against a recording server where the exact JSON or an error answer matters."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from channels import Choice, OutboundMessage, SendError, WhatsAppChannel
from channels.whatsapp import build_message_payload
from tests.support.prism import PrismServer
from tests.support.recording import RecordingServer, Reply

TOKEN = "EAAG-test-token-value"
PHONE_ID = "106540352242922"
TO = "+16505551234"


def choices(n: int, *, title: str = "Option") -> tuple[Choice, ...]:
    return tuple(Choice(id=f"opt-{i}", title=f"{title} {i}") for i in range(1, n + 1))


def channel_for(base_url: str, **kwargs: Any) -> WhatsAppChannel:
    options: dict[str, Any] = {
        "access_token": TOKEN,
        "phone_number_id": PHONE_ID,
        "app_secret": "secret",
        "api_base_url": base_url,
    }
    options.update(kwargs)
    return WhatsAppChannel(**options)


# --------------------------------------------------------------------------- against Prism


@pytest.mark.parametrize(
    "message",
    [
        OutboundMessage(to=TO, text="Hi! What brings you here today?"),
        OutboundMessage(to=TO, text="Pick one", choices=choices(3)),
        OutboundMessage(to=TO, text="Pick one", choices=choices(5)),
        OutboundMessage(to=TO, text="Pick one", choices=choices(10, title="A rather long option title")),
        OutboundMessage(to=TO, text="Pick one", choices=choices(11)),
        OutboundMessage(to=TO, text="x" * 5000, choices=choices(2, title="Much longer than twenty chars")),
        OutboundMessage(
            to=TO, text="Sure!", reply_to="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
        ),
    ],
    ids=[
        "text",
        "buttons-3",
        "list-5",
        "list-10-long-titles",
        "numbered-11",
        "long-body-long-titles",
        "reply",
    ],
)
async def test_spec_accepts_what_we_send(whatsapp_prism: PrismServer, message: OutboundMessage) -> None:
    channel = channel_for(whatsapp_prism.base_url)
    try:
        message_id = await channel.send(message)
    finally:
        await channel.aclose()
    assert message_id.startswith("wamid.")


async def test_request_the_spec_rejects_maps_to_non_retryable(whatsapp_prism: PrismServer) -> None:
    class BrokenPayloadChannel(WhatsAppChannel):
        def build_payload(self, message: OutboundMessage) -> dict[str, Any]:
            payload = super().build_payload(message)
            payload["unexpected_field"] = True  # TextMessage has additionalProperties: false
            return payload

    channel = BrokenPayloadChannel(
        access_token=TOKEN, phone_number_id=PHONE_ID, app_secret="s", api_base_url=whatsapp_prism.base_url
    )
    with pytest.raises(SendError) as info:
        await channel.send(OutboundMessage(to=TO, text="hello"))
    await channel.aclose()
    assert info.value.retryable is False
    assert "422" in str(info.value)


async def test_four_buttons_would_be_rejected_so_we_send_a_list(whatsapp_prism: PrismServer) -> None:
    """The spec caps reply buttons at 3: posting 4 raw is a 422, the channel's 4 choices a 2xx."""
    payload = build_message_payload(OutboundMessage(to=TO, text="Pick", choices=choices(3)))
    payload["interactive"]["action"]["buttons"].append({"type": "reply", "reply": {"id": "d", "title": "D"}})
    async with httpx.AsyncClient() as client:
        raw = await client.post(
            f"{whatsapp_prism.base_url}/v23.0/{PHONE_ID}/messages",
            json=payload,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert raw.status_code == 422
    channel = channel_for(whatsapp_prism.base_url)
    assert (await channel.send(OutboundMessage(to=TO, text="Pick", choices=choices(4)))).startswith("wamid.")
    await channel.aclose()


async def test_auth_refused_is_401_not_retryable(whatsapp_prism: PrismServer) -> None:
    async def drop_authorization(request: httpx.Request) -> None:
        del request.headers["Authorization"]

    async with httpx.AsyncClient(event_hooks={"request": [drop_authorization]}) as client:
        channel = channel_for(whatsapp_prism.base_url, http_client=client)
        with pytest.raises(SendError) as info:
            await channel.send(OutboundMessage(to=TO, text="hello"))
    assert info.value.retryable is False
    assert "401" in str(info.value)


async def test_unconfigured_token_sends_nothing(recorder: RecordingServer) -> None:
    channel = channel_for(recorder.base_url, access_token="")
    with pytest.raises(SendError) as info:
        await channel.send(OutboundMessage(to=TO, text="hello"))
    await channel.aclose()
    assert info.value.retryable is False
    assert recorder.requests == []


async def test_caller_http_client_is_used_and_not_closed(whatsapp_prism: PrismServer) -> None:
    async with httpx.AsyncClient(headers={"Prefer": "example=Send Reply Button"}) as client:
        channel = channel_for(whatsapp_prism.base_url, http_client=client)
        assert (await channel.send(OutboundMessage(to=TO, text="hi"))).startswith("wamid.")
        await channel.aclose()
        assert not client.is_closed


async def test_prefer_undeclared_code_is_not_retryable(whatsapp_prism: PrismServer) -> None:
    """The spec declares only 200 for sendMessage, so Prism answers ``Prefer: code=429`` with 404;
    429 and 5xx mapping is therefore tested against the recording server below."""
    async with httpx.AsyncClient(headers={"Prefer": "code=429"}) as client:
        channel = channel_for(whatsapp_prism.base_url, http_client=client)
        with pytest.raises(SendError) as info:
            await channel.send(OutboundMessage(to=TO, text="hi"))
    assert info.value.retryable is False
    assert "404" in str(info.value)


# --------------------------------------------------------------------------- exact JSON


async def send_recorded(recorder: RecordingServer, message: OutboundMessage, **kwargs: Any) -> dict[str, Any]:
    channel = channel_for(recorder.base_url, **kwargs)
    try:
        assert await channel.send(message) == "wamid.REC"
    finally:
        await channel.aclose()
    request = recorder.requests[-1]
    assert request.path == f"/v23.0/{message.sender or PHONE_ID}/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    body: dict[str, Any] = request.body
    assert body["messaging_product"] == "whatsapp"
    assert body["recipient_type"] == "individual"
    return body


async def test_text_json(recorder: RecordingServer) -> None:
    body = await send_recorded(recorder, OutboundMessage(to="+1 650-555-1234", text="Hello"))
    assert body["to"] == "16505551234"
    assert body["type"] == "text"
    assert body["text"] == {"body": "Hello", "preview_url": False}
    assert "context" not in body


async def test_reply_to_becomes_context(recorder: RecordingServer) -> None:
    body = await send_recorded(recorder, OutboundMessage(to=TO, text="Yes", reply_to="wamid.ABC"))
    assert body["context"] == {"message_id": "wamid.ABC"}


async def test_sender_overrides_phone_number_id(recorder: RecordingServer) -> None:
    await send_recorded(recorder, OutboundMessage(to=TO, text="Yes", sender="999000111"))


async def test_api_version_is_configurable(recorder: RecordingServer) -> None:
    channel = channel_for(recorder.base_url, api_version="v24.0")
    await channel.send(OutboundMessage(to=TO, text="hi"))
    await channel.aclose()
    assert recorder.requests[-1].path == f"/v24.0/{PHONE_ID}/messages"


async def test_buttons_json_and_title_truncation(recorder: RecordingServer) -> None:
    opts = (
        Choice("yes", "Yes please"),
        Choice("later", "Maybe later, next quarter perhaps"),
        Choice("no", "No"),
    )
    body = await send_recorded(recorder, OutboundMessage(to=TO, text="Book a demo?", choices=opts))
    interactive = body["interactive"]
    assert body["type"] == "interactive" and interactive["type"] == "button"
    assert interactive["body"] == {"text": "Book a demo?"}
    buttons = interactive["action"]["buttons"]
    assert [b["type"] for b in buttons] == ["reply"] * 3
    assert [b["reply"]["id"] for b in buttons] == ["yes", "later", "no"]
    titles = [b["reply"]["title"] for b in buttons]
    assert titles[0] == "Yes please" and titles[2] == "No"
    assert len(titles[1]) == 20 and titles[1].endswith("…")
    assert opts[1].title.startswith(titles[1][:-1])


async def test_list_json(recorder: RecordingServer) -> None:
    opts = (*choices(4), Choice("long", "An option whose title is longer than 24"))
    body = await send_recorded(
        recorder, OutboundMessage(to=TO, text="Pick", choices=opts), list_button_label="See options"
    )
    interactive = body["interactive"]
    assert interactive["type"] == "list"
    assert interactive["action"]["button"] == "See options"
    (section,) = interactive["action"]["sections"]
    rows = section["rows"]
    assert [r["id"] for r in rows] == [c.id for c in opts]
    assert [r["title"] for r in rows[:4]] == [c.title for c in opts[:4]]
    assert all("description" not in r for r in rows[:4])
    assert len(rows[4]["title"]) == 24 and rows[4]["title"].endswith("…")
    assert rows[4]["description"] == opts[4].title


async def test_more_than_ten_choices_become_numbered_text(recorder: RecordingServer) -> None:
    opts = choices(11)
    body = await send_recorded(recorder, OutboundMessage(to=TO, text="Pick", choices=opts))
    assert body["type"] == "text"
    lines = body["text"]["body"].splitlines()
    assert lines[0] == "Pick"
    assert lines[-1] == f"11. {opts[-1].title}"


@pytest.mark.parametrize(("n_choices", "limit"), [(0, 4096), (2, 1024), (6, 1024)])
async def test_body_limits(recorder: RecordingServer, n_choices: int, limit: int) -> None:
    body = await send_recorded(recorder, OutboundMessage(to=TO, text="y" * 5000, choices=choices(n_choices)))
    text = body["text"]["body"] if n_choices == 0 else body["interactive"]["body"]["text"]
    assert len(text) == limit and text.endswith("…")


def test_recipient_must_be_a_phone_number() -> None:
    with pytest.raises(SendError) as info:
        build_message_payload(OutboundMessage(to="lead@example.com", text="hi"))
    assert info.value.retryable is False


# --------------------------------------------------------------------------- error mapping


META_24H_ERROR = {
    "error": {
        "message": "(#131047) Re-engagement message",
        "type": "OAuthException",
        "code": 131047,
        "error_data": {
            "messaging_product": "whatsapp",
            "details": "Message failed to send because more than 24 hours have passed since the customer "
            "last replied to this number.",
        },
        "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
    }
}


async def send_expecting_error(recorder: RecordingServer, reply: Reply) -> SendError:
    recorder.replies.append(reply)
    channel = channel_for(recorder.base_url)
    try:
        with pytest.raises(SendError) as info:
            await channel.send(OutboundMessage(to=TO, text="hello"))
    finally:
        await channel.aclose()
    return info.value


async def test_24h_window_error_is_not_retryable_with_meta_code(recorder: RecordingServer) -> None:
    error = await send_expecting_error(recorder, Reply(status=400, body=META_24H_ERROR))
    assert error.retryable is False
    assert error.code == "131047"
    assert "Re-engagement message" in str(error)
    assert "24 hours" in str(error)


async def test_undeliverable_is_not_retryable(recorder: RecordingServer) -> None:
    body = {"error": {"message": "(#131026) Message undeliverable", "type": "OAuthException", "code": 131026}}
    error = await send_expecting_error(recorder, Reply(status=400, body=body))
    assert (error.retryable, error.code) == (False, "131026")


async def test_429_is_retryable_with_retry_after(recorder: RecordingServer) -> None:
    body = {"error": {"message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429}}
    error = await send_expecting_error(recorder, Reply(status=429, body=body, headers={"Retry-After": "7"}))
    assert (error.retryable, error.code, error.retry_after_s) == (True, "130429", 7.0)


async def test_throttling_code_on_400_is_retryable(recorder: RecordingServer) -> None:
    body = {"error": {"message": "(#131056) pair rate limit hit", "type": "OAuthException", "code": 131056}}
    error = await send_expecting_error(recorder, Reply(status=400, body=body))
    assert (error.retryable, error.code, error.retry_after_s) == (True, "131056", None)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_retryable(recorder: RecordingServer, status: int) -> None:
    error = await send_expecting_error(recorder, Reply(status=status, body=b"<html>oops</html>"))
    assert error.retryable is True
    assert error.code is None
    assert str(status) in str(error)


async def test_retry_after_http_date(recorder: RecordingServer) -> None:
    error = await send_expecting_error(
        recorder, Reply(status=503, body={}, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    )
    assert error.retryable is True and error.retry_after_s == 0.0


async def test_2xx_without_message_id_is_not_retryable(recorder: RecordingServer) -> None:
    error = await send_expecting_error(recorder, Reply(status=200, body={"messaging_product": "whatsapp"}))
    assert error.retryable is False


async def test_token_never_in_error_message(recorder: RecordingServer) -> None:
    body = {
        "error": {"message": f"Invalid OAuth access token - Cannot parse access token {TOKEN}", "code": 190}
    }
    error = await send_expecting_error(recorder, Reply(status=401, body=body))
    assert TOKEN not in str(error) and TOKEN not in repr(error)
    assert error.retryable is False and error.code == "190"


async def test_network_error_is_retryable() -> None:
    with socket.socket() as sock:  # a port that refuses connections: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        channel = channel_for(f"http://127.0.0.1:{port}", timeout_s=5.0)
        with pytest.raises(SendError) as info:
            await channel.send(OutboundMessage(to=TO, text="hello"))
        await channel.aclose()
    assert info.value.retryable is True
    assert TOKEN not in str(info.value)
