"""Engine: whole conversations through both library playbooks and focused behaviours."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playbooks import (
    ConversationEnded,
    ConversationState,
    HandoffRequested,
    LeadQualified,
    ScoreChanged,
    SendMessage,
    SlotFilled,
    TimerCancelled,
    TimerFiredEvent,
    TimerScheduled,
    advance,
    load_playbook_text,
)
from playbooks.engine import DEFAULT_INVALID, MAX_STEPS_PER_ADVANCE
from playbooks.schema import Playbook

from .conftest import Conversation, FakeClock, simple_detector

Make = Callable[..., Conversation]


async def kb_answer(question: str, language: str) -> str | None:
    """A fake knowledge base: knows about financing only."""
    if "financ" in question.lower():
        return "Oui, nous proposons un financement." if language == "fr" else "Yes, we offer 0% financing."
    return None


def sends(conversation: Conversation, purpose: str | None = None) -> list[SendMessage]:
    result = conversation.last
    return [
        a for a in result.actions if isinstance(a, SendMessage) and (purpose is None or a.purpose == purpose)
    ]


def question_step(conversation: Conversation) -> str | None:
    asked = sends(conversation)
    return asked[-1].step_id if asked else None


def assert_score_consistent(conversation: Conversation) -> None:
    changes = conversation.all_actions(ScoreChanged)
    assert sum(c.points for c in changes) == conversation.state.score
    for change in changes:
        assert change.reason


# --------------------------------------------------------------------------- solar (English)


async def test_solar_qualified_path_to_the_end(library: dict[str, Playbook], make_conversation: Make) -> None:
    c = make_conversation(library["solar-qualification-en"], lead={"first_name": "Ann"}, region="GB")
    await c.start()
    assert c.texts()[0].startswith("Hi Ann!")
    assert question_step(c) == "homeowner"
    await c.say("Yes we do 👍")
    assert question_step(c) == "bill"
    await c.say("about £180 a month")
    assert question_step(c) == "roof"
    assert [o.id for o in sends(c)[-1].choices] == [
        "pitched_tiles",
        "pitched_slate",
        "flat",
        "metal",
        "not_sure",
    ]
    await c.say("", choice_id="pitched_slate")
    await c.say("in 3 to 6 months")
    assert question_step(c) == "postcode"
    await c.say("SW1A 1AA")
    await c.say("it's ann.smith@Gmail.com")
    await c.say("tomorrow at 9am")
    assert c.state.status == "waiting"
    scheduled = [a for a in c.last.actions if isinstance(a, TimerScheduled)]
    assert len(scheduled) == 1 and scheduled[0].timer.due_at == c.clock.now() + 86400
    c.clock.advance(86400)
    await c.fire()
    assert [m.purpose for m in sends(c)] == ["followup", "followup"]
    assert c.state.status == "ended" and c.state.outcome == "qualified"
    assert c.state.slots == {
        "homeowner": True,
        "monthly_bill": 180.0,
        "roof_type": "pitched_slate",
        "timeline": "three_to_six_months",
        "postcode": "SW1A 1AA",
        "email": "ann.smith@gmail.com",
        "callback_time": "2026-11-24T09:00:00+01:00",
    }
    qualified = c.all_actions(LeadQualified)
    assert len(qualified) == 1 and qualified[0].threshold == 60 and c.state.qualified
    assert_score_consistent(c)
    ended = c.all_actions(ConversationEnded)
    assert [e.outcome for e in ended] == ["qualified"]


async def test_solar_hot_lead_is_handed_off_and_bot_goes_silent(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(library["solar-qualification-en"], region="GB")
    await c.start()
    for text in ["yes", "300", "tiles", "asap", "SW1A 1AA", "bob@example.org", "next tuesday at 2pm"]:
        await c.say(text)
    assert c.state.status == "handoff"
    handoffs = c.all_actions(HandoffRequested)
    assert len(handoffs) == 1 and handoffs[0].step_id == "hot-handoff"
    assert sends(c)[-1].purpose == "handoff"
    assert c.state.slots["callback_time"] == "2026-11-24T14:00:00+01:00"
    before = c.state.model_dump()
    await c.say("Hello? Can you do financing?")
    assert c.last.actions == [] and c.state.model_dump() == before


async def test_solar_renter_is_disqualified_politely(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(library["solar-qualification-en"], answer=kb_answer)
    await c.start()
    await c.say("No, I rent the flat")
    assert c.state.status == "ended" and c.state.outcome == "disqualified"
    assert "landlord" in c.texts()[-1]
    assert c.all_actions(ScoreChanged) == [] and not c.state.qualified
    # after the end: questions the knowledge base can answer get an answer, anything else nothing
    await c.say("do you offer financing?")
    assert [m.purpose for m in sends(c)] == ["answer"]
    await c.say("ok thanks, bye")
    assert c.last.actions == []


async def test_solar_french_lead_gets_french_texts(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(
        library["solar-qualification-en"], answer=kb_answer, detect_language=simple_detector
    )
    await c.start(
        "Bonjour, je voudrais un devis. Vous proposez un financement ?", trigger="inbound_unknown_lead"
    )
    assert c.state.language == "fr"
    texts = c.texts()
    assert texts[0].startswith("Bonjour ! Merci d'avoir contacté SunnyWatt")
    assert texts[1] == "Oui, nous proposons un financement."
    assert texts[2] == "Êtes-vous propriétaire du logement où les panneaux seraient installés ?"
    assert [m.purpose for m in sends(c)] == ["step", "answer", "step"]
    await c.say("Oui, je suis propriétaire")
    assert c.texts()[-1].startswith("Environ combien")
    await c.say("euh, je ne sais pas trop")
    reask = sends(c)[-1]
    assert reask.purpose == "reask" and reask.text.startswith("Pardon, il me faudrait un montant")


async def test_start_text_fills_slots_and_skips_their_questions(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(library["solar-qualification-en"], answer=kb_answer, region="GB")
    await c.start(
        "Hi, I'd like a quote. My email is Ann@Example.com. Do you do financing?",
        trigger="inbound_unknown_lead",
    )
    filled = c.all_actions(SlotFilled)
    assert [(f.slot, f.value, f.source) for f in filled] == [("email", "Ann@example.com", "mention")]
    assert [m.purpose for m in sends(c)] == ["step", "answer", "ack", "step"]
    assert sends(c)[2].text == "Thanks, I've noted your e-mail address."  # kept, and said so
    for text in ["yes", "120", "flat", "later", "AB1 2CD"]:
        await c.say(text)
    assert question_step(c) == "callback"  # the e-mail question was skipped


# --------------------------------------------------------------------------- renovation (French)


async def test_renovation_qualified_path_with_reply_during_wait(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(library["renovation-qualification-fr"], language="fr", answer=kb_answer)
    await c.start()
    assert c.texts()[-1] == "Êtes-vous propriétaire du logement concerné par les travaux ?"
    answers = [
        ("Oui, bien sûr", "logement"),
        ("une maison", "travaux"),
        ("les combles", "surface"),
        ("environ 110 m²", "delai"),
        ("dans 3 à 6 mois", "aides"),
        ("oui volontiers", "code-postal"),
        ("69003", "email"),
        ("claire.dupont@Orange.fr", "telephone"),
        ("06 12 34 56 78", "rappel"),
    ]
    for text, next_question in answers:
        await c.say(text)
        assert question_step(c) == next_question, (text, c.texts())
    await c.say("mardi prochain à 14h")
    assert c.state.status == "waiting" and c.state.timer is not None
    timer_id = c.state.timer.id
    await c.say("Oui, le financement est-il possible ?")
    purposes = [m.purpose for m in sends(c)]
    assert purposes == ["answer", "step", "step"]
    assert [a.timer_id for a in c.last.actions if isinstance(a, TimerCancelled)] == [timer_id]
    assert c.state.status == "ended" and c.state.outcome == "qualified"
    assert c.state.slots["telephone"] == "+33612345678"
    assert c.state.slots["creneau_rappel"] == "2026-11-24T14:00:00+01:00"
    assert c.state.slots["surface"] == 110.0 and c.state.slots["email"] == "claire.dupont@orange.fr"
    assert len(c.all_actions(LeadQualified)) == 1
    assert_score_consistent(c)
    # the cancelled timer may still fire (it was already queued): it is ignored
    await c.fire(timer_id)
    assert c.last.actions == [] and c.state.outcome == "qualified"


async def test_renovation_tenant_is_disqualified(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(library["renovation-qualification-fr"], language="fr")
    await c.start()
    await c.say("Non, je suis locataire")
    assert c.state.outcome == "disqualified" and c.state.status == "ended"
    assert c.texts()[-1].startswith("Merci pour votre réponse !")


async def test_renovation_hot_lead_handoff(library: dict[str, Playbook], make_conversation: Make) -> None:
    c = make_conversation(library["renovation-qualification-fr"], language="fr")
    await c.start()
    for text in ["oui", "maison", "pompe à chaleur", "140", "au plus vite", "non", "75011", "a@b.fr",
                 "0612345678", "demain 10h30"]:  # fmt: skip
        await c.say(text)
    assert c.state.status == "handoff"
    assert c.all_actions(HandoffRequested)[0].reason.startswith("Dossier chaud")
    assert c.state.slots["creneau_rappel"] == "2026-11-24T10:30:00+01:00"


# --------------------------------------------------------------------------- focused behaviours

ASK_NUMBER = """\
id: t
name: T
version: 1
qualification_threshold: 60
steps:
  - id: budget
    type: ask
    slot: budget
    kind: number
    min: 0
    max: 1000000
    retries: 1
    question: {en: "What is your budget?", fr: "Quel est votre budget ?"}
    invalid: {en: "Sorry, a number please.", fr: "Pardon, un nombre svp."}
    on_fail: no-budget
  - id: big
    type: condition
    if: slots.budget >= 10000
    then: big-budget
  - id: small-budget
    type: end
    outcome: small
    message: Small budget noted.
  - id: big-budget
    type: end
    outcome: big
    message: Big budget noted.
  - id: no-budget
    type: handoff
    reason: no budget given
