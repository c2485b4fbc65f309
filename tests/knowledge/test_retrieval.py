"""Knowledge-base retrieval over the demo base: paraphrases, rejections, language preference, ties."""

from __future__ import annotations

import pytest

from app.ai.knowledge import DEFAULT_MIN_SCORE, KnowledgeIndex, QAEntry, looks_like_question
from app.ai.knowledge.demo import DEMO_AI_CONFIG, DEMO_QA
from app.ai.knowledge.retrieval import tokenize


@pytest.fixture(scope="module")
def index() -> KnowledgeIndex:
    return KnowledgeIndex.build(DEMO_QA)


PARAPHRASES = [
    ("how much do panels cost", "en", "en-price"),
    ("How much does an installation cost?", "en", "en-price"),
    ("do you have payment plans", "en", "en-financing"),
    ("can I pay monthly?", "en", "en-financing"),
    ("what subsidies can I get", "en", "en-subsidies"),
    ("how long will the work take", "en", "en-install-time"),
    ("is there a guarantee", "en", "en-warranty"),
    ("do I need to clean the panels", "en", "en-maintenance"),
    ("is the quote free", "en", "en-quote"),
    ("I have a flat roof, is that ok?", "en", "en-roof"),
    ("what about a battery for the night", "en", "en-battery"),
    ("is it worth it, what's the payback", "en", "en-roi"),
    ("combien coûte une installation", "fr", "fr-prix"),
    ("Combien ça coute ?", "fr", "fr-prix"),
    ("est-ce que je peux payer en plusieurs fois", "fr", "fr-financement"),
    ("les aides de l'état", "fr", "fr-aides"),
    ("combien de temps pour poser les panneaux", "fr", "fr-delai"),
    ("faut-il nettoyer les panneaux", "fr", "fr-entretien"),
    ("vous intervenez où ?", "fr", "fr-zone"),
    ("le devis est gratuit ?", "fr", "fr-devis"),
    ("j'ai un toit plat", "fr", "fr-toiture"),
    ("c'est rentable ?", "fr", "fr-rentabilite"),
]


@pytest.mark.parametrize(("question", "language", "expected"), PARAPHRASES)
def test_paraphrases_find_the_right_entry(
    index: KnowledgeIndex, question: str, language: str, expected: str
) -> None:
    answer = index.best_answer(question, language=language)
    assert answer is not None
    assert answer.id == expected


@pytest.mark.parametrize(("question", "language", "expected"), PARAPHRASES)
def test_language_unknown_still_finds_the_entry(
    index: KnowledgeIndex, question: str, language: str, expected: str
) -> None:
    answer = index.best_answer(question, language=None)
    assert answer is not None
    assert answer.id == expected


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("what's the weather on Mars", "en"),
        ("what's the price of a ticket to Mars", "en"),
        ("can you recommend a good restaurant", "en"),
        ("do you sell cars", "en"),
        ("I want to speak to a human", "en"),
        ("Quel temps fait-il sur Mars ?", "fr"),
        ("vendez-vous des voitures", "fr"),
        ("quelle heure est-il", "fr"),
        ("", "en"),
        ("?!", "fr"),
        ("the and of", "en"),
    ],
)
def test_unrelated_questions_get_no_answer(index: KnowledgeIndex, question: str, language: str) -> None:
    assert index.best_answer(question, language=language) is None
    assert index.best_answer(question, language=None) is None


def test_scores_are_normalised_and_ordered(index: KnowledgeIndex) -> None:
    matches = index.search("how much do panels cost", language="en", limit=5)
    assert matches
    assert all(0.0 < m.score <= 1.0 for m in matches)
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    assert len(index.search("how much do panels cost", language="en", limit=1)) == 1
    assert index.search("how much do panels cost", language="en", limit=0) == []


def test_exact_stored_question_scores_at_least_any_paraphrase(index: KnowledgeIndex) -> None:
    exact = index.search("What is the price of a solar installation?", language="en", limit=1)[0]
    paraphrase = index.search("how much do panels cost", language="en", limit=1)[0]
    assert exact.entry.id == paraphrase.entry.id == "en-price"
    assert exact.score >= DEFAULT_MIN_SCORE


