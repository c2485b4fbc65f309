"""Helpers shared by the CRM adapters: reading JSON answers, the note text, titles, mapped fields.

Nothing here talks to a network: adapters call their :class:`~crm_sync.base.ApiClient` themselves.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx

from crm_sync.base import IntegrationError, LeadSnapshot, ProviderError, RemoteIds
from crm_sync.mapping import apply_mapping, default_mapping, split_targets

__all__ = [
    "SALESFORCE_NOTE_LIMIT",
    "AdapterConfigError",
    "deal_title",
    "display_name",
    "is_our_note",
    "json_of",
    "mapped_fields",
    "note_html",
    "note_marker",
    "note_text",
    "option",
    "upsert_each",
]

_MAX_NOTE = 60_000  # under HubSpot's 65,536-character note body and Salesforce's 32 KB Note.Body
_MAX_SALESFORCE_NOTE = 32_000


class AdapterConfigError(IntegrationError):
    """The integration's settings (``LeadSnapshot.options``) or the connection's account lack
    something the adapter needs (a pipeline id, a location id, an email or phone to match on).
    Not retryable: a person must fix the settings."""


def json_of(response: httpx.Response) -> Any:
    """The JSON body of a successful answer; raises :class:`ProviderError` (not retryable) when
    it is not JSON (a proxy's HTML page, a truncated body)."""
    try:
        return response.json()
    except ValueError:
        raise ProviderError(
            "the CRM answered with a body that is not JSON",
            status=response.status_code,
            body=response.text[:2000],
        ) from None


def option(lead: LeadSnapshot, name: str, default: Any = None) -> Any:
    """One integration setting from ``lead.options`` (``None``/``""`` count as absent)."""
    value = lead.options.get(name)
    return default if value is None or value == "" else value


def display_name(lead: LeadSnapshot) -> str:
    """The best name we have: ``name``, else first + last, else email, else phone, else the lead id."""
    joined = " ".join(p for p in (lead.first_name, lead.last_name) if p)
    return lead.name or joined or lead.email or lead.phone or f"Lead {lead.lead_id}"


def deal_title(lead: LeadSnapshot) -> str:
    """The deal's name: ``options["deal_name"]`` (``{name}`` is replaced), else "<name> (LeadWarm)"."""
    template = option(lead, "deal_name")
    name = display_name(lead)
    if isinstance(template, str):
        return template.replace("{name}", name)[:255]
    return f"{name} (LeadWarm)"[:255]


def _lines(lead: LeadSnapshot) -> list[str]:
    lines = [f"LeadWarm: score {lead.score}/100, stage {lead.stage}"]
    if lead.score_reasons:
        lines.append("Why:")
        for reason in lead.score_reasons:
            points = reason.get("points", 0)
            text = str(reason.get("reason", ""))
            evidence = reason.get("evidence")
            lines.append(f"  {points:+} {text}" + (f" ({evidence})" if evidence else ""))
    if lead.slots:
        lines.append("Answers:")
        for key, value in lead.slots.items():
            lines.append(f"  {key}: {value}")
    if lead.summary:
        lines += ["Summary:", lead.summary]
    source = {k: v for k, v in lead.source.items() if v not in (None, "", {}, [])}
    if source:
        lines.append("Source: " + ", ".join(f"{k}={v}" for k, v in source.items()))
    if lead.transcript_url:
        lines.append(f"Transcript: {lead.transcript_url}")
    lines.append(note_marker(lead))
    return lines


def note_marker(lead: LeadSnapshot) -> str:
    """The last line of every sync note, naming the lead (``LeadWarm ref <lead id>``): when the
    note's id was lost (a crash between the CRM's answer and storing it), an adapter finds its
    note again by this line instead of writing a second one."""
    return f"LeadWarm ref {lead.lead_id}"


def is_our_note(text: Any, lead: LeadSnapshot) -> bool:
    """Whether a note's text or HTML carries :func:`note_marker` for ``lead``."""
    if not isinstance(text, str):
        return False
    marker = note_marker(lead)
    return marker in text or html.escape(marker) in text


def note_text(lead: LeadSnapshot, *, limit: int = _MAX_NOTE) -> str:
    """The note every adapter writes, as plain text: score and reasons, answers (slots), summary,
    source, transcript link; at most ``limit`` characters."""
    return "\n".join(_lines(lead))[:limit]


def note_html(lead: LeadSnapshot) -> str:
    """:func:`note_text` as HTML (HubSpot's ``hs_note_body`` and Pipedrive's ``content`` are HTML):
    every value escaped, one ``<br>`` per line, the transcript as a link."""
    parts = []
    for line in _lines(lead):
        if lead.transcript_url and line == f"Transcript: {lead.transcript_url}":
            url = html.escape(lead.transcript_url, quote=True)
            parts.append(f'Transcript: <a href="{url}">{url}</a>')
        else:
            parts.append(html.escape(line).replace("  ", "&nbsp;&nbsp;"))
    return "<br>".join(parts)[:_MAX_NOTE]


def mapped_fields(lead: LeadSnapshot, provider: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(contact properties, deal properties)``: the tenant's mapping already applied
    (``lead.fields``), else :func:`crm_sync.mapping.default_mapping` for ``provider``."""
    fields: Mapping[str, Any] = lead.fields
    if not fields:
        fields = apply_mapping(lead, default_mapping(provider), provider=provider).values
    return split_targets(fields)


SALESFORCE_NOTE_LIMIT = _MAX_SALESFORCE_NOTE


async def upsert_each(
    upsert: Callable[[LeadSnapshot], Awaitable[RemoteIds]],
    leads: Sequence[LeadSnapshot],
    *,
    concurrency: int,
) -> list[RemoteIds | IntegrationError]:
    """``upsert_leads`` for a CRM without batch endpoints (GoHighLevel, Pipedrive): each lead's
    ``upsert`` (its own requests, in order) runs as its own task, at most ``concurrency`` at once,
    all paced by the one rate limit of the connection's client. The answer has one entry per lead,
    in order: its :class:`RemoteIds`, or the :class:`IntegrationError` that stopped it.

    When no lead got through and one failed with a retryable error (429, 5xx, network, a spent
    allowance), that error is raised as it is: the whole batch failed as one call would (an
    outage), so the caller backs off and counts it once against the breaker instead of retrying
    every lead alone. An error that is not an :class:`IntegrationError` (a bug) is raised once
    every lead's task has ended. Raises :class:`ValueError` for ``concurrency`` < 1."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)

    async def one(lead: LeadSnapshot) -> RemoteIds | Exception:
        async with gate:
            try:
                return await upsert(lead)
            except Exception as exc:  # sorted below, once every lead has ended
                return exc

    answers = await asyncio.gather(*(one(lead) for lead in leads))
    results: list[RemoteIds | IntegrationError] = []
    for answer in answers:
        if isinstance(answer, Exception) and not isinstance(answer, IntegrationError):
            raise answer
        results.append(answer)
    if results and not any(isinstance(r, RemoteIds) for r in results):
        for result in results:
            if isinstance(result, ProviderError) and result.retryable:
                raise result
    return results
