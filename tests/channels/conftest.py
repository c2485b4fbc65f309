"""Fixtures for channel tests: Meta's webhook payloads, a Prism mock of the WhatsApp Cloud API,
and a recording HTTP server on 127.0.0.1 for checking the exact JSON a channel sends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.prism import PrismServer, start_prism
from tests.support.recording import RecordingServer
from tests.support.specs import SPECS_DIR

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "whatsapp"
WHATSAPP_SPEC = SPECS_DIR / "whatsapp" / "business-messaging-api_v23.0.yaml"


def load_fixture(name: str) -> dict[str, Any]:
    """One webhook body from ``tests/fixtures/whatsapp/<name>.json``."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def first_value(body: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = body["entry"][0]["changes"][0]["value"]
    return value


@pytest.fixture(scope="session")
def whatsapp_prism() -> Iterator[PrismServer]:
    """Prism serving Meta's WhatsApp Business Messaging OpenAPI (v23.0) for the whole session."""
    server = start_prism(WHATSAPP_SPEC)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    server = RecordingServer()
    try:
        yield server
    finally:
        server.close()
