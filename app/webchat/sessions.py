"""Web-chat sessions as a product: which tenant a page or widget speaks for, which sites may embed
it (the tenant's ``webchat_allowed_origins``), its branding, and opening a session's conversation
as soon as the visitor opens the chat (the playbook's first message, without waiting for them).
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

from app.authoring.routing import RouteContext
from app.composition import Runtime
from app.conversations.lookup import new_lead
from app.conversations.records import Conversation
from app.core import i18n
from app.store import Transaction
from app.store import collections as col
from app.tenancy.records import TenantProfile
from app.webchat.limits import LeadCapReachedError, lead_count_id, session_claim_id

__all__ = [
    "MAX_TYPING_WAIT_S",
    "TYPING_GRACE_S",
    "admit_new_lead",
    "allowed_origin",
    "allowed_origin_key",
    "branding",
    "ensure_started",
    "own_origin",
    "still_typing",
]

#: While the visitor types, their pending messages wait this long after the last keystroke signal.
TYPING_GRACE_S = 3.0
#: ...but never more than this after the first of them (seconds).
MAX_TYPING_WAIT_S = 12.0


def own_origin(runtime: Runtime, host: str | None, scheme: str) -> set[str]:
    """The service's own origins: ``PUBLIC_BASE_URL``'s and the request's host."""
    parts = urlsplit(runtime.settings.public_base_url)
    out = {f"{parts.scheme}://{parts.netloc}".lower()}
    if host:
        out.add(f"{scheme}://{host}".lower())
    return out


def allowed_origin(profile: TenantProfile, origin: str | None, own: set[str]) -> bool:
    """Whether a page at ``origin`` may use the tenant's chat: no origin (not a browser's
    cross-site request), the service itself, or one of the tenant's allowed origins."""
    if not origin:
        return True
    origin = origin.rstrip("/").lower()
    return origin in own or origin in profile.webchat_allowed_origins


def branding(profile: TenantProfile, language: str | None) -> dict[str, Any]:
    """What the chat shows before the first message: the tenant's name, colours, logo, greeting
    (the tenant's, else the bot's welcome) in ``language`` (else the tenant's default)."""
    lang = language if language in profile.languages else profile.default_language
    greeting = profile.greeting.get(lang) or i18n.text("chat_welcome", lang, company_name=profile.name)
    return {
        "tenant": profile.id,
        "name": profile.name,
        "brand_color": profile.brand_color,
        "brand_text_color": profile.brand_text_color,
        "logo_url": profile.logo_url,
        "greeting": greeting,
        "language": lang,
    }


async def ensure_started(runtime: Runtime, tenant_id: str, session: str, language: str | None) -> bool:
    """Open the session's conversation if it has none: the lead (source ``webchat``) and a
    conversation on the playbook routing chooses for ``lead_created`` on ``webchat``, started at once.
    Idempotent (ids derive from the session); ``True`` when it started one."""
    existing = await runtime.conversations.find_lead(tenant_id, "webchat", session)
    if existing is not None and await runtime.conversations.latest_conversation(
        tenant_id, existing.id, "webchat"
    ):
        return False
    profile = await runtime.tenants.profile(tenant_id)
    lang = language if language in profile.languages else None
    playbook = await runtime.playbooks.choose(
        profile,
        lang,
        trigger="lead_created",
        context=RouteContext(trigger="lead_created", channel="webchat", language=lang, source="webchat"),
    )
    now = runtime.clock.now()
    lead = existing or new_lead(tenant_id, "webchat", session, now=now, source="webchat")
    if lang and not lead.language:
        lead.language = lang
    digest = hashlib.sha256(f"{tenant_id}:webchat:{session}".encode()).hexdigest()[:20]
    conv = Conversation(
        id=f"cv_wc{digest}",
        tenant_id=tenant_id,
        lead_id=lead.id,
        channel="webchat",
        address=session,
        playbook_id=playbook.id,
        playbook_version=playbook.version,
        created_at=now,
        updated_at=now,
    )

    async def fn(tx: Transaction) -> bool:
        if await tx.get(col.CONVERSATIONS, conv.id) is not None:
            return False
        job = await runtime.jobs.read(tx, "start", conv.id)
        if await tx.get(col.LEADS, lead.id) is None:
            tx.set(col.LEADS, lead.id, lead.to_doc())
        tx.set(col.CONVERSATIONS, conv.id, conv.to_doc())
        runtime.jobs.write(tx, job, kind="start", key=conv.id, due_at=now)
        return True

    started = bool(await runtime.store.run_transaction(tenant_id, fn))
    if started:
        runtime.jobs.notify()
    return started


async def still_typing(runtime: Runtime, tenant_id: str, session: str) -> bool:
    """The visitor is typing: their messages not yet answered wait for the rest of the burst
    (``TYPING_GRACE_S`` more, at most ``MAX_TYPING_WAIT_S`` after the burst's first message), so
    the web chat coalesces a burst without a fixed wait. ``True`` when a pending reply was delayed."""
    key = f"webchat:{session}"
    now = runtime.clock.now()

    async def fn(tx: Transaction) -> bool:
        job = await runtime.jobs.read(tx, "inbound", key)
        if job is None or job.get("status") != "pending":
            return False
        first = job.get("enqueued_at") or job.get("created_at") or now  # created_at: older jobs
        due = min(now + TYPING_GRACE_S, float(first) + MAX_TYPING_WAIT_S)
        if due <= float(job.get("due_at") or 0.0):
            return False
        runtime.jobs.write(tx, job, kind="inbound", key=key, due_at=due, due="latest")
        return True

    return bool(await runtime.store.run_transaction(tenant_id, fn))


async def admit_new_lead(
    runtime: Runtime, tenant_id: str, session: str, origin: str | None, *, cap_per_hour: int
) -> None:
    """Count ``session`` against its embedding site's hourly share of new leads (``cap_per_hour`` per
    tenant and origin, :mod:`app.webchat.limits`) before it may create a lead: a session that has a
    lead, or was counted already, passes free. Raises :class:`LeadCapReachedError` past the cap."""
    if await runtime.conversations.find_lead(tenant_id, "webchat", session) is not None:
        return
    now = runtime.clock.now()
    claim_id = session_claim_id(session)
    count_id = lead_count_id(allowed_origin_key(origin), now)

    async def fn(tx: Transaction) -> bool:
        if await tx.get(col.WEBCHAT_LEAD_COUNTS, claim_id) is not None:
            return True
        counter = await tx.get(col.WEBCHAT_LEAD_COUNTS, count_id)
        count = int((counter or {}).get("count", 0))
        if count >= cap_per_hour:
            return False
        tx.set(col.WEBCHAT_LEAD_COUNTS, count_id, {"count": count + 1, "updated_at": now})
        tx.set(col.WEBCHAT_LEAD_COUNTS, claim_id, {"counted_in": count_id, "created_at": now})
        return True

    if not await runtime.store.run_transaction(tenant_id, fn):
        raise LeadCapReachedError(f"the site's {cap_per_hour} new chats of this hour are used")


def allowed_origin_key(origin: str | None) -> str:
    """The origin as counted: lower case, without a trailing slash (``""`` for none)."""
    return (origin or "").rstrip("/").lower()