"""


async def test_reask_then_on_fail(make_conversation: Make) -> None:
    c = make_conversation(load_playbook_text(ASK_NUMBER))
    await c.start()
    await c.say("no idea")
    reask = sends(c)
    assert len(reask) == 1 and reask[0].purpose == "reask"
    assert reask[0].text == "Sorry, a number please.\nWhat is your budget?"
    assert c.state.attempts == 1 and c.state.current_step == "budget"
    await c.say("still no idea")
    assert c.state.status == "handoff" and c.all_actions(HandoffRequested)[0].reason == "no budget given"
    assert "budget" not in c.state.slots


async def test_on_fail_defaults_to_next_step_with_slot_empty(make_conversation: Make) -> None:
    playbook = load_playbook_text(
        ASK_NUMBER.replace("    on_fail: no-budget\n", "").replace("retries: 1", "retries: 0")
    )
    c = make_conversation(playbook)
    await c.start()
    await c.say("dunno")
    # slot empty: the condition fails safely (noted) and the next step runs
    assert c.state.outcome == "small" and "budget" not in c.state.slots
    assert any("treated as false" in note for note in c.last.notes)


async def test_condition_on_slots(make_conversation: Make) -> None:
    playbook = load_playbook_text(ASK_NUMBER)
    for text, outcome in [("about 12 500 €", "big"), ("5k", "small"), ("0.5M", "big"), ("900", "small")]:
        c = make_conversation(playbook)
        await c.start()
        await c.say(text)
        assert c.state.outcome == outcome, text


async def test_out_of_range_number_is_reasked(make_conversation: Make) -> None:
    c = make_conversation(load_playbook_text(ASK_NUMBER.replace("max: 1000000", "max: 100")))
    await c.start()
    await c.say("500")
    assert sends(c)[0].purpose == "reask" and "budget" not in c.state.slots
    assert any("out of its range" in note for note in c.last.notes)


async def test_question_is_answered_without_using_an_attempt(make_conversation: Make) -> None:
    c = make_conversation(load_playbook_text(ASK_NUMBER), answer=kb_answer)
    await c.start()
    await c.say("Do you offer financing?")
    assert [(m.purpose, m.text) for m in sends(c)] == [
        ("answer", "Yes, we offer 0% financing."),
        ("reask", "What is your budget?"),
    ]
    assert c.state.attempts == 0


async def test_wants_human_at_a_question_hands_off(make_conversation: Make) -> None:
    c = make_conversation(load_playbook_text(ASK_NUMBER))
    await c.start()
    await c.say("Je veux parler à un conseiller")
    assert c.state.status == "handoff"
    assert c.all_actions(HandoffRequested)[0].reason == "lead asked for a human"


async def test_french_reask_uses_french_texts(make_conversation: Make) -> None:
    c = make_conversation(load_playbook_text(ASK_NUMBER), detect_language=simple_detector)
    await c.start()
    await c.say("je ne sais pas")
    assert sends(c)[0].text == "Pardon, un nombre svp.\nQuel est votre budget ?"


async def test_default_invalid_text_per_language(make_conversation: Make) -> None:
    c = make_conversation(
        load_playbook_text(
            ASK_NUMBER.replace(
                '    invalid: {en: "Sorry, a number please.", fr: "Pardon, un nombre svp."}\n', ""
            )
        ),
        language="fr",
    )
    await c.start()
    await c.say("bof")
    assert sends(c)[0].text == f"{DEFAULT_INVALID['fr']}\nQuel est votre budget ?"


SCORES = """\
id: s
name: S
version: 1
qualification_threshold: 60
steps:
  - {type: score, points: 40, reason: first}
  - {type: score, points: 30, reason: second}
  - {type: score, points: 50, reason: third}
  - {type: score, points: -500, reason: fourth, if: "score > 90"}
  - {type: score, points: 25, reason: fifth}
  - {type: score, points: 99, reason: never, if: "lead.vip"}
