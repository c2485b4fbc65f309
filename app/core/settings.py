"""Settings from the environment (and ``.env``), with the names the seeds' users already have.

Every setting is listed in ``.env.example``. Secrets are :class:`pydantic.SecretStr` so that they
never print in clear (``repr``, logs, exceptions).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Process-wide settings. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    # --- service
    leadwarm_data_dir: Path = Path("./data")
    store: Literal["sqlite", "firestore"] = "sqlite"
    durability: Literal["process", "power"] = "process"
    """When a webhook's 200 is safe (SQLite): ``process``, the message survives a process kill (WAL,
    synchronous=NORMAL); ``power``, it survives a power loss too (an fsync of the WAL after each
    commit, shared by the commits made meanwhile: ``SQLiteStore.sync_commits``).
    Firestore commits are durable either way."""
    default_tenant_id: str = "demo"
    default_tenant_name: str = "SunnyWatt (demo)"
    admin_api_key: SecretStr | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    default_timezone: str = "Europe/Paris"
    default_region: str = "FR"
    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"
    seed_demo: bool = True
    rate_limit_webhooks_per_second: int = Field(default=200, ge=1)
    """Webhook deliveries one client address may make per second, before any signature is checked
    (providers send from a few addresses: keep it well above their bursts)."""
    rate_limit_public_per_minute: int = Field(default=120, ge=1)
    """Requests one client address may make per minute to the public pages (web chat, unsubscribe,
    OAuth callbacks); past it: 429 with the time to wait."""
    webchat_sessions_per_minute: int = Field(default=30, ge=1)
    """Web-chat sockets (sessions) one client address may open per minute; past it the socket gets
    an error frame and close code 4429 (see ``app/webchat/limits.py``)."""
    webchat_messages_per_minute: int = Field(default=60, ge=1)
    """Web-chat messages one client address may send per minute; past it: an error frame, socket kept."""
    webchat_leads_per_origin_per_hour: int = Field(default=300, ge=1)
    """New web-chat leads one embedding site (Origin) may create per tenant per hour."""
    egress_allow_private: bool = False
    """May URLs a tenant types in (handoff webhook, generic CRM webhook, a CRM connection's
    ``base_url``) reach private and loopback addresses? Off by default (server-side request
    forgery); on for an install whose receivers live on its own network. Link-local (cloud
    metadata) addresses are refused either way (``kernel/egress.py``)."""
    unrouted_webhooks: Literal["reject", "default_tenant"] = "reject"
    """A webhook for a receiving address no tenant owns: refused (404, logged), or, for a
    single-tenant install, handed to the default tenant."""

    # --- worker
    worker_concurrency: int = Field(default=64, ge=1, le=256)
    """Jobs in flight per worker process. A GPT turn spends most of its time waiting for the model
    (1-3 s), so 8 slots held a process near 3-8 GPT turns/s whatever its CPU; 64 let the waits
    overlap. On rules-only turns, more jobs in flight also share the SQLite threads' wake-ups
    (``benchmarks/turns.py`` at 1,000 messages, processes alternated on one machine: rounds of
    270-322 answer turns per CPU-second at 8, 415-491 at 64)."""
    worker_poll_interval: float = Field(default=0.5, gt=0, description="seconds between store polls")
    job_lease_seconds: float = Field(default=60.0, gt=1)
    send_max_attempts: int = Field(default=8, ge=1)
    send_pacing: bool = True
    """Pace sends at the providers' rates (WhatsApp per number and per recipient, Twilio by number
    type; ``app/messaging/pacing.py``). Off only for tests on a clock that never moves."""
    # two names for one setting: the plugin cannot type a constructor keyword for either
    worker_processes: int = Field(  # type: ignore[pydantic-alias]
        default=1, ge=1, validation_alias=AliasChoices("worker_processes", "send_pacing_processes")
    )
    """How many worker processes share the deployment's senders and CRM allowances: each paces
    its sends at its share of every provider rate and spends its share of every CRM rate limit
    (``WORKER_PROCESSES``; ``SEND_PACING_PROCESSES``, its former name, is still read)."""
    burst_window_seconds: float = Field(
        default=3.0, ge=0, description="messages from one lead this close together get one reply"
    )

    # --- Firestore
    firebase_project_id: str | None = None
    google_application_credentials: str | None = None
    firestore_emulator_host: str | None = None

    # --- WhatsApp Cloud API
    whatsapp_token: SecretStr | None = None
    whatsapp_phone_id: str | None = None
    whatsapp_business_id: str | None = None
    whatsapp_app_secret: SecretStr | None = None
    webhook_verify_token: SecretStr | None = None
    whatsapp_api_base_url: str = "https://graph.facebook.com"
    whatsapp_api_version: str = "v23.0"

    # --- Twilio SMS (issue 3)
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_phone_number: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"

    # --- Email (issue 3)
    email_host: str | None = None
    email_port: int = 587
    email_user: str | None = None
    email_password: SecretStr | None = None
    email_from: str | None = None
    email_starttls: bool | None = None
    """None: STARTTLS on 587, implicit TLS on 465, plain otherwise (a local relay)."""
    email_inbound_secret: SecretStr | None = None
    """Shared secret of POST /api/webhooks/email/inbound (?key=, X-LeadWarm-Inbound-Key or Basic)."""
    email_unsubscribe_secret: SecretStr | None = None
    """Signs unsubscribe links; falls back to ENCRYPTION_KEY, then to a per-install random secret."""
    email_unsubscribe_mailto: str | None = None
    imap_host: str | None = None
    imap_port: int = 993
    imap_user: str | None = None
    imap_password: SecretStr | None = None
    imap_folder: str = "INBOX"
    imap_poll_seconds: float = 30.0

    # --- OpenAI (issue 4)
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini"
    openai_temperature: float = 0.7
    openai_max_tokens: int = 500
    openai_base_url: str | None = None
    llm_reply_deadline_s: float = Field(default=8.0, gt=0, description="after this the offline path answers")
    llm_request_timeout_s: float = Field(default=6.0, gt=0)
    llm_monthly_budget_usd: float = Field(default=50.0, ge=0, description="per tenant; then the offline path")
    llm_prices: str | None = None
    """JSON {"model": [prompt, cached, completion]} in USD per 1M tokens, overriding the built-in table."""

    # --- vault (CRM connections)
    encryption_key: SecretStr | None = None
    """32 bytes as 64 hex characters (``openssl rand -hex 32``); unset: a key generated once into
    ``LEADWARM_DATA_DIR/encryption.key`` (embedded runs only: production must set it)."""
    encryption_keys_old: SecretStr | None = None
    """Comma-separated older keys, still read until ``leadwarm vault rotate`` has re-encrypted."""

    # --- connections: OAuth apps of the default tenant, redirects (issue 9)
    ghl_client_id: str | None = None
    ghl_client_secret: SecretStr | None = None
    hubspot_client_id: str | None = None
    hubspot_client_secret: SecretStr | None = None
    pipedrive_client_id: str | None = None
    pipedrive_client_secret: SecretStr | None = None
    salesforce_client_id: str | None = None
    salesforce_client_secret: SecretStr | None = None
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    calendly_client_id: str | None = None
    calendly_client_secret: SecretStr | None = None
    oauth_redirect_uris: str | None = None
    """Comma-separated allowlist of OAuth callback URLs (default:
    ``PUBLIC_BASE_URL/auth/<provider>/callback``)."""
    oauth_result_url: str | None = None
    """Page the OAuth callback redirects to with ``?status=connected|error`` (default:
    ``PUBLIC_BASE_URL/auth/result``)."""
    integrations_catalog: Path | None = None
    """A provider catalog file replacing the shipped ``crm_sync/catalog.yaml`` (sandboxes,
    self-hosted CRMs)."""

    @cached_property
    def sqlite_path(self) -> Path:
        """The embedded database file."""
        return self.leadwarm_data_dir / "leadwarm.db"
