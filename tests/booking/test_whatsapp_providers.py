"""A WhatsApp lead books a call through the shipped solar playbook by tapping a reply button, on
the built-in calendar, on Google Calendar (the fake written from Google's documentation) and on
GoHighLevel (Prism from the vendor's calendars and contacts specs), through the tenant's
calendar settings and connection (a stand-in for ``runtime.connections`` hands out the
authorised client). SQLite store, local Graph API stand-in, manual clock."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.main import create_app
from app.store import collections as col
from app.tenancy.bootstrap import bootstrap
from kernel.clock import ManualClock
from tests.app.conftest import ADMIN_KEY, make_settings, sign, text_webhook
from tests.booking.test_sms_booking import SCHEDULE, paris
from tests.calendars.fakes import GoogleFake
from tests.calendars.support import FakeServer, TestApiClient
from tests.support.prism import PrismServer, start_prism
from tests.support.recording import RecordingServer

Client = AsyncTestClient[Litestar]
LEAD = "33612345678"
GHL_SPECS = Path("/work/shared/specs/gohighlevel/apps")
#: The GoHighLevel calendars spec's free-slots example covers 28-29 October 2024.
GHL_DAY = dt.datetime(2024, 10, 28, tzinfo=dt.UTC).timestamp()


class Clients:
    """Stands in for ``ConnectionClients``: the authorised client of each connection."""

    def __init__(self, clients: dict[str, TestApiClient]) -> None:
        self._clients = clients
        self.asked: list[tuple[str, str]] = []

    async def client(self, tenant_id: str, connection_id: str) -> TestApiClient:
        self.asked.append((tenant_id, connection_id))
        return self._clients[connection_id]


class Connections:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients


@pytest.fixture
def google() -> Iterator[tuple[GoogleFake, FakeServer]]:
    state = GoogleFake()
    server = FakeServer(state)
    try:
        yield state, server
    finally:
        server.close()


@pytest.fixture(scope="module")
def ghl() -> Iterator[tuple[PrismServer, PrismServer]]:
    with (
        start_prism(GHL_SPECS / "calendars.json") as calendars,
        start_prism(GHL_SPECS / "contacts.json") as contacts,
    ):
        yield calendars, contacts


async def _runtime(tmp_path: Path, graph: RecordingServer, clock: ManualClock, timezone: str) -> Runtime:
    rt = Runtime.build(make_settings(tmp_path / "data", graph.base_url), clock=clock)
    await bootstrap(rt)
    profile = await rt.tenants.profile("demo")
    await rt.tenants.save_profile(
        profile.model_copy(
            update={"timezone": timezone, "quiet_hours_start": "00:00", "quiet_hours_end": "00:00"}
        )
    )
    return rt


class WhatsAppLead:
    def __init__(self, client: Client, runtime: Runtime, graph: RecordingServer, clock: ManualClock) -> None:
        self.client, self.runtime, self.graph, self.clock = client, runtime, graph, clock
        self.n = 0

    async def _post(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        raw = json.dumps(body).encode()
        before = len(self.graph.requests)
        response = await self.client.post("/api/webhooks/whatsapp", content=raw, headers=sign(raw))
        assert response.status_code == 200, response.text
        await self.runtime.worker.drain()
        return [r.body for r in self.graph.requests[before:]]

    def _webhook(self, text: str) -> dict[str, Any]:
        self.n += 1
        return dict(json.loads(text_webhook(text, wamid=f"wamid.B{self.n}", timestamp=int(self.clock.now()))))

    async def says(self, text: str) -> list[dict[str, Any]]:
        return await self._post(self._webhook(text))

    async def taps(self, choice_id: str, title: str) -> list[dict[str, Any]]:
        body = self._webhook(title)
        message = body["entry"][0]["changes"][0]["value"]["messages"][0]
        del message["text"]
        message["type"] = "interactive"
        message["interactive"] = {"type": "button_reply", "button_reply": {"id": choice_id, "title": title}}
        return await self._post(body)

    async def to_the_offer(self) -> list[dict[str, str]]:
        for text in ("Hi, I'd like a quote for solar panels", "yes I own it", "about 90", "Flat roof"):
            await self.says(text)
        await self.says("just researching")
        await self.says("94105")
        [*_, offer] = await self.says("sam@example.com")
        assert offer["type"] == "interactive" and offer["interactive"]["type"] == "button"
        assert offer["interactive"]["body"]["text"].startswith("Let's book a 15-minute call")
        buttons = offer["interactive"]["action"]["buttons"]
        assert len(buttons) == 3 and all(len(b["reply"]["title"]) <= 20 for b in buttons)
        return [b["reply"] for b in buttons]


def _text(body: dict[str, Any]) -> str:
    return str(body["text"]["body"] if body["type"] == "text" else body["interactive"]["body"]["text"])


async def _book(rt: Runtime, graph: RecordingServer, clock: ManualClock) -> tuple[list[dict[str, Any]], str]:
    async with AsyncTestClient(app=create_app(runtime=rt, start_worker=False)) as client:
        return await _book_with(client, rt, graph, clock)


async def _book_with(
    client: Client, rt: Runtime, graph: RecordingServer, clock: ManualClock
) -> tuple[list[dict[str, Any]], str]:
    if True:
        lead = WhatsAppLead(client, rt, graph, clock)
        buttons = await lead.to_the_offer()
        replies = await lead.taps(buttons[1]["id"], buttons[1]["title"])
        listed = await client.get("/api/v1/bookings", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert listed.status_code == 200
        [booking] = listed.json()["bookings"]
        assert booking["status"] == "confirmed"
        lead_doc = await rt.store.get("demo", "leads", booking["lead_id"])
        assert lead_doc is not None and lead_doc["stage"] == "booked"
        assert await rt.jobs.dead_letters("demo") == []
        return [booking], _text(replies[0])


async def test_whatsapp_books_on_the_builtin_calendar(tmp_path: Path, graph: RecordingServer) -> None:
    clock = ManualClock(paris(7, 9))
    rt = await _runtime(tmp_path, graph, clock, "Europe/Paris")
    await rt.store.set(
        "demo",
        col.BOOKING_SETTINGS,
        "calendar",
        {"salespeople": [{"calendar_id": "alice", "schedule": SCHEDULE}]},
    )
    try:
        [booking], said = await _book(rt, graph, clock)
    finally:
        await rt.channels.aclose()
        await rt.store.close()
    assert said == "Booked: Tuesday 8 December at 2 pm. See you then!"
    assert (booking["provider"], booking["start"]) == ("builtin", paris(8, 14))


async def test_whatsapp_books_on_google_calendar(
    tmp_path: Path, graph: RecordingServer, google: tuple[GoogleFake, FakeServer]
) -> None:
    state, server = google
    clock = ManualClock(paris(7, 9))
    rt = await _runtime(tmp_path, graph, clock, "Europe/Paris")
    clients = Clients({"conn_google": TestApiClient("google", server.base_url)})
    rt.connections = Connections(clients)  # type: ignore[assignment]
    state.external_busy.append((paris(8, 14), paris(8, 15)))  # Tuesday afternoon starts busy in Google
    await rt.store.set(
        "demo",
        col.BOOKING_SETTINGS,
        "calendar",
        {
            "provider": "google",
            "connection_id": "conn_google",
            "calendar_id": "sales@agency.test",
            "schedule": SCHEDULE,
        },
    )
    try:
        [booking], said = await _book(rt, graph, clock)
    finally:
        await rt.channels.aclose()
        await rt.store.close()
    assert said == "Booked: Tuesday 8 December at 3 pm. See you then!"
    [event] = state.live()
    assert event["start"]["dateTime"] == "2026-12-08T15:00:00+01:00" and booking["provider"] == "google"
    assert booking["booking"]["id"] == event["id"]
    assert clients.asked and all(a == ("demo", "conn_google") for a in clients.asked)


async def test_whatsapp_books_on_gohighlevel(
    tmp_path: Path, graph: RecordingServer, ghl: tuple[PrismServer, PrismServer]
) -> None:
    calendars, contacts = ghl
    clock = ManualClock(GHL_DAY - 86400)
    rt = await _runtime(tmp_path, graph, clock, "America/Chicago")
    client = TestApiClient(
        "gohighlevel",
        calendars.base_url,
        account={"locationId": "ve9EPM428h8vShlRW1KT"},
        routes={"/contacts": contacts.base_url},
    )
    rt.connections = Connections(Clients({"conn_ghl": client}))  # type: ignore[assignment]
    await rt.store.set(
        "demo",
        col.BOOKING_SETTINGS,
        "calendar",
        {
            "provider": "gohighlevel",
            "connection_id": "conn_ghl",
            "calendar_id": "ocQHyuzHvysMo5N5VsXc",
            "schedule": {"timezone": "America/Chicago"},
        },
    )
    try:
        [booking], said = await _book(rt, graph, clock)
    finally:
        await rt.channels.aclose()
        await rt.store.close()
    assert said.startswith("Booked: ") and booking["provider"] == "gohighlevel"
    assert booking["booking"]["id"] == "0TkCdp9PfvLeWKYRRvIz"  # the spec's example appointment
    assert [m for m, _ in client.sent][-3:] == ["GET", "POST", "POST"]  # slots, contact upsert, appointment


async def test_a_meeting_cancelled_in_cal_com_reaches_the_lead(
    tmp_path: Path, graph: RecordingServer
) -> None:
    """Booked on Cal.com from WhatsApp (the e-mail the lead gave is the attendee's), then cancelled
    in Cal.com: the signed webhook updates the record, tells the lead and moves their stage."""
    import hashlib
    import hmac

    from tests.calendars.fakes import CalComFake

    clock = ManualClock(paris(7, 9))
    state = CalComFake(open_slots=[paris(8, h) for h in (10, 11, 14)])
    server = FakeServer(state)
    rt = await _runtime(tmp_path, graph, clock, "Europe/Paris")
    rt.connections = Connections(Clients({"conn_cal": TestApiClient("cal_com", server.base_url)}))  # type: ignore[assignment]
    await rt.store.set(
        "demo",
        col.BOOKING_SETTINGS,
        "calendar",
        {
            "provider": "cal_com",
            "connection_id": "conn_cal",
            "event_type_id": 42,
            "webhook_secret": "whsec-test",
        },
    )
    try:
        client_cm = AsyncTestClient(app=create_app(runtime=rt, start_worker=False))
        client = await client_cm.__aenter__()
        [booking], said = await _book_with(client, rt, graph, clock)
        assert said == "Booked: Tuesday 8 December at 11 am. See you then!"
        [accepted] = state.accepted()
        assert accepted["attendees"][0]["email"] == "sam@example.com"
        body = json.dumps(
            {
                "triggerEvent": "BOOKING_CANCELLED",
                "createdAt": "2026-12-07T10:00:00Z",
                "payload": {
                    "uid": accepted["uid"],
                    "startTime": accepted["start"],
                    "endTime": accepted["end"],
                    "cancellationReason": "adviser ill",
                },
            }
        ).encode()
        good = hmac.new(b"whsec-test", body, hashlib.sha256).hexdigest()
        if True:
            path = "/api/webhooks/cal-com/demo"
            bad = await client.post(path, content=body, headers={"X-Cal-Signature-256": "0" * 64})
            assert bad.status_code == 401
            ok = await client.post(path, content=body, headers={"X-Cal-Signature-256": good})
            assert ok.status_code == 200 and ok.json() == {"accepted": True}
            before = len(graph.requests)
            await rt.worker.drain()
            told = [_text(r.body) for r in graph.requests[before:]]
            assert told == [
                "Your meeting of Tuesday 8 December at 11 am has been cancelled. Reply if you'd like another time."
            ]
            record = await rt.store.get("demo", col.BOOKINGS, booking["id"])
            assert record is not None and record["status"] == "cancelled"
            lead_doc = await rt.store.get("demo", "leads", booking["lead_id"])
            assert lead_doc is not None and lead_doc["stage"] != "booked"
        await client_cm.__aexit__(None, None, None)
    finally:
        server.close()
        await rt.channels.aclose()
        await rt.store.close()
