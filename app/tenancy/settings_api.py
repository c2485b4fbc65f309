"""The tenant settings API: ``GET /api/v1/settings`` and ``PUT /api/v1/settings``.

``PUT`` takes any subset of the fields of :class:`SettingsUpdate` and changes only those; unknown
fields and invalid values are refused with 400 and ``errors: [{field, reason, code, params}]``
(``reason`` in English; ``code`` stable, see :func:`_errors`), and nothing is saved. Each change
is audited (a record in ``audit`` with the old and new values, and a log line).
``GET /api/v1/audit`` reads the audit trail.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from litestar import Request, Response, get, put
from litestar.di import NamedDependency
from litestar.params import Body, FromQuery
from litestar.status_codes import HTTP_400_BAD_REQUEST
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from app.composition import Runtime
from app.tenancy.audit import AuditLog, key_ref
from app.tenancy.records import TenantProfile
from channels.base import SendError
from channels.registry import CHANNELS
from channels.whatsapp import WhatsAppChannel

__all__ = ["ROUTES", "SettingsUpdate", "WhatsAppTemplate", "actor_of", "settings_view"]

_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
_LANG = re.compile(r"^[a-z]{2}$")
_COLOR = r"^#[0-9a-fA-F]{6}$"
_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
_TEMPLATE_LANG = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
#: Fields shown by GET and accepted by PUT, in the order shown.
FIELDS = (
    "name",
    "languages",
    "default_language",
    "timezone",
    "default_region",
    "quiet_hours_start",
    "quiet_hours_end",
    "quiet_hours_allow_direct_replies",
    "daily_cap_per_lead",
    "optout_all_channels",
    "burst_window_seconds",
    "fallback_channels",
    "whatsapp_templates",
    "help_text",
    "handoff_emails",
    "handoff_webhook_url",
    "handoff_response_minutes",
    "office_hours_start",
    "office_hours_end",
    "office_days",
    "brand_color",
    "brand_text_color",
    "logo_url",
    "greeting",
    "webchat_allowed_origins",
    "default_playbook",
    "llm_monthly_budget_usd",
)


def _refuse(code: str, message: str, **params: str | int) -> PydanticCustomError:
    """A validation error with a stable ``code`` (the error's ``type``) and its ``params`` (its
    ``ctx``); ``message`` is the English reason, with ``{param}`` placeholders."""
    return PydanticCustomError(code, message, params)


def _not_language(value: str) -> PydanticCustomError:
    return _refuse(
        "not_language_code",
        "'{value}' is not an ISO 639-1 language code (two lower-case letters)",
        value=value,
    )


def _url(value: str, *, field: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse("not_http_url", "{field} must be an http(s) URL", field=field)
    return value


def _languages_map(value: dict[str, str], *, max_chars: int) -> dict[str, str]:
    for language, text in value.items():
        if not _LANG.match(language):
            raise _not_language(language)
        if len(text) > max_chars:
            raise _refuse(
                "text_too_long",
                "the {language} text is longer than {max} characters",
                language=language,
                max=max_chars,
            )
    return value


class WhatsAppTemplate(BaseModel):
    """An approved WhatsApp template: its ``name`` and ``language`` as approved in WhatsApp
    Manager, and the body ``parameters`` in order (each may use ``{{ lead.first_name }}``-style
    placeholders)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    language: str = "en"
    parameters: list[Annotated[str, Field(max_length=1024)]] = Field(default_factory=list, max_length=20)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _TEMPLATE_NAME.match(value):
            raise _refuse("template_name", "a template name is lower-case letters, digits and underscores")
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not _TEMPLATE_LANG.match(value):
            raise _refuse("template_language", "a template language is like 'en', 'fr' or 'en_US'")
        return value


def _known_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise _refuse(
            "unknown_channel",
            "unknown channel '{value}'; one of {known}",
            value=channel,
            known=str(sorted(CHANNELS)),
        )


