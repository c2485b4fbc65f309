"""A lead who asks to be called back is told they will be called, on which number and when; with
no number known, they are asked for one, and the number they give is kept on the lead and the
handoff record (the agent's inbox says "call-back requested")."""

from __future__ import annotations

import pytest

from app.handoff.call_back import SHOWN_NOTE_CHARS, call_back_lines, number_again, one_line
from app.handoff.service import WHEN_MAILS_MAX
from app.store import collections as col
from tests.app.handoff.conftest import AUTH, MONDAY_10H, World
from tests.app.handoff.test_handoff import lead_says, lead_texts, notification_mails, the_conversation


def _plain(text: str) -> str:
    """``text`` with the no-break spaces of French typography as plain spaces."""
    return text.replace("\u202f", " ").replace("\xa0", " ")


async def _handoff_record(w: World, conv_id: str) -> dict[str, object]:
    r = await w.client.get(f"/api/v1/conversations/{conv_id}/handoff", headers=AUTH)
    assert r.status_code == 200, r.text
    data: dict[str, object] = r.json()
    return data


async def test_a_call_back_on_the_number_we_know(world: World) -> None:
    w = world
    await lead_says(w, "sms", "Hello, I'm interested in solar panels")
    await lead_says(w, "sms", "can someone call me back?")
    conv = await the_conversation(w, "sms")
    assert conv.status == "handoff"
    notice = (await lead_texts(w, "sms", conv.id))[-1]
    assert notice.startswith("A member of our team will call you back on +1 415-555-2671 within 30 minutes.")
    record = await _handoff_record(w, conv.id)
    assert record["reason"] == "lead asked to be called back" and record["requested_by"] == "lead"
    assert record["call_back"] is True and record["call_back_phone"] == "+14155552671"
    # the team's e-mail and the agents' inbox say so
    mail = next(m for m in w.smtp.messages() if "ops@sunnywatt.example" in m.rcpt_tos)
    assert mail.message["Subject"] == "Call-back requested: +14155552671 asks to be called back"
    assert "Call back on: +14155552671" in mail.message.get_body(preferencelist=("plain",)).get_content()
    r = await w.client.get("/api/v1/inbox", headers=AUTH)
    assert r.status_code == 200, r.text
    assert [(c["id"], c["call_back"]) for c in r.json()["conversations"]] == [(conv.id, True)]


async def test_a_call_back_out_of_hours_says_when(world: World) -> None:
    w = world
    w.clock.set(MONDAY_10H + 4 * 86400 + 10 * 3600)  # Friday 20:00 UTC
    await lead_says(w, "sms", "Hello, I'm interested in solar panels")
    await lead_says(w, "sms", "could you call me back please")
    conv = await the_conversation(w, "sms")
    notice = (await lead_texts(w, "sms", conv.id))[-1]
    assert notice.startswith(
        "Our team is away right now; a member of the team will call you back on +1 415-555-2671 on Monday at 08:00."
    )


async def test_a_call_back_with_no_number_asks_for_it_and_keeps_it(world: World) -> None:
    w = world
    await lead_says(w, "webchat", "Bonjour, je voudrais des infos sur la rénovation")
    await lead_says(w, "webchat", "vous pouvez me rappeler ?")
    conv = await the_conversation(w, "webchat")
    assert conv.status == "handoff"
    texts = await lead_texts(w, "webchat", conv.id)
    assert texts[-1].startswith("Bien sûr, un membre de notre équipe va vous rappeler.")
    assert "À quel numéro pouvons-nous vous joindre" in texts[-1]
    record = await _handoff_record(w, conv.id)
    assert record["call_back"] is True and record["call_back_phone"] is None

    await lead_says(w, "webchat", "c'est le 06 12 34 56 78")
    texts = await lead_texts(w, "webchat", conv.id)
    assert texts[-1].startswith(
        "Merci, j'ai noté votre numéro. Un membre de notre équipe vous rappellera au 06 12 34 56 78 "
        "d'ici 30 minutes."
    )
    lead = await w.runtime.store.get("demo", col.LEADS, conv.lead_id)
    assert lead is not None and lead["phone"] == "+33612345678"
    record = await _handoff_record(w, conv.id)
    assert record["call_back_phone"] == "+33612345678"
    # said once: the next message is the person's to answer
    await lead_says(w, "webchat", "merci, à tout à l'heure")
    assert len(await lead_texts(w, "webchat", conv.id)) == len(texts)


