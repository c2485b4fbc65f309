"""What the GPT interpreter must read as the offline one does: a project the playbook does not offer
(``not_offered``) is said plainly with what is offered, whether the scripted model reports it or not;
a budget no question asks for is kept for the team (``remarks``) and "do you do X?" is answered from
the playbook's offers (``asks_offer``), as the rules read them. WhatsApp webhooks drive the shipped
playbooks through the worker while a scripted OpenAI-compatible server on 127.0.0.1 reads the
lead's messages."""

from __future__ import annotations

from typing import Any

import pytest

from app.ai.language import detect_language
from app.ai.llm.interpreter import GptInterpreter
from app.composition import Runtime
from playbooks import Interpretation, load_library, new_state
from playbooks.runtime import AskContext
from tests.app.conftest import sent_texts
from tests.llm.fake_openai import FakeOpenAI, analysis
from tests.llm.gpt_app import Client
from tests.llm.test_interpreter import _say
from tests.support.recording import RecordingServer

EN_PLAYBOOK = load_library()["solar-qualification-en"]
SOLAR = "je veux un devis pr des panneaux solaires"
NOT_OFFERED = "nous ne proposons pas l'installation de panneaux solaires"


async def _lead_slots(runtime: Runtime) -> dict[str, object]:
    [conv] = await runtime.store.query("demo", "conversations")
    return dict(conv.data["state"]["slots"])


@pytest.mark.parametrize(
    "reported",
    [
        [{"name": "not_offered", "value": "solaire", "evidence": "panneaux solaires"}],
        # by its title rather than its id
        [
            {
                "name": "not_offered",
                "value": "l'installation de panneaux solaires",
                "evidence": "panneaux solaires",
            }
        ],
        [],  # the model missed it: the offline reader's whole-label rule hears it
    ],
)
async def test_a_project_not_offered_read_by_the_model_is_said_plainly_with_what_is_offered(
    client: Client,
    runtime: Runtime,
    graph: RecordingServer,
    fake: FakeOpenAI,
    reported: list[dict[str, object]],
) -> None:
    fake.push(analysis(language="fr", slots=reported))  # the first message (the lead is new)
    await _say(client, runtime, SOLAR, "wamid.NO1")
    texts = sent_texts(graph)
    said = [t for t in texts if NOT_OFFERED in t]
    assert len(said) == 1
    assert "Isolation des combles" in said[0] and "Pompe à chaleur" in said[0]
    assert texts[-1] == "Êtes-vous propriétaire du logement concerné par les travaux\u202f?"  # French spacing
    assert (await _lead_slots(runtime)).get("not_offered") == "solaire"
    [request] = fake.chat_requests()
    system = request.messages[0]["content"]
    assert 'solaire = "l\'installation de panneaux solaires"' in system  # the model knows what is not offered


async def test_a_project_not_offered_named_in_an_opt_out_is_no_request(
    client: Client, runtime: Runtime, graph: RecordingServer, fake: FakeOpenAI
) -> None:
    fake.push(analysis(language="fr", intent="greeting"))
    await _say(client, runtime, "bonjour", "wamid.NO2")
    fake.push(analysis(language="fr", intent="stop"))
    await _say(client, runtime, "stop les messages sur les panneaux solaires", "wamid.NO3")
    assert not [t for t in sent_texts(graph) if NOT_OFFERED in t]
    assert "not_offered" not in await _lead_slots(runtime)


async def test_a_short_line_in_another_language_is_answered_in_the_conversations_language(
    client: Client, runtime: Runtime, graph: RecordingServer, fake: FakeOpenAI
) -> None:
    fake.push(analysis(language="en", intent="greeting"))
    await _say(client, runtime, "Hi, we are thinking about solar panels for our house", "wamid.L1")
    before = len(sent_texts(graph))
    fake.push(analysis(language="fr", intent="wants_human"))
    await _say(client, runtime, "je voudrais parler à quelqu'un", "wamid.L2")
    replies = sent_texts(graph)[before:]
    assert replies and all(detect_language(t, supported=("en", "fr")) == "en" for t in replies)
    [conv] = await runtime.store.query("demo", "conversations")
    assert conv.data["state"]["language"] == "en"
    user = fake.chat_requests()[-1].messages[-1]["content"]
    assert "Reply language: en." in user  # the model is told to answer in English too