class SettingsUpdate(BaseModel):
    """Body of ``PUT /api/v1/settings``: every field optional; only those given change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    languages: list[str] | None = Field(default=None, min_length=1, max_length=20)
    default_language: str | None = None
    timezone: str | None = Field(default=None, description="IANA name, e.g. Europe/Paris")
    default_region: str | None = Field(default=None, description="ISO 3166 code, e.g. FR")
    quiet_hours_start: str | None = Field(default=None, pattern=_HHMM)
    quiet_hours_end: str | None = Field(default=None, pattern=_HHMM)
    quiet_hours_allow_direct_replies: bool | None = None
    daily_cap_per_lead: int | None = Field(default=None, ge=1, le=500)
    optout_all_channels: bool | None = Field(default=None, description="an opt-out stops every channel")
    burst_window_seconds: dict[str, Annotated[float, Field(ge=0, le=120)]] | None = None
    fallback_channels: list[str] | None = None
    whatsapp_templates: dict[str, WhatsAppTemplate] | None = Field(
        default=None, description='by message purpose ("default", "step", "followup", "handoff", ...)'
    )
    help_text: dict[str, str] | None = None
    handoff_emails: list[str] | None = Field(default=None, max_length=20)
    handoff_webhook_url: str | None = Field(default=None, max_length=2000)
    handoff_response_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    office_hours_start: str | None = Field(default=None, pattern=_HHMM)
    office_hours_end: str | None = Field(default=None, pattern=_HHMM)
    office_days: list[Annotated[int, Field(ge=1, le=7)]] | None = Field(default=None, max_length=7)
    brand_color: str | None = Field(default=None, pattern=_COLOR)
    brand_text_color: str | None = Field(default=None, pattern=_COLOR)
    logo_url: str | None = Field(default=None, max_length=2000)
    greeting: dict[str, str] | None = None
    webchat_allowed_origins: list[str] | None = Field(default=None, max_length=50)
    default_playbook: str | None = Field(default=None, max_length=200)
    llm_monthly_budget_usd: float | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        allow_inf_nan=False,
        description="USD per calendar month (UTC); null: LLM_MONTHLY_BUDGET_USD; 0: never call the model",
    )

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for language in value:
                if not _LANG.match(language):
                    raise _not_language(language)
            if len(set(value)) != len(value):
                raise _refuse("languages_repeated", "languages are listed twice")
        return value

    @field_validator("default_language")
    @classmethod
    def _default_language(cls, value: str | None) -> str | None:
        if value is not None and not _LANG.match(value):
            raise _not_language(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise _refuse(
                    "unknown_time_zone",
                    "unknown time zone '{value}' (an IANA name such as Europe/Paris)",
                    value=value,
                ) from None
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise _refuse(
                "not_region_code", "'{value}' is not a region code (ISO 3166, e.g. FR, US)", value=value
            )
        return value.upper() if value else value

    @field_validator("burst_window_seconds")
    @classmethod
    def _burst(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for channel in value or {}:
            _known_channel(channel)
        return value

    @field_validator("fallback_channels")
    @classmethod
    def _fallback(cls, value: list[str] | None) -> list[str] | None:
        for channel in value or []:
            _known_channel(channel)
        return value

    @field_validator("help_text")
    @classmethod
    def _help(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _languages_map(value, max_chars=1000) if value is not None else None

    @field_validator("greeting")
    @classmethod
    def _greeting(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _languages_map(value, max_chars=500) if value is not None else None

    @field_validator("handoff_emails")
    @classmethod
    def _emails(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = []
        for address in value:
            try:
                out.append(validate_email(address, check_deliverability=False).normalized)
            except EmailNotValidError as exc:
                raise _refuse("not_email", "'{value}': {why}", value=address, why=str(exc)) from None
        return out

    @field_validator("handoff_webhook_url")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return _url(value, field="handoff_webhook_url") if value else value

    @field_validator("logo_url")
    @classmethod
    def _logo(cls, value: str | None) -> str | None:
        return _url(value, field="logo_url") if value else value

    @field_validator("webchat_allowed_origins")
    @classmethod
    def _origins(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = []
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
                raise _refuse(
                    "not_origin", "'{value}' is not an origin (scheme://host[:port], no path)", value=origin
                )
            out.append(f"{parts.scheme}://{parts.netloc}".lower())
        return out

    @field_validator("office_days")
    @classmethod
    def _days(cls, value: list[int] | None) -> list[int] | None:
        return sorted(set(value)) if value is not None else None

    @model_validator(mode="after")
    def _office_hours(self) -> SettingsUpdate:
        start, end = self.office_hours_start, self.office_hours_end
        if start is not None and end is not None and start >= end:
            raise _refuse("office_hours_order", "office_hours_start must be before office_hours_end")
        return self


def settings_view(profile: TenantProfile) -> dict[str, Any]:
    """The settings as ``GET /api/v1/settings`` shows them (no secrets are kept in the profile)."""
    doc = profile.to_doc()
    return {"tenant_id": profile.id, **{name: doc.get(name) for name in FIELDS}}


def actor_of(request: Request[Any, Any, Any]) -> str:
    """The admin key that made the request, as the audit trail names it."""
    _, _, key = request.headers.get("authorization", "").partition(" ")
    return key_ref(key.strip()) if key.strip() else "unknown"


#: The patterns whose mismatch has a code of its own (pydantic says ``string_pattern_mismatch``).
_PATTERN_CODES = {_HHMM: "not_time", _COLOR: "not_color"}


def _problem(field: str, code: str, reason: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"field": field, "reason": reason, "code": code, "params": params or {}}


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Each error as ``{field, reason, code, params}``: ``reason`` the English text, ``code``
    stable (ours, or pydantic's error type such as ``greater_than_equal``), ``params`` its values."""
    out = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "body"
        reason = str(error["msg"]).removeprefix("Value error, ")
        code = error["type"]
        params = {
            k: v
            for k, v in (error.get("ctx") or {}).items()
            if isinstance(v, (str, int, float)) and k != "error"
        }
        if code == "extra_forbidden":
            reason, code = "unknown setting", "unknown_setting"
        elif code == "string_pattern_mismatch":
            code = _PATTERN_CODES.get(str(params.get("pattern")), code)
        out.append(_problem(field, code, reason, params))
    return out


