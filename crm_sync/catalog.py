"""The provider catalog: ``catalog.yaml`` read and validated by a pydantic schema.

One entry per provider says how to connect it (auth modes, OAuth endpoints, scopes, PKCE, client
authentication, refresh-token rotation, token-response quirks), how to call it (base URL, version
headers, where the credential goes), how to learn who was connected (identity call), its
documented rate limits (with the vendor page they come from) and which adapter or hook code
serves it. :func:`check_catalog` lists entries naming an adapter or hook with no code; the app
runs it at start-up with its adapter registries.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from crm_sync.base import IntegrationError

__all__ = [
    "DEFAULT_CATALOG_PATH",
    "ApiAuth",
    "ApiSpec",
    "AuthMode",
    "Catalog",
    "CatalogError",
    "CredentialField",
    "IdentitySpec",
    "OAuth2Spec",
    "Provider",
    "QuotaError",
    "RateLimit",
    "RateLimitHeaders",
    "TokenResponseSpec",
    "check_catalog",
    "load_catalog",
]

DEFAULT_CATALOG_PATH = Path(__file__).with_name("catalog.yaml")

AuthMode = Literal["oauth2", "api_key", "basic"]
Category = Literal["crm", "calendar", "channel", "webhook"]
AdapterKind = Literal["crm", "calendar", "channel"]


class CatalogError(IntegrationError):
    """The catalog is malformed, names unknown code, or a provider is not in it."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ValueError(f"{value!r} must be an https:// URL (or http on loopback)")
    return value


class OAuth2Spec(_Model):
    """OAuth 2.0 authorization-code settings (RFC 6749 section 4.1; PKCE RFC 7636; revocation RFC 7009).

    ``client_auth`` is how the token endpoint takes the app's credentials (RFC 6749 section
    2.3.1: ``client_secret_post`` in the body, ``client_secret_basic`` in HTTP Basic);
    ``revoke_style`` ``rfc7009`` (POST ``token``) or ``delete_path`` (``DELETE`` on
    ``revoke_url`` with ``{token}`` filled in: HubSpot); ``token_params`` are sent with every
    token request (GoHighLevel's ``user_type``); ``authorization_params`` are added to the
    authorize URL (Google's ``access_type=offline``).
    """

    authorization_url: str
    token_url: str
    revoke_url: str | None = None
    revoke_style: Literal["rfc7009", "delete_path"] = "rfc7009"
    default_scopes: tuple[str, ...] = ()
    scope_separator: str = " "
    pkce: bool = False
    client_auth: Literal["client_secret_post", "client_secret_basic"] = "client_secret_post"
    refresh_token_rotates: bool = False
    authorization_params: dict[str, str] = Field(default_factory=dict)
    token_params: dict[str, str] = Field(default_factory=dict)

    _check_urls = field_validator("authorization_url", "token_url", "revoke_url")(_url)


class TokenResponseSpec(_Model):
    """Quirks of the token response: ``account_fields`` maps a response key to an account key
    (GoHighLevel ``locationId`` -> ``location_id``); ``base_url_field`` names the key holding the
    account's API host (Salesforce ``instance_url``, Pipedrive ``api_domain``);
    ``default_expires_in_s`` is assumed when ``expires_in`` is missing (Salesforce)."""

    account_fields: dict[str, str] = Field(default_factory=dict)
    base_url_field: str | None = None
    default_expires_in_s: int | None = Field(default=None, gt=0)


class IdentitySpec(_Model):
    """The cheap authenticated call that names the connected account (also the default ``test``).

    ``path`` may hold ``{placeholders}`` filled from the connection's account and settings;
    ``fields`` maps an account key to a dotted path in the JSON answer."""

    method: Literal["GET", "POST"] = "GET"
    path: str
    params: dict[str, str] = Field(default_factory=dict)
    fields: dict[str, str] = Field(default_factory=dict)