async def test_a_relative_owner_is_heard_when_the_model_only_says_the_lead_does_not_own(
    client: Client, runtime: Runtime, graph: RecordingServer, fake: FakeOpenAI
) -> None:
    fake.push(analysis(language="fr", intent="greeting"))
    await _say(client, runtime, "bonjour", "wamid.R1")
    evidence = "ma mère la proprio"
    fake.push(analysis(language="fr", slots=[{"name": "proprietaire", "value": False, "evidence": evidence}]))
    await _say(client, runtime, "c'est ma mère la proprio", "wamid.R2")
    slots = await _lead_slots(runtime)
    assert slots["proprietaire"] is False and slots["proprietaire_proche"] is True
    texts = sent_texts(graph)
    assert any(
        t.startswith("Entendu\u00a0: vous pouvez tout à fait faire la demande pour votre proche")
        for t in texts
    )
    assert texts[-1] == "S'agit-il d'une maison ou d'un appartement\u202f?"


async def test_a_call_back_read_by_the_model_is_told_the_lead_will_be_called(
    client: Client, runtime: Runtime, graph: RecordingServer, fake: FakeOpenAI
) -> None:
    fake.push(analysis(language="fr", intent="greeting"))
    await _say(client, runtime, "bonjour", "wamid.C1")
    fake.push(analysis(language="fr", intent="wants_human"))
    await _say(client, runtime, "vous pouvez me rappeler ?", "wamid.C2")
    [handoff] = await runtime.store.query("demo", "handoffs")
    assert handoff.data["reason"] == "lead asked to be called back" and handoff.data["call_back"] is True
    assert "vous rappellera au 06 12 34 56 78" in sent_texts(graph)[-1]


# --------------------------------------------------------------------------- remarks and "do you do X?"


def _en_state(language: str = "en") -> Any:
    state = new_state(EN_PLAYBOOK, language=language, lead={"first_name": "Camille"})
    state.current_step = "homeowner"
    return state


def _ask_homeowner(language: str = "en") -> AskContext:
    step = next(s for s in EN_PLAYBOOK.steps if s.id == "homeowner")
    question = step.question  # type: ignore[union-attr]
    text = question if isinstance(question, str) else question.get(language, question["en"])
    others = [AskContext(step_id="bill", slot="monthly_bill", kind="number", question="monthly bill")]
    return AskContext(step_id="homeowner", slot="homeowner", kind="yes_no", question=text, others=others)


async def _read(runtime: Runtime, text: str, *, language: str = "en") -> Interpretation:
    interpreter = await runtime.conversations.interpreters.for_lead(
        "demo", timezone="Europe/Paris", default_region="FR", channel="whatsapp"
    )
    assert isinstance(interpreter, GptInterpreter)
    return await interpreter.interpret(
        text=text,
        choice_id=None,
        ask=_ask_homeowner(language),
        open_slots={"homeowner": "yes_no", "monthly_bill": "number"},
        state=_en_state(language),
    )


