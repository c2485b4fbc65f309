"""The dashboard's admin pages (server-rendered shells; their data comes from ``/api/v1``).

- ``GET /app/import``: upload a CSV of leads, watch its progress, read the report of refused rows.
- ``GET /app/integrations``: the provider catalog with Connect buttons, connected accounts (identity,
  status, test, disconnect), CRM field mappings, sync logs and the dead letter with replay.
- ``GET /app/settings``: the tenant's settings, branding, the web-chat widget's embed snippet with a
  live preview, WhatsApp templates.

Signed-in only (else a redirect to the sign-in page); the same CSP as every dashboard page.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency

from app.composition import Runtime
from app.core import i18n
from app.dashboard.i18n import language_of
from app.dashboard.pages import _page
from app.dashboard.people import PeopleDirectory

__all__ = ["ROUTES"]


@get("/app/import", include_in_schema=False)
async def import_page(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    people: NamedDependency[PeopleDirectory],
) -> Response[Any]:
    """The CSV import: file, optional playbook and channel, progress bar, report."""
    return await _page(request, people, "import.html", channels=runtime.channels.names())


@get("/app/integrations", include_in_schema=False)
async def integrations_page(
    request: Request[Any, Any, Any], people: NamedDependency[PeopleDirectory]
) -> Response[Any]:
    """Connections: catalog, connected accounts, mappings, sync logs, dead letter."""
    return await _page(request, people, "integrations.html")


@get("/app/settings", include_in_schema=False)
async def settings_page(
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    people: NamedDependency[PeopleDirectory],
) -> Response[Any]:
    """The tenant's settings, branding and the web-chat widget snippet with its live preview."""
    base = runtime.settings.public_base_url.rstrip("/")
    # The preview greets like the chat does when the tenant wrote no greeting: the bot's welcome.
    welcome = i18n.text("chat_welcome", language_of(request), company_name="{company_name}")
    return await _page(request, people, "settings.html", public_base_url=base, chat_welcome=welcome)


#: The routes this module serves (registered by :class:`app.dashboard.plugin.DashboardFeature`).
ROUTES = (import_page, integrations_page, settings_page)
