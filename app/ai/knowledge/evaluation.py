"""Measure knowledge-base retrieval on labelled lead questions, and choose its threshold from that.

The labelled sets (``app/ai/knowledge/eval/*.yaml``, format in the header of ``dev.yaml``) hold
French and English questions for the demo base (:data:`app.ai.knowledge.demo.DEMO_QA`): each
entry asked as stored, paraphrased, misspelt, and questions the base cannot answer (about a third,
many of them close to an entry's words: "can I pay by bank transfer?", "vous nettoyez les
gouttières ?"). ``dev`` is what retrieval was tuned on; ``heldout`` is only measured.

At a threshold t, each question gets :meth:`KnowledgeIndex.best_answer` (``min_score=t``, the
default margin, the conversation's language) and counts as one of:

- **correct**: the expected entry;
- **wrong**: another entry, for a question the base can answer;
- **missed**: no answer, for a question the base can answer;
- **false answer**: an answer to a question the base cannot answer.

``precision`` = correct / answers given (1.0 when none is given), ``recall`` = correct /
answerable questions, ``false_answer_rate`` = false answers / unanswerable questions.
:func:`choose_threshold` turns those figures into :data:`~app.ai.knowledge.retrieval.DEFAULT_MIN_SCORE`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.ai.knowledge.demo import DEMO_QA
from app.ai.knowledge.retrieval import DEFAULT_MIN_MARGIN, DEFAULT_MIN_SCORE, KnowledgeIndex, QAEntry

__all__ = [
    "KNOWLEDGE_EVAL_DIR",
    "MAX_FALSE_ANSWER_RATE",
    "THRESHOLDS",
    "KnowledgeCase",
    "KnowledgeReport",
    "ThresholdScore",
    "choose_threshold",
    "knowledge_splits",
    "load_knowledge_cases",
    "measure_knowledge",
    "score_at",
]

KNOWLEDGE_EVAL_DIR = Path(__file__).parent / "eval"
"""Where the labelled question sets live (``dev.yaml``, ``heldout.yaml``)."""

THRESHOLDS: tuple[float, ...] = tuple(round(0.30 + 0.05 * i, 2) for i in range(12))
"""The thresholds measured: 0.30, 0.35 ... 0.85."""

MAX_FALSE_ANSWER_RATE = 0.10
"""At most this share of unanswerable questions may get an answer at the chosen threshold."""

_F_BETA = 0.5
"""F-beta weighting of :func:`choose_threshold`: precision counts twice as much as recall, since a
wrong answer misleads the lead while a missed one only defers to a person."""


@dataclass(frozen=True, slots=True)
class KnowledgeCase:
    """One labelled question: ``expected`` is the answering entry's id, ``None`` when the base
    cannot answer it."""

    id: str
    split: str
    question: str
    language: str
    expected: str | None


@dataclass(slots=True)
class ThresholdScore:
    """The counts at one threshold and the figures derived from them (fractions 0..1)."""

    threshold: float
    answerable: int = 0
    unanswerable: int = 0
    correct: int = 0
    wrong: int = 0
    missed: int = 0
    false_answers: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def answered(self) -> int:
        """Answers given (right or not)."""
        return self.correct + self.wrong + self.false_answers

    @property
    def precision(self) -> float:
        """Correct answers / answers given; 1.0 when no answer was given."""
        return self.correct / self.answered if self.answered else 1.0

    @property
    def recall(self) -> float:
        """Correct answers / answerable questions; 1.0 when there is none."""
        return self.correct / self.answerable if self.answerable else 1.0

    @property
    def false_answer_rate(self) -> float:
        """Unanswerable questions answered / unanswerable questions; 0.0 when there is none."""
        return self.false_answers / self.unanswerable if self.unanswerable else 0.0

    @property
    def f_score(self) -> float:
        """F-beta of precision and recall (beta :data:`_F_BETA`)."""
        p, r, b2 = self.precision, self.recall, _F_BETA * _F_BETA
        return (1 + b2) * p * r / (b2 * p + r) if p + r else 0.0

    def to_dict(self, *, failures: bool = False) -> dict[str, Any]:
        """JSON-ready counts and figures (rounded to 4 decimals)."""
        doc: dict[str, Any] = {
            "threshold": self.threshold,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "false_answer_rate": round(self.false_answer_rate, 4),
            "correct": self.correct,
            "wrong": self.wrong,
            "missed": self.missed,
            "false_answers": self.false_answers,
            "answerable": self.answerable,
            "unanswerable": self.unanswerable,
        }
        if failures:
            doc["failed_cases"] = self.failures
        return doc


@dataclass(slots=True)
class KnowledgeReport:
    """Figures at every measured threshold, the one :func:`choose_threshold` picks on them, and
    ``current``: the figures at the threshold in use (:data:`DEFAULT_MIN_SCORE`)."""

    cases: int
    scores: list[ThresholdScore]
    current: ThresholdScore
    chosen: float

    def to_dict(self, *, failures: bool = False) -> dict[str, Any]:
        """A JSON-ready summary; ``failures`` adds the wrong cases at the threshold in use."""
        return {
            "cases": self.cases,
            "default_min_score": self.current.threshold,
            "at_default": self.current.to_dict(failures=failures),
            "best_threshold_here": self.chosen,
            "thresholds": [s.to_dict() for s in self.scores],
        }

    def format(self, *, failures: bool = False) -> str:
        """Plain text: the figures at the threshold in use, then one line per threshold."""
        now = self.current
        out = [
            f"questions: {self.cases} ({now.answerable} answerable, {now.unanswerable} not in the base)",
            f"at DEFAULT_MIN_SCORE = {now.threshold:.2f}:",
            f"  precision {now.precision * 100:5.1f} %  ({now.correct}/{now.answered} answers right)",
            f"  recall    {now.recall * 100:5.1f} %  "
            f"({now.correct}/{now.answerable} answerable answered right)",
            f"  false answers on unanswerable questions "
            f"{now.false_answer_rate * 100:5.1f} %  ({now.false_answers}/{now.unanswerable})",
            f"  wrong entry {now.wrong}, missed {now.missed}",
            f"best threshold on this set (choose_threshold): {self.chosen:.2f}",
            "  threshold  precision  recall  false answers",
        ]
        out += [
            f"  {s.threshold:9.2f}  {s.precision * 100:8.1f} %  {s.recall * 100:5.1f} %  "
            f"{s.false_answer_rate * 100:6.1f} %"
            for s in self.scores
        ]
        if failures:
            out.append("failures at DEFAULT_MIN_SCORE:")
            out += [
                f"  {f['id']} [{f['language']}] {f['question']!r}: expected {f['expected']}, "
                f"got {f['got']} ({f['score']})"
                for f in now.failures
            ]
        return "\n".join(out)


def knowledge_splits() -> list[str]:
    """The names of the labelled sets in :data:`KNOWLEDGE_EVAL_DIR` (file stems)."""
    return sorted(p.stem for p in KNOWLEDGE_EVAL_DIR.glob("*.yaml"))


def load_knowledge_cases(
    paths: Iterable[Path] | None = None, *, split: str | None = None
) -> list[KnowledgeCase]:
    """Read labelled question sets (default: every ``*.yaml`` of :data:`KNOWLEDGE_EVAL_DIR`; the split
    is the file's stem), keeping only ``split`` when given. Raises ``ValueError`` for a malformed file."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    files = sorted(paths) if paths is not None else sorted(KNOWLEDGE_EVAL_DIR.glob("*.yaml"))
    cases: list[KnowledgeCase] = []
    for path in files:
        if split is not None and path.stem != split:
            continue
        data = yaml.load(path.read_text(encoding="utf-8"))
        try:
            for i, raw in enumerate(data["questions"]):
                expected = raw.get("a")
                cases.append(
                    KnowledgeCase(
                        id=f"{path.stem}:{i}",
                        split=path.stem,
                        question=str(raw["q"]),
                        language=str(raw["l"]),
                        expected=str(expected) if expected is not None else None,
                    )
                )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: malformed labelled question set ({exc!r})") from exc
    return cases


def score_at(
    cases: Sequence[KnowledgeCase],
    index: KnowledgeIndex,
    threshold: float,
    *,
    min_margin: float = DEFAULT_MIN_MARGIN,
) -> ThresholdScore:
    """Ask every case at ``threshold`` (and ``min_margin``) and count the outcomes (see the module
    docstring)."""
    score = ThresholdScore(threshold=threshold)
    for case in cases:
        match = index.best_match(
            case.question, language=case.language, min_score=threshold, min_margin=min_margin
        )
        got = match.entry.id if match is not None else None
        if case.expected is None:
            score.unanswerable += 1
            ok = got is None
            score.false_answers += int(not ok)
        else:
            score.answerable += 1
            ok = got == case.expected
            score.correct += int(ok)
            score.wrong += int(got is not None and not ok)
            score.missed += int(got is None)
        if not ok:
            score.failures.append(
                {
                    "id": case.id,
                    "question": case.question,
                    "language": case.language,
                    "expected": case.expected,
                    "got": got,
                    "score": round(match.score, 3) if match is not None else None,
                }
            )
    return score


def choose_threshold(scores: Sequence[ThresholdScore]) -> float:
    """The threshold to use: among those whose false-answer rate is at most
    :data:`MAX_FALSE_ANSWER_RATE`, the one with the best F0.5 (precision weighted over recall); ties
    go to the higher threshold. When none keeps false answers that low, the one with the fewest.
    Raises ``ValueError`` on an empty list."""
    if not scores:
        raise ValueError("no threshold measured")
    safe = [s for s in scores if s.false_answer_rate <= MAX_FALSE_ANSWER_RATE]
    if not safe:
        return min(scores, key=lambda s: (s.false_answer_rate, -s.threshold)).threshold
    return max(safe, key=lambda s: (round(s.f_score, 9), s.threshold)).threshold


def measure_knowledge(
    *,
    entries: Sequence[QAEntry] | None = None,
    split: str | None = None,
    paths: Iterable[Path] | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
    min_score: float = DEFAULT_MIN_SCORE,
    min_margin: float = DEFAULT_MIN_MARGIN,
) -> dict[str, KnowledgeReport]:
    """Measure retrieval over ``entries`` (default: the demo base) on the labelled sets: one
    :class:`KnowledgeReport` per split, plus ``"all"`` when there are several. ``min_score`` is the
    threshold reported as in use, ``min_margin`` the lead the best entry needs (see
    :meth:`KnowledgeIndex.best_answer`). Raises ``ValueError`` for a malformed set."""
    index = KnowledgeIndex.build(list(entries) if entries is not None else DEMO_QA)
    cases = load_knowledge_cases(paths, split=split)
    groups: dict[str, list[KnowledgeCase]] = {}
    for case in cases:
        groups.setdefault(case.split, []).append(case)
    if len(groups) > 1:
        groups["all"] = cases
    reports: dict[str, KnowledgeReport] = {}
    for name, group in groups.items():
        scores = [score_at(group, index, t, min_margin=min_margin) for t in thresholds]
        reports[name] = KnowledgeReport(
            cases=len(group),
            scores=scores,
            current=score_at(group, index, min_score, min_margin=min_margin),
            chosen=choose_threshold(scores),
        )
    return reports
