"""What the GPT interpreter must read as the offline one does: a project the playbook does not offer
(``not_offered``) is said plainly with what is offered, whether the scripted model reports it or not;
WhatsApp webhooks drive the shipped French renovation playbook through the worker while a scripted
OpenAI-compatible server on 127.0.0.1 reads the lead's messages."""

from __future__ import annotations

import pytest

from app.ai.language import detect_language
from app.composition import Runtime
from tests.app.conftest import sent_texts
from tests.llm.fake_openai import FakeOpenAI, analysis
from tests.llm.gpt_app import Client
from tests.llm.test_interpreter import _say
from tests.support.recording import RecordingServer

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
