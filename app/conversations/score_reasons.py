"""The built-in scorer's reasons as codes with parameters, so a page can say them in its reader's language.

The scorer (:mod:`app.conversations.scoring`) writes each reason in English (``reason``, what API
users and the CRM read) from a code and its parameters through :func:`english`, and hands the code
and parameters on with it (``ScoreAdjustment.code`` and ``params``): the engine carries them in
its ``ScoreChanged`` action, and the turn's planning stores them with the ``score_changed`` event
(``reason_code``, ``reason_params``). Nothing reads a code back from English, except
:func:`tagged` (through :func:`parse`) for events stored before codes existed. A playbook's own
``score`` steps (events with a ``step_id``) keep their author's text; the engine's re-reading of
one after a corrected answer gets the code ``step.corrected`` or ``step.no_longer``.

Codes and parameters (every parameter a str or a number):

- ``signal``: ``signal`` (budget, authority, need, timeline), ``level`` (high, medium, low, none),
  ``quote`` (the lead's words) -- "Budget: high (quoted: '15k')";
- ``engagement.fast_reply``: ``minutes`` (the rule's limit), ``seconds`` (the lead's reply time)
  -- "Engagement: replied within 5 minutes", evidence "replied after 42 s";
- ``engagement.messages``: ``min`` (the rule's count), ``count`` (the lead's messages) --
  "Engagement: 5 or more messages", evidence "7 messages";
- ``step.corrected`` / ``step.no_longer``: ``text`` (the author's reason) -- a score step re-read
  after the lead corrected an answer;

plus ``was`` (signed points before) when a rule's points changed ("... (was +2)").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["SIGNAL_LABELS", "english", "parse", "tagged", "with_was"]

#: The English names of the BANT signals, as the reasons write them.
SIGNAL_LABELS = {"budget": "Budget", "authority": "Authority", "need": "Need", "timeline": "Timeline"}
_BY_LABEL = {label: name for name, label in SIGNAL_LABELS.items()}
_LEVELS = ("high", "medium", "low", "none")

_WAS = re.compile(r"^(?P<text>.*) \(was (?P<was>[+-]\d+)\)$", re.S)
_SIGNAL = re.compile(
    rf"^(?P<label>{'|'.join(_BY_LABEL)}): (?P<level>{'|'.join(_LEVELS)}) \(quoted: '(?P<quote>.*)'\)$", re.S
)
_FAST = re.compile(r"^Engagement: replied within (?P<minutes>\d+(?:\.\d+)?) minutes$")
_FAST_EVIDENCE = re.compile(r"^replied after (?P<seconds>\d+) s$")
_MANY = re.compile(r"^Engagement: (?P<min>\d+) or more messages$")
_MANY_EVIDENCE = re.compile(r"^(?P<count>\d+) messages$")
_CORRECTED = " (corrected)"
_NO_LONGER = " (no longer: corrected)"


def with_was(reason: str, before: int) -> str:
    """``reason`` saying the rule gave ``before`` points until now: ``"... (was +2)"``."""
    return f"{reason} (was {before:+d})"


def english(code: str, params: Mapping[str, Any]) -> tuple[str, str]:
    """The English ``(reason, evidence)`` of a scorer reason ``code`` with its ``params`` (see the
    module docstring; evidence is ``""`` for codes without one). Raises KeyError for an unknown code
    or a missing parameter."""
    if code == "signal":
        text = f"{SIGNAL_LABELS[params['signal']]}: {params['level']} (quoted: '{params['quote']}')"
        evidence = str(params["quote"])
    elif code == "engagement.fast_reply":
        text = f"Engagement: replied within {params['minutes']} minutes"
        evidence = f"replied after {params['seconds']} s"
    elif code == "engagement.messages":
        text = f"Engagement: {params['min']} or more messages"
        evidence = f"{params['count']} messages"
    else:
        raise KeyError(code)
    if "was" in params:
        text = with_was(text, int(params["was"]))
    return text, evidence


def _int_of(pattern: re.Pattern[str], text: str, name: str) -> int | None:
    found = pattern.match(text)
    return int(found[name]) if found else None


def parse(reason: str, evidence: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """The ``(code, params)`` of a reason the scorer wrote in English (and its ``evidence``), or
    None for any other text (a playbook author's, a cut one)."""
    params: dict[str, Any] = {}
    was = _WAS.match(reason)
    if was:
        reason, params["was"] = was["text"], int(was["was"])
    if found := _SIGNAL.match(reason):
        params.update(signal=_BY_LABEL[found["label"]], level=found["level"], quote=found["quote"])
        return "signal", params
    if found := _FAST.match(reason):
        minutes = float(found["minutes"])
        params["minutes"] = int(minutes) if minutes.is_integer() else minutes
        seconds = _int_of(_FAST_EVIDENCE, evidence or "", "seconds")
        if seconds is not None:
            params["seconds"] = seconds
        return "engagement.fast_reply", params
    if found := _MANY.match(reason):
        params["min"] = int(found["min"])
        count = _int_of(_MANY_EVIDENCE, evidence or "", "count")
        if count is not None:
            params["count"] = count
        return "engagement.messages", params
    return None


def _step_suffix(reason: str) -> tuple[str, dict[str, Any]] | None:
    for suffix, code in ((_NO_LONGER, "step.no_longer"), (_CORRECTED, "step.corrected")):
        if reason.endswith(suffix):
            return code, {"text": reason[: -len(suffix)]}
    return None


def tagged(detail: Mapping[str, Any]) -> dict[str, Any]:
    """A ``score_changed`` event's ``detail`` with ``reason_code`` and ``reason_params`` when its
    reason is one the engine or the scorer wrote (kept as stored when it already has a code; a copy
    without them for an author's own text)."""
    out = dict(detail)
    if out.get("reason_code") or not isinstance(out.get("reason"), str):
        return out
    reason = str(out["reason"])
    if out.get("step_id"):
        found = _step_suffix(reason)
    else:
        evidence = out.get("evidence")
        found = parse(reason, evidence if isinstance(evidence, str) else None)
    if found is not None:
        out["reason_code"], out["reason_params"] = found
    return out
