"""The integration layer's contracts: the errors, the authorised API client, CRM adapters and
calendar providers.

Everything an adapter needs from a connection (credentials, refresh, rate limits, retries) lives
behind :class:`ApiClient`, so an adapter holds only the vendor's mapping logic: one module per
CRM (``crm_sync/crm/<provider>.py``) and one per calendar (``crm_sync/calendars/<provider>.py``).

Times are floats, seconds since the Unix epoch (UTC), unless a field says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import httpx

from kernel.errors import LeadWarmError

__all__ = [
    "ApiClient",
    "Attendee",
    "AuthError",
    "Booking",
    "CalendarProvider",
    "CrmAdapter",
    "IntegrationError",
    "LeadSnapshot",
    "ProviderError",
    "RemoteIds",
    "Slot",
    "gohighlevel_location",
]


class IntegrationError(LeadWarmError):
    """Base error of the integration layer. Messages never contain tokens or secrets."""


class AuthError(IntegrationError):
    """The connection's credentials no longer work (``invalid_grant``, revoked, 401 after a
    refresh): the connection is marked ``needs_reauth`` and a person must connect it again."""


class ProviderError(IntegrationError):
    """The provider answered with an error. ``status`` is the HTTP status (0 for a network error);
    ``retryable`` says whether trying again later can succeed (429, 5xx, network); ``retry_after_s``
    is what the provider asked for (``Retry-After`` or a rate-limit reset header), if anything;
    ``body`` is the provider's answer, cut to 2,000 characters (never a credential); ``quota``
    says the account's allowance is spent (the catalog's ``quota_errors``, e.g. Salesforce's
    daily API allowance): retryable after ``retry_after_s``, and no sign that the provider is
    unwell."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        retryable: bool = False,
        retry_after_s: float | None = None,
        body: str = "",
        quota: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.body = body[:2000]
        self.quota = quota


@runtime_checkable
class ApiClient(Protocol):
    """An HTTP client bound to one connection of one tenant.

    ``request`` resolves ``path`` against the connection's API base URL (a full ``https://`` URL is
    used as is), adds the credentials and the provider's version header, waits for the connection's
    rate-limit bucket, refreshes an expiring token first (once, across processes), and retries the
    provider's transient errors (honouring ``Retry-After``). It returns the final response when its
    status is below 400, and raises :class:`AuthError` or :class:`ProviderError` otherwise.
    ``account`` is what the connection knows of the connected account (GoHighLevel ``locationId``,
    Salesforce ``instance_url``, Pipedrive ``api_domain``, HubSpot ``portal_id``...).
    """

    provider: str
    account: Mapping[str, Any]

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one authorised request; see the class docstring."""
        ...


def gohighlevel_location(account: Mapping[str, Any]) -> str | None:
    """The GoHighLevel location (sub-account) id of a connection's ``account``: ``location_id``,
    the key the catalog stores the token response's ``locationId`` under
    (``crm_sync/catalog.yaml``, ``account_fields``), else a raw ``locationId`` (a connection made
    by hand or before the catalog mapped it); ``None`` when neither is set."""
    value = account.get("location_id") or account.get("locationId")
    return str(value) if value else None


# --------------------------------------------------------------------------- CRM


@dataclass(frozen=True, slots=True)
class LeadSnapshot:
    """What a CRM receives about one lead: built by the app from the lead, its conversation and
    its score history, so an adapter never reads the store.

    ``phone`` is E.164; ``slots`` are the playbook's answers (already normalised: bool, float, ISO
    8601 strings, choice ids); ``score`` is 0-100 with ``score_reasons`` (``{"points", "reason",
    "evidence"}``); ``source`` carries ``channel``, ``campaign``, ``referral`` (an ad click) and
    ``utm`` when known; ``transcript_url`` links to the conversation; ``remote_ids`` are the ids a
    previous sync stored (so the next sync updates rather than creates); ``fields`` are the
    tenant's field mapping already applied (CRM property -> value).
    """

    lead_id: str
    tenant_id: str
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    language: str | None = None
    stage: str = "new"
    score: int = 0
    score_reasons: Sequence[Mapping[str, Any]] = ()
    slots: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    source: Mapping[str, Any] = field(default_factory=dict)
    transcript_url: str | None = None
    tags: Sequence[str] = ()
    remote_ids: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    """The integration's settings (pipeline and stage ids, workflow id, Lead vs Contact...)."""


@dataclass(frozen=True, slots=True)
class RemoteIds:
    """Ids the CRM gave: ``contact`` (contact, person or Lead), ``deal`` (opportunity or deal),
    ``note``, and any other the adapter keeps in ``extra``; ``created`` says whether the contact
    was new."""

    contact: str
    deal: str | None = None
    note: str | None = None
    created: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, str]:
        """The ids as stored on the lead (``{"contact": ..., "deal": ...}``, absent ones left out)."""
        out = {"contact": self.contact, **dict(self.extra)}
        if self.deal:
            out["deal"] = self.deal
        if self.note:
            out["note"] = self.note
        return out


class CrmAdapter(Protocol):
    """One CRM's mapping logic over an :class:`ApiClient` (auth, limits, retries are not its job)."""

    provider: str

    async def upsert_lead(self, lead: LeadSnapshot) -> RemoteIds:
        """Create or update the contact, its deal and a note; idempotent for the same lead
        (``lead.remote_ids``, then a search by email, then by phone). Raises :class:`IntegrationError`."""
        ...

    async def record_activity(self, lead: LeadSnapshot, *, kind: str, text: str) -> str | None:
        """Attach an activity (a note, a meeting booked, a handoff) to the lead's contact; returns
        the activity's remote id when the CRM gives one."""
        ...

    async def test_connection(self) -> Mapping[str, Any]:
        """One cheap authenticated call; returns what it learned of the account (name, id)."""
        ...


# --------------------------------------------------------------------------- calendars


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable interval, ``start``/``end`` in epoch seconds (UTC); ``calendar_id`` names the
    salesperson's calendar it belongs to when the provider has several."""

    start: float
    end: float
    calendar_id: str | None = None


@dataclass(frozen=True, slots=True)
class Attendee:
    """The lead as a meeting attendee; ``timezone`` is an IANA name."""

    name: str | None
    email: str | None
    phone: str | None = None
    timezone: str = "UTC"
    language: str = "en"


@dataclass(frozen=True, slots=True)
class Booking:
    """A meeting on a calendar. ``id`` is the provider's (event, booking or appointment id);
    ``status`` is ``confirmed``, ``pending`` (a scheduling link sent, not yet picked) or
    ``cancelled``; ``url`` is a link the lead may open (a meeting or scheduling link)."""

    id: str
    provider: str
    start: float
    end: float
    status: str = "confirmed"
    calendar_id: str | None = None
    url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class CalendarProvider(Protocol):
    """A calendar behind one port: free slots, book, cancel."""

    provider: str

    async def free_slots(self, start: float, end: float, *, duration_s: int) -> list[Slot]:
        """Free slots of ``duration_s`` seconds between ``start`` and ``end`` (epoch seconds)."""
        ...

    async def book(self, slot: Slot, attendee: Attendee, *, title: str, description: str = "") -> Booking:
        """Book ``slot``. Raises :class:`SlotTakenError` when it is no longer free, or
        :class:`IntegrationError`; never leaves a half-made booking."""
        ...

    async def cancel(self, booking: Booking, *, reason: str = "") -> None:
        """Cancel ``booking`` (idempotent)."""
        ...


class SlotTakenError(IntegrationError):
    """The slot was taken between the offer and the booking."""


__all__ += ["SlotTakenError"]