def _bad(errors: list[dict[str, Any]]) -> Response[Any]:
    return Response(
        {"status_code": 400, "detail": "invalid settings", "errors": errors}, status_code=HTTP_400_BAD_REQUEST
    )


@get("/api/v1/settings", summary="The tenant's settings")
async def get_settings(runtime: NamedDependency[Runtime], tenant_id: NamedDependency[str]) -> dict[str, Any]:
    """Quiet hours, languages, region and time zone, burst windows, handoff, branding, opt-out
    scope, daily cap, WhatsApp templates."""
    return settings_view(await runtime.tenants.profile(tenant_id))


@put("/api/v1/settings", summary="Change some of the tenant's settings")
async def put_settings(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    audit: NamedDependency[AuditLog],
    data: Annotated[dict[str, Any], Body(description="any subset of the settings (SettingsUpdate)")],
) -> Response[Any]:
    """Validate and save the fields given; 400 with ``errors: [{field, reason}]`` otherwise."""
    try:
        update = SettingsUpdate.model_validate(data)
    except ValidationError as exc:
        return _bad(_errors(exc))
    changes = update.model_dump(mode="json", exclude_unset=True)
    profile = await runtime.tenants.profile(tenant_id)
    merged = profile.model_copy(update=changes)
    problems = []
    if merged.default_language not in merged.languages:
        problems.append(_problem("default_language", "language_not_listed", "must be one of languages"))
    if merged.office_hours_start >= merged.office_hours_end:
        problems.append(
            _problem("office_hours_start", "office_hours_order", "must be before office_hours_end")
        )
    wanted = merged.default_playbook if "default_playbook" in changes else None
    if wanted and wanted not in {p.id for p in await runtime.playbooks.list(tenant_id)}:
        problems.append(
            _problem("default_playbook", "no_such_playbook", "no such playbook", {"value": wanted})
        )
    if problems:
        return _bad(problems)
    before = profile.to_doc()
    changed = {k: {"from": before.get(k), "to": v} for k, v in changes.items() if before.get(k) != v}
    if changed:
        await runtime.tenants.save_profile(TenantProfile.model_validate(merged.to_doc()))
        await audit.record(
            tenant_id, "settings.updated", actor=actor_of(request), target="settings", detail=changed
        )
    return Response(settings_view(await runtime.tenants.profile(tenant_id)))


@get("/api/v1/audit", summary="The audit trail, newest first")
async def get_audit(
    tenant_id: NamedDependency[str],
    audit: NamedDependency[AuditLog],
    limit: FromQuery[int] = 100,
    action: FromQuery[str | None] = None,
) -> list[dict[str, Any]]:
    """Admin actions, handoffs: at most ``limit`` (<= 500), optionally one ``action`` or a prefix
    ending in ``.`` (``handoff.``)."""
    return [r.to_doc() for r in await audit.recent(tenant_id, limit=limit, action=action)]


_PLACEHOLDER = re.compile(r"\{\{\s*(\d{1,2})\s*\}\}")


def _template_view(template: dict[str, Any]) -> dict[str, Any]:
    body = next(
        (c for c in template.get("components") or [] if isinstance(c, dict) and c.get("type") == "BODY"), {}
    )
    text = str(body.get("text") or "")[:4096]
    return {
        "name": template.get("name"),
        "language": template.get("language"),
        "status": template.get("status"),
        "category": template.get("category"),
        "body": text,
        "body_parameters": len(set(_PLACEHOLDER.findall(text))),
    }


@get("/api/v1/settings/whatsapp-templates", summary="The tenant's WhatsApp templates, from Meta")
async def list_whatsapp_templates(
    runtime: NamedDependency[Runtime],
    tenant_id: NamedDependency[str],
    business_account_id: FromQuery[str | None] = None,
) -> Response[Any]:
    """The message templates of the tenant's WhatsApp Business Account (Meta's
    ``GET /{WABA-ID}/message_templates``) with how many body parameters each takes, to choose from
    for ``whatsapp_templates``; ``approved`` lists the names Meta lets us send. 422 when WhatsApp or
    the account id (``WHATSAPP_BUSINESS_ID`` or ``?business_account_id=``) is missing; 502 when
    Meta refuses."""
    channel = await runtime.channels.resolve(tenant_id, "whatsapp")
    waba = business_account_id or runtime.settings.whatsapp_business_id
    if not isinstance(channel, WhatsAppChannel):
        return Response({"error": "WhatsApp is not configured for this tenant"}, status_code=422)
    if not waba or not waba.isdigit():
        reason = (
            "no WhatsApp Business Account id (a number): set WHATSAPP_BUSINESS_ID or pass business_account_id"
        )
        return Response({"error": reason}, status_code=422)
    try:
        templates = await channel.message_templates(waba)
    except SendError as exc:
        return Response({"error": str(exc)}, status_code=502)
    views = [_template_view(t) for t in templates]
    approved = sorted({str(v["name"]) for v in views if v["status"] == "APPROVED"})
    return Response({"templates": views, "approved": approved})


ROUTES = (get_settings, put_settings, get_audit, list_whatsapp_templates)
