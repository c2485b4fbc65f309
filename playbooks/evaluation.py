"""Measure an interpreter on labelled lead messages: accuracy per slot kind, intents, multi-answer
messages, and how many questions were stored as answers.

Pure: it reads the labelled sets (YAML, ``playbooks/eval/*.yaml``), calls the ``Interpreter``
port it is given on each message and compares. No network of its own (a model interpreter passed
in may call its model). The entry point for the ``leadwarm eval`` command is :func:`run_eval`.

A labelled set (see the header of ``playbooks/eval/dev.yaml``) names a shipped playbook and groups
of cases by the pending ``ask`` step; each case gives the message ``t``, the expected intent
``i`` (default ``answer``), the exact expected slots ``s``, and optionally ``o: true`` (no option
fits: free text kept) or ``c: [ids]`` (a clarifying question between close options). Every case
is read at :data:`EVAL_NOW` in :data:`EVAL_TIMEZONE`, with the slots asked before ``ask`` filled.

Scoring, per case:

- every expected slot counts once for its kind (right value or not), and every slot the
  interpreter gave that was not expected counts as a wrong value of that slot's kind (so a
  spurious value lowers the accuracy); ``o``/``c`` expectations count under ``choice``;
- the intent counts once (exact match);
- a case with two slots or more expected is a multi-answer message: right only when all its
  slots are right and nothing else was filled;
- "question stored as answer": a case whose text asks something (intent ``question``) where the
  interpreter filled a slot the label does not expect, or any ``text`` slot value that is itself
  a question.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from playbooks.engine import ask_context, new_state
from playbooks.interpret import RuleInterpreter, looks_like_question
from playbooks.loader import load_library
from playbooks.runtime import Interpreter
from playbooks.schema import AskStep, Playbook

__all__ = [
    "EVAL_DIR",
    "EVAL_NOW",
    "EVAL_TIMEZONE",
    "EvalCase",
    "EvalReport",
    "EvalSetting",
    "KindScore",
    "evaluate",
    "load_cases",
    "run_eval",
]

EVAL_DIR = Path(__file__).parent / "eval"
"""Where the labelled sets live: ``dev.yaml`` (the rules were tuned on it) and ``heldout.yaml``."""

EVAL_TIMEZONE = "Europe/Paris"
EVAL_NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo(EVAL_TIMEZONE)).timestamp()
"""Monday 23 November 2026, 10:00 in Paris, as seconds since the epoch: 'now' for every case."""

_REGIONS = {"fr": "FR", "en": "GB"}


@dataclass(frozen=True, slots=True)
class EvalSetting:
    """What an interpreter under test must be anchored to: ``now`` (seconds since the epoch,
    UTC), the lead's ``timezone`` (IANA) and ``default_region`` (ISO 3166) for phone numbers."""

    now: float
    timezone: str
    default_region: str | None


@dataclass(frozen=True, slots=True)
class EvalCase:
    """One labelled message (see the module docstring for the fields)."""

    id: str
    split: str
    playbook: str
    language: str
    ask: str | None
    filled: tuple[str, ...]
    text: str
    intent: str
    slots: dict[str, Any]
    other: bool = False
    clarify: tuple[str, ...] = ()


@dataclass(slots=True)
class KindScore:
    """``right`` out of ``total``; ``accuracy`` is 1.0 when there is nothing to count."""

    right: int = 0
    total: int = 0

    def add(self, ok: bool) -> None:
        self.total += 1
        self.right += int(ok)

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 1.0


