"""The lead page ``/app/leads/{id}`` (a shell: its script reads ``/api/v1/leads/{id}/overview``).

The conversation view's actions (take over, reply, notes, hand back) live on the conversation page
(:mod:`app.dashboard.pages`) and are drawn by ``static/inbox.js``.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from app.dashboard.pages import _page
from app.dashboard.people import PeopleDirectory

__all__ = ["ROUTES"]


@get("/app/leads/{lead_id:str}", include_in_schema=False)
async def lead_page(
    request: Request[Any, Any, Any], people: NamedDependency[PeopleDirectory], lead_id: FromPath[str]
) -> Response[Any]:
    """One lead: answers, score history with evidence, timeline across channels, bookings, CRM sync."""
    return await _page(request, people, "lead.html", lead_id=lead_id[:100])


#: The routes this module serves (registered by :class:`app.dashboard.plugin.DashboardFeature`).
ROUTES = (lead_page,)
