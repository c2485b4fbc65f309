"""The demo knowledge base agrees with the demo playbooks: each language's answers speak of what
that language's playbook offers, never offer what it lists as not offered."""

from __future__ import annotations

import re

import pytest

from app.ai.knowledge.demo import DEMO_QA
from playbooks import load_library
from playbooks.slots import fold

_NEGATION = re.compile(r"(?<!\w)(?:ne|n'|ni|not|no|don't|nous ne)(?!\w)")


@pytest.mark.parametrize(
    ("language", "playbook"),
    [("fr", "renovation-qualification-fr"), ("en", "solar-qualification-en")],
)
def test_no_answer_offers_what_the_playbook_of_its_language_does_not_offer(
    language: str, playbook: str
) -> None:
    spec = load_library()[playbook].not_offered
    assert spec is not None
    words = {
        fold(word)
        for topic in spec.topics
        for word in [
            *topic.synonyms,
            *([topic.title] if isinstance(topic.title, str) else topic.title.values()),
        ]
    }
    pattern = re.compile(
        r"(?<!\w)(?:" + "|".join(map(re.escape, sorted(words, key=len, reverse=True))) + r")(?!\w)"
    )
    for entry in (e for e in DEMO_QA if e.language == language):
        for sentence in re.split(r"(?<=[.;:])\s+|\s\(", fold(entry.response)):
            if pattern.search(sentence):
                # only to say it is not offered ("Nous ne posons pas de panneaux solaires.")
                assert _NEGATION.search(sentence), (entry.id, sentence)


def test_the_french_company_answer_names_the_french_playbooks_offers() -> None:
    about = next(e for e in DEMO_QA if e.id == "fr-societe").response
    assert "isolent combles et murs" in about and "pompes à chaleur" in about and "solaire" not in about


@pytest.mark.parametrize(
    ("question", "entry"),
    [
        ("c quoi le prix d'une pac ?", "fr-prix"),
        ("aides pour une pac ?", "fr-aides"),
        ("une pac c garanti combien de temps ?", "fr-garantie"),
    ],
)
def test_the_french_demo_base_knows_a_heat_pump_by_its_abbreviation(question: str, entry: str) -> None:
    """ "pac" is how French leads write "pompe à chaleur"; without it the question went to a person."""
    from app.ai.knowledge.retrieval import KnowledgeIndex

    found = KnowledgeIndex.build(DEMO_QA).best_answer(question, language="fr")
    assert found is not None and found.id == entry
