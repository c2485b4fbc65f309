"""Inbound CRM webhooks: route to the tenant's integration, verify, log, deduplicate, act.

Routing (``crm_webhook_routes`` under the system tenant): ``{platform}:{account id}`` for vendors
that sign (HubSpot's portal id, GoHighLevel's location id: written when the integration's settings
are saved), ``token:{sha256(token)}`` for the URL-token form
``/webhooks/integrations/{platform}/{token}`` (a 256-bit random token; finding its hash is the
check). Verification: :func:`crm_sync.webhooks.verify_hubspot_v3` with the tenant's HubSpot app
secret, :func:`crm_sync.webhooks.verify_gohighlevel` (the documented RSA key, plus the Ed25519
keys in the integration's ``options["ghl_ed25519_public_keys"]``). A request that fails any of this
gets 401 and one log line, nothing stored.

Effects, for integrations whose direction is ``from`` or ``both``, each event once (its
``dedupe_id`` is created in ``crm_webhook_events``; a second delivery is logged ``duplicate``):

* ``contact.updated``: the lead's email and phone are updated from the CRM, and its cadence stops (a
  person works the contact in the CRM now), unless the event is the echo of our own write (within
  ``ECHO_WINDOW_S`` after our last sync of that contact);
* ``contact.deleted``: the cadence stops and the lead's stage becomes ``closed``;
* ``contact.do_not_contact``: every address of the lead is opted out in the ledger
  (``runtime.optouts``), its consent set to false, and its cadence stops;
* ``contact.created`` (when ``start_on_create``) and ``contact.tag_added`` (a tag in ``start_tags``,
  or any tag when that list is empty): a lead and a conversation are created and the playbook's
  ``start`` job queued, as ``POST /api/v1/leads`` does; a lead with an open conversation is left be.

"Stopping the cadence" closes the lead's open conversations (outcome ``crm:<kind>``) and removes
their pending timer jobs, so no follow-up is sent.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.conversations.lookup import OPEN_STATUSES, address_field, new_lead
from app.conversations.records import Conversation, ConversationEvent, Lead
from app.core.logs import get_logger
from app.crm.records import Integration, Link, link_id
from app.jobs.queue import job_doc_id
from app.store import SYSTEM_TENANT, DocumentExistsError, Transaction, where
from app.store import collections as col
from crm_sync.webhooks import (
    PARSERS,
    CrmEvent,
    WebhookParseError,
    WebhookVerificationError,
    verify_gohighlevel,
    verify_hubspot_v3,
)

if TYPE_CHECKING:
    from app.composition import Runtime
    from app.crm.sync import CrmSync

__all__ = ["ECHO_WINDOW_S", "InboundResult", "WebhookRoute", "handle_webhook", "route_id", "token_hash"]

log = get_logger("leadwarm.crm.webhooks")

ECHO_WINDOW_S = 120.0
_SIGNED = ("hubspot", "gohighlevel")


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a webhook URL token: what the store keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


def route_id(platform: str, account_id: str) -> str:
    """Routing document id of a signed vendor's account."""
    return f"{platform}:{account_id}".replace("/", "%2F")


@dataclass(frozen=True, slots=True)
class WebhookRoute:
    """Where an inbound webhook goes."""

    tenant_id: str
    connection_id: str


@dataclass(frozen=True, slots=True)
class InboundResult:
    """What :func:`handle_webhook` did: ``status`` ``accepted`` or ``unauthorized`` (401), and
    per event ``{"kind", "dedupe_id", "result"}``."""

    status: str
    events: list[dict[str, Any]]
    detail: str = ""


