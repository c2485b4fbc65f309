"""URLs a tenant types in (handoff webhook, generic CRM webhook) cannot reach private, loopback
or metadata addresses unless the install allows private ones (``kernel/egress.py``).

A real receiver listens on 127.0.0.1: it gets the request only when private addresses are allowed.
The metadata address is refused before any packet leaves (nothing is sent off the machine).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import httpx
import pytest

from app.handoff.notify import NotificationError, post_webhook
from kernel.egress import EgressRefusedError, guarded_transport, refusal
from tests.support.recording import RecordingServer


@pytest.fixture
def receiver() -> Iterator[RecordingServer]:
    server = RecordingServer()
    try:
        yield server
    finally:
        server.close()


def client(*, allow_private: bool) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=guarded_transport(allow_private=allow_private), timeout=5.0)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_loopback_is_refused_by_default_and_nothing_reaches_it(
    receiver: RecordingServer, host: str
) -> None:
    url = receiver.base_url.replace("127.0.0.1", host) + "/hook"
    async with client(allow_private=False) as http:
        with pytest.raises(EgressRefusedError, match="private or loopback"):
            await http.post(url, json={"x": 1})
    assert receiver.requests == []


async def test_allowed_private_addresses_reach_the_receiver(receiver: RecordingServer) -> None:
    async with client(allow_private=True) as http:
        response = await http.post(receiver.base_url + "/hook", json={"x": 1})
    assert response.status_code == 200
    assert [r.body for r in receiver.requests] == [{"x": 1}]


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/"])
async def test_metadata_addresses_are_refused_even_when_private_ones_are_allowed(url: str) -> None:
    async with client(allow_private=True) as http:
        with pytest.raises(EgressRefusedError, match="link-local"):
            await http.get(url)


@pytest.mark.parametrize(
    ("address", "allow_private", "refused"),
    [
        ("::ffff:127.0.0.1", False, True),  # IPv4-mapped loopback is loopback
        ("::ffff:169.254.169.254", True, True),
        ("10.1.2.3", False, True),
        ("10.1.2.3", True, False),
        ("0.0.0.0", True, True),  # noqa: S104 (an address judged, not bound)
        ("224.0.0.1", True, True),
        ("93.184.215.14", False, False),  # a public address (never dialled here)
    ],
)
def test_refusal_judges_the_address(address: str, allow_private: bool, refused: bool) -> None:
    assert (refusal(ipaddress.ip_address(address), allow_private=allow_private) is not None) is refused


async def test_a_handoff_webhook_to_a_refused_host_is_a_permanent_failure(receiver: RecordingServer) -> None:
    async with client(allow_private=False) as http:
        with pytest.raises(NotificationError) as caught:
            await post_webhook(
                http, receiver.base_url + "/hook", {"event": "x"}, secret="whsec_s", event_id="e1", now=1.8e9
            )
    assert caught.value.retryable is False
    assert "whsec_s" not in str(caught.value)
    assert receiver.requests == []
