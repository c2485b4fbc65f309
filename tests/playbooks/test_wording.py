"""What the bot says reads right (the fourth trial at ``/chat``): "also" only after something
said back, an answer out of a number question's range is told the range and kept, a call-back
request hands off as one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from playbooks import HandoffRequested, Playbook
from playbooks.runtime import CALL_BACK_REASON, HUMAN_REASON

from .conftest import Conversation
from .test_real_leads import EN, FR, demo_kb, detect, filled

Lead = Callable[[str], Conversation]


@pytest.fixture
def lead(library: dict[str, Playbook], make_conversation: Callable[..., Conversation]) -> Lead:
    def make(playbook_id: str) -> Conversation:
        region = "FR" if playbook_id.startswith("renovation") else "GB"
        return make_conversation(library[playbook_id], answer=demo_kb, detect_language=detect, region=region)

    return make


# --------------------------------------------------------------------------- "also"


@pytest.mark.parametrize(
    ("playbook", "first", "ack"),
    [
        (FR, "bonjour, mon mail c'est jean.dupont@gmail.com", "Merci, j'ai noté votre adresse e-mail."),
        (EN, "hi, my email is jo@example.com", "Thanks, I've noted your e-mail address."),
    ],
)
async def test_no_also_when_nothing_was_said_back_before(
    lead: Lead, playbook: str, first: str, ack: str
) -> None:
    c = lead(playbook)
    await c.start(first, trigger="inbound_unknown_lead")
    assert ack in c.texts()
    assert not any("also" in t or "aussi" in t for t in c.texts())


async def test_also_after_a_number_said_back(lead: Lead) -> None:
    c = lead(EN)
    await c.start()
    await c.say("yes")
    await c.say("150, my number is 07700 900123 and my email is jo@example.com")
    assert filled(c)["email"] == "jo@example.com"
    assert (
        "I've noted the number +44 7700 900123 – just tell me if it isn't right. "
        "Thanks, I've also noted your e-mail address."
    ) in c.texts()


# --------------------------------------------------------------------------- out of range


@pytest.mark.parametrize(
    ("playbook", "before", "message", "slot", "reply"),
    [
        (
            EN,
            ["yes"],
            "budget maybe 8k",
            "monthly_bill",
            "Please give a number between 0 and 5000.\n"
            "Roughly how much do you spend on electricity per month? A ballpark figure is fine.",
        ),
        (
            FR,
            ["oui", "une maison", "l'isolation des combles"],
            "5000 m2 je crois",
            "surface",
            "Merci d'indiquer un nombre entre 10 et 2000.\n"
            "Quelle est la surface habitable approximative de votre logement, en m² ?",
        ),
    ],
)
async def test_a_number_out_of_range_is_told_the_range_and_kept(
    lead: Lead, playbook: str, before: list[str], message: str, slot: str, reply: str
) -> None:
    c = lead(playbook)
    await c.start()
    for text in before:
        await c.say(text)
    await c.say(message)
    assert c.texts() == [reply]
    assert slot not in c.state.slots
    assert c.state.slots[f"{slot}_other"] == message  # kept for the team
    await c.say("150")
    assert c.state.slots[slot] == 150.0
    assert c.state.slots[f"{slot}_other"] == message


# --------------------------------------------------------------------------- call-back requests


@pytest.mark.parametrize(
    ("playbook", "message", "reason"),
    [
        (FR, "vous pouvez me rappeler ?", CALL_BACK_REASON),
        (FR, "rappelez-moi plutôt svp", CALL_BACK_REASON),
        (EN, "can someone call me back? my number is 07700 900123", CALL_BACK_REASON),
        (EN, "could you call me back please", CALL_BACK_REASON),
        (FR, "je voudrais parler à un conseiller", HUMAN_REASON),
        (EN, "can i talk to a real person please?", HUMAN_REASON),
    ],
)
async def test_a_call_back_request_hands_off_with_its_reason(
    lead: Lead, playbook: str, message: str, reason: str
) -> None:
    c = lead(playbook)
    await c.start()
    await c.say("oui" if playbook == FR else "yes")
    await c.say(message)
    assert [h.reason for h in c.all_actions(HandoffRequested)] == [reason]
