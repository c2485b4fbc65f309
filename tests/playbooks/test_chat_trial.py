"""The third trial at ``/chat`` (offline interpreter, demo tenant): messages written the way real
leads write, in French and English, replayed through the engine with the shipped playbooks, the
offline interpreter and the demo knowledge base (see ``test_real_leads``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from playbooks import HandoffRequested, Playbook

from .conftest import Conversation
from .test_real_leads import EN, FR, RESPONSES, demo_kb, detect, said

Lead = Callable[[str], Conversation]


@pytest.fixture
def lead(library: dict[str, Playbook], make_conversation: Callable[..., Conversation]) -> Lead:
    def make(playbook_id: str) -> Conversation:
        region = "FR" if playbook_id.startswith("renovation") else "GB"
        return make_conversation(library[playbook_id], answer=demo_kb, detect_language=detect, region=region)

    return make


def handoffs(c: Conversation) -> list[HandoffRequested]:
    return c.all_actions(HandoffRequested)


# --------------------------------------------------------------------------- 1. "what is this about?"


@pytest.mark.parametrize(
    ("playbook", "message", "entry", "first_step"),
    [
        (EN, "hi there, whats this abt", "en-about", "homeowner"),
        (EN, "what's this about?", "en-about", "homeowner"),
        (EN, "sorry what is this for", "en-about", "homeowner"),
        (FR, "bonjour c pour quoi exactement ?", "fr-societe", "proprietaire"),
        (FR, "c'est pour quoi ?", "fr-societe", "proprietaire"),
        (FR, "bonsoir, c quoi ?", "fr-societe", "proprietaire"),
    ],
)
async def test_a_first_message_asking_what_this_is_about_is_told_who_we_are_then_the_questions_start(
    lead: Lead, playbook: str, message: str, entry: str, first_step: str
) -> None:
    c = lead(playbook)
    await c.start(message, trigger="inbound_unknown_lead")
    assert [p for p, _ in said(c)] == ["step", "answer", "step"]
    assert c.texts()[1] == RESPONSES[entry]  # not "I'll pass it on to an adviser"
    assert said(c)[-1] == ("step", first_step)
    assert handoffs(c) == []


async def test_what_this_is_about_and_another_question_are_both_answered(lead: Lead) -> None:
    c = lead(EN)
    await c.start()
    await c.say("what's this about? and how much is it")
    assert c.texts()[0] == f"{RESPONSES['en-about']} {RESPONSES['en-price']}"
    assert said(c)[-1] == ("reask", "homeowner")


async def test_a_price_question_starting_with_c_est_quoi_is_still_a_price_question(lead: Lead) -> None:
    c = lead(FR)
    await c.start()
    await c.say("c'est quoi le prix ?")
    assert c.texts()[0] == RESPONSES["fr-prix"]
