"""Routing rules: which playbook a new conversation starts.

A tenant's rules (document ``config/playbook_routes``) are tried in order; the first whose every
given condition holds names the playbook. Conditions: the ``trigger`` (``inbound_unknown_lead``,
``lead_created``), the ``channels``, the lead's ``languages``, the lead's ``source`` (the API's
``source`` field), a click-to-WhatsApp ad ``referral`` (any, or one ad id), ``utm`` parameters
(from the ad's or page's URL, or given with the lead) and ``keywords`` (any of them as whole words in
the first message, case and accents ignored). Without a match: the tenant's
``playbooks_by_language``, then the routes' ``default_playbook``, then the profile's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from playbooks.slots import fold

__all__ = ["PlaybookRoutes", "RouteContext", "RouteRule", "utm_from"]

#: Longest first-message prefix the keyword match reads (characters).
KEYWORD_SCAN_CHARS = 2000


@dataclass(frozen=True, slots=True)
class RouteContext:
    """What is known about a new conversation when its playbook is chosen."""

    trigger: str
    channel: str | None = None
    language: str | None = None
    text: str = ""
    source: str | None = None
    referral: Mapping[str, Any] | None = None
    utm: Mapping[str, str] = field(default_factory=dict)


def utm_from(*urls: str | None) -> dict[str, str]:
    """``utm_*`` parameters of the given URLs (the first URL that has one wins per parameter)."""
    out: dict[str, str] = {}
    for url in urls:
        if not url:
            continue
        for key, value in parse_qsl(urlsplit(url[:4000]).query):
            if key.startswith("utm_") and key not in out:
                out[key] = value[:200]
    return out


class RouteRule(BaseModel):
    """One rule; empty conditions match anything. ``name`` is for people reading the rules."""

    model_config = ConfigDict(extra="forbid")

    playbook_id: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    trigger: Literal["inbound_unknown_lead", "lead_created"] | None = None
    channels: list[str] = Field(default_factory=list, max_length=10)
    languages: list[str] = Field(default_factory=list, max_length=20)
    source: str | None = Field(default=None, max_length=100)
    referral: bool | None = Field(default=None, description="true: only leads from a click-to-WhatsApp ad")
    referral_source_id: str | None = Field(default=None, max_length=100, description="the ad's id")
    utm: dict[str, str] = Field(default_factory=dict, description="e.g. {'utm_campaign': 'spring'}")
    keywords: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("utm")
    @classmethod
    def _utm(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key.startswith("utm_"):
                raise ValueError(f"{key!r} is not a utm_ parameter")
        return value

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        out = []
        for keyword in value:
            folded = fold(keyword.strip())
            if not folded or len(folded) > 100:
                raise ValueError("a keyword is 1 to 100 characters")
            out.append(folded)
        return out

    def matches(self, ctx: RouteContext) -> bool:
        """Whether every condition of this rule holds for ``ctx``."""
        if self.trigger is not None and ctx.trigger != self.trigger:
            return False
        if self.channels and ctx.channel not in self.channels:
            return False
        if self.languages and ctx.language not in self.languages:
            return False
        if self.source is not None and ctx.source != self.source:
            return False
        if self.referral is not None and bool(ctx.referral) != self.referral:
            return False
        if (
            self.referral_source_id is not None
            and (ctx.referral or {}).get("source_id") != self.referral_source_id
        ):
            return False
        if any(ctx.utm.get(k) != v for k, v in self.utm.items()):
            return False
        if self.keywords:
            text = fold(ctx.text[:KEYWORD_SCAN_CHARS])
            return any(re.search(r"(?<!\w)" + re.escape(k) + r"(?!\w)", text) for k in self.keywords)
        return True


class PlaybookRoutes(BaseModel):
    """A tenant's routing: ``rules`` in order, then ``default_playbook``."""

    model_config = ConfigDict(extra="forbid")

    rules: list[RouteRule] = Field(default_factory=list, max_length=200)
    default_playbook: str | None = Field(default=None, max_length=200)

    def candidates(self, ctx: RouteContext) -> list[str]:
        """Playbook ids of the matching rules, in order."""
        return [rule.playbook_id for rule in self.rules if rule.matches(ctx)]
