"""Issue 13, whole conversations: the exchanges quoted in the issue replayed through the engine and
the offline interpreter, in English and French. Every value the lead gives is kept, every question
is answered or acknowledged, nothing already said is asked again."""

from __future__ import annotations

from collections.abc import Callable

from playbooks import (
    AskStep,
    ConversationEnded,
    OptOutRequested,
    Playbook,
    ScoreChanged,
    SendMessage,
    SlotFilled,
)

from .conftest import Conversation

Make = Callable[..., Conversation]


async def kb(question: str, language: str) -> str | None:
    """A small knowledge base: knows what an install costs, nothing else."""
    folded = question.lower()
    if "cost" in folded or "combien" in folded:
        if language == "fr":
            return "Une installation coûte en moyenne 9 000 € avant aides."
        return "A typical install costs about £7,000."
    return None


def sent(c: Conversation, purpose: str | None = None) -> list[SendMessage]:
    return [
        a for a in c.last.actions if isinstance(a, SendMessage) and (purpose is None or a.purpose == purpose)
    ]


def asked_steps(c: Conversation) -> list[str]:
    """Step ids of every question the bot asked (first time or again), in order."""
    return [
        a.step_id
        for r in c.results
        for a in r.actions
        if isinstance(a, SendMessage) and a.purpose in ("step", "reask") and a.step_id
    ]


def slot_steps(playbook: Playbook) -> dict[str, str]:
    return {s.id: s.slot for s in playbook.steps if isinstance(s, AskStep)}


def assert_no_reask_of_given(c: Conversation, given_before: dict[str, int]) -> None:
    """No question was asked after the turn in which its slot was given."""
    steps = slot_steps(c.playbook)
    for index, result in enumerate(c.results):
        for action in result.actions:
            if isinstance(action, SendMessage) and action.step_id in steps:
                slot = steps[action.step_id]
                if slot in given_before:
                    assert index <= given_before[slot], (slot, action.text)


def filled_at(c: Conversation) -> dict[str, int]:
    out: dict[str, int] = {}
    for index, result in enumerate(c.results):
        for action in result.actions:
            if isinstance(action, SlotFilled):
                out.setdefault(action.slot, index)
    return out


# --------------------------------------------------------------------------- English


