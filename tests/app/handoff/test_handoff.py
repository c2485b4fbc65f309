"""Human handoff end to end, on every channel: a lead asks for a person (French and English
phrasings), is told what happens next, the tenant's email reaches an SMTP server on 127.0.0.1 and
its signed webhook a receiver on 127.0.0.1; a person's reply reaches the lead through the channel's
provider stand-in; handback resumes the playbook; an unanswered handoff times out into a call-back
offer and a reminder."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from app.conversations.records import Conversation
from app.handoff.notify import EVENT_ID_HEADER, SIGNATURE_HEADER, sign, verify_signature
from app.store import Order, where
from app.store import collections as col
from channels.base import InboundMessage
from channels.email import UNSUBSCRIBE_LINES
from tests.app.conftest import PHONE_ID
from tests.app.handoff.conftest import AUTH, MONDAY_10H, OPS, OUR_MAILBOX, OUR_NUMBER, World
from tests.support.recording import Reply

LEADS = {
    "whatsapp": "+33612345678",
    "sms": "+14155552671",
    "email": "camille.martin@example.com",
    "webchat": "wc_session_0123456789",
}
RECIPIENTS = {"whatsapp": PHONE_ID, "sms": OUR_NUMBER, "email": OUR_MAILBOX, "webchat": "widget"}
ASKS = {
    "en": [
        "Can I talk to a real person please?",
        "I'd rather speak to someone",
        "is there a human I can chat with",
    ],
    "fr": [
        "Je voudrais parler à un conseiller",
        "Est-ce que je peux parler à quelqu'un ?",
        "je préfère une vraie personne svp",
    ],
}
FIRST = {
    "en": "Hello, I'm interested in solar panels",
    "fr": "Bonjour, je voudrais des infos sur la rénovation",
}


_ids = itertools.count(1)


def _without_unsubscribe(text: str) -> str:
    """A mail's text without the unsubscribe paragraph every mail to a lead ends with."""
    paragraphs = text.replace("\r\n", "\n").strip().split("\n\n")
    prefixes = tuple(line.split("{url}")[0] for line in UNSUBSCRIBE_LINES.values())
    if paragraphs and paragraphs[-1].startswith(prefixes):
        paragraphs = paragraphs[:-1]
    return "\n\n".join(paragraphs).strip()


async def lead_says(w: World, channel: str, text: str) -> None:
    """The lead writes on ``channel``; the worker runs everything due."""
    message = InboundMessage(
        channel=channel,
        provider_message_id=f"m{next(_ids)}",
        sender=LEADS[channel],
        recipient=RECIPIENTS[channel],
        text=text,
        timestamp=w.clock.now(),
        metadata={"subject": "Solar"} if channel == "email" else {},
    )
    assert await w.runtime.accept("demo", message)
    await w.runtime.worker.drain()


def delivered(w: World, channel: str) -> list[str]:
    """Texts that reached the lead's provider stand-in (the web chat: what its socket would read)."""
    if channel == "whatsapp":
        out = []
        for req in w.graph.requests:
            body = req.body or {}
            if body.get("to", "").lstrip("+") != LEADS["whatsapp"].lstrip("+"):
                continue
            if body.get("type") == "text":
                out.append(body["text"]["body"])
            elif body.get("type") == "interactive":
                out.append(body["interactive"]["body"]["text"])
        return out
    if channel == "sms":
        return [r.form.get("Body", "") for r in w.twilio.requests if r.form.get("To") == LEADS["sms"]]
    if channel == "email":
        return [
            _without_unsubscribe(
                m.message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
            )
            for m in w.smtp.messages()
            if m.rcpt_tos == [LEADS["email"]]
        ]
    raise AssertionError(channel)


async def webchat_delivered(w: World, conv_id: str) -> list[str]:
    docs = await w.runtime.store.query(
        "demo", col.OUTBOX, filters=[where("conversation_id", "==", conv_id)], order_by=[Order("seq")]
    )
    return [d.data["text"] for d in docs if d.data["status"] == "sent"]


async def lead_texts(w: World, channel: str, conv_id: str) -> list[str]:
    if channel == "webchat":
        return await webchat_delivered(w, conv_id)
    return delivered(w, channel)


async def the_conversation(w: World, channel: str) -> Conversation:
    docs = await w.runtime.store.query("demo", col.CONVERSATIONS, filters=[where("channel", "==", channel)])
    assert len(docs) == 1
    return Conversation.from_doc(docs[0].data)


