"""Size questions ("how many panels do I need", "combien de panneaux") reach the sizing entry, never
the price entry; counts of things the base does not know stay unanswered."""

from __future__ import annotations

import pytest

from app.ai.knowledge import KnowledgeIndex
from app.ai.knowledge.demo import DEMO_QA


@pytest.fixture(scope="module")
def index() -> KnowledgeIndex:
    return KnowledgeIndex.build(DEMO_QA)


@pytest.mark.parametrize(
    ("question", "language", "expected"),
    [
        ("how many panels do I need", "en", "en-sizing"),
        ("how big a system do i need", "en", "en-sizing"),
        ("how many kw do i need", "en", "en-sizing"),
        ("how many panelz do i need", "en", "en-sizing"),
        ("combien de panneaux il me faut ?", "fr", "fr-dimensionnement"),
        ("il me faut combien de panneaux ?", "fr", "fr-dimensionnement"),
        ("combien de kwc pour une maison de 100m2", "fr", "fr-dimensionnement"),
        ("quelle puissance de pac pour ma maison ?", "fr", "fr-dimensionnement"),
        # still price questions
        ("how much are panels?", "en", "en-price"),
        ("c combien une pac ?", "fr", "fr-prix"),
        ("ça coute combien des panneaux solaires", "fr", "fr-prix"),
        # still time questions
        ("combien de temps ca prend", "fr", "fr-delai"),
    ],
)
def test_size_questions_are_not_price_questions(
    index: KnowledgeIndex, question: str, language: str, expected: str
) -> None:
    entry = index.best_answer(question, language=language)
    assert entry is not None and entry.id == expected


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("how many people work for you", "en"),
        ("combien de salariés avez-vous", "fr"),
        ("how many years does it last", "en"),
    ],
)
def test_counts_of_what_the_base_does_not_know_stay_unanswered(
    index: KnowledgeIndex, question: str, language: str
) -> None:
    assert index.best_answer(question, language=language) is None