def test_min_score_filters(index: KnowledgeIndex) -> None:
    everything = index.search("how much do panels cost", language="en", limit=24)
    strict = index.search("how much do panels cost", language="en", limit=24, min_score=0.9)
    assert 0 < len(strict) < len(everything)
    assert all(m.score >= 0.9 for m in strict)


def test_prefers_entries_in_the_query_language(index: KnowledgeIndex) -> None:
    # "installation" and "batterie"/"battery" stem alike in both languages: both groups could answer.
    for language, prefix in [("fr", "fr-"), ("en", "en-")]:
        matches = index.search("installation", language=language, limit=24)
        assert matches
        assert all(m.entry.id.startswith(prefix) for m in matches)


def test_falls_back_to_other_languages_only_when_nothing_passes(index: KnowledgeIndex) -> None:
    # An English question from a lead whose language is French: no French entry passes.
    answer = index.best_answer("how much do panels cost", language="fr")
    assert answer is not None
    assert answer.id == "en-price"
    # When a French entry passes, English entries are not considered.
    matches = index.search("installation panneaux prix", language="fr", limit=24, min_score=0.3)
    assert matches and all(m.entry.language == "fr" for m in matches)


def _twin(entry_id: str, *, success_rate: float = 0.5, usage_count: int = 3) -> QAEntry:
    return QAEntry(
        id=entry_id,
        question="Do you install heat pumps?",
        response="Yes.",
        category="products",
        tags=["heat", "pump"],
        success_rate=success_rate,
        usage_count=usage_count,
        language="en",
    )


def test_ties_are_ordered_deterministically_whatever_the_input_order() -> None:
    twins = [_twin("b"), _twin("a"), _twin("c")]
    orders = []
    for entries in (twins, twins[::-1], [twins[1], twins[2], twins[0]]):
        index = KnowledgeIndex.build([*entries, *DEMO_QA])
        orders.append([m.entry.id for m in index.search("heat pump", language="en", limit=3)])
    assert orders[0] == ["a", "b", "c"]
    assert orders.count(orders[0]) == len(orders)


def test_ties_prefer_proven_entries() -> None:
    entries = [
        _twin("a", success_rate=0.2),
        _twin("b", success_rate=0.9),
        _twin("c", success_rate=0.9, usage_count=50),
    ]
    index = KnowledgeIndex.build(entries)
    assert [m.entry.id for m in index.search("heat pump", language="en")] == ["c", "b", "a"]


def test_entries_without_language_are_detected() -> None:
    entries = [
        QAEntry(
            id="1", question="Quel est le prix d'une pompe à chaleur ?", response="Cela dépend du logement."
        ),
        QAEntry(id="2", question="What is the price of a heat pump?", response="It depends on the house."),
    ]
    index = KnowledgeIndex.build(entries)
    assert set(index.languages) == {"fr", "en"}
    fr = index.best_answer("quel prix pour une pompe à chaleur", language="fr")
    en = index.best_answer("how much is a heat pump", language="en")
    assert fr is not None and fr.id == "1"
    assert en is not None and en.id == "2"


def test_empty_index_answers_nothing() -> None:
    index = KnowledgeIndex.build([])
    assert index.search("how much", language="en") == []
    assert index.best_answer("how much do panels cost", language=None) is None


def test_qa_entry_accepts_the_seed_document_shape() -> None:
    doc = {
        "id": "q1",
        "question": "Q?",
        "response": "A.",
        "category": "general",
        "tags": ["x"],
        "isCustom": True,
        "usageCount": 4,
        "successRate": 0.75,
    }
    entry = QAEntry.model_validate(doc)
    assert (entry.is_custom, entry.usage_count, entry.success_rate, entry.language) == (True, 4, 0.75, None)
    assert entry.model_dump(by_alias=True)["isCustom"] is True
    with pytest.raises(ValueError):
        QAEntry.model_validate({**doc, "successRate": 75})


