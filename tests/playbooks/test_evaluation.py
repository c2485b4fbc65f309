"""The evaluation module: scoring rules on a scripted interpreter, and the offline figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playbooks import AskContext, ConversationState, Interpretation
from playbooks.evaluation import EVAL_DIR, EvalSetting, evaluate, load_cases, run_eval

SET = """
sets:
  - playbook: solar-qualification-en
    language: en
    groups:
      - ask: postcode
        cases:
          - {t: "SW1A 1AA", s: {postcode: "SW1A 1AA"}}
          - {t: "how much does it cost?", i: question}
          - {t: "150 a month, tiles", s: {monthly_bill: 150.0, roof_type: pitched_tiles}}
"""


class Scripted:
    """Answers from a table: text -> Interpretation; records the contexts it was given."""

    def __init__(self, table: dict[str, Interpretation]) -> None:
        self.table = table
        self.seen: list[tuple[AskContext | None, dict[str, str], ConversationState]] = []

    async def interpret(
        self,
        *,
        text: str,
        choice_id: str | None,
        ask: AskContext | None,
        open_slots: dict[str, str],
        state: ConversationState,
    ) -> Interpretation:
        self.seen.append((ask, open_slots, state))
        return self.table[text]


async def test_scoring_counts_kinds_intents_multi_answers_and_stored_questions(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    path.write_text(SET, encoding="utf-8")
    cases = load_cases([path])
    assert [c.split for c in cases] == ["mini"] * 3 and cases[1].intent == "question"
    scripted = Scripted(
        {
            "SW1A 1AA": Interpretation(slots={"postcode": "SW1A 1AA"}),
            # the question stored as the postcode: a wrong text value and a stored question
            "how much does it cost?": Interpretation(
                intent="question", slots={"postcode": "how much does it cost?"}
            ),
            "150 a month, tiles": Interpretation(slots={"monthly_bill": 150.0, "roof_type": "flat"}),
        }
    )
    settings: list[EvalSetting] = []

    def make(setting: EvalSetting) -> Any:
        settings.append(setting)
        return scripted

    report = await evaluate(cases, make_interpreter=make)
    assert (
        len(settings) == 1 and settings[0].default_region == "GB" and settings[0].timezone == "Europe/Paris"
    )
    ask, open_slots, state = scripted.seen[0]
    assert (
        ask is not None
        and ask.slot == "postcode"
        and [o.slot for o in ask.others]
        == ["homeowner_relative", "email", "callback_time", "phone", "interest"]
    )
    # listen-only questions are never asked, so never "given" before the pending one
    assert set(state.slots) == {"homeowner", "monthly_bill", "roof_type", "timeline"}
    assert set(open_slots) == {
        "homeowner_relative",
        "postcode",
        "email",
        "callback_time",
        "phone",
        "interest",
    }
    summary = report.to_dict()
    assert summary["slots_by_kind"]["text"] == {"accuracy": 0.5, "right": 1, "total": 2}
    assert summary["slots_by_kind"]["number"]["accuracy"] == 1.0
    assert summary["slots_by_kind"]["choice"]["accuracy"] == 0.0
    assert summary["intents"] == {"accuracy": 1.0, "right": 3, "total": 3}
    assert summary["multi_answer"] == {"accuracy": 0.0, "right": 0, "total": 1}
    assert summary["questions_stored_as_answers"] == 1
    assert len(report.failures) == 2
    assert "questions stored as answers: 1" in report.format()


def test_labelled_sets_are_large_enough_and_cover_every_kind() -> None:
    cases = load_cases()
    assert {c.split for c in cases} >= {"dev", "heldout"}
    assert len(cases) >= 300
    assert {c.language for c in cases} == {"en", "fr"}
    intents = {c.intent for c in cases}
    assert intents >= {
        "answer",
        "question",
        "wants_human",
        "not_interested",
        "opt_out",
        "auto_reply",
        "small_talk",
    }
    assert sum(1 for c in cases if len(c.slots) >= 2) >= 30
    assert (EVAL_DIR / "dev.yaml").is_file()


async def test_offline_figures_meet_the_goals_on_dev() -> None:
    reports = await run_eval(split="dev")
    dev = reports["dev"]
    assert dev.slot_values.accuracy >= 0.95, dev.format(failures=True)
    assert dev.intent_total.accuracy >= 0.90, dev.format(failures=True)
    assert dev.questions_stored == 0
