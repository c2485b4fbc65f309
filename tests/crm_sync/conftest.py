"""Fixtures for the CRM adapter tests: Prism mocks of GoHighLevel's and Pipedrive's official
OpenAPI descriptions (one Prism per spec file, started in parallel once per session) for request
shapes, and the stateful fakes of all four CRMs (one per test) for state and rate limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.crm_sync.fakes import GoHighLevelFake, HubSpotFake, PipedriveFake, SalesforceFake
from tests.support.prism import PrismServer, start_prism
from tests.support.specs import SPECS_DIR

GHL_SPECS = {
    "contacts": SPECS_DIR / "gohighlevel" / "apps" / "contacts.json",
    "opportunities": SPECS_DIR / "gohighlevel" / "apps" / "opportunities.json",
    "locations": SPECS_DIR / "gohighlevel" / "apps" / "locations.json",
}
PIPEDRIVE_SPECS = {
    "v2": SPECS_DIR / "pipedrive" / "openapi-v2.yaml",
    "v1": SPECS_DIR / "pipedrive" / "openapi-v1.yaml",
}


def _start_all(specs: dict[str, object]) -> Iterator[dict[str, PrismServer]]:
    servers: dict[str, PrismServer] = {}
    try:
        with ThreadPoolExecutor(max_workers=len(specs)) as pool:
            futures = {name: pool.submit(start_prism, path) for name, path in specs.items()}  # type: ignore[arg-type]
            for name, future in futures.items():
                servers[name] = future.result()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="session")
def ghl_prism() -> Iterator[dict[str, PrismServer]]:
    """Prism for GoHighLevel's contacts, opportunities and locations specs."""
    yield from _start_all(dict(GHL_SPECS))


@pytest.fixture(scope="session")
def pipedrive_prism() -> Iterator[dict[str, PrismServer]]:
    """Prism for Pipedrive's API v2 and v1 specs."""
    yield from _start_all(dict(PIPEDRIVE_SPECS))


@pytest.fixture
async def hubspot() -> AsyncIterator[HubSpotFake]:
    fake = await HubSpotFake().start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def salesforce() -> AsyncIterator[SalesforceFake]:
    fake = await SalesforceFake().start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def ghl_fake() -> AsyncIterator[GoHighLevelFake]:
    fake = await GoHighLevelFake().start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def pipedrive_fake() -> AsyncIterator[PipedriveFake]:
    fake = await PipedriveFake().start()
    try:
        yield fake
    finally:
        await fake.stop()