def test_tokenize_folds_accents_stems_and_drops_stop_words() -> None:
    assert tokenize("Combien coûte l'installation ?", "fr") == tokenize("combien coute installations", "fr")
    assert tokenize("What is the price of the panels?", "en") == tokenize("price panel", "en")
    assert tokenize("the of what", "en") == []


def test_demo_base_is_bilingual_and_consistent() -> None:
    by_language = {lang: [e for e in DEMO_QA if e.language == lang] for lang in ("en", "fr")}
    assert len(by_language["en"]) >= 10 and len(by_language["fr"]) >= 10
    assert len({e.id for e in DEMO_QA}) == len(DEMO_QA)
    assert all(e.question and e.response and e.tags for e in DEMO_QA)
    assert any("MaPrimeRénov'" in e.response for e in by_language["fr"])
    assert DEMO_AI_CONFIG["companyName"] == "SunnyWatt"
    assert set(DEMO_AI_CONFIG["brandMemory"]) == {"tone", "keywords", "values"}
    # Each stored question retrieves its own entry.
    index = KnowledgeIndex.build(DEMO_QA)
    for entry in DEMO_QA:
        found = index.best_answer(entry.question, language=entry.language)
        assert found is not None and found.id == entry.id, entry.question


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("How much does it cost?", "en"),
        ("how much does it cost", "en"),
        ("Can you install on a flat roof", "en"),
        ("is it expensive", None),
        ("ok but why ?", "en"),
        ("really?!", "en"),
        ("vraiment ? 🤔", "fr"),
        ("Combien ça coûte", "fr"),
        ("Est-ce que vous faites les pompes à chaleur", "fr"),
        ("Pouvez-vous me rappeler", "fr"),
        ("Puis-je payer en plusieurs fois", "fr"),
        ("Y a-t-il des aides", "fr"),
        ("Où êtes-vous situés", "fr"),
        ("Quelle garantie proposez-vous", None),
        ("c'est combien", "fr"),
    ],
)
def test_looks_like_question(text: str, language: str | None) -> None:
    assert looks_like_question(text, language)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("", "en"),
        ("Yes, tomorrow at 2pm", "en"),
        ("I'm interested", "en"),
        ("Oui, mardi prochain", "fr"),
        ("Je voudrais un devis", "fr"),
        ("Merci !", "fr"),
        ("what a great offer!", "fr"),  # English interrogative, French-only check
        ("combien", "en"),  # French interrogative, English-only check
    ],
)
def test_does_not_look_like_question(text: str, language: str | None) -> None:
    assert not looks_like_question(text, language)


SHORT_PRICE_QUESTIONS = [
    ("c'est combien ?", "fr"),
    ("cest combien", "fr"),
    ("ça fait combien ?", "fr"),
    ("combien ça coûte", "fr"),
    ("prix ?", "fr"),
    ("tarif", "fr"),
    ("how much", "en"),
    ("how much is it?", "en"),
    ("how much r they", "en"),
    ("what's the price?", "en"),
    ("price?", "en"),
]


@pytest.mark.parametrize(("question", "language"), SHORT_PRICE_QUESTIONS)
def test_short_price_questions_find_the_price_entry(
    index: KnowledgeIndex, question: str, language: str
) -> None:
    # "combien" alone is also in "Combien de temps dure l'installation ?" and "Combien vais-je
    # économiser ?": a bare amount question must still pick the price entry, with a clear margin.
    answer = index.best_answer(question, language=language)
    assert answer is not None, question
    assert answer.id == f"{language}-{'prix' if language == 'fr' else 'price'}"


@pytest.mark.parametrize(
    ("question", "language", "expected"),
    [
        ("combien de temps pour poser les panneaux", "fr", "fr-delai"),
        ("combien vais-je économiser ?", "fr", "fr-rentabilite"),
        ("How much will I save?", "en", "en-roi"),
    ],
)
def test_amount_words_with_a_topic_keep_their_topic(
    index: KnowledgeIndex, question: str, language: str, expected: str
) -> None:
    answer = index.best_answer(question, language=language)
    assert answer is not None and answer.id == expected