@pytest.mark.parametrize(
    ("text", "language", "model_slots", "slots", "remarks"),
    [
        # the model read the budget's amount as the monthly bill: the rules keep it for the team
        (
            "yes, budget maybe 8k",
            "en",
            [
                {"name": "homeowner", "value": True, "evidence": "yes"},
                {"name": "monthly_bill", "value": 8000, "evidence": "8k"},
            ],
            {"homeowner": True},
            {"budget": "budget maybe 8k"},
        ),
        (
            "oui, budget d'environ 8 000 €",
            "fr",
            [{"name": "homeowner", "value": True, "evidence": "oui"}],
            {"homeowner": True},
            {"budget": "budget d'environ 8 000 €"},
        ),
        # no budget said: nothing kept, the model's slots as they were
        (
            "yes, about 120 a month",
            "en",
            [
                {"name": "homeowner", "value": True, "evidence": "yes"},
                {"name": "monthly_bill", "value": 120, "evidence": "120 a month"},
            ],
            {"homeowner": True, "monthly_bill": 120.0},
            {},
        ),
    ],
)
async def test_a_budget_no_question_asks_for_is_kept_as_a_remark_by_the_gpt_path(
    runtime: Runtime,
    fake: FakeOpenAI,
    text: str,
    language: str,
    model_slots: list[dict[str, object]],
    slots: dict[str, object],
    remarks: dict[str, str],
) -> None:
    fake.push(analysis(language=language, slots=model_slots))
    result = await _read(runtime, text, language=language)
    assert result.slots == slots
    assert result.remarks == remarks


async def test_an_opt_out_keeps_no_remark(runtime: Runtime, fake: FakeOpenAI) -> None:
    fake.push(analysis(intent="stop"))
    result = await _read(runtime, "stop, budget maybe 8k")
    assert result.intent == "opt_out" and result.remarks == {}


@pytest.mark.parametrize(
    ("text", "language", "intent", "question", "what", "verb"),
    [
        (
            "do you install solar panels?",
            "en",
            "question",
            "do you install solar panels?",
            "solar panels",
            "install",
        ),
        ("yes. do u fit batteries?", "en", "answer", "do you fit batteries?", "batteries", "fit"),
        (
            "vous installez des panneaux solaires ?",
            "fr",
            "question",
            None,
            "des panneaux solaires",
            "installez",
        ),
        ("yes we own it", "en", "answer", None, None, None),  # no question: nothing asked
    ],
)
async def test_do_you_do_x_is_read_by_the_gpt_path_as_by_the_rules(
    runtime: Runtime,
    fake: FakeOpenAI,
    text: str,
    language: str,
    intent: str,
    question: str | None,
    what: str | None,
    verb: str | None,
) -> None:
    fake.push(analysis(language=language, intent=intent, question=question))
    result = await _read(runtime, text, language=language)
    assert (result.asks_offer, result.asks_offer_verb) == (what, verb)


async def test_do_you_do_an_offered_thing_gets_its_yes_from_the_gpt_path_too(
    client: Client, runtime: Runtime, graph: RecordingServer, fake: FakeOpenAI
) -> None:
    fake.push(analysis(intent="greeting"))
    await _say(client, runtime, "Hello, I'd like a quote for solar panels", "wamid.O1")
    fake.push(analysis(slots=[{"name": "homeowner", "value": True, "evidence": "yes"}]))
    await _say(client, runtime, "yes", "wamid.O2")
    before = len(sent_texts(graph))
    # the model saw a question but wrote no reply: the playbook's offers answer it
    fake.push(analysis(intent="question", question="do you install solar panels?"))
    await _say(client, runtime, "do you install solar panels?", "wamid.O3")
    texts = sent_texts(graph)[before:]
    assert texts[0].startswith("Yes, we install solar panels."), texts


async def test_a_reply_the_model_wrote_gets_no_second_yes(
    client: Client, runtime: Runtime, graph: RecordingServer, fake: FakeOpenAI
) -> None:
    fake.push(analysis(intent="greeting"))
    await _say(client, runtime, "Hello, I'd like a quote for solar panels", "wamid.P1")
    before = len(sent_texts(graph))
    reply = "Yes, we install solar panels for homes."
    fake.push(analysis(intent="question", question="do you install solar panels?", reply=reply))
    await _say(client, runtime, "do you install solar panels?", "wamid.P2")
    texts = sent_texts(graph)[before:]
    assert texts[0] == reply, texts
