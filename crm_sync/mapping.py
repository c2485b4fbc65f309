"""Field mappings: which lead field or slot goes to which CRM property, and how it is transformed.

A mapping is a list of :class:`FieldMapping` rows (the seed's ``integration_field_mappings``, per
tenant and integration). :func:`apply_mapping` turns a :class:`~crm_sync.base.LeadSnapshot` into
``{crm property: value}`` (what the app stores in ``LeadSnapshot.fields``); :func:`check_mapping`
compares a mapping with the CRM's own property list, which :func:`fetch_properties` reads where the
vendor's API offers one (HubSpot ``GET /crm/v3/properties/{object}``, Salesforce ``describe``,
Pipedrive ``personFields``/``dealFields``, GoHighLevel ``/locations/{id}/customFields``).

Targets: a plain name is a property of the contact (HubSpot contact, Salesforce Lead or Contact,
Pipedrive person, GoHighLevel contact); ``deal.NAME`` is a property of the deal (HubSpot deal,
Salesforce Opportunity, Pipedrive deal, GoHighLevel opportunity). Pipedrive custom fields are named
by their 40-character ``field_code``; GoHighLevel custom fields by ``custom.<field id>``.

Sources: ``lead_id``, ``name``, ``first_name``, ``last_name``, ``email``, ``phone``, ``language``,
``stage``, ``score``, ``score_reasons``, ``summary``, ``transcript_url``, ``tags``, ``slots.<id>``
(a playbook answer) and ``source.<key>`` (``channel``, ``campaign``, ``referral``, ``utm``...;
``source.utm.campaign`` reads one level deeper).

The defaults (:func:`default_mapping`) write only properties every account has, so a new connection
syncs with no configuration; everything else (slots, reasons, summary, transcript link) always
reaches the CRM in the note each adapter writes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import phonenumbers

from crm_sync.base import ApiClient, IntegrationError, LeadSnapshot, ProviderError, gohighlevel_location

__all__ = [
    "DEAL_PREFIX",
    "TRANSFORMS",
    "FieldMapping",
    "MappedFields",
    "MappingError",
    "MappingProblem",
    "RemoteProperty",
    "apply_mapping",
    "check_mapping",
    "default_mapping",
    "fetch_properties",
    "split_targets",
]

DEAL_PREFIX = "deal."
#: Transforms a :class:`FieldMapping` may name.
TRANSFORMS = frozenset(
    {"text", "e164", "picklist", "date", "datetime", "bool", "number", "reasons", "join", "raw"}
)
_MAX_TEXT = 65_000  # HubSpot's limit for a text property value; Salesforce long text is 131,072


class MappingError(IntegrationError):
    """A mapping row is invalid (unknown transform, empty target), or a value cannot be transformed
    (with ``strict=True``). The message names the source and target, never the value."""


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """One row: ``source`` (see the module docstring) -> ``target`` (a CRM property; ``deal.`` prefix
    for the deal) through ``transform`` (one of :data:`TRANSFORMS`). ``values`` maps our values
    (choice ids, ``"true"``/``"false"``) to the CRM's picklist values for ``picklist``;
    ``default_region`` is the ISO country used by ``e164`` for numbers written without a ``+``."""

    source: str
    target: str
    transform: str = "text"
    values: Mapping[str, str] = field(default_factory=dict)
    default_region: str | None = None

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORMS:
            raise MappingError(f"unknown transform {self.transform!r} for {self.source} -> {self.target}")
        if not self.source.strip() or not self.target.strip() or self.target == DEAL_PREFIX:
            raise MappingError(f"empty source or target in mapping {self.source!r} -> {self.target!r}")


@dataclass(frozen=True, slots=True)
class MappingProblem:
    """Something wrong with one row: ``code`` is ``unknown_property``, ``read_only``,
    ``unknown_option`` or ``bad_value``; ``target`` the CRM property; ``detail`` a sentence."""

    target: str
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class MappedFields:
    """The result of :func:`apply_mapping`: ``values`` (CRM property -> value, absent sources left
    out) and the rows whose value could not be transformed (``problems``, code ``bad_value``)."""

    values: dict[str, Any]
    problems: list[MappingProblem]


@dataclass(frozen=True, slots=True)
class RemoteProperty:
    """A property as the CRM describes it: ``name`` (what a mapping targets), ``label``, ``type``
    (the vendor's word), ``options`` (picklist values accepted, empty when free), ``writable``."""

    name: str
    label: str = ""
    type: str = "string"
    options: tuple[str, ...] = ()
    writable: bool = True


# --------------------------------------------------------------------------- defaults

_COMMON_CONTACT = {
    "hubspot": [
        FieldMapping("first_name", "firstname"),
        FieldMapping("last_name", "lastname"),
        FieldMapping("email", "email"),
        FieldMapping("phone", "phone", "e164"),
        FieldMapping("summary", "deal.description"),
    ],
    "salesforce": [
        FieldMapping("first_name", "FirstName"),
        FieldMapping("last_name", "LastName"),
        FieldMapping("email", "Email"),
        FieldMapping("phone", "Phone", "e164"),
        FieldMapping("summary", "Description"),
    ],
    "pipedrive": [],
    "gohighlevel": [
        FieldMapping("first_name", "firstName"),
        FieldMapping("last_name", "lastName"),
        FieldMapping("name", "name"),
        FieldMapping("email", "email"),
        FieldMapping("phone", "phone", "e164"),
    ],
    "webhook": [],
}


def default_mapping(provider: str) -> list[FieldMapping]:
    """The mapping a new connection uses: standard properties only (present in every account), so
    the first sync needs no configuration. Pipedrive's and the webhook's are empty (the adapter
    writes name, emails and phones itself). Raises :class:`MappingError` for an unknown provider."""
    try:
        return list(_COMMON_CONTACT[provider])
    except KeyError:
        raise MappingError(f"no default mapping for provider {provider!r}") from None


# --------------------------------------------------------------------------- apply


def _resolve(lead: LeadSnapshot, source: str) -> Any:
    if source.startswith("slots."):
        return lead.slots.get(source[len("slots.") :])
    if source.startswith("source."):
        value: Any = lead.source
        for part in source[len("source.") :].split(".", 2):
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value
    if source in {
        "lead_id",
        "name",
        "first_name",
        "last_name",
        "email",
        "phone",
        "language",
        "stage",
        "score",
        "summary",
        "transcript_url",
    }:
        return getattr(lead, source)
    if source == "score_reasons":
        return list(lead.score_reasons)
    if source == "tags":
        return list(lead.tags)
    raise MappingError(f"unknown mapping source {source!r}")


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a date")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    if len(text) > 40:
        raise ValueError("too long for a date")
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "1", "oui", "y", "si", "sí"}:
        return True
    if text in {"false", "no", "0", "non", "n"}:
        return False
    raise ValueError("not a yes/no value")