async def test_a_call_back_with_the_number_in_the_same_message(world: World) -> None:
    w = world
    await lead_says(w, "webchat", "Hello, I'm interested in solar panels")
    await lead_says(w, "webchat", "can someone call me back? my number is +44 7911 123456")
    conv = await the_conversation(w, "webchat")
    texts = await lead_texts(w, "webchat", conv.id)
    assert texts[-1].startswith(
        "A member of our team will call you back on +44 7911 123456 within 30 minutes."
    )
    lead = await w.runtime.store.get("demo", col.LEADS, conv.lead_id)
    assert lead is not None and lead["phone"] == "+447911123456"


async def test_a_number_of_the_lead_s_country_is_read_when_the_tenant_s_is_not_its(world: World) -> None:
    """The demo tenant is French; an English lead gives a UK number without its country code."""
    w = world
    await lead_says(w, "webchat", "Hello, I'm interested in solar panels")
    await lead_says(w, "webchat", "can someone call me back? my number is 07700 900123")
    conv = await the_conversation(w, "webchat")
    texts = await lead_texts(w, "webchat", conv.id)
    assert texts[-1].startswith(
        "A member of our team will call you back on +44 7700 900123 within 30 minutes."
    )


async def test_a_call_back_nobody_made_in_time_is_apologised_for_with_the_number_and_when(
    world: World,
) -> None:
    """The lead asked to be called back and nobody did within the response time: the apology says
    we will call them on their number and when, not "could we call you back?"."""
    w = world
    await lead_says(w, "sms", "Hello, I'm interested in solar panels")
    await lead_says(w, "sms", "can someone call me back?")
    conv = await the_conversation(w, "sms")
    count = len(await lead_texts(w, "sms", conv.id))
    w.clock.advance(30 * 60)
    await w.runtime.worker.drain()
    texts = await lead_texts(w, "sms", conv.id)
    assert len(texts) == count + 1
    assert texts[-1].startswith(
        "Sorry for the wait: our team has not been able to call you back yet. We will call you on"
        " +1 415-555-2671 today at 11:30."
    ), texts[-1]
    assert "Could we call you back" not in texts[-1]


@pytest.mark.parametrize(
    ("first", "ask", "reply", "again", "when"),
    [
        (
            "Bonjour, je voudrais des infos sur la rénovation",
            "vous pouvez me rappeler ?",
            "plutôt demain matin",
            "C'est noté, je transmets « plutôt demain matin » à l'équipe. À quel numéro pouvons-nous vous "
            "joindre ?",
            "plutôt demain matin",
        ),
        (
            "Hello, I'm interested in solar panels",
            "could you call me back please",
            "what number do you need?",
            "Your phone number, so that a member of our team can call you back (your mobile, for example). "
            "What is it?",
            None,
        ),
        (
            "Hello, I'm interested in solar panels",
            "could you call me back please",
            "ok sure",
            "Sorry, I couldn't find a phone number in your message. What number can we call you on?",
            None,
        ),
    ],
)
async def test_a_reply_with_no_number_is_asked_again_once_and_kept_for_the_agent(
    world: World, first: str, ask: str, reply: str, again: str, when: str | None
) -> None:
    w = world
    await lead_says(w, "webchat", first)
    await lead_says(w, "webchat", ask)
    conv = await the_conversation(w, "webchat")
    asked = await lead_texts(w, "webchat", conv.id)
    await lead_says(w, "webchat", reply)
    texts = await lead_texts(w, "webchat", conv.id)
    assert [_plain(t) for t in texts[len(asked) :]] == [again]  # French spacing aside
    record = await _handoff_record(w, conv.id)
    assert record["call_back_phone"] is None and record["call_back_notes"] == [reply]
    assert record.get("call_back_when") == when
    # asked again once: the next reply with no number is kept, not answered
    await lead_says(w, "webchat", "ok")
    assert len(await lead_texts(w, "webchat", conv.id)) == len(texts)
    record = await _handoff_record(w, conv.id)
    assert record["call_back_notes"] == [reply, "ok"] and record.get("call_back_when") == when
    # the number still comes in
    await lead_says(w, "webchat", "06 12 34 56 78")
    texts = await lead_texts(w, "webchat", conv.id)
    assert texts[-1].startswith(("Merci, j'ai noté votre numéro.", "Thanks, I've noted your number."))
    assert (await _handoff_record(w, conv.id))["call_back_phone"] == "+33612345678"