class ApiAuth(_Model):
    """Where a credential goes: ``bearer`` (``Authorization: Bearer``), ``header`` (``name:
    value``), ``query`` (``?name=value``) or ``basic`` (HTTP Basic with ``username_field`` and
    ``field`` as the password). ``field`` names the credential (secret or setting)."""

    type: Literal["bearer", "header", "query", "basic"]
    field: str
    name: str | None = None
    username_field: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> ApiAuth:
        if self.type in ("header", "query") and not self.name:
            raise ValueError(f"auth type {self.type} needs a name")
        if self.type == "basic" and not self.username_field:
            raise ValueError("auth type basic needs username_field")
        return self


class ApiSpec(_Model):
    """How to call the provider: ``base_url`` (may hold ``{placeholders}`` from the connection's
    settings or account; a connection's ``settings.base_url`` or a token-response base URL
    overrides it), ``headers`` sent on every call (GoHighLevel's ``Version``), ``version`` (a
    path version adapters use), and ``auth`` per auth mode."""

    base_url: str
    headers: dict[str, str] = Field(default_factory=dict)
    version: str | None = None
    auth: dict[AuthMode, ApiAuth] = Field(default_factory=dict)


class RateLimit(_Model):
    """A documented limit: ``requests`` per ``per_s`` seconds for ``scope``; ``doc`` the vendor page."""

    requests: int = Field(gt=0)
    per_s: float = Field(gt=0)
    scope: str
    doc: str


class RateLimitHeaders(_Model):
    """Response headers that feed the rate gate: ``limit`` (requests per window),
    ``remaining``, ``interval_ms`` (the window, milliseconds) and ``reset_s`` (seconds until the
    window resets)."""

    limit: str | None = None
    remaining: str | None = None
    interval_ms: str | None = None
    reset_s: str | None = None


class QuotaError(_Model):
    """An answer that means "the account's allowance is spent", not "this request is wrong":
    HTTP ``status`` whose body contains ``code`` (e.g. Salesforce's ``403 REQUEST_LIMIT_EXCEEDED``,
    the 24-hour API allowance). The client raises it as a retryable
    :class:`~crm_sync.base.ProviderError` with ``quota=True`` and ``retry_after_s`` seconds (the
    vendor names no reset time: the wait before asking again, unless the answer carries a
    ``Retry-After``); ``doc`` the vendor page."""

    status: int = Field(ge=400, le=599)
    code: str = Field(min_length=1)
    retry_after_s: float = Field(gt=0)
    doc: str


class CredentialField(_Model):
    """A field a person enters for an ``api_key`` or ``basic`` connection; ``secret`` fields are
    sealed in the vault, the others kept as settings."""

    name: str
    secret: bool = True
    required: bool = True
    description: str = ""


class Provider(_Model):
    """One catalog entry (see the module docstring). ``name`` is its key in the catalog."""

    name: str = ""
    display_name: str
    categories: tuple[Category, ...]
    auth_modes: tuple[AuthMode, ...] = Field(min_length=1)
    env_prefix: str | None = None
    docs: str
    oauth2: OAuth2Spec | None = None
    token_response: TokenResponseSpec = TokenResponseSpec()
    identity: IdentitySpec | None = None
    api: ApiSpec | None = None
    credentials: dict[AuthMode, tuple[CredentialField, ...]] = Field(default_factory=dict)
    rate_limits: tuple[RateLimit, ...] = ()
    rate_limit_headers: RateLimitHeaders = RateLimitHeaders()
    quota_errors: tuple[QuotaError, ...] = ()
    test_hook: str | None = None
    adapters: dict[AdapterKind, str] = Field(default_factory=dict)
    hooks: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Provider:
        if ("oauth2" in self.auth_modes) != (self.oauth2 is not None):
            raise ValueError("an oauth2 section is required exactly when auth_modes lists oauth2")
        for mode in self.auth_modes:
            if mode != "oauth2" and not self.credentials.get(mode):
                raise ValueError(f"auth mode {mode} needs its credentials list")
            if self.api is not None and mode not in self.api.auth:
                raise ValueError(f"api.auth has no entry for auth mode {mode}")
        if self.identity is not None and self.api is None:
            raise ValueError("an identity call needs an api section")
        if self.identity is None and self.test_hook is None:
            raise ValueError("a provider needs an identity call or a test_hook to test it")
        return self

    @property
    def default_auth_mode(self) -> AuthMode:
        """The first listed auth mode."""
        return self.auth_modes[0]

    def credential_fields(self, mode: AuthMode) -> tuple[CredentialField, ...]:
        """The fields a person enters for ``mode`` (empty for oauth2)."""
        return self.credentials.get(mode, ())

    def public_view(self) -> dict[str, Any]:
        """What the integrations API shows of the entry (no app credentials live here anyway)."""
        return self.model_dump(mode="json")


