"""A strict choice match looks labels up by stem (``playbooks.choices._whole_label_candidates``)
instead of trying every label of the question: the lookup must find exactly the labels the full
scan finds (every word of the label shares a stem with a word of the message), in the order
shown, for every choice question of the shipped playbooks and any message built from their words."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from playbooks.choices import MAX_CHARS, _labels, _token_tuple, _tokens, _whole_label_candidates, match_choice
from playbooks.loader import load_library


def _questions() -> list[dict[str, list[str]]]:
    out = []
    for playbook in load_library().values():
        for step in playbook.steps:
            if getattr(step, "choices", None):
                named = playbook.choice_labels(step.slot)  # type: ignore[attr-defined]
                out.append({cid: _labels(cid, labels) for cid, labels in named.items()})
    return out


QUESTIONS = _questions()
WORDS = sorted({w for q in QUESTIONS for ls in q.values() for label in ls for w in label.split()})
FILLER = ["yes", "i", "own", "it", "oui", "je", "suis", "proprio", "maybe", "next", "year", "the", "roof"]


def _scanned(labels: dict[str, list[str]], text: str) -> list[tuple[str, str]]:
    said = frozenset().union(*(t.stems for t in _tokens(text)))
    return [
        (cid, label)
        for cid, options in labels.items()
        for label in options
        if (tokens := _token_tuple(label[:MAX_CHARS], False))
        and not any(said.isdisjoint(t.stems) for t in tokens)
    ]


def test_the_shipped_playbooks_have_choice_questions_to_check() -> None:
    assert len(QUESTIONS) >= 4 and len(WORDS) >= 30


@settings(max_examples=300, deadline=None)
@given(
    question=st.integers(min_value=0, max_value=len(QUESTIONS) - 1),
    words=st.lists(st.sampled_from(WORDS + FILLER), min_size=1, max_size=8),
)
def test_the_stem_lookup_finds_what_a_scan_of_every_label_finds(question: int, words: list[str]) -> None:
    labels = QUESTIONS[question]
    text = " ".join(words)
    key = tuple((cid, tuple(options)) for cid, options in labels.items())
    assert _whole_label_candidates(key, _tokens(text)) == _scanned(labels, text)


def test_a_label_named_in_passing_is_still_found_and_a_message_naming_none_finds_nothing() -> None:
    roof = {
        "tiles": ["Pitched – tiles", "tiles", "tuiles"],
        "slate": ["Pitched – slate", "slate", "ardoise"],
        "flat": ["Flat roof", "toit plat"],
    }
    assert match_choice("yes I own it", roof, strict=True).value is None
    assert match_choice("we own it and it has a flat roof", roof, strict=True).value == "flat"
    assert match_choice("c'est en ardoise chez nous", roof, strict=True).value == "slate"