def _account_of(platform: str, body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    first = document[0] if isinstance(document, list) and document else document
    if not isinstance(first, Mapping):
        return None
    value = first.get("portalId") if platform == "hubspot" else first.get("locationId")
    return str(value)[:100] if value not in (None, "") else None


async def _route(runtime: Runtime, doc_id: str) -> WebhookRoute | None:
    doc = await runtime.store.get(SYSTEM_TENANT, col.CRM_WEBHOOK_ROUTES, doc_id)
    if doc is None:
        return None
    return WebhookRoute(str(doc["tenant_id"]), str(doc["connection_id"]))


async def _verify_signed(
    runtime: Runtime,
    sync: CrmSync,
    platform: str,
    route: WebhookRoute,
    *,
    method: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
) -> None:
    now = runtime.clock.now()
    if platform == "hubspot":
        services = runtime.connections
        if services is None:
            raise WebhookVerificationError("no credential layer to read the HubSpot app secret from")
        try:
            app = await services.oauth.app_credentials(route.tenant_id, "hubspot")
        except Exception:
            raise WebhookVerificationError("no HubSpot app secret for this tenant") from None
        verify_hubspot_v3(
            method=method,
            uri=url,
            body=body,
            headers=headers,
            client_secret=app.client_secret.reveal(),
            now=now,
        )
    else:
        integration = await sync.integration(route.tenant_id, route.connection_id)
        keys = integration.options.get("ghl_ed25519_public_keys") or []
        verify_gohighlevel(
            body=body, headers=headers, now=now, ed25519_public_keys=[str(k) for k in keys][:5]
        )


async def handle_webhook(
    runtime: Runtime,
    sync: CrmSync,
    *,
    platform: str,
    token: str | None,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
) -> InboundResult:
    """Route, verify, log and apply one inbound webhook (see the module docstring). Raises
    nothing for bad input: an unknown platform, route, token or signature is ``unauthorized``;
    an unreadable verified body is ``accepted`` with ``detail`` (the vendor must not retry it)."""
    if platform not in PARSERS:
        return InboundResult("unauthorized", [], f"unknown platform {platform[:40]!r}")
    try:
        if token is not None:
            if len(token) > 512:
                raise WebhookVerificationError("token too long")
            route = await _route(runtime, f"token:{token_hash(token)}")
            if route is None:
                raise WebhookVerificationError("webhook token does not match")
        else:
            if platform not in _SIGNED:
                raise WebhookVerificationError(f"{platform} signs nothing: use the URL with a token")
            account = _account_of(platform, body) if len(body) <= 1_000_000 else None
            route = await _route(runtime, route_id(platform, account)) if account else None
            if route is None:
                raise WebhookVerificationError("no integration for this account")
            await _verify_signed(
                runtime, sync, platform, route, method=method, url=url, body=body, headers=headers
            )
    except WebhookVerificationError as exc:
        log.warning("crm.webhook_rejected", platform=platform[:40], reason=str(exc))
        return InboundResult("unauthorized", [], str(exc))
    now = runtime.clock.now()
    log_id = f"{int(now * 1000):015d}-{uuid.uuid4().hex[:8]}"
    try:
        events = PARSERS[platform](body)
        detail = ""
    except WebhookParseError as exc:
        events, detail = [], str(exc)
    integration = await sync.integration(route.tenant_id, route.connection_id)
    results = []
    for event in events:
        if not integration.inbound():
            result = "ignored: direction"
        else:
            result = await _apply_once(runtime, sync, route, integration, event)
        results.append(
            {"kind": event.kind, "dedupe_id": event.dedupe_id, "remote_id": event.remote_id, "result": result}
        )
    statuses = {r["result"] for r in results}
    status = "duplicate" if statuses == {"duplicate"} else ("invalid" if detail else "accepted")
    await runtime.store.set(
        route.tenant_id,
        col.CRM_WEBHOOK_LOGS,
        log_id,
        {
            "id": log_id,
            "platform": platform,
            "connection_id": route.connection_id,
            "status": status,
            "error": detail or None,
            "events": results[:100],
            "body_bytes": len(body),
            "at": now,
        },
    )
    return InboundResult("accepted", results, detail)


async def _apply_once(
    runtime: Runtime, sync: CrmSync, route: WebhookRoute, integration: Integration, event: CrmEvent
) -> str:
    now = runtime.clock.now()
    dedupe = event.dedupe_id.replace("/", "%2F")[:400]

    async def claim(tx: Transaction) -> None:
        tx.create(
            col.CRM_WEBHOOK_EVENTS, dedupe, {"kind": event.kind, "remote_id": event.remote_id, "at": now}
        )

    try:
        await runtime.store.run_transaction(route.tenant_id, claim)
    except DocumentExistsError:
        return "duplicate"
    try:
        return await _apply(runtime, route, integration, event)
    except Exception as exc:
        # let the vendor's retry run it again
        await runtime.store.delete(route.tenant_id, col.CRM_WEBHOOK_EVENTS, dedupe)
        log.exception("crm.webhook_apply_failed", tenant=route.tenant_id, kind=event.kind)
        return f"error: {type(exc).__name__}"


async def _find_lead(
    runtime: Runtime, route: WebhookRoute, event: CrmEvent
) -> tuple[Lead | None, Link | None]:
    docs = await runtime.store.query(
        route.tenant_id,
        col.CRM_LINKS,
        filters=[
            where("connection_id", "==", route.connection_id),
            where("remote_contact", "==", event.remote_id),
        ],
        limit=1,
    )
    link = Link.from_doc(docs[0].data) if docs else None
    lead: Lead | None = None
    if link is not None:
        data = await runtime.store.get(route.tenant_id, col.LEADS, link.lead_id)
        lead = Lead.from_doc(data) if data else None
    if lead is None and event.email:
        lead = await runtime.conversations.find_lead(route.tenant_id, "email", event.email.strip().lower())
    if lead is None and event.phone:
        lead = await runtime.conversations.find_lead(route.tenant_id, "whatsapp", event.phone.strip())
    return lead, link


async def stop_cadence(runtime: Runtime, tenant_id: str, lead_id: str, *, outcome: str) -> int:
    """Close the lead's open conversations and drop their pending timers; returns how many closed."""
    docs = await runtime.store.query(
        tenant_id, col.CONVERSATIONS, filters=[where("lead_id", "==", lead_id)], limit=50
    )
    closed = 0
    now = runtime.clock.now()
    for doc in docs:
        if doc.data.get("status") not in OPEN_STATUSES:
            continue
        conv_id = doc.id

        async def fn(tx: Transaction, conv_id: str = conv_id) -> bool:
            data = await tx.get(col.CONVERSATIONS, conv_id)
            timer = await tx.get(col.JOBS, job_doc_id("timer", conv_id))
            if data is None or data.get("status") not in OPEN_STATUSES:
                return False
            conv = Conversation.from_doc(data)
            conv.status = "closed"
            conv.outcome = outcome
            conv.timer = None
            conv.version += 1
            conv.updated_at = now
            stopped = ConversationEvent(at=now, type="crm.stopped", detail={"outcome": outcome})
            conv.events = [*conv.events, stopped][-Conversation.EVENTS_KEPT :]
            tx.set(col.CONVERSATIONS, conv_id, conv.to_doc())
            if timer is not None and timer.get("status") == "pending":
                tx.delete(col.JOBS, job_doc_id("timer", conv_id))
            return True

        if await runtime.store.run_transaction(tenant_id, fn):
            closed += 1
    return closed


async def _apply(runtime: Runtime, route: WebhookRoute, integration: Integration, event: CrmEvent) -> str:
    tenant_id = route.tenant_id
    if event.kind in ("contact.created", "contact.tag_added"):
        return await _start(runtime, route, integration, event)
    lead, link = await _find_lead(runtime, route, event)
    if lead is None and event.kind == "contact.do_not_contact":
        # nobody we talk to yet: the ledger still keeps them from ever being messaged
        addresses = [("email", event.email.strip().lower())] if event.email else []
        if event.phone and event.phone.startswith("+"):
            addresses += [("whatsapp", event.phone.strip()), ("sms", event.phone.strip())]
        for channel, address in addresses:
            await runtime.optouts.record(
                tenant_id, channel=channel, address=address, source=f"crm:{event.provider}"
            )
        return f"do_not_contact, no lead ({len(addresses)} address(es) opted out)"
    if lead is None:
        return "no lead"
    outcome = f"crm:{event.kind.split('.', 1)[1]}"
    update: dict[str, Any] = {"updated_at": runtime.clock.now()}
    if event.kind == "contact.updated":
        if event.email and "@" in event.email:
            update["email"] = event.email.strip().lower()[:320]
        if event.phone and event.phone.startswith("+"):
            update["phone"] = event.phone.strip()[:20]
        echo = (
            link is not None
            and link.synced_at is not None
            and event.occurred_at is not None
            and event.occurred_at <= link.synced_at + ECHO_WINDOW_S
        )
        await runtime.store.set(tenant_id, col.LEADS, lead.id, update, merge=True)
        if echo:
            return "updated (echo of our sync)"
        closed = await stop_cadence(runtime, tenant_id, lead.id, outcome=outcome)
        return f"updated, {closed} conversation(s) stopped"
    if event.kind == "contact.do_not_contact":
        for channel, address in lead.addresses().items():
            await runtime.optouts.record(
                tenant_id, channel=channel, address=address, source=f"crm:{event.provider}"
            )
        update["consent"] = {**lead.consent, **{ch: False for ch in lead.addresses()}}
    elif event.kind == "contact.deleted":
        update["stage"] = "closed"
    await runtime.store.set(tenant_id, col.LEADS, lead.id, update, merge=True)
    closed = await stop_cadence(runtime, tenant_id, lead.id, outcome=outcome)
    return f"{event.kind.split('.', 1)[1]}, {closed} conversation(s) stopped"


async def _start(runtime: Runtime, route: WebhookRoute, integration: Integration, event: CrmEvent) -> str:
    if event.kind == "contact.created" and not integration.start_on_create:
        return "ignored: start_on_create is off"
    if (
        event.kind == "contact.tag_added"
        and integration.start_tags
        and not set(event.tags) & set(integration.start_tags)
    ):
        return "ignored: tag not in start_tags"
    tenant_id = route.tenant_id
    profile = await runtime.tenants.profile(tenant_id)
    channel = integration.start_channel or ("whatsapp" if event.phone else "email")
    if channel not in runtime.channels.names():
        return f"ignored: no channel {channel}"
    field = address_field(channel)
    raw = event.phone if field == "phone" else event.email if field == "email" else None
    if not raw:
        return f"ignored: the contact has no {field}"
    address = raw.strip().lower() if field == "email" else raw.strip()
    try:
        playbook = (
            await runtime.playbooks.get(tenant_id, integration.start_playbook_id)
            if integration.start_playbook_id
            else await runtime.playbooks.choose(profile, None, trigger="lead_created")
        )
    except Exception as exc:
        return f"ignored: {type(exc).__name__}"
    now = runtime.clock.now()
    existing = await runtime.conversations.find_lead(tenant_id, channel, address)
    if existing is not None:
        current = await runtime.conversations.latest_conversation(tenant_id, existing.id)
        if current is not None and current.status in OPEN_STATUSES:
            return "ignored: the lead has an open conversation"
    lead = existing or new_lead(tenant_id, channel, address, now=now, source=f"crm:{event.provider}")
    changes = event.changes
    keys = ("firstname", "lastname", "firstName", "lastName", "first_name", "last_name")
    name = " ".join(str(changes.get(k)) for k in keys if changes.get(k))
    if name and not lead.name:
        lead.name = name[:200]
    if event.email and not lead.email:
        lead.email = event.email.strip().lower()[:320]
    if event.phone and not lead.phone and event.phone.startswith("+"):
        lead.phone = event.phone.strip()[:20]
    conv = Conversation(
        id=f"cv_{uuid.uuid4().hex[:20]}",
        tenant_id=tenant_id,
        lead_id=lead.id,
        channel=channel,
        address=address,
        playbook_id=playbook.id,
        playbook_version=playbook.version,
        created_at=now,
        updated_at=now,
    )
    link = Link(
        id=link_id(route.connection_id, lead.id),
        connection_id=route.connection_id,
        lead_id=lead.id,
        provider=event.provider,
        remote_ids={"contact": event.remote_id},
        remote_contact=event.remote_id,
    )

    async def fn(tx: Transaction) -> None:
        job = await runtime.jobs.read(tx, "start", conv.id)
        current_link = await tx.get(col.CRM_LINKS, link.id)
        tx.set(col.LEADS, lead.id, lead.to_doc())
        tx.set(col.CONVERSATIONS, conv.id, conv.to_doc())
        if current_link is None:
            tx.set(col.CRM_LINKS, link.id, link.to_doc())
        runtime.jobs.write(tx, job, kind="start", key=conv.id, due_at=now)

    await runtime.store.run_transaction(tenant_id, fn)
    runtime.jobs.notify()
    return f"started {conv.id}"
