"""Adding a channel is one module and one registry line: a throwaway channel registered here (and
nowhere else) receives a webhook, gets a lead and a conversation, a reply through the playbook,
and its compliance keywords, with no other change to the app."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

import pytest
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.main import create_app
from app.store import where
from channels.base import (
    Channel,
    ChannelTraits,
    InboundMessage,
    OutboundMessage,
    ParsedWebhook,
    PayloadError,
    SignatureError,
)
from channels.registry import CHANNELS
from tests.app.conftest import ADMIN_KEY, make_settings, no_quiet_hours

LOFT = "loft-7"
SECRET = b"pigeon-keeper-secret"


class PigeonChannel(Channel):
    """Carrier pigeons: JSON notes signed with HMAC-SHA256 in ``x-pigeon-signature``."""

    name: ClassVar[str] = "pigeon"
    traits: ClassVar[ChannelTraits] = ChannelTraits(
        address_field="phone", keyword_optouts=True, max_text_chars=280
    )
    flown: ClassVar[list[OutboundMessage]] = []

    def verify(self, headers: Mapping[str, str], raw_body: bytes, *, url: str = "") -> None:
        expected = hmac.new(SECRET, raw_body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("x-pigeon-signature", ""), expected):
            raise SignatureError("bad pigeon signature")

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> ParsedWebhook:
        try:
            note = json.loads(raw_body)
            message = InboundMessage(
                channel=self.name,
                provider_message_id=str(note["id"]),
                sender=str(note["from"]),
                recipient=LOFT,
                text=str(note["text"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PayloadError(f"not a pigeon note: {exc}") from exc
        return ParsedWebhook(messages=[message])

    async def send(self, message: OutboundMessage) -> str:
        self.flown.append(message)
        return f"pigeon-{len(self.flown)}"

    def receiving_addresses(self) -> list[str]:
        return [LOFT]


@pytest.fixture
def pigeon_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[PigeonChannel]]:
    monkeypatch.setitem(CHANNELS, PigeonChannel.name, PigeonChannel)
    PigeonChannel.flown.clear()
    yield PigeonChannel


def note(text: str, note_id: str, sender: str = "+33611223344") -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"id": note_id, "from": sender, "text": text}).encode()
    return body, {"x-pigeon-signature": hmac.new(SECRET, body, hashlib.sha256).hexdigest()}


async def test_a_registered_channel_works_end_to_end(
    tmp_path: Path, pigeon_registered: type[PigeonChannel]
) -> None:
    rt = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9"))
    assert "pigeon" in rt.channels.names()
    async with AsyncTestClient(app=create_app(runtime=rt, start_worker=False)) as client:
        await no_quiet_hours(rt)
        body, headers = note("Hi, I'd like solar panels", "n1")
        forged = await client.post(
            "/api/webhooks/channels/pigeon", content=body, headers={"x-pigeon-signature": "0" * 64}
        )
        assert forged.status_code == 401
        accepted = await client.post("/api/webhooks/channels/pigeon", content=body, headers=headers)
        assert accepted.status_code == 200, accepted.text
        await rt.worker.drain()
        assert PigeonChannel.flown, "the playbook's first messages fly back"
        assert {m.to for m in PigeonChannel.flown} == {"+33611223344"}
        convs = (
            await client.get("/api/v1/conversations", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        ).json()["conversations"]
        assert [c["channel"] for c in convs] == ["pigeon"]
        leads = await rt.store.query("demo", "leads", filters=[where("phone", "==", "+33611223344")])
        assert len(leads) == 1
        # The channel's traits say it honours keywords: STOP opts the lead out, no reply.
        flown = len(PigeonChannel.flown)
        body, headers = note("STOP", "n2")
        assert (
            await client.post("/api/webhooks/channels/pigeon", content=body, headers=headers)
        ).status_code == 200
        await rt.worker.drain()
        assert len(PigeonChannel.flown) == flown
        opted_out, _ = await rt.optouts.blocks(
            "demo", channel="pigeon", address="+33611223344", lead_addresses={}, all_channels=False
        )
        assert opted_out