def _reasons_text(value: Any) -> str:
    lines = []
    for item in value or ():
        if isinstance(item, Mapping):
            points = item.get("points", 0)
            lines.append(f"{points:+} {item.get('reason', '')}".strip())
        else:
            lines.append(str(item))
    return "\n".join(lines)


def _transform(row: FieldMapping, value: Any, provider: str) -> Any:
    kind = row.transform
    if kind == "raw":
        return value
    if kind == "text":
        if isinstance(value, list | tuple):
            return "; ".join(str(v) for v in value)[:_MAX_TEXT]
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)[:_MAX_TEXT]
    if kind == "e164":
        text = str(value)
        if len(text) > 40:
            raise ValueError("too long for a phone number")
        number = phonenumbers.parse(text, None if text.startswith("+") else row.default_region)
        if not phonenumbers.is_valid_number(number):
            raise ValueError("not a valid phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if kind == "picklist":
        key = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if row.values:
            if key not in row.values:
                raise ValueError("no picklist value for this answer")
            return row.values[key]
        return key
    if kind == "date":
        return _to_datetime(value).date().isoformat()
    if kind == "datetime":
        moment = _to_datetime(value).astimezone(UTC)
        if provider == "pipedrive":
            return moment.strftime("%Y-%m-%d %H:%M:%S")
        if provider == "salesforce":
            return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "bool":
        flag = _bool(value)
        # HubSpot's booleancheckbox properties take the strings "true"/"false".
        return ("true" if flag else "false") if provider == "hubspot" else flag
    if kind == "number":
        if isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        amount = float(value)
        if not math.isfinite(amount):
            raise ValueError("not a finite number")
        return int(amount) if amount.is_integer() else amount
    if kind == "reasons":
        return _reasons_text(value)[:_MAX_TEXT]
    if kind == "join":
        items = value if isinstance(value, list | tuple) else [value]
        # HubSpot multi-select (enumeration checkbox) values are joined with ";".
        return ";".join(str(v) for v in items)
    raise MappingError(f"unknown transform {kind!r}")  # pragma: no cover - checked in __post_init__


def apply_mapping(
    lead: LeadSnapshot, mapping: Sequence[FieldMapping], *, provider: str, strict: bool = False
) -> MappedFields:
    """Apply ``mapping`` to ``lead`` for ``provider`` (which picks the CRM's date and boolean
    formats). Absent values (``None``, ``""``) are left out. A value that cannot be transformed is
    left out and reported in ``problems``, or raises :class:`MappingError` when ``strict``."""
    values: dict[str, Any] = {}
    problems: list[MappingProblem] = []
    for row in mapping:
        raw = _resolve(lead, row.source)
        if raw is None or raw == "" or raw == []:
            continue
        try:
            values[row.target] = _transform(row, raw, provider)
        except (ValueError, TypeError, OverflowError, phonenumbers.NumberParseException) as exc:
            detail = f"{row.source} -> {row.target}: {row.transform} failed ({type(exc).__name__})"
            if strict:
                raise MappingError(detail) from None
            problems.append(MappingProblem(row.target, "bad_value", detail))
    return MappedFields(values, problems)


def split_targets(fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split mapped fields into ``(contact properties, deal properties)`` (the ``deal.`` prefix
    removed)."""
    contact: dict[str, Any] = {}
    deal: dict[str, Any] = {}
    for key, value in fields.items():
        if key.startswith(DEAL_PREFIX):
            deal[key[len(DEAL_PREFIX) :]] = value
        else:
            contact[key] = value
    return contact, deal


# --------------------------------------------------------------------------- check


def check_mapping(
    mapping: Sequence[FieldMapping],
    *,
    contact_properties: Sequence[RemoteProperty],
    deal_properties: Sequence[RemoteProperty] = (),
) -> list[MappingProblem]:
    """Compare ``mapping`` with the CRM's property lists (from :func:`fetch_properties`): a target
    that does not exist (``unknown_property``), cannot be written (``read_only``), or a picklist
    row whose values the CRM does not offer (``unknown_option``). An empty list means it fits."""
    contacts = {p.name: p for p in contact_properties}
    deals = {p.name: p for p in deal_properties}
    problems: list[MappingProblem] = []
    for row in mapping:
        if row.target.startswith(DEAL_PREFIX):
            table, name = deals, row.target[len(DEAL_PREFIX) :]
        else:
            table, name = contacts, row.target
        prop = table.get(name)
        if prop is None:
            problems.append(
                MappingProblem(row.target, "unknown_property", f"the CRM has no property {name!r}")
            )
            continue
        if not prop.writable:
            problems.append(MappingProblem(row.target, "read_only", f"{name!r} cannot be written"))
        if row.transform == "picklist" and prop.options:
            missing = sorted(set(row.values.values()) - set(prop.options))
            if missing:
                problems.append(
                    MappingProblem(
                        row.target, "unknown_option", f"{name!r} does not offer {', '.join(missing[:10])}"
                    )
                )
    return problems


# --------------------------------------------------------------------------- fetch

#: GoHighLevel's standard contact properties (``UpsertContactDto`` in apps/contacts.json); its
#: custom-fields API lists only custom fields.
GHL_CONTACT_PROPERTIES = [
    "firstName",
    "lastName",
    "name",
    "email",
    "phone",
    "address1",
    "city",
    "state",
    "postalCode",
    "website",
    "timezone",
    "dnd",
    "tags",
    "source",
    "dateOfBirth",
    "country",
    "companyName",
    "assignedTo",
    "gender",
]
#: GoHighLevel's standard opportunity properties (``CreateDto`` in apps/opportunities.json).
GHL_OPPORTUNITY_PROPERTIES = [
    "name",
    "status",
    "monetaryValue",
    "assignedTo",
    "pipelineId",
    "pipelineStageId",
]


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ProviderError(
            "the CRM answered with a body that is not JSON", status=response.status_code
        ) from None


async def fetch_properties(
    client: ApiClient, *, object_type: str = "contact", api_version: str | None = None
) -> list[RemoteProperty]:
    """The CRM's writable properties for ``object_type`` (``contact`` or ``deal``; for Salesforce
    also ``lead``), read from the vendor's API in one request (Pipedrive: up to 500 fields):

    - HubSpot: ``GET /crm/v3/properties/{contacts|deals}`` (``results[].name``, ``options[].value``,
      ``modificationMetadata.readOnlyValue``);
    - Salesforce: ``GET /services/data/{version}/sobjects/{Lead|Contact|Opportunity}/describe``
      (``fields[].name``, ``picklistValues[].value``, ``updateable``/``createable``); ``api_version``
      defaults to ``client.account["api_version"]``;
    - Pipedrive: ``GET /api/v2/personFields`` or ``/api/v2/dealFields`` (``data[].field_code``;
      options by label);
    - GoHighLevel: the standard properties plus ``GET /locations/{locationId}/customFields`` (custom
      fields as ``custom.<id>``, options from ``picklistOptions``).

    Raises :class:`ProviderError`/:class:`~crm_sync.base.AuthError` (from the client) or
    :class:`MappingError` for a provider without a property list.
    """
    provider = client.provider
    if provider == "hubspot":
        plural = "deals" if object_type == "deal" else "contacts"
        body = _json(await client.request("GET", f"/crm/v3/properties/{plural}"))
        return [
            RemoteProperty(
                name=str(p.get("name")),
                label=str(p.get("label", "")),
                type=str(p.get("type", "string")),
                options=tuple(str(o.get("value")) for o in p.get("options") or ()),
                writable=not (p.get("modificationMetadata") or {}).get("readOnlyValue", False),
            )
            for p in body.get("results", ())
        ]
    if provider == "salesforce":
        version = api_version or str(client.account.get("api_version") or "v60.0")
        sobject = {"deal": "Opportunity", "lead": "Lead"}.get(object_type, "Contact")
        body = _json(await client.request("GET", f"/services/data/{version}/sobjects/{sobject}/describe"))
        return [
            RemoteProperty(
                name=str(f.get("name")),
                label=str(f.get("label", "")),
                type=str(f.get("type", "string")),
                options=tuple(
                    str(v.get("value")) for v in f.get("picklistValues") or () if v.get("active", True)
                ),
                writable=bool(f.get("updateable") or f.get("createable")),
            )
            for f in body.get("fields", ())
        ]
    if provider == "pipedrive":
        kind = "dealFields" if object_type == "deal" else "personFields"
        body = _json(await client.request("GET", f"/api/v2/{kind}", params={"limit": 500}))
        return [
            RemoteProperty(
                name=str(f.get("field_code")),
                label=str(f.get("field_name", "")),
                type=str(f.get("field_type", "varchar")),
                options=tuple(str(o.get("label")) for o in f.get("options") or ()),
            )
            for f in body.get("data") or ()
        ]
    if provider == "gohighlevel":
        location = gohighlevel_location(client.account) or ""
        if not location:
            raise MappingError("the GoHighLevel connection has no locationId")
        model = "opportunity" if object_type == "deal" else "contact"
        body = _json(
            await client.request("GET", f"/locations/{location}/customFields", params={"model": model})
        )
        standard = GHL_OPPORTUNITY_PROPERTIES if model == "opportunity" else GHL_CONTACT_PROPERTIES
        props = [RemoteProperty(name=name) for name in standard]
        props += [
            RemoteProperty(
                name=f"custom.{f.get('id')}",
                label=str(f.get("name", "")),
                type=str(f.get("dataType", "TEXT")),
                options=tuple(str(o) for o in f.get("picklistOptions") or ()),
            )
            for f in body.get("customFields") or ()
            if not f.get("model") or f.get("model") == model
        ]
        return props
    raise MappingError(f"{provider!r} offers no property list")
