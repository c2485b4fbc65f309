"""A French lead's messages carry French typography (no-break spaces before ``?`` and ``:``) on
the web chat, WhatsApp and e-mail, and plain spaces by SMS, where a no-break space (not GSM-7)
would make the whole message UCS-2 (70 characters a segment instead of 160). In this folder for
its world with every channel wired to a stand-in."""

from __future__ import annotations

import pytest

from app.conversations.typography import NARROW_NBSP
from channels.sms import sms_encoding
from tests.app.handoff.conftest import AUTH, World
from tests.app.handoff.test_handoff import lead_says, lead_texts, the_conversation

QUESTION = "Êtes-vous propriétaire du logement concerné par les travaux"


@pytest.mark.parametrize("channel", ["webchat", "whatsapp", "email"])
async def test_french_questions_keep_their_mark_on_the_line(world: World, channel: str) -> None:
    await lead_says(world, channel, "Bonjour, je voudrais des infos sur la rénovation")
    conv = await the_conversation(world, channel)
    texts = await lead_texts(world, channel, conv.id)
    assert any(f"{QUESTION}{NARROW_NBSP}?" in t for t in texts), texts
    assert not any(" ?" in t or " !" in t for t in texts), texts


async def test_french_sms_keep_plain_spaces(world: World) -> None:
    await lead_says(world, "sms", "Bonjour, je voudrais des infos sur la rénovation")
    conv = await the_conversation(world, "sms")
    texts = await lead_texts(world, "sms", conv.id)
    assert any(f"{QUESTION} ?" in t for t in texts), texts
    assert not any("\u00a0" in t or NARROW_NBSP in t for t in texts)
    assert sms_encoding("Quel type de toiture avez-vous ?") == "GSM-7"
    assert sms_encoding(f"Quel type de toiture avez-vous{NARROW_NBSP}?") == "UCS-2"


async def test_a_person_s_words_are_sent_as_typed(world: World) -> None:
    await lead_says(world, "webchat", "Bonjour, je voudrais des infos sur la rénovation")
    conv = await the_conversation(world, "webchat")
    r = await world.client.post(
        f"/api/v1/conversations/{conv.id}/messages",
        json={"text": "Bonjour ! C'est Marie, je vous appelle ?"},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    await world.runtime.worker.drain()
    assert (await lead_texts(world, "webchat", conv.id))[-1] == "Bonjour ! C'est Marie, je vous appelle ?"