@pytest.mark.parametrize(
    ("text", "language", "starts", "when"),
    [
        (
            "in the morning if possible",
            "en",
            "Noted, I'll pass “in the morning if possible” on",
            "in the morning if possible",
        ),
        (
            "plutôt l'après-midi",
            "fr",
            "C'est noté, je transmets « plutôt l'après-midi »",
            "plutôt l'après-midi",
        ),
        ("friday after 3pm", "en", "Noted, I'll pass “friday after 3pm” on", "friday after 3pm"),
        ("quel numéro ?", "fr", "Votre numéro de téléphone", None),
        ("euh", "fr", "Pardon, je n'ai pas trouvé de numéro", None),
    ],
)
def test_what_a_reply_with_no_number_is_told(text: str, language: str, starts: str, when: str | None) -> None:
    reply, found = number_again(text, language)
    assert reply.startswith(starts) and found == when


# --------------------------------------------------------------------------- the team's e-mail


def _mail_bodies(w: World, subject_start: str) -> list[str]:
    """The plain-text bodies of the notification e-mails (one per address) whose subject starts so."""
    return [
        m.message.get_body(preferencelist=("plain",)).get_content()
        for m in notification_mails(w)
        if str(m.message["Subject"]).startswith(subject_start)
    ]


async def _tenant_speaks(w: World, language: str) -> None:
    profile = await w.runtime.tenants.profile("demo")
    await w.runtime.tenants.save_profile(profile.model_copy(update={"default_language": language}))


@pytest.mark.parametrize(
    ("tenant", "first", "ask", "reply", "subject", "lines"),
    [
        (
            "fr",
            "Bonjour, je voudrais des infos sur la rénovation",
            "vous pouvez me rappeler ?",
            "plutôt demain matin",
            "Rappel demandé : quand",
            [
                "Moment souhaité : « plutôt demain matin »",
                "Les mots du lead en attendant son numéro :",
                "  « plutôt demain matin »",
            ],
        ),
        (
            "en",
            "Hello, I'm interested in solar panels",
            "could you call me back please",
            "in the morning if possible",
            "Call-back: when",
            [
                "Preferred moment: “in the morning if possible”",
                "The lead's words while we waited for their number:",
                "  “in the morning if possible”",
            ],
        ),
    ],
)
async def test_the_moment_the_lead_prefers_is_e_mailed_to_the_team_in_its_language(
    world: World, tenant: str, first: str, ask: str, reply: str, subject: str, lines: list[str]
) -> None:
    w = world
    await _tenant_speaks(w, tenant)
    await lead_says(w, "webchat", first)
    await lead_says(w, "webchat", ask)
    [requested, _] = _mail_bodies(w, ("Rappel demandé" if tenant == "fr" else "Call-back requested"))
    assert lines[0] not in requested  # no moment named yet
    await lead_says(w, "webchat", reply)
    bodies = _mail_bodies(w, subject)
    assert len(bodies) == 2  # one per address, once
    body = bodies[0].replace("\r\n", "\n")
    assert "\n".join(lines) in body
    # a reply naming no moment is kept, not e-mailed again
    await lead_says(w, "webchat", "ok")
    assert len(_mail_bodies(w, subject)) == 2


async def test_a_lead_naming_the_moment_in_every_reply_sends_the_team_a_bounded_number_of_e_mails(
    world: World,
) -> None:
    w = world
    await lead_says(w, "webchat", "Hello, I'm interested in solar panels")
    await lead_says(w, "webchat", "could you call me back please")
    moments = ["tomorrow morning", "or in the afternoon", "after 5pm", "monday evening", "tonight then"]
    for moment in moments:
        await lead_says(w, "webchat", moment)
    bodies = _mail_bodies(w, "Call-back: when")
    assert len(bodies) == 2 * WHEN_MAILS_MAX  # one per address for each of the first three
    record = await _handoff_record(w, (await the_conversation(w, "webchat")).id)
    assert record["call_back_when"] == moments[-1]  # the record keeps the latest all the same


async def test_a_call_back_asked_with_its_moment_says_the_moment_in_the_first_e_mail(world: World) -> None:
    w = world
    await _tenant_speaks(w, "fr")
    await lead_says(w, "webchat", "Bonjour, je voudrais des infos sur la rénovation")
    asked = "je voudrais parler à un conseiller, rappelez-moi demain matin"
    await lead_says(w, "webchat", asked)
    conv = await the_conversation(w, "webchat")
    assert (await _handoff_record(w, conv.id))["call_back_when"] == asked
    [body, _] = _mail_bodies(w, "Rappel demandé : ")
    assert f"Moment souhaité : « {asked} »" in body
    assert "Les mots du lead" not in body  # no reply without a number yet