class Catalog(_Model):
    """Every provider by name."""

    version: int = 1
    providers: dict[str, Provider]

    @model_validator(mode="after")
    def _names(self) -> Catalog:
        for key, entry in self.providers.items():
            if entry.name not in ("", key):
                raise ValueError(f"provider {key!r} carries the name {entry.name!r}")
            object.__setattr__(entry, "name", key)
        return self

    def get(self, provider: str) -> Provider:
        """The entry; raises :class:`CatalogError` when ``provider`` is unknown."""
        try:
            return self.providers[provider]
        except KeyError:
            raise CatalogError(f"unknown provider {provider!r}") from None

    def override(self, provider: str, **sections: Mapping[str, Any]) -> Catalog:
        """A copy whose ``provider`` entry has the given sections merged in (``oauth2={...}``,
        ``api={...}``); used to point a provider at a test server or a sandbox host. Validated
        like the file."""
        data = self.model_dump(mode="python")
        entry = data["providers"][self.get(provider).name]
        for section, values in sections.items():
            current = entry.get(section)
            entry[section] = {**current, **values} if isinstance(current, dict) else dict(values)
        try:
            return Catalog.model_validate(data)
        except ValidationError as exc:
            raise CatalogError(f"invalid override of {provider!r}: {exc}") from None


def load_catalog(path: Path | str | None = None) -> Catalog:
    """Read and validate a catalog file (default: the shipped ``catalog.yaml``, cached).

    Raises:
        CatalogError: unreadable YAML or a schema violation (the message names the entry and field).
    """
    if path is None:
        return _default_catalog()
    return _load(Path(path))


@functools.cache
def _default_catalog() -> Catalog:
    return _load(DEFAULT_CATALOG_PATH)


def _load(path: Path) -> Catalog:
    try:
        raw = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        raise CatalogError(f"cannot read the catalog {path}: {exc}") from None
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(f"invalid catalog {path}: {exc}") from None


def check_catalog(
    catalog: Catalog,
    *,
    adapters: Mapping[str, Collection[str]],
    hooks: Collection[str] | None = None,
) -> list[str]:
    """Entries naming code that does not exist: one message per problem (empty: all good).

    ``adapters`` maps an adapter kind (``crm``, ``calendar``, ``channel``) to the names its
    registry knows; ``hooks`` the known hook names (default: :data:`crm_sync.hooks.HOOKS`).
    """
    if hooks is None:
        from crm_sync.hooks import HOOKS

        hooks = HOOKS.keys()
    problems: list[str] = []
    for name, entry in catalog.providers.items():
        for kind, adapter in entry.adapters.items():
            if adapter not in adapters.get(kind, ()):
                problems.append(f"{name}: {kind} adapter {adapter!r} has no code")
        for hook in (*entry.hooks, *((entry.test_hook,) if entry.test_hook else ())):
            if hook not in hooks:
                problems.append(f"{name}: hook {hook!r} has no code")
    return problems