@dataclass(slots=True)
class EvalReport:
    """Accuracy per slot kind (``slots``), per expected intent (``intents``), overall figures and
    the cases that went wrong (``failures``: case id, what was expected, what came back)."""

    cases: int = 0
    slots: dict[str, KindScore] = field(default_factory=dict)
    intents: dict[str, KindScore] = field(default_factory=dict)
    slot_values: KindScore = field(default_factory=KindScore)
    intent_total: KindScore = field(default_factory=KindScore)
    multi_answer: KindScore = field(default_factory=KindScore)
    questions_stored: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: accuracies as fractions 0-1 with their counts."""

        def score(s: KindScore) -> dict[str, Any]:
            return {"accuracy": round(s.accuracy, 4), "right": s.right, "total": s.total}

        return {
            "cases": self.cases,
            "slot_values": score(self.slot_values),
            "slots_by_kind": {k: score(v) for k, v in sorted(self.slots.items())},
            "intents": score(self.intent_total),
            "intents_by_label": {k: score(v) for k, v in sorted(self.intents.items())},
            "multi_answer": score(self.multi_answer),
            "questions_stored_as_answers": self.questions_stored,
            "failures": len(self.failures),
        }

    def format(self, *, failures: bool = False) -> str:
        """The report as plain text, one figure a line (and the failed cases when asked)."""

        def line(name: str, s: KindScore) -> str:
            return f"  {name:<24} {s.accuracy * 100:6.1f} %  ({s.right}/{s.total})"

        out = [f"cases: {self.cases}", "slot values:", line("all kinds", self.slot_values)]
        out += [line(kind, s) for kind, s in sorted(self.slots.items())]
        out += ["intents:", line("all intents", self.intent_total)]
        out += [line(name, s) for name, s in sorted(self.intents.items())]
        out += ["multi-answer messages:", line("all slots right", self.multi_answer)]
        out.append(f"questions stored as answers: {self.questions_stored}")
        if failures:
            out.append("failures:")
            out += [
                f"  {f['id']}: {f['text']!r} expected {f['expected']} got {f['got']}" for f in self.failures
            ]
        return "\n".join(out)


# --------------------------------------------------------------------------- loading


def load_cases(paths: Iterable[Path] | None = None, *, split: str | None = None) -> list[EvalCase]:
    """Read labelled sets (default: every ``*.yaml`` in :data:`EVAL_DIR`; the split is the file's
    stem, ``dev`` or ``heldout``), keeping only ``split`` when given. Raises ``ValueError`` for a
    malformed file (the message names the file and the case)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    files = sorted(paths) if paths is not None else sorted(EVAL_DIR.glob("*.yaml"))
    cases: list[EvalCase] = []
    for path in files:
        name = path.stem
        if split is not None and name != split:
            continue
        data = yaml.load(path.read_text(encoding="utf-8"))
        try:
            for set_index, block in enumerate(data["sets"]):
                for group_index, group in enumerate(block["groups"]):
                    for case_index, raw in enumerate(group["cases"]):
                        cases.append(
                            EvalCase(
                                id=f"{name}:{set_index}.{group_index}.{case_index}",
                                split=name,
                                playbook=str(block["playbook"]),
                                language=str(block.get("language", "en")),
                                ask=group.get("ask"),
                                filled=tuple(group.get("filled", ())),
                                text=str(raw["t"]),
                                intent=str(raw.get("i", "answer")),
                                slots=dict(raw.get("s") or {}),
                                other=bool(raw.get("o", False)),
                                clarify=tuple(raw.get("c", ())),
                            )
                        )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: malformed labelled set ({exc!r})") from exc
    return cases


# --------------------------------------------------------------------------- scoring


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    if isinstance(expected, int | float) and isinstance(got, int | float):
        return math.isclose(float(expected), float(got), rel_tol=1e-6)
    return str(expected) == str(got)


def _prefilled(playbook: Playbook, case: EvalCase) -> dict[str, Any]:
    """Slots asked before the pending step (placeholder values), or the ones the group lists."""
    names: list[str] = list(case.filled)
    if not names and case.ask is not None:
        for step in playbook.steps:
            if step.id == case.ask:
                break
            if isinstance(step, AskStep) and not step.listen_only:  # never asked: not given either
                names.append(step.slot)
    return {name: "(given)" for name in names}


def _default_interpreter(setting: EvalSetting) -> Interpreter:
    class _Fixed:
        def now(self) -> float:
            return setting.now

    return RuleInterpreter(clock=_Fixed(), timezone=setting.timezone, default_region=setting.default_region)


