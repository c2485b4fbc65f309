"""Records of the credential layer: a connection, a pending OAuth authorisation (state), and a
tenant's OAuth app registration. Secrets are held sealed (vault text) in ``secrets``; see
:mod:`crm_sync.vault`. Times are epoch seconds (UTC)."""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from crm_sync.vault import Secret, Vault, record_key

__all__ = [
    "CONNECTION_STATUSES",
    "Connection",
    "ConnectionStatus",
    "OAuthApp",
    "OAuthAppCredentials",
    "OAuthState",
    "new_connection_id",
]

ConnectionStatus = Literal["active", "needs_reauth", "disabled"]
CONNECTION_STATUSES: Final = ("active", "needs_reauth", "disabled")


def new_connection_id() -> str:
    """A fresh connection id, ``conn_`` and 16 hex characters."""
    return "conn_" + secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Connection:
    """One tenant's credentials for one provider.

    ``auth_mode`` is the catalog's (``oauth2``, ``api_key``, ``basic``, ``none``); ``status``
    ``active``, ``needs_reauth`` (a person must connect again) or ``disabled``; ``scopes`` what the
    provider granted; ``account`` what we know of the connected account (ids, name, email, GoHighLevel
    ``location_id``, Salesforce ``instance_url``...); ``settings`` non-secret configuration
    (``base_url`` override, SMTP host, phone-number id...); ``secrets`` field -> vault text
    (``access_token``, ``refresh_token``, ``api_key``, ``password``...); ``expires_at`` when the
    access token expires (``None``: unknown or never); ``version`` grows on every write.
    """

    id: str
    tenant_id: str
    provider: str
    auth_mode: str
    status: ConnectionStatus = "active"
    label: str = ""
    scopes: tuple[str, ...] = ()
    account: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    expires_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    refreshed_at: float | None = None
    version: int = 0

    def replace(self, **changes: Any) -> Connection:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def secret(self, vault: Vault, name: str) -> Secret | None:
        """Decrypt one secret field, or ``None`` when the connection has none by that name.
        Raises :class:`crm_sync.vault.DecryptionError` when it does not decrypt."""
        sealed = self.secrets.get(name)
        if sealed is None:
            return None
        return vault.decrypt(
            sealed, tenant_id=self.tenant_id, record_id=record_key("connection", self.id), field=name
        )

    def with_secrets(self, vault: Vault, values: dict[str, Secret | str | None]) -> Connection:
        """A copy whose named secrets are sealed anew (a ``None`` value removes the field)."""
        sealed = dict(self.secrets)
        for name, value in values.items():
            if value is None:
                sealed.pop(name, None)
            else:
                sealed[name] = vault.encrypt(
                    value, tenant_id=self.tenant_id, record_id=record_key("connection", self.id), field=name
                )
        return self.replace(secrets=sealed)

    def public_view(self) -> dict[str, Any]:
        """What an API may show: everything but the secrets, whose names alone are listed."""
        return {
            "id": self.id,
            "provider": self.provider,
            "auth_mode": self.auth_mode,
            "status": self.status,
            "label": self.label,
            "scopes": list(self.scopes),
            "account": dict(self.account),
            "settings": dict(self.settings),
            "secret_fields": sorted(self.secrets),
            "expires_at": self.expires_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "refreshed_at": self.refreshed_at,
        }

    def to_doc(self) -> dict[str, Any]:
        """The stored JSON document (secrets stay sealed)."""
        return {
            "id": self.id,
            "provider": self.provider,
            "auth_mode": self.auth_mode,
            "status": self.status,
            "label": self.label,
            "scopes": list(self.scopes),
            "account": dict(self.account),
            "settings": dict(self.settings),
            "secrets": dict(self.secrets),
            "expires_at": self.expires_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "refreshed_at": self.refreshed_at,
            "version": self.version,
        }

    @classmethod
    def from_doc(cls, tenant_id: str, doc: dict[str, Any]) -> Connection:
        """Rebuild from :meth:`to_doc`'s output."""
        status = doc.get("status", "active")
        return cls(
            id=str(doc["id"]),
            tenant_id=tenant_id,
            provider=str(doc["provider"]),
            auth_mode=str(doc.get("auth_mode", "oauth2")),
            status=status if status in CONNECTION_STATUSES else "disabled",
            label=str(doc.get("label") or ""),
            scopes=tuple(doc.get("scopes") or ()),
            account=dict(doc.get("account") or {}),
            settings=dict(doc.get("settings") or {}),
            secrets={str(k): str(v) for k, v in (doc.get("secrets") or {}).items()},
            expires_at=doc.get("expires_at"),
            created_at=float(doc.get("created_at") or 0.0),
            updated_at=float(doc.get("updated_at") or 0.0),
            refreshed_at=doc.get("refreshed_at"),
            version=int(doc.get("version") or 0),
        )

    def __repr__(self) -> str:
        return (
            f"Connection(id={self.id!r}, tenant_id={self.tenant_id!r}, provider={self.provider!r}, "
            f"status={self.status!r}, secret_fields={sorted(self.secrets)!r})"
        )