def notification_mails(w: World) -> list[Any]:
    return [m for m in w.smtp.messages() if set(m.rcpt_tos) & set(OPS)]


def hooks(w: World) -> list[dict[str, Any]]:
    """Webhook deliveries, each checked against its signature."""
    out = []
    for req in w.hook.requests:
        assert req.path == "/hooks/leadwarm"
        assert verify_signature(
            w.secret, req.raw, req.headers[SIGNATURE_HEADER.lower()], now=w.clock.now(), tolerance_s=86400
        )
        out.append({**json.loads(req.raw), "_event_id": req.headers[EVENT_ID_HEADER.lower()]})
    return out


CASES = [
    ("whatsapp", "fr", 0),
    ("sms", "en", 0),
    ("email", "fr", 1),
    ("webchat", "en", 1),
    ("whatsapp", "en", 2),
    ("sms", "fr", 2),
]


@pytest.mark.parametrize(("channel", "language", "phrasing"), CASES)
async def test_handoff_reaches_a_person_and_returns_to_the_bot(
    world: World, channel: str, language: str, phrasing: int
) -> None:
    w = world
    await lead_says(w, channel, FIRST[language])
    conv = await the_conversation(w, channel)
    assert conv.status == "active"
    paused_at = conv.current_step
    sent_before = len(await lead_texts(w, channel, conv.id))
    assert sent_before >= 1

    # -- the lead asks for a person
    await lead_says(w, channel, ASKS[language][phrasing])
    conv = await the_conversation(w, channel)
    assert conv.status == "handoff"
    texts = await lead_texts(w, channel, conv.id)
    notice = texts[-1]
    if language == "fr":
        assert "Un membre de notre équipe vous répondra ici d'ici 30 minutes" in notice
        assert "du lundi au vendredi, 08:00-19:00 (UTC)" in notice
    else:
        assert "A member of our team will answer you here within 30 minutes" in notice
        assert "Monday to Friday, 08:00-19:00 (UTC)" in notice
    requested = [e for e in conv.events if e.type == "handoff.requested"]
    assert len(requested) == 1 and requested[0].detail["by"] == "lead"
    assert requested[0].detail["resume_step"] == paused_at

    # -- the tenant is told at once: one email per address, one signed webhook
    mails = notification_mails(w)
    assert sorted(r for m in mails for r in m.rcpt_tos) == sorted(OPS)
    body = mails[0].message.get_body(preferencelist=("plain",)).get_content()
    assert ASKS[language][phrasing] in body
    assert f"/api/v1/conversations/{conv.id}/messages" in body
    [hook] = hooks(w)
    assert hook["type"] == "handoff.requested"
    assert hook["conversation"]["id"] == conv.id and hook["conversation"]["channel"] == channel
    assert hook["handoff"]["requested_by"] == "lead"
    assert hook["recent_messages"][-1]["text"] == notice

    # -- the lead writes again while waiting: recorded, the bot stays silent
    await lead_says(w, channel, "ok merci" if language == "fr" else "ok thanks")
    # ... and the person waiting is told through the webhook
    assert hooks(w)[-1]["type"] == "handoff.lead_message"
    assert hooks(w)[-1]["recent_messages"][-1]["text"] == ("ok merci" if language == "fr" else "ok thanks")
    assert len(await lead_texts(w, channel, conv.id)) == len(texts)

    # -- a person answers
    reply = "Bonjour, c'est Marie de SunnyWatt." if language == "fr" else "Hi, Marie from SunnyWatt here."
    r = await w.client.post(
        f"/api/v1/conversations/{conv.id}/messages", json={"text": reply, "author": "marie"}, headers=AUTH
    )
    assert r.status_code == 201, r.text
    await w.runtime.worker.drain()
    assert (await lead_texts(w, channel, conv.id))[-1].startswith(reply)
    conv = await the_conversation(w, channel)
    answered = [e for e in conv.events if e.type == "handoff.answered"]
    assert answered and answered[0].detail["by"] == "marie"
    assert [h["type"] for h in hooks(w)] == ["handoff.requested", "handoff.lead_message", "handoff.answered"]

    # -- the timer finds the handoff answered: no apology later
    w.clock.advance(3600)
    await w.runtime.worker.drain()
    assert (await lead_texts(w, channel, conv.id))[-1].startswith(reply)

    # -- handback: the bot resumes where it paused
    r = await w.client.post(
        f"/api/v1/conversations/{conv.id}/handback",
        json={"note": "called them, all good", "by": "marie"},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    await w.runtime.worker.drain()
    conv = await the_conversation(w, channel)
    assert conv.status == "active" and conv.current_step == paused_at
    back = [e for e in conv.events if e.type == "handoff.handed_back"]
    assert back[0].detail == {"by": "marie", "note": "called them, all good", "resume_step": paused_at}
    resumed = (await lead_texts(w, channel, conv.id))[-1]
    message_docs = await w.runtime.store.query(
        "demo", col.messages_collection(conv.id), order_by=[Order("seq", descending=True)], limit=1
    )
    assert message_docs[0].data["step_id"] == paused_at
    assert resumed.startswith(message_docs[0].data["text"][:40])
    handoff = (await w.client.get(f"/api/v1/conversations/{conv.id}/handoff", headers=AUTH)).json()
    assert handoff["status"] == "handed_back" and handoff["handed_back_by"] == "marie"
    assert [h["type"] for h in hooks(w)][-1] == "handoff.handed_back"
    assert len(notification_mails(w)) == 2  # nothing sent twice
    trail = (await w.client.get("/api/v1/audit", params={"action": "handoff."}, headers=AUTH)).json()
    assert [(r["action"], r["actor"]) for r in reversed(trail)] == [
        ("handoff.requested", "lead"),
        ("handoff.answered", "marie"),
        ("handoff.agent_message", "marie"),
        ("handoff.handed_back", "marie"),
    ]
    assert {r["target"] for r in trail} == {conv.id}


@pytest.mark.parametrize("channel", ["whatsapp", "sms", "email", "webchat"])
async def test_unanswered_handoff_offers_a_call_back_and_reminds_the_tenant(
    world: World, channel: str
) -> None:
    w = world
    await lead_says(w, channel, FIRST["fr"])
    await lead_says(w, channel, "je veux parler à un humain")
    conv = await the_conversation(w, channel)
    assert conv.status == "handoff"
    count = len(await lead_texts(w, channel, conv.id))

    w.clock.advance(29 * 60)
    await w.runtime.worker.drain()
    assert len(await lead_texts(w, channel, conv.id)) == count  # not yet

    w.clock.advance(60)
    await w.runtime.worker.drain()
    texts = await lead_texts(w, channel, conv.id)
    assert len(texts) == count + 1
    # 10:00 + 30 min = 10:30; one hour ahead on the half hour: 11:30 the same day
    assert "Désolé pour l'attente" in texts[-1] and "aujourd'hui à 11:30" in texts[-1]
    conv = await the_conversation(w, channel)
    assert conv.status == "handoff"
    timed_out = [e for e in conv.events if e.type == "handoff.timed_out"]
    assert timed_out[0].detail["by"] == "system"
    reminders = [m for m in notification_mails(w) if m.message["Subject"].startswith("Reminder")]
    assert sorted(r for m in reminders for r in m.rcpt_tos) == sorted(OPS)
    assert [h["type"] for h in hooks(w)] == ["handoff.requested", "handoff.reminder"]

    # a later answer still goes through and closes the wait
    r = await w.client.post(
        f"/api/v1/conversations/{conv.id}/messages", json={"text": "Je vous appelle."}, headers=AUTH
    )
    assert r.status_code == 201
    await w.runtime.worker.drain()
    assert (await lead_texts(w, channel, conv.id))[-1].startswith("Je vous appelle.")


async def test_playbook_handoff_step_and_closed_office(world: World) -> None:
    """A playbook's ``handoff`` step out of office hours: the lead hears when the team is back;
    the timer counts from the opening."""
    w = world
    w.clock.set(MONDAY_10H + 4 * 86400 + 10 * 3600)  # Friday 20:00 UTC
    profile = await w.runtime.tenants.profile("demo")
    playbook = await w.runtime.playbooks.get("demo", profile.playbooks_by_language["en"])
    steps = [s.id for s in playbook.steps]
    assert "hot-handoff" in steps
    await lead_says(w, "sms", FIRST["en"])
    conv = await the_conversation(w, "sms")
    r = await w.client.post(f"/api/v1/conversations/{conv.id}/messages", json={"text": "Hi!"}, headers=AUTH)
    assert r.status_code == 201
    r = await w.client.post(
        f"/api/v1/conversations/{conv.id}/handback", json={"step_id": "hot-handoff"}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    await w.runtime.worker.drain()
    conv = await the_conversation(w, "sms")
    assert conv.status == "handoff"
    texts = delivered(w, "sms")
    assert "passing you to one of our" in texts[-2]
    assert "Our team is away right now" in texts[-1] and "on Monday at 08:00" in texts[-1]
    record = (await w.client.get(f"/api/v1/conversations/{conv.id}/handoff", headers=AUTH)).json()
    assert record["requested_by"] == "playbook" and record["seq"] == 2
    assert record["due_at"] == MONDAY_10H - 2 * 3600 + 7 * 86400 + 30 * 60  # next Monday 08:30


async def test_api_errors(world: World) -> None:
    w = world
    r = await w.client.post("/api/v1/conversations/cv_nope/messages", json={"text": "hi"}, headers=AUTH)
    assert r.status_code == 404
    r = await w.client.post("/api/v1/conversations/cv_nope/messages", json={"text": ""}, headers=AUTH)
    assert r.status_code == 400
    r = await w.client.post("/api/v1/conversations/x/messages", json={"text": "hi"})
    assert r.status_code == 401
    await lead_says(w, "whatsapp", FIRST["en"])
    conv = await the_conversation(w, "whatsapp")
    r = await w.client.post(f"/api/v1/conversations/{conv.id}/handback", json={}, headers=AUTH)
    assert r.status_code == 409
    await lead_says(w, "whatsapp", "I want to speak to an agent")
    r = await w.client.post(
        f"/api/v1/conversations/{conv.id}/handback", json={"step_id": "nope"}, headers=AUTH
    )
    assert r.status_code == 404


async def test_webhook_failures_are_retried_then_sent_once(world: World) -> None:
    w = world
    w.hook.replies.append(Reply(503, {"error": "busy"}))
    await lead_says(w, "sms", FIRST["en"])
    await lead_says(w, "sms", "can I talk to a human")
    assert [r.path for r in w.hook.requests] == ["/hooks/leadwarm"]
    w.clock.advance(5)
    await w.runtime.worker.drain()
    events = hooks(w)
    assert [e["type"] for e in events] == ["handoff.requested", "handoff.requested"]
    assert events[0]["_event_id"] == events[1]["_event_id"]
    w.clock.advance(600)
    await w.runtime.worker.drain()
    assert len([e for e in hooks(w) if e["type"] == "handoff.requested"]) == 2


def test_signature_scheme() -> None:
    body = b'{"a":1}'
    header = sign("whsec_x", body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature("whsec_x", body, header, now=1_700_000_100)
    assert not verify_signature("whsec_y", body, header, now=1_700_000_100)
    assert not verify_signature("whsec_x", body + b" ", header, now=1_700_000_100)
    assert not verify_signature("whsec_x", body, header, now=1_700_001_000)
    assert not verify_signature("whsec_x", body, "garbage", now=1_700_000_000)


@pytest.mark.parametrize("world", ["firestore"], indirect=True)
async def test_the_whole_handoff_on_firestore(world: World) -> None:
    """The same state machine on the production store (transactions read before they write)."""
    await test_handoff_reaches_a_person_and_returns_to_the_bot(world, "whatsapp", "fr", 1)


@pytest.mark.parametrize("world", ["firestore"], indirect=True)
async def test_the_handoff_timeout_on_firestore(world: World) -> None:
    await test_unanswered_handoff_offers_a_call_back_and_reminds_the_tenant(world, "webchat")


async def test_handback_with_the_system_clock(client: Any, runtime: Any) -> None:
    """Real time moves between the steps of a handback: it is still recognised as one."""
    for wamid, text in (("wamid.SC1", "Hello, solar panels?"), ("wamid.SC2", "I want to talk to an agent")):
        message = InboundMessage(
            channel="whatsapp",
            provider_message_id=wamid,
            sender="+33699999999",
            recipient=PHONE_ID,
            text=text,
        )
        assert await runtime.accept("demo", message)
        await runtime.worker.drain()
    [doc] = await runtime.store.query(
        "demo", col.CONVERSATIONS, filters=[where("address", "==", "+33699999999")]
    )
    r = await client.post(f"/api/v1/conversations/{doc.id}/handback", json={"note": "ok"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "active"
    record = (await client.get(f"/api/v1/conversations/{doc.id}/handoff", headers=AUTH)).json()
    assert (record["status"], record["note"]) == ("handed_back", "ok")