async def evaluate(
    cases: Sequence[EvalCase],
    *,
    make_interpreter: Callable[[EvalSetting], Interpreter] | None = None,
    playbooks: dict[str, Playbook] | None = None,
) -> EvalReport:
    """Run every case through an interpreter and score it (see the module docstring).

    ``make_interpreter(setting)`` builds the interpreter under test for a setting (one per
    default region, cached); the offline :class:`RuleInterpreter` when omitted. ``playbooks``:
    id -> playbook (default: the shipped library). Raises ``ValueError`` when a case names an
    unknown playbook or step; interpreter errors propagate.
    """
    make = make_interpreter or _default_interpreter
    library = playbooks if playbooks is not None else load_library()
    interpreters: dict[str | None, Interpreter] = {}
    report = EvalReport()
    for case in cases:
        playbook = library.get(case.playbook)
        if playbook is None:
            raise ValueError(f"case {case.id}: unknown playbook {case.playbook!r}")
        region = _REGIONS.get(case.language)
        if region not in interpreters:
            interpreters[region] = make(
                EvalSetting(now=EVAL_NOW, timezone=EVAL_TIMEZONE, default_region=region)
            )
        state = new_state(playbook, language=case.language)
        state.slots = _prefilled(playbook, case)
        kinds = playbook.slot_kinds()
        open_slots = {slot: kind for slot, kind in kinds.items() if slot not in state.slots}
        context = ask_context(playbook, case.ask, state=state) if case.ask is not None else None
        result = await interpreters[region].interpret(
            text=case.text, choice_id=None, ask=context, open_slots=open_slots, state=state
        )
        _score(report, case, result, kinds, context.slot if context is not None else None)
    return report


def _score(
    report: EvalReport, case: EvalCase, result: Any, kinds: dict[str, str], ask_slot: str | None
) -> None:
    report.cases += 1
    got: dict[str, Any] = dict(result.slots)
    wrong: list[str] = []
    for slot, expected in case.slots.items():
        ok = slot in got and _same(expected, got[slot])
        kind = kinds.get(slot, "unknown")
        report.slots.setdefault(kind, KindScore()).add(ok)
        report.slot_values.add(ok)
        if not ok:
            wrong.append(slot)
    spurious = [slot for slot in got if slot not in case.slots]
    for slot in spurious:
        kind = kinds.get(slot, "unknown")
        report.slots.setdefault(kind, KindScore()).add(False)
        report.slot_values.add(False)
    if case.other:
        ok = ask_slot is not None and ask_slot in result.other
        report.slots.setdefault("choice", KindScore()).add(ok)
        report.slot_values.add(ok)
        if not ok:
            wrong.append("(other)")
    if case.clarify:
        ok = ask_slot is not None and set(result.clarify.get(ask_slot, [])) == set(case.clarify)
        report.slots.setdefault("choice", KindScore()).add(ok)
        report.slot_values.add(ok)
        if not ok:
            wrong.append("(clarify)")
    intent_ok = result.intent == case.intent
    report.intents.setdefault(case.intent, KindScore()).add(intent_ok)
    report.intent_total.add(intent_ok)
    if len(case.slots) >= 2:
        report.multi_answer.add(not wrong and not spurious)
    stored = (case.intent == "question" and bool(spurious)) or any(
        kinds.get(slot) == "text" and isinstance(value, str) and looks_like_question(value)
        for slot, value in got.items()
    )
    report.questions_stored += int(stored)
    if wrong or spurious or not intent_ok:
        report.failures.append(
            {
                "id": case.id,
                "text": case.text,
                "expected": {"intent": case.intent, "slots": case.slots, "other": case.other,
                             "clarify": list(case.clarify)},
                "got": {"intent": result.intent, "slots": got, "other": dict(result.other),
                        "clarify": dict(result.clarify)},
            }
        )  # fmt: skip


async def run_eval(
    *,
    make_interpreter: Callable[[EvalSetting], Interpreter] | None = None,
    split: str | None = None,
    paths: Iterable[Path] | None = None,
) -> dict[str, EvalReport]:
    """The entry point for ``leadwarm eval``: score an interpreter on the labelled sets.

    Call ``asyncio.run(run_eval())`` for the offline path, or pass ``make_interpreter`` (a
    callable ``(EvalSetting) -> Interpreter``, e.g. the app's model interpreter anchored to
    ``setting.now`` / ``setting.timezone`` / ``setting.default_region``) for the model path.
    ``split``: ``"dev"`` or ``"heldout"`` only (default both); ``paths``: other YAML sets.
    Returns one :class:`EvalReport` per split plus ``"all"``; print ``report.format()`` for each
    (``format(failures=True)`` lists the wrong cases), or ``report.to_dict()`` as JSON.
    """
    cases = load_cases(paths, split=split)
    reports: dict[str, EvalReport] = {}
    for name in sorted({c.split for c in cases}):
        reports[name] = await evaluate(
            [c for c in cases if c.split == name], make_interpreter=make_interpreter
        )
    if len(reports) > 1:
        reports["all"] = await evaluate(cases, make_interpreter=make_interpreter)
    return reports