"""


async def test_score_and_lead_qualified_once(make_conversation: Make) -> None:
    c = make_conversation(load_playbook_text(SCORES))
    await c.start()
    changes = c.all_actions(ScoreChanged)
    assert [(x.reason, x.points, x.score) for x in changes] == [
        ("first", 40, 40),
        ("second", 30, 70),
        ("third", 30, 100),  # clamped to 100
        ("fourth", -100, 0),
        ("fifth", 25, 25),
    ]
    kinds = [type(a).__name__ for a in c.last.actions]
    assert kinds.count("LeadQualified") == 1
    assert kinds.index("LeadQualified") == kinds.index("ScoreChanged") + 2  # right after reaching 70
    assert c.state.qualified and c.state.outcome == "completed"


WAITS = """\
id: w
name: W
version: 1
steps:
  - type: message
    text: Any questions?
  - id: hold
    type: wait
    duration: 2h
    until_reply: true
    on_reply: replied
    on_timeout: timed-out
  - id: timed-out
    type: end
    outcome: silent
    message: Just checking in!
  - id: replied
    type: end
    outcome: replied
    message: Thanks for your reply!
"""


async def test_wait_until_reply_ends_on_reply(make_conversation: Make) -> None:
    c = make_conversation(load_playbook_text(WAITS))
    await c.start()
    timer = c.state.timer
    assert timer is not None and timer.due_at == c.clock.now() + 7200 and c.state.status == "waiting"
    await c.say("Nope, all good")
    assert [a.timer_id for a in c.last.actions if isinstance(a, TimerCancelled)] == [timer.id]
    assert c.state.outcome == "replied" and c.state.timer is None


async def test_wait_until_reply_times_out(make_conversation: Make) -> None:
    c = make_conversation(load_playbook_text(WAITS))
    await c.start()
    c.clock.advance(7200)
    await c.fire()
    assert [(m.text, m.purpose) for m in sends(c)] == [("Just checking in!", "followup")]
    assert c.state.outcome == "silent"


async def test_stale_timer_is_ignored(make_conversation: Make) -> None:
    c = make_conversation(load_playbook_text(WAITS))
    await c.start()
    before = c.state.model_dump()
    await c.fire("hold:12345")
    assert c.last.actions == [] and c.state.model_dump() == before
    assert c.last.notes


async def test_wait_forever_for_reply(make_conversation: Make) -> None:
    c = make_conversation(load_playbook_text(WAITS.replace("    duration: 2h\n", "")))
    await c.start()
    assert c.state.status == "waiting" and c.state.timer is None
    assert not [a for a in c.last.actions if isinstance(a, TimerScheduled)]
    await c.say("hi")
    assert c.state.outcome == "replied"


PAUSE = """\
id: p
name: P
version: 1
steps:
  - {type: message, text: First}
  - {id: pause, type: wait, duration: 30m}
  - {type: ask, slot: email, kind: email, question: "Your e-mail?"}
  - {type: end, outcome: done}
