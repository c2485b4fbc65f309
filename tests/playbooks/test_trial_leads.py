"""The second trial at ``/chat``: faults a lead found, replayed through the engine with the shipped
playbooks, the offline interpreter and the demo knowledge base (see ``test_real_leads``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from playbooks import Playbook

from .conftest import Conversation
from .test_real_leads import EN, FR, demo_kb, detect, filled, said, sent

Lead = Callable[[str], Conversation]


@pytest.fixture
def lead(library: dict[str, Playbook], make_conversation: Callable[..., Conversation]) -> Lead:
    def make(playbook_id: str) -> Conversation:
        region = "FR" if playbook_id.startswith("renovation") else "GB"
        return make_conversation(library[playbook_id], answer=demo_kb, detect_language=detect, region=region)

    return make


async def _at(c: Conversation, answers: list[str]) -> None:
    await c.start()
    for answer in answers:
        await c.say(answer)


# --------------------------------------------------------------------------- 1. a timeline said unprompted


@pytest.mark.parametrize(
    ("message", "roof", "timeline"),
    [
        ("idk, maybe nxt year", "not_sure", "later"),
        ("not sure. probably next summer", "not_sure", "later"),  # 21 June is 7 months away
        ("dunno, around march", "not_sure", "three_to_six_months"),
        ("tiles, maybe in 2 months", "pitched_tiles", "asap"),
    ],
)
async def test_a_period_in_a_short_reply_to_another_question_is_the_projects_timeline(
    lead: Lead, message: str, roof: str, timeline: str
) -> None:
    c = lead(EN)
    await _at(c, ["yes", "150"])
    assert said(c)[-1] == ("step", "roof")
    await c.say(message)
    assert filled(c) == {"roof_type": roof, "timeline": timeline}
    assert said(c)[-1] == ("step", "postcode")  # the timeline question is not asked


@pytest.mark.parametrize(
    "message",
    ["tiles. we moved in last year", "tiles, we bought it last year", "tiles, we're away next month"],
)
async def test_a_period_about_something_else_is_not_the_timeline(lead: Lead, message: str) -> None:
    c = lead(EN)
    await _at(c, ["yes", "150"])
    await c.say(message)
    assert filled(c) == {"roof_type": "pitched_tiles"}  # "last" is not the last option either
    assert said(c)[-1] == ("step", "timeline")
