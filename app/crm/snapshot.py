"""The lead as a CRM receives it: a :class:`crm_sync.base.LeadSnapshot` built from the lead, its
latest conversation (events: score reasons; inbox: the ad referral) and the integration's settings.

The summary is a template over the answers (no model call). The lead record's own ``email`` and
``phone`` are filled here from the playbook's slots of kind ``email`` / ``phone`` when empty
(:func:`fill_contact_fields`, called by the CRM trigger for every lead a turn qualified, handed off
or closed, whether or not the tenant has a CRM).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import phonenumbers

from app.authoring.repository import PlaybookNotFoundError, PlaybookRepository
from app.conversations.records import Conversation, Lead
from app.crm.records import Integration
from app.store import Store, Transaction, where
from app.store import collections as col
from crm_sync.base import LeadSnapshot
from crm_sync.mapping import FieldMapping, MappingError, apply_mapping

__all__ = ["build_snapshot", "contact_from_slots", "fill_contact_fields", "idempotency_key", "summarize"]

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
_SUMMARY_MAX = 1500


async def _slot_kinds(playbooks: PlaybookRepository, conv: Conversation | None) -> dict[str, str]:
    if conv is None or not conv.playbook_id:
        return {}
    try:
        playbook = await playbooks.get(conv.tenant_id, conv.playbook_id, conv.playbook_version)
    except PlaybookNotFoundError:
        return {}
    return playbook.slot_kinds()


def contact_from_slots(slots: Mapping[str, Any], kinds: Mapping[str, str]) -> dict[str, str]:
    """``{"email": ..., "phone": ...}`` from the first valid answer of each kind (phone as E.164)."""
    out: dict[str, str] = {}
    for slot, kind in kinds.items():
        value = slots.get(slot)
        if not isinstance(value, str) or len(value) > 320:
            continue
        if kind == "email" and "email" not in out and _EMAIL.match(value.strip()):
            out["email"] = value.strip().lower()
        elif kind == "phone" and "phone" not in out:
            try:
                number = phonenumbers.parse(value, None if value.startswith("+") else "FR")
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                out["phone"] = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return out


async def fill_contact_fields(
    store: Store, playbooks: PlaybookRepository, lead: Lead, conv: Conversation | None
) -> Lead:
    """Write the lead's ``email`` / ``phone`` from its answers when they are empty (one merge in a
    transaction, never overwriting a value set meanwhile); returns the lead as it now is."""
    found = contact_from_slots(lead.slots, await _slot_kinds(playbooks, conv))
    missing = {k: v for k, v in found.items() if not getattr(lead, k)}
    if not missing:
        return lead

    async def fn(tx: Transaction) -> dict[str, Any] | None:
        current = await tx.get(col.LEADS, lead.id)
        if current is None:
            return None
        update = {k: v for k, v in missing.items() if not current.get(k)}
        if update:
            tx.set(col.LEADS, lead.id, update, merge=True)
        return {**current, **update}

    doc = await store.run_transaction(lead.tenant_id, fn)
    return Lead.from_doc(doc) if doc else lead


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def summarize(lead: Lead, conv: Conversation | None, reasons: list[dict[str, Any]]) -> str:
    """A few sentences over the answers, the score and its reasons (offline, deterministic)."""
    parts = [
        f"{lead.name or 'The lead'} talked with LeadWarm on {conv.channel if conv else 'an unknown channel'}."
    ]
    if lead.slots:
        answers = "; ".join(f"{k.replace('_', ' ')}: {_text(v)}" for k, v in lead.slots.items())
        parts.append(f"Answers: {answers}.")
    parts.append(f"Score {lead.score}/100, stage {lead.stage}.")
    if reasons:
        parts.append(
            "Why: " + "; ".join(f"{r.get('reason')} ({int(r.get('points') or 0):+d})" for r in reasons) + "."
        )
    if conv is not None and conv.outcome:
        parts.append(f"Outcome: {conv.outcome}.")
    text = " ".join(parts)
    return text if len(text) <= _SUMMARY_MAX else text[: _SUMMARY_MAX - 1] + "…"


async def _referral(store: Store, tenant_id: str, conv: Conversation) -> dict[str, Any] | None:
    docs = await store.query(
        tenant_id, col.INBOX, filters=[where("conversation_id", "==", conv.id)], limit=20
    )
    for doc in docs:
        metadata = (doc.data.get("payload") or {}).get("metadata") or {}
        referral = metadata.get("referral") if isinstance(metadata, dict) else None
        if isinstance(referral, dict):
            return referral
    return None


async def build_snapshot(
    *,
    store: Store,
    playbooks: PlaybookRepository,
    lead: Lead,
    conv: Conversation | None,
    integration: Integration,
    provider: str,
    public_base_url: str,
    remote_ids: Mapping[str, str],
) -> LeadSnapshot:
    """The snapshot of ``lead`` for one CRM connection.

    ``transcript_url`` is ``{public_base_url}/api/v1/conversations/{id}``; ``fields`` is the
    integration's mapping applied (empty when it has none: the adapter applies its defaults).
    Raises :class:`crm_sync.mapping.MappingError` for a malformed stored mapping row.
    """
    reasons = [
        {
            "points": e.detail.get("points", 0),
            "reason": e.detail.get("reason", ""),
            "evidence": e.detail.get("evidence"),
        }
        for e in (conv.events if conv else [])
        if e.type == "score_changed"
    ]
    reasons = [{k: v for k, v in r.items() if v is not None} for r in reasons]
    first, _, last = (lead.name or "").strip().partition(" ")
    source: dict[str, Any] = {"channel": conv.channel if conv else None, "origin": lead.source}
    if conv is not None:
        referral = await _referral(store, lead.tenant_id, conv)
        if referral:
            source["referral"] = referral
            if referral.get("headline") or referral.get("source_id"):
                source["campaign"] = referral.get("headline") or referral.get("source_id")
    snapshot = LeadSnapshot(
        lead_id=lead.id,
        tenant_id=lead.tenant_id,
        name=lead.name,
        first_name=first or None,
        last_name=last or None,
        email=lead.email,
        phone=lead.phone,
        language=lead.language,
        stage=lead.stage,
        score=lead.score,
        score_reasons=tuple(reasons),
        slots=dict(lead.slots),
        summary=summarize(lead, conv, reasons),
        source={k: v for k, v in source.items() if v is not None},
        transcript_url=f"{public_base_url.rstrip('/')}/api/v1/conversations/{conv.id}" if conv else None,
        tags=("leadwarm", lead.stage),
        remote_ids=dict(remote_ids),
        options=dict(integration.options),
    )
    if integration.mapping:
        try:
            rows = [FieldMapping(**row) for row in integration.mapping]
        except TypeError as exc:
            raise MappingError(f"malformed mapping row ({exc})") from None
        fields = apply_mapping(snapshot, rows, provider=provider).values
        snapshot = dataclasses.replace(snapshot, fields=fields)
    return snapshot


def _as_kwargs(snapshot: LeadSnapshot) -> dict[str, Any]:
    return {f.name: getattr(snapshot, f.name) for f in dataclasses.fields(snapshot)}


def snapshot_payload(snapshot: LeadSnapshot) -> dict[str, Any]:
    """The snapshot as JSON-ready data (for the idempotency key and the sync log)."""
    return json.loads(json.dumps(_as_kwargs(snapshot), default=list))


def idempotency_key(connection_id: str, snapshot: LeadSnapshot) -> str:
    """``{connection}:{lead}:{hash}``, the hash over what the CRM would receive (remote ids left
    out): the same content is written once, a change is written again."""
    content = {k: v for k, v in snapshot_payload(snapshot).items() if k != "remote_ids"}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return f"{connection_id}:{snapshot.lead_id}:{digest}"


__all__ += ["snapshot_payload"]