"""


async def test_plain_wait_stays_paused_on_inbound(make_conversation: Make) -> None:
    c = make_conversation(load_playbook_text(PAUSE), answer=kb_answer)
    await c.start()
    await c.say("btw my email is joe@example.com, and is financing possible?")
    assert [m.purpose for m in sends(c)] == ["answer", "ack"]
    assert c.state.status == "waiting" and c.state.slots == {"email": "joe@example.com"}
    c.clock.advance(1800)
    await c.fire()
    # the e-mail question is skipped: the lead gave it during the pause
    assert c.state.outcome == "done"


async def test_handoff_silences_the_bot(make_conversation: Make) -> None:
    playbook = load_playbook_text(
        "id: h\nname: H\nversion: 1\nsteps:\n"
        "  - {type: handoff, reason: always, message: A colleague will reply.}\n"
    )
    c = make_conversation(playbook, answer=kb_answer)
    await c.start()
    assert [m.purpose for m in sends(c)] == ["handoff"] and c.state.status == "handoff"
    for text in ["hello?", "is financing possible?", "I want a human"]:
        await c.say(text)
        assert c.last.actions == []


async def test_loop_guard_hands_off_instead_of_raising(make_conversation: Make) -> None:
    playbook = load_playbook_text(
        "id: l\nname: L\nversion: 1\nsteps:\n"
        "  - {id: a, type: score, points: 1, reason: tick}\n"
        "  - {id: b, type: condition, if: 'true', then: a}\n"
    )
    c = make_conversation(playbook)
    await c.start()
    handoffs = c.all_actions(HandoffRequested)
    assert [h.reason for h in handoffs] == ["playbook loop"] and c.state.status == "handoff"
    assert len(c.all_actions(ScoreChanged)) == MAX_STEPS_PER_ADVANCE // 2


async def test_inbound_without_pending_question_gets_fallback(make_conversation: Make) -> None:
    c = make_conversation(load_playbook_text(ASK_NUMBER), answer=kb_answer)
    c.state = c.state.model_copy(update={"current_step": None})
    await c.say("hello there")
    assert [(m.purpose, m.text) for m in sends(c)] == [("fallback", "Thanks, we'll get back to you.")]
    await c.say("financing?")
    assert [m.purpose for m in sends(c)] == ["answer"]


async def test_localized_text_choice_order(make_conversation: Make) -> None:
    playbook = load_playbook_text(
        "id: g\nname: G\nversion: 1\nlanguage: fr\nsteps:\n"
        "  - {type: message, text: {de: Hallo, fr: Bonjour, en: Hello}}\n"
        "  - {type: message, text: {de: Tschüss, en: Bye}}\n"
        "  - {type: message, text: 'Hi {{ lead.name }}, score {{ score }}, {{ slots.none }}!'}\n"
    )
    for language, expected in [
        ("en", ["Hello", "Bye"]),
        ("es", ["Bonjour", "Tschüss"]),
        ("de", ["Hallo", "Tschüss"]),
    ]:
        c = make_conversation(playbook, language=language, lead={"name": "Zoé"})
        await c.start()
        assert c.texts()[:2] == expected
        assert c.texts()[2] == "Hi Zoé, score 0, !"


async def test_engine_is_deterministic_and_pure(
    library: dict[str, Playbook], make_conversation: Make, clock: FakeClock
) -> None:
    transcripts: list[list[dict[str, Any]]] = []
    for _ in range(2):
        clock.value = 1_795_424_400.0
        c = make_conversation(library["solar-qualification-en"], region="GB")
        await c.start()
        for text in ["yes", "200", "metal", "asap", "E1 6AN", "x@y.io", "friday at 3pm", "hi"]:
            before = c.state.model_dump()
            state = c.state
            await c.say(text)
            assert state.model_dump() == before  # the input state is never modified
        transcripts.append([r.model_dump(mode="json") for r in c.results])
    assert transcripts[0] == transcripts[1]


async def test_timer_without_state_and_inbound_without_state(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(library["solar-qualification-en"])
    result = await advance(c.playbook, None, TimerFiredEvent(timer_id="x"), c.ports)
    assert result.actions == [] and isinstance(result.state, ConversationState)
    c.state = None  # type: ignore[assignment]
    await c.say("Hello, I'm interested")
    assert question_step(c) == "homeowner" and c.state.playbook_id == "solar-qualification-en"


ASK_CHOICE = """\
id: t
name: T
version: 1
qualification_threshold: 60
steps:
  - id: heating
    type: ask
    slot: heating
    kind: choice
    retries: 1
    question: {en: "How do you heat your home?", fr: "Comment vous chauffez-vous ?"}
    choices:
      - {id: gas, title: {en: Gas boiler, fr: Chaudière gaz}}
      - {id: electric, title: {en: Electric heaters, fr: Radiateurs électriques}}
    on_fail: ask-person
  - id: done
    type: end
    outcome: done
    message: Thanks.
  - id: ask-person
    type: handoff
    reason: heating not understood
"""


async def test_choice_missed_twice_goes_where_the_playbook_declares(make_conversation: Make) -> None:
    c = make_conversation(load_playbook_text(ASK_CHOICE), language="en")
    await c.start()
    await c.say("a wood stove in the lounge")
    assert [(m.purpose, m.text) for m in sends(c)] == [
        (
            "reask",
            "Sorry, I couldn't match that to one of the options – is it Gas boiler or Electric heaters? "
            "If it's something else, just tell me in a few words.",
        )
    ]
    assert [o.id for o in sends(c)[0].choices] == ["gas", "electric"]
    await c.say("wood burning stove")
    assert c.state.slots == {"heating_other": "wood burning stove"}
    assert (
        c.state.status == "handoff" and c.all_actions(HandoffRequested)[0].reason == "heating not understood"
    )


async def test_choice_without_retries_keeps_the_words_at_once(make_conversation: Make) -> None:
    c = make_conversation(load_playbook_text(ASK_CHOICE.replace("retries: 1", "retries: 0")), language="en")
    await c.start()
    await c.say("a wood stove in the lounge")
    assert c.state.slots == {"heating_other": "a wood stove in the lounge"}
    assert c.state.status == "handoff"