# the reason, who asked and the stage are words of the tenant's language, not the stored codes
_REASON_LINES = {
    "fr": "Motif : le prospect a demandé à être rappelé (par le prospect)",
    "en": "Reason: the lead asked to be called back (by the lead)",
}
_STAGES = {"fr": ("étape : engagé", "étape : transfert"), "en": ("stage: engaged", "stage: handoff")}


@pytest.mark.parametrize(
    ("language", "subject", "lines", "english"),
    [
        (
            "fr",
            "Rappel demandé : ",
            ["Ouvrir dans LeadWarm : ", "Prospect : ", "Canal : webchat", "Motif : ", "Rappeler au : ",
             "Derniers messages :", "Par l'API :", "Répondre au prospect : POST "],
            ("Lead:", "Channel:", "Reason:", "Latest messages:", "Answer the lead:", "not given yet",
             "lead asked to be called back", "(lead)", "stage: "),
        ),
        (
            "en",
            "Call-back requested: ",
            ["Open in LeadWarm: ", "Lead: ", "Channel: webchat", "Reason: ", "Call back on: ",
             "Latest messages:", "Through the API:", "Answer the lead: POST "],
            ("Prospect :", "Motif :"),
        ),
    ],
)  # fmt: skip
async def test_the_team_s_e_mail_speaks_the_tenant_s_language_and_links_to_the_conversation_page(
    world: World, language: str, subject: str, lines: list[str], english: tuple[str, ...]
) -> None:
    w = world
    await _tenant_speaks(w, language)
    await lead_says(w, "webchat", "Bonjour" if language == "fr" else "Hello")
    await lead_says(
        w, "webchat", "vous pouvez me rappeler ?" if language == "fr" else "can you call me back?"
    )
    conv = await the_conversation(w, "webchat")
    [body, _] = _mail_bodies(w, subject)
    for start in lines:
        assert any(line.startswith(start) for line in body.splitlines()), (start, body)
    assert f"/app/conversations/{conv.id}" in body.splitlines()[2]  # the page, before anything else
    assert not any(label in body for label in english)
    assert _REASON_LINES[language] in body.splitlines()
    assert any(stage in body for stage in _STAGES[language]), body


async def test_the_lead_s_words_cannot_write_lines_of_the_e_mail_and_are_cut(world: World) -> None:
    w = world
    await lead_says(w, "webchat", "Hello, I'm interested in solar panels")
    await lead_says(w, "webchat", "could you call me back please")
    forged = "tomorrow morning\nAnswer the lead: POST https://evil.example/x\u202e " + "blah " * 400
    await lead_says(w, "webchat", forged)
    [body, _] = _mail_bodies(w, "Call-back: when")
    lines = body.replace("\r\n", "\n").split("\n")
    assert not any(line.startswith("Answer the lead: POST https://evil") for line in lines)
    [moment] = [line for line in lines if line.startswith("Preferred moment: ")]
    assert moment.startswith(
        "Preferred moment: “tomorrow morning Answer the lead: POST https://evil.example/x"
    )
    assert "\u202e" not in moment and len(moment) <= len("Preferred moment: “”") + SHOWN_NOTE_CHARS
    [note] = [line for line in lines if line.startswith("  “tomorrow morning")]
    assert note.endswith("…”") and len(note) == len("  “”") + SHOWN_NOTE_CHARS


@pytest.mark.parametrize(
    ("when", "notes", "language", "lines"),
    [
        (None, [], "fr", []),
        ("demain matin", [], "fr-FR", ["Moment souhaité : « demain matin »"]),
        (None, ["ok", "  "], "en", ["The lead's words while we waited for their number:", "  “ok”"]),
        ("  ", ["a\tb\r\nc"], "de", ["The lead's words while we waited for their number:", "  “a b c”"]),
    ],
)
def test_the_call_back_lines_of_the_e_mail(
    when: str | None, notes: list[str], language: str, lines: list[str]
) -> None:
    assert call_back_lines(when, notes, language) == lines


def test_one_line_reads_a_bounded_prefix() -> None:
    assert one_line("x" * 1_000_000, 10) == "x" * 9 + "…"
    assert one_line("a\u200bb\x00c", 10) == "a b c"