@dataclass(frozen=True, slots=True)
class OAuthState:
    """A pending authorisation: ``key`` is the SHA-256 (hex) of the ``state`` value sent to the
    provider (the value itself is never stored); ``secrets`` holds the sealed PKCE
    ``code_verifier``; ``used_at`` is set when the callback consumed it (single use)."""

    key: str
    tenant_id: str
    provider: str
    redirect_uri: str
    scopes: tuple[str, ...]
    created_at: float
    expires_at: float
    used_at: float | None = None
    connection_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        """The stored JSON document (kept in the system tenant: the callback knows no tenant)."""
        return {
            "key": self.key,
            "tenant_id": self.tenant_id,
            "provider": self.provider,
            "redirect_uri": self.redirect_uri,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "used_at": self.used_at,
            "connection_id": self.connection_id,
            "extra": dict(self.extra),
            "secrets": dict(self.secrets),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> OAuthState:
        """Rebuild from :meth:`to_doc`'s output."""
        return cls(
            key=str(doc["key"]),
            tenant_id=str(doc["tenant_id"]),
            provider=str(doc["provider"]),
            redirect_uri=str(doc["redirect_uri"]),
            scopes=tuple(doc.get("scopes") or ()),
            created_at=float(doc["created_at"]),
            expires_at=float(doc["expires_at"]),
            used_at=doc.get("used_at"),
            connection_id=doc.get("connection_id"),
            extra=dict(doc.get("extra") or {}),
            secrets={str(k): str(v) for k, v in (doc.get("secrets") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class OAuthAppCredentials:
    """An OAuth app's client id and secret (from env for the default tenant, or a registration)."""

    client_id: str
    client_secret: Secret

    def __repr__(self) -> str:
        return f"OAuthAppCredentials(client_id={self.client_id!r}, client_secret=Secret('**********'))"


@dataclass(frozen=True, slots=True)
class OAuthApp:
    """A tenant's own OAuth app registration for one provider; ``secrets["client_secret"]`` sealed
    under record ``oauth_app/<provider>``."""

    tenant_id: str
    provider: str
    client_id: str
    secrets: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0

    @classmethod
    def seal(
        cls,
        vault: Vault,
        *,
        tenant_id: str,
        provider: str,
        client_id: str,
        client_secret: Secret | str,
        at: float,
    ) -> OAuthApp:
        """A registration with its secret sealed."""
        sealed = vault.encrypt(
            client_secret,
            tenant_id=tenant_id,
            record_id=record_key("oauth_app", provider),
            field="client_secret",
        )
        return cls(tenant_id, provider, client_id, {"client_secret": sealed}, at)

    def credentials(self, vault: Vault) -> OAuthAppCredentials:
        """Decrypt into :class:`OAuthAppCredentials`. Raises :class:`DecryptionError`."""
        secret = vault.decrypt(
            self.secrets["client_secret"],
            tenant_id=self.tenant_id,
            record_id=record_key("oauth_app", self.provider),
            field="client_secret",
        )
        return OAuthAppCredentials(self.client_id, secret)

    def to_doc(self) -> dict[str, Any]:
        """The stored JSON document."""
        return {
            "id": self.provider,
            "provider": self.provider,
            "client_id": self.client_id,
            "secrets": dict(self.secrets),
            "created_at": self.created_at,
        }

    @classmethod
    def from_doc(cls, tenant_id: str, doc: dict[str, Any]) -> OAuthApp:
        """Rebuild from :meth:`to_doc`'s output."""
        return cls(
            tenant_id=tenant_id,
            provider=str(doc["provider"]),
            client_id=str(doc["client_id"]),
            secrets={str(k): str(v) for k, v in (doc.get("secrets") or {}).items()},
            created_at=float(doc.get("created_at") or 0.0),
        )
