"""API-key and basic connections (Pipedrive API token, Twilio SID and token, a mailbox, a webhook
secret, WhatsApp Cloud API, Cal.com): created from the fields the catalog lists, secret fields
sealed in the vault, the others kept as settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_sync.audit import AuditEvent
from crm_sync.base import IntegrationError
from crm_sync.catalog import AuthMode, Catalog, Provider
from crm_sync.models import Connection, ConnectionStatus, new_connection_id
from crm_sync.repository import ConnectionRepository
from crm_sync.vault import Secret, Vault
from kernel.clock import Clock, SystemClock

__all__ = ["CredentialError", "CredentialService"]

_MAX_VALUE_CHARS = 4096


class CredentialError(IntegrationError):
    """A credential field is missing, unknown or too long (the message names the field only).
    ``code`` says which (``credential_required``, ``credential_unknown``, ``credential_too_long``)
    and ``params`` names the ``provider`` and the ``field`` (or ``fields``, comma-separated), so
    a page can say it in its reader's language."""

    def __init__(self, message: str, code: str, **params: str) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class CredentialService:
    """Create, update, enable/disable and delete non-OAuth connections; every change is audited.
    (OAuth connections are made by :class:`crm_sync.oauth.OAuthService`.)"""

    def __init__(
        self, *, catalog: Catalog, repository: ConnectionRepository, vault: Vault, clock: Clock | None = None
    ) -> None:
        self.catalog = catalog
        self.repository = repository
        self.vault = vault
        self.clock = clock or SystemClock()

    def _split(
        self, provider: Provider, mode: AuthMode, values: Mapping[str, str | Secret], *, partial: bool
    ) -> tuple[dict[str, Secret], dict[str, Any]]:
        fields = {f.name: f for f in provider.credential_fields(mode)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise CredentialError(
                f"{provider.name}: unknown field(s) {unknown}",
                "credential_unknown",
                provider=provider.name,
                fields=", ".join(name[:64] for name in unknown[:10]),
            )
        secrets: dict[str, Secret] = {}
        settings: dict[str, Any] = {}
        for name, spec in fields.items():
            raw = values.get(name)
            text = raw.reveal() if isinstance(raw, Secret) else (raw if raw is None else str(raw))
            if text is None or not text.strip():
                if spec.required and not partial:
                    raise CredentialError(
                        f"{provider.name}: {name} is required",
                        "credential_required",
                        provider=provider.name,
                        field=name,
                    )
                continue
            if len(text) > _MAX_VALUE_CHARS:
                raise CredentialError(
                    f"{provider.name}: {name} is too long",
                    "credential_too_long",
                    provider=provider.name,
                    field=name,
                )
            if spec.secret:
                secrets[name] = Secret(text.strip())
            else:
                settings[name] = text.strip()
        return secrets, settings

    async def create(
        self,
        tenant_id: str,
        provider: str,
        values: Mapping[str, str | Secret],
        *,
        auth_mode: AuthMode | None = None,
        label: str = "",
        settings: Mapping[str, Any] | None = None,
        actor: str = "system",
        connection_id: str | None = None,
    ) -> Connection:
        """A new active connection of ``provider`` from the person's ``values`` (the catalog's
        credential fields for ``auth_mode``, default the provider's first non-OAuth mode).
        ``settings`` adds non-secret configuration (``base_url`` override...). Audited ``connect``.

        Raises:
            CredentialError: a required field is missing, a field is unknown or too long.
            CatalogError: unknown provider; IntegrationError: the provider has no such mode.
        """
        entry = self.catalog.get(provider)
        mode = auth_mode or next((m for m in entry.auth_modes if m != "oauth2"), None)
        if mode is None or mode == "oauth2" or mode not in entry.auth_modes:
            raise IntegrationError(f"{provider!r} takes no {auth_mode or 'api_key/basic'} credentials")
        secret_values, plain = self._split(entry, mode, values, partial=False)
        now = self.clock.now()
        connection = Connection(
            id=connection_id or new_connection_id(),
            tenant_id=tenant_id,
            provider=entry.name,
            auth_mode=mode,
            label=label[:200],
            settings={**dict(settings or {}), **plain},
            created_at=now,
            updated_at=now,
        )
        connection = connection.with_secrets(self.vault, dict(secret_values))
        stored = await self.repository.save_connection(connection)
        await self._audit(stored, "connect", actor, {"auth_mode": mode})
        return stored

    async def update(
        self,
        tenant_id: str,
        connection_id: str,
        values: Mapping[str, str | Secret],
        *,
        settings: Mapping[str, Any] | None = None,
        actor: str = "system",
    ) -> Connection:
        """Replace the given credential fields (others stay); a connection that needed
        re-authorisation becomes active again. Audited ``credentials_updated`` (field names only).
        Raises :class:`CredentialError`, or :class:`IntegrationError` for an unknown connection."""
        current = await self.repository.get_connection(tenant_id, connection_id)
        if current is None:
            raise IntegrationError(f"no connection {connection_id!r} in tenant {tenant_id!r}")
        if current.auth_mode == "oauth2":
            raise IntegrationError("OAuth connections are renewed by connecting again")
        entry = self.catalog.get(current.provider)
        secret_values, plain = self._split(entry, current.auth_mode, values, partial=True)  # type: ignore[arg-type]
        now = self.clock.now()

        def change(c: Connection) -> Connection:
            return c.replace(
                settings={**c.settings, **dict(settings or {}), **plain},
                status="active" if c.status == "needs_reauth" else c.status,
                updated_at=now,
            ).with_secrets(self.vault, dict(secret_values))

        stored = await self.repository.update_connection(tenant_id, connection_id, change)
        if stored is None:
            raise IntegrationError(f"no connection {connection_id!r} in tenant {tenant_id!r}")
        await self._audit(stored, "credentials_updated", actor, {"fields": sorted({*secret_values, *plain})})
        return stored

    async def set_status(
        self, tenant_id: str, connection_id: str, status: ConnectionStatus, *, actor: str = "system"
    ) -> Connection:
        """Enable (``active``) or disable (``disabled``) a connection. Raises :class:`IntegrationError`."""
        now = self.clock.now()
        stored = await self.repository.update_connection(
            tenant_id, connection_id, lambda c: c.replace(status=status, updated_at=now)
        )
        if stored is None:
            raise IntegrationError(f"no connection {connection_id!r} in tenant {tenant_id!r}")
        return stored

    async def delete(self, tenant_id: str, connection_id: str, *, actor: str = "system") -> bool:
        """Delete the connection and its secrets; audited ``disconnect``. Returns whether it existed.
        (For OAuth connections prefer :meth:`crm_sync.oauth.OAuthService.disconnect`, which revokes.)"""
        current = await self.repository.get_connection(tenant_id, connection_id)
        if current is None:
            return False
        await self.repository.delete_connection(tenant_id, connection_id)
        await self._audit(current, "disconnect", actor, {"revoked": False, "tokens_deleted": True})
        return True

    async def _audit(self, connection: Connection, kind: str, actor: str, detail: dict[str, Any]) -> None:
        await self.repository.append_audit(
            AuditEvent.new(
                connection.tenant_id,
                kind,
                connection_id=connection.id,
                provider=connection.provider,
                actor=actor,
                detail=detail,
                at=self.clock.now(),
            )
        )