def test_a_base_without_price_words_gets_no_price_answer_from_a_bare_amount_question() -> None:
    entries = [
        QAEntry(id="hours", question="When are you open?", response="9 to 5.", language="en"),
        QAEntry(id="area", question="Which areas do you cover?", response="The region.", language="en"),
    ]
    assert KnowledgeIndex.build(entries).best_answer("how much is it?", language="en") is None


@pytest.mark.parametrize(
    ("question", "language", "expected"),
    [
        ("how much r panels?", "en", "en-price"),
        ("how much are panels", "en", "en-price"),
        ("c combien une pac ?", "fr", "fr-prix"),
    ],
)
def test_an_amount_question_with_a_vague_topic_is_a_price_question(
    index: KnowledgeIndex, question: str, language: str, expected: str
) -> None:
    # as written, every entry about panels ties ("panels" alone): read again as a price question
    answer = index.best_answer(question, language=language)
    assert answer is not None and answer.id == expected


@pytest.mark.parametrize(
    ("question", "language"),
    [("combien de salariés avez-vous", "fr"), ("c'est garanti combien de temps ?", "fr")],
)
def test_an_amount_question_about_something_else_is_no_price_question(
    index: KnowledgeIndex, question: str, language: str
) -> None:
    answer = index.best_answer(question, language=language)
    assert answer is None or answer.id != "fr-prix"


# --------------------------------------------------------------------------- a topic only in a response


@pytest.mark.parametrize(
    ("question", "language"),
    [
        # the delays entry says how long roof insulation takes: it does not answer "do you do it?"
        ("vous faites l'isolation des combles ?", "fr"),
        ("l'isolation des combles", "fr"),  # what the interpreter asks for "vous faites X ?"
        ("isolation des combles ?", "fr"),
    ],
)
def test_an_entry_naming_the_topic_only_in_its_response_does_not_answer(
    index: KnowledgeIndex, question: str, language: str
) -> None:
    [first, *_] = index.search(question, language=language)
    assert first.entry.id == "fr-delai" and first.score >= DEFAULT_MIN_SCORE and not first.anchored
    assert index.best_answer(question, language=language) is None


def _entry(entry_id: str, question: str, response: str, tags: list[str], language: str) -> QAEntry:
    return QAEntry(id=entry_id, question=question, response=response, tags=tags, language=language)


@pytest.mark.parametrize(
    ("question", "language", "expected"),
    [
        ("do you do loft insulation?", "en", None),  # only the delays response names it
        ("how long does the work take?", "en", "en-delay"),  # its own words: still answered
        ("do you do heat pumps?", "en", "en-pumps"),
        ("vous faites l'isolation des combles ?", "fr", None),
        ("combien de temps durent les travaux ?", "fr", "fr-delai"),
        ("vous posez des pompes à chaleur ?", "fr", "fr-pac"),
    ],
)
def test_only_an_entry_about_the_question_answers_it(
    question: str, language: str, expected: str | None
) -> None:
    index = KnowledgeIndex.build(
        [
            _entry(
                "en-delay",
                "How long does the work take?",
                "Loft insulation takes a day, a heat pump two to three days.",
                ["delay", "duration", "weeks"],
                "en",
            ),
            _entry(
                "en-pumps", "Do you install heat pumps?", "Yes, air-to-water ones.", ["heat", "pump"], "en"
            ),
            _entry(
                "fr-delai",
                "Combien de temps durent les travaux ?",
                "L'isolation des combles prend une journée, une pompe à chaleur deux à trois jours.",
                ["délai", "durée", "semaines"],
                "fr",
            ),
            _entry(
                "fr-pac", "Posez-vous des pompes à chaleur ?", "Oui, air-eau.", ["pompe", "chaleur"], "fr"
            ),
        ]
    )
    found = index.best_answer(question, language=language)
    assert (found.id if found is not None else None) == expected
