"""The structured turn analysis: what the model returns for one lead message.

:data:`TURN_ANALYSIS_SCHEMA` is sent as ``response_format={"type": "json_schema", "json_schema":
{"name": "turn_analysis", "strict": true, "schema": ...}}``. It follows the subset of JSON Schema that
OpenAI's Structured Outputs accept in strict mode (every property required, ``additionalProperties:
false`` on every object, optional values as ``anyOf`` with ``null``; see
https://platform.openai.com/docs/guides/structured-outputs#supported-schemas). :class:`TurnAnalysis`
validates the same shape on our side, since OpenAI-compatible servers (Ollama, vLLM) may not enforce
the schema; it is lenient where leniency is safe (sentiment is clamped to -1..1, a language code is
lower-cased).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = [
    "INTENTS",
    "SIGNAL_NAMES",
    "TURN_ANALYSIS_SCHEMA",
    "Signal",
    "Signals",
    "SlotFinding",
    "TurnAnalysis",
    "response_format",
]

#: What a lead's message does (the contract of issue 4).
Intent = Literal[
    "answer",
    "question",
    "objection",
    "wants_human",
    "not_interested",
    "stop",
    "reschedule",
    "greeting",
    "other",
]
INTENTS: tuple[str, ...] = get_args(Intent)
#: BANT qualification signals.
SIGNAL_NAMES = ("budget", "authority", "need", "timeline")
Level = Literal["none", "low", "medium", "high"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlotFinding(_Strict):
    """A value for one playbook slot, with the lead's words that gave it (quoted verbatim)."""

    name: str
    value: bool | int | float | str
    evidence: str


class Signal(_Strict):
    """One qualification signal: how strong, and the lead's words that show it."""

    level: Level
    evidence: str


class Signals(_Strict):
    """Budget, authority, need, timeline: each ``None`` when the message says nothing about it."""

    budget: Signal | None
    authority: Signal | None
    need: Signal | None
    timeline: Signal | None


class TurnAnalysis(_Strict):
    """The model's reading of one lead message (one call per lead turn).

    ``language``: ISO 639-1 code of the message; ``sentiment``: -1 (hostile) .. 1 (enthusiastic);
    ``question``: the lead's off-script question, if any; ``reply``: the answer to it (or the
    generated reply the step asks for), ``None`` otherwise.
    """

    language: str
    intent: Intent
    slots: list[SlotFinding]
    sentiment: float
    signals: Signals
    question: str | None
    reply: str | None

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("sentiment")
    @classmethod
    def _clamp(cls, value: float) -> float:
        return max(-1.0, min(1.0, value))


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_SIGNAL: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["level", "evidence"],
    "properties": {
        "level": {"type": "string", "enum": ["none", "low", "medium", "high"]},
        "evidence": {"type": "string", "description": "The lead's words, quoted verbatim."},
    },
}

#: The strict JSON schema of :class:`TurnAnalysis` (kept by hand: it is the wire contract).
TURN_ANALYSIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["language", "intent", "slots", "sentiment", "signals", "question", "reply"],
    "properties": {
        "language": {"type": "string", "description": "ISO 639-1 code of the lead's message, e.g. 'en'."},
        "intent": {"type": "string", "enum": list(INTENTS)},
        "slots": {
            "type": "array",
            "description": "Values the message gives for slots of the playbook.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "value", "evidence"],
                "properties": {
                    "name": {"type": "string", "description": "A slot name from the playbook's list."},
                    "value": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]},
                    "evidence": {"type": "string", "description": "The lead's words, quoted verbatim."},
                },
            },
        },
        "sentiment": {"type": "number", "description": "-1 (hostile) to 1 (enthusiastic)."},
        "signals": {
            "type": "object",
            "additionalProperties": False,
            "required": list(SIGNAL_NAMES),
            "properties": {name: _nullable(_SIGNAL) for name in SIGNAL_NAMES},
        },
        "question": {"type": ["string", "null"], "description": "The lead's off-script question."},
        "reply": {"type": ["string", "null"], "description": "Your reply to that question, else null."},
    },
}


def response_format() -> dict[str, Any]:
    """The ``response_format`` argument of ``chat.completions.create`` for a strict turn analysis."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "turn_analysis", "strict": True, "schema": TURN_ANALYSIS_SCHEMA},
    }
