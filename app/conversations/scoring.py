"""Lead scoring from the model's qualification signals and from engagement: points with reasons.

Pure and deterministic: the same inputs give the same deltas, in the same order. The lead's score is
0-100 (the conversation code clamps it); playbook ``score`` steps add their own points on top.

**BANT signals** (:func:`score_from_signals`), points per level (``none`` is a clear "no"; a signal the
model did not see is ``null`` and scores nothing)::

                 high   medium   low   none
    budget        +15     +8      +2    -5     money is there / roughly / tight / no budget
    authority     +10     +5       0    -5     decides / co-decides / influences / no say
    need          +15     +8      +2   -10     strong, stated need ... no need at all
    timeline      +15     +8      +2    -5     within ~3 months / this year / someday / never

Signals alone top out at 55, below the shipped playbooks' ``qualification_threshold`` of 60, so a
lead is never qualified on the model's say-so without the playbook's own answers or engagement.
A signal counts only when its ``evidence`` is grounded in ``evidence_text`` (the lead's own words;
at least :data:`GROUNDED_SHARE` of the evidence's words found there): the model cannot invent a
budget the lead never mentioned.

**Engagement** (:func:`score_from_engagement`): +5 once for a reply within
:data:`FAST_REPLY_SECONDS` of the bot's question, +5 once when the lead has sent at least
:data:`MANY_MESSAGES` messages.

**Once per conversation.** Every delta carries a ``key`` (``signal:budget``, ``engagement:fast_reply``).
The caller keeps the points already applied per key on the conversation and passes them to
:func:`reconcile`, which returns only the change: a budget going from ``low`` (+2) to ``high`` (+15)
adds +13 with the new reason, a repeated ``high`` adds nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.conversations.score_reasons import english, with_was
from playbooks.runtime import Interpretation, Scorer

__all__ = [
    "ENGAGEMENT_POINTS",
    "FAST_REPLY_SECONDS",
    "GROUNDED_SHARE",
    "MANY_MESSAGES",
    "SIGNAL_POINTS",
    "ScoreDelta",
    "reconcile",
    "score_from_engagement",
    "score_from_signals",
]

#: Points per BANT signal and level (see the module docstring).
SIGNAL_POINTS: dict[str, dict[str, int]] = {
    "budget": {"high": 15, "medium": 8, "low": 2, "none": -5},
    "authority": {"high": 10, "medium": 5, "low": 0, "none": -5},
    "need": {"high": 15, "medium": 8, "low": 2, "none": -10},
    "timeline": {"high": 15, "medium": 8, "low": 2, "none": -5},
}
_LEVEL_ALIASES = {"decision-maker": "high", "decision_maker": "high", "soon": "high", "no": "none"}
#: Share of the evidence's words that must be found in the lead's text.
GROUNDED_SHARE = 0.6
#: A lead reply within this many seconds of the bot's message counts as fast.
FAST_REPLY_SECONDS = 300.0
#: From this many inbound messages on, the lead counts as engaged.
MANY_MESSAGES = 5
#: Points of each engagement rule.
ENGAGEMENT_POINTS = {"fast_reply": 5, "messages": 5}
_QUOTE_CHARS = 120


@dataclass(frozen=True, slots=True)
class ScoreDelta:
    """A change of the lead's score: ``points`` (may be negative) for ``reason``, with the lead's quoted
    ``evidence`` (may be empty). ``key`` names the rule, the same across turns (see :func:`reconcile`).
    ``code`` and ``params``: the reason as a code with its parameters
    (:mod:`app.conversations.score_reasons`), which ``reason`` and ``evidence`` are the English of."""

    points: int
    reason: str
    evidence: str
    key: str
    code: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, points: int, code: str, params: Mapping[str, Any], *, key: str) -> ScoreDelta:
        """The delta of ``points`` for reason ``code`` with ``params``, its English written by
        :func:`app.conversations.score_reasons.english` (raises ``KeyError`` as it does)."""
        reason, evidence = english(code, params)
        return cls(points, reason, evidence, key=key, code=code, params=dict(params))


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("\u2019", "'"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _grounded(evidence: str, text: str) -> bool:
    words = re.findall(r"\w+", _fold(evidence))
    if not words:
        return False
    haystack = set(re.findall(r"\w+", _fold(text)))
    return sum(w in haystack for w in words) / len(words) >= GROUNDED_SHARE


def _quote(evidence: str) -> str:
    flat = " ".join(evidence.split())
    return flat if len(flat) <= _QUOTE_CHARS else flat[: _QUOTE_CHARS - 1].rstrip() + "…"


def _field(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def score_from_signals(signals: Mapping[str, Any] | None, *, evidence_text: str) -> list[ScoreDelta]:
    """Deltas for the model's BANT ``signals``: ``{budget|authority|need|timeline: None | {level,
    evidence}}`` (dicts or objects with ``level``/``evidence`` attributes; unknown names and levels are
    ignored). ``evidence_text``: the lead's own words the signals were read from (their message, or
    their recent messages joined); a signal whose evidence is not found there scores nothing.

    Reasons read ``"Budget: high (quoted: '...')"``; levels with 0 points give no delta. Order: budget,
    authority, need, timeline.
    """
    deltas: list[ScoreDelta] = []
    for name, table in SIGNAL_POINTS.items():
        signal = (signals or {}).get(name)
        if signal is None:
            continue
        raw_level = str(_field(signal, "level") or "").strip().lower()
        level = _LEVEL_ALIASES.get(raw_level, raw_level)
        points = table.get(level)
        evidence = str(_field(signal, "evidence") or "")
        if not points or not _grounded(evidence, evidence_text):
            continue
        params = {"signal": name, "level": level, "quote": _quote(evidence)}
        deltas.append(ScoreDelta.of(points, "signal", params, key=f"signal:{name}"))
    return deltas


def score_from_engagement(*, reply_seconds: float | None, inbound_count: int) -> list[ScoreDelta]:
    """Deltas for engagement: ``reply_seconds`` (seconds between the bot's last message and the lead's
    reply; None when the lead wrote first) and ``inbound_count`` (the lead's messages so far, this one
    included). Raises ValueError for a negative ``reply_seconds`` or ``inbound_count``.
    """
    if reply_seconds is not None and reply_seconds < 0:
        raise ValueError("reply_seconds must be >= 0")
    if inbound_count < 0:
        raise ValueError("inbound_count must be >= 0")
    deltas: list[ScoreDelta] = []
    if reply_seconds is not None and reply_seconds <= FAST_REPLY_SECONDS:
        minutes = FAST_REPLY_SECONDS / 60
        params = {
            "minutes": int(minutes) if minutes.is_integer() else minutes,
            "seconds": round(reply_seconds),
        }
        deltas.append(
            ScoreDelta.of(
                ENGAGEMENT_POINTS["fast_reply"], "engagement.fast_reply", params, key="engagement:fast_reply"
            )
        )
    if inbound_count >= MANY_MESSAGES:
        params = {"min": MANY_MESSAGES, "count": inbound_count}
        deltas.append(
            ScoreDelta.of(
                ENGAGEMENT_POINTS["messages"], "engagement.messages", params, key="engagement:messages"
            )
        )
    return deltas


def reconcile(deltas: Iterable[ScoreDelta], applied: Mapping[str, int]) -> list[ScoreDelta]:
    """The deltas still to apply, given ``applied`` (points already applied per key this conversation).

    A key seen with the same points gives nothing; with other points, a delta of the difference whose
    reason says what it was before (``"... (was +2)"``). When ``deltas`` repeats a key, the last wins.
    """
    latest: dict[str, ScoreDelta] = {}
    for delta in deltas:
        latest[delta.key] = delta
    out: list[ScoreDelta] = []
    for key, delta in latest.items():
        before = applied.get(key)
        if before is None:
            out.append(delta)
        elif before != delta.points:
            out.append(
                replace(
                    delta,
                    points=delta.points - before,
                    reason=with_was(delta.reason, before),
                    params={**delta.params, "was": before} if delta.code else delta.params,
                )
            )
    return out


def make_scorer(evidence_text: str) -> Scorer:
    """The engine's scoring port (:attr:`playbooks.runtime.Ports.scorer`) for one turn whose lead text
    is ``evidence_text``: qualification signals and engagement, reconciled with what was applied."""

    def scorer(
        interpretation: Interpretation,
        *,
        reply_seconds: float | None,
        inbound_count: int,
        applied: Mapping[str, int],
    ) -> list[ScoreDelta]:
        deltas = score_from_signals(interpretation.signals, evidence_text=evidence_text)
        deltas += score_from_engagement(reply_seconds=reply_seconds, inbound_count=inbound_count)
        return reconcile(deltas, applied)

    return scorer