async def test_english_lead_answers_several_questions_and_asks_one(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    playbook = library["solar-qualification-en"]
    c = make_conversation(playbook, answer=kb, region="GB")
    await c.start()
    await c.say("yes we own it, about 180 € a month, Thursday 10am works")
    assert c.state.slots == {
        "homeowner": True,
        "monthly_bill": 180.0,
        "callback_time": "2026-11-26T10:00:00+01:00",
    }
    # the bill is not asked again: the values given in passing are confirmed, then the roof
    ack = sent(c, "ack")
    assert len(ack) == 1 and "Thursday 26 November at 10 am" in ack[0].text and "180 € a month" in ack[0].text
    assert sent(c)[-1].step_id == "roof"
    mentions = [a for a in c.last.actions if isinstance(a, SlotFilled) and a.source == "mention"]
    assert {m.slot: m.evidence for m in mentions} == {
        "monthly_bill": "180 € a month",
        "callback_time": "Thursday 10am",
    }

    await c.say("slate")
    await c.say("hopefully before summer, so in the next couple of months")
    assert c.state.slots["timeline"] == "asap"
    assert sent(c)[-1].step_id == "postcode"

    # an off-script question in place of the postcode is answered, never stored
    await c.say("how much does a typical install cost?")
    assert "postcode" not in c.state.slots
    assert [(m.purpose, m.step_id) for m in sent(c)] == [("answer", None), ("reask", "postcode")]
    assert sent(c)[0].text == "A typical install costs about £7,000."
    assert c.state.attempts == 0
    await c.say("SW1A 1AA")
    assert c.state.slots["postcode"] == "SW1A 1AA"

    # an internationalised address is kept whole
    await c.say("zoë.martin@gmail.com")
    assert c.state.slots["email"] == "zoë.martin@gmail.com"
    # the call-back time was given at the start: its question is skipped; a hot lead goes to an adviser
    assert "callback" not in asked_steps(c)
    assert c.state.status == "handoff" and sent(c)[-1].purpose == "handoff"
    assert_no_reask_of_given(c, filled_at(c))
    assert c.state.slots == {
        "homeowner": True,
        "monthly_bill": 180.0,
        "callback_time": "2026-11-26T10:00:00+01:00",
        "roof_type": "pitched_slate",
        "timeline": "asap",
        "postcode": "SW1A 1AA",
        "email": "zoë.martin@gmail.com",
    }


async def test_english_opt_out_in_free_words(library: dict[str, Playbook], make_conversation: Make) -> None:
    c = make_conversation(library["solar-qualification-en"], region="GB")
    await c.start()
    await c.say("please stop emailing me")
    opt_outs = c.all_actions(OptOutRequested)
    assert len(opt_outs) == 1 and opt_outs[0].evidence == "please stop emailing me"
    assert opt_outs[0].step_id == "homeowner"
    assert c.state.status == "ended" and c.state.outcome == "opted_out" and c.state.slots == {}
    assert c.texts() == ["Understood – you won't receive any more messages from us. Have a good day!"]


async def test_english_question_without_knowledge_is_passed_on_and_question_repeated(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(library["solar-qualification-en"], region="GB")
    await c.start()
    await c.say("do I need planning permission?")
    assert [m.purpose for m in sent(c)] == ["answer", "reask"]
    assert "pass it on" in sent(c)[0].text and sent(c)[1].step_id == "homeowner"
    assert c.state.slots == {} and c.state.attempts == 0
    # "do you install X?" without knowledge is answered from the playbook's offers
    await c.say("do you install batteries as well?")
    assert [m.purpose for m in sent(c)] == ["answer", "reask"]
    assert sent(c)[0].text == "Yes — Home battery is one of our services."


async def test_english_not_interested_ends_politely(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(library["solar-qualification-en"], region="GB")
    await c.start()
    await c.say("I'm not interested, thanks")
    assert c.state.slots == {}  # not a "no" to "Do you own the home?"
    assert c.state.status == "ended" and c.state.outcome == "not_interested"
    assert c.texts() == [
        "Understood, thank you for letting us know! If your plans change, just reply to this message."
    ]
    assert [e.outcome for e in c.all_actions(ConversationEnded)] == ["not_interested"]


async def test_out_of_office_gets_no_reply_and_no_step(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(library["solar-qualification-en"], region="GB")
    await c.start()
    before = c.state.model_dump()
    await c.say(
        "Thank you for your email. I am currently out of the office until Monday 30 November "
        "with limited access to email."
    )
    assert c.last.actions == [] and c.state.model_dump() == before


async def test_small_talk_repeats_the_question_without_using_an_attempt(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(library["solar-qualification-en"], region="GB")
    await c.start()
    await c.say("Hi!")
    assert [(m.purpose, m.text) for m in sent(c)] == [
        ("reask", "Do you own the home where the panels would go?")
    ]
    assert c.state.attempts == 0


async def test_phone_number_read_with_the_leads_own_country(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    # the tenant is French, the lead's number is British: the lead's country reads the number
    c = make_conversation(library["renovation-qualification-fr"], language="fr", region="FR")
    c.state = c.state.model_copy(update={"lead": {"phone": "+447700900001"}})
    await c.start()
    c.state = c.state.model_copy(update={"current_step": "telephone"})
    await c.say("07700 900123")
    assert c.state.slots["telephone"] == "+447700900123"


# --------------------------------------------------------------------------- French


async def test_french_lead_kitchen_question_and_dates(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    playbook = library["renovation-qualification-fr"]
    c = make_conversation(playbook, language="fr", answer=kb)
    await c.start()
    await c.say("oui")
    await c.say("une maison")
    # a kitchen is none of the options, not "Rénovation globale": the options are said again once,
    # then the lead's own words are kept
    await c.say("on veut tout refaire dans la cuisine")
    assert "travaux" not in c.state.slots and "travaux_other" not in c.state.slots
    assert [m.purpose for m in sent(c)] == ["reask"]
    assert "Pompe à chaleur ou Rénovation globale ?" in c.texts()[0]
    await c.say("la cuisine, vraiment")
    assert "travaux" not in c.state.slots
    assert c.state.slots["travaux_other"] == "la cuisine, vraiment"
    reasons = [a.reason for a in c.all_actions(ScoreChanged)]
    assert not any("forte valeur" in r for r in reasons)
    assert sent(c, "ack")[0].text == "Merci, je le note pour votre conseiller."
    assert sent(c)[-1].step_id == "surface"

    # a question in place of the surface: answered, then the same question again (no "en chiffres")
    await c.say("c'est combien en moyenne ?")
    assert "surface" not in c.state.slots
    texts = c.texts()
    assert texts[0] == "Une installation coûte en moyenne 9 000 € avant aides."
    assert texts[1] == "Quelle est la surface habitable approximative de votre logement, en m² ?"
    await c.say("environ 95 m2, et on aimerait faire ça dans deux mois")
    assert c.state.slots["surface"] == 95.0 and c.state.slots["delai"] == "moins_3_mois"
    assert "Merci, j'ai noté « D'ici 3 mois »." in c.texts()[0]
    assert sent(c)[-1].step_id == "aides"  # the delay question is skipped

    await c.say("oui volontiers")
    await c.say("69003")
    await c.say("jérôme.dupont@orange.fr")
    assert c.state.slots["email"] == "jérôme.dupont@orange.fr"
    await c.say("06 12 34 56 78")
    await c.say("jeudi 10 décembre à 14h")
    # the explicit date wins over the weekday, and the moment is said back in full
    assert c.state.slots["creneau_rappel"] == "2026-12-10T14:00:00+01:00"
    assert "C'est noté : jeudi 10 décembre à 14 h." in c.texts()
    assert_no_reask_of_given(c, filled_at(c))
    assert set(c.state.slots) >= {
        "proprietaire", "type_logement", "travaux_other", "surface", "delai", "aides", "code_postal", "email",
        "telephone", "creneau_rappel",
    }  # fmt: skip


async def test_french_next_tuesday_said_on_a_monday_is_confirmed(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(library["renovation-qualification-fr"], language="fr")
    await c.start()
    c.state = c.state.model_copy(update={"current_step": "rappel"})
    await c.say("mardi prochain à 14h")
    assert c.state.slots["creneau_rappel"] == "2026-11-24T14:00:00+01:00"
    assert "C'est noté : mardi 24 novembre à 14 h." in c.texts()


async def test_french_opt_out_and_not_interested(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    playbook = library["renovation-qualification-fr"]
    c = make_conversation(playbook, language="fr")
    await c.start()
    await c.say("ne m'écrivez plus")
    assert [a.type for a in c.last.actions] == ["send", "opt_out", "ended"]
    assert c.texts() == ["C'est noté – vous ne recevrez plus de messages de notre part. Belle journée !"]
    assert c.state.outcome == "opted_out" and c.state.slots == {}

    d = make_conversation(playbook, language="fr")
    await d.start()
    await d.say("Ça ne m'intéresse plus, merci")
    assert d.state.outcome == "not_interested" and d.state.slots == {}
    assert d.texts()[0].startswith("C'est noté, merci de nous avoir prévenus")


async def test_french_close_options_get_a_clarifying_question(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(library["renovation-qualification-fr"], language="fr")
    await c.start()
    c.state = c.state.model_copy(update={"current_step": "travaux"})
    await c.say("l'isolation")
    clarify = sent(c, "clarify")
    assert len(clarify) == 1
    assert clarify[0].text == "Pour être sûr : vous voulez dire Isolation des combles ou Isolation des murs ?"
    assert [o.id for o in clarify[0].choices] == ["isolation_combles", "isolation_murs"]
    assert c.state.attempts == 0 and "travaux" not in c.state.slots
    await c.say("les murs")
    assert c.state.slots["travaux"] == "isolation_murs"


async def test_french_yes_cues_do_not_fire_on_non_answers(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(library["renovation-qualification-fr"], language="fr")
    await c.start()
    await c.say("je suis locataire")
    assert c.state.slots == {"proprietaire": False} and c.state.outcome == "disqualified"
    d = make_conversation(library["renovation-qualification-fr"], language="fr")
    await d.start()
    await d.say("je suis en train de regarder")
    assert "proprietaire" not in d.state.slots


async def test_a_possible_but_unknown_number_is_kept_and_confirmed(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    c = make_conversation(library["renovation-qualification-fr"], language="fr", region="FR")
    await c.start()
    c.state = c.state.model_copy(update={"current_step": "telephone"})
    await c.say("07 00 00 00 00")  # the right length for France, but no such number is assigned
    assert c.state.slots["telephone"] == "+33700000000"
    assert "J'ai noté le numéro +33 7 00 00 00 00 – dites-le-moi s'il n'est pas correct." in c.texts()


async def test_contact_details_given_while_another_question_waits_are_acknowledged(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    """Tried at /chat: an e-mail and a phone number sent while a yes/no question waited got "Pardon,
    je n'ai pas bien compris". They are kept, acknowledged, and the question comes again."""
    c = make_conversation(library["renovation-qualification-fr"], language="fr")
    await c.start()
    c.state = c.state.model_copy(update={"current_step": "aides"})
    await c.say("mon mail c'est jean.dupont@exemple.fr et mon tel 06 12 34 56 78")
    assert c.state.slots["email"] == "jean.dupont@exemple.fr"
    assert c.state.slots["telephone"] == "+33612345678"
    texts = c.texts()
    assert not any(t.startswith("Pardon") for t in texts), texts
    assert "votre adresse e-mail et votre numéro de téléphone" in texts[0]
    assert sent(c)[-1].step_id == "aides"
    assert c.state.attempts == 0


async def test_do_you_do_an_offered_thing_is_a_yes_before_what_the_knowledge_base_says(
    library: dict[str, Playbook], make_conversation: Make
) -> None:
    async def knowledge(question: str, language: str) -> str | None:
        return "A battery stores your daytime production for the evening."

    c = make_conversation(library["solar-qualification-en"], region="GB", answer=knowledge)
    await c.start()
    await c.say("hello, do you guys do batteries?")
    assert [m.purpose for m in sent(c)] == ["answer", "reask"]
    assert sent(c)[0].text == (
        "Yes — Home battery is one of our services. A battery stores your daytime production for the evening."
    )
    await c.say("do you do heat pumps?")  # not offered: said so, the knowledge answer not added
    assert sent(c)[0].text == (
        "Sorry, we don't offer heat pumps. What we can help you with: Solar panels, Solar panels and a"
        " battery or Home battery."
    )
