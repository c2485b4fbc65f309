"""Operations: one log format for every logger (JSON lines with LOG_FORMAT=json, third-party
libraries included, secrets redacted); the OpenAPI document (Bearer scheme, request bodies) and
its viewer served without a CDN."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.core.logs import configure_logging, get_logger

Client = AsyncTestClient[Litestar]


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(level="INFO", fmt="json")
    try:
        yield capsys
    finally:
        root.handlers, root.level = handlers, level
        configure_logging(level="WARNING", fmt="console")


def test_third_party_loggers_write_json_lines_too(json_logs: pytest.CaptureFixture[str]) -> None:
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s"', "POST", "https://api.example/x", "HTTP/1.1 200 OK"
    )
    logging.getLogger("uvicorn.error").warning("Started server process [%d]", 42)
    logging.getLogger("some.lib").warning("connecting", extra={"password": "hunter2"})
    get_logger("leadwarm.test").warning("ours", token="t0ps3cret")
    captured = json_logs.readouterr()
    lines = [json.loads(line) for line in (captured.err + captured.out).splitlines() if line.strip()]
    by_event = {line["event"]: line for line in lines}
    httpx_line = by_event['HTTP Request: POST https://api.example/x "HTTP/1.1 200 OK"']
    assert (httpx_line["logger"], httpx_line["level"]) == ("httpx", "info") and "timestamp" in httpx_line
    assert by_event["Started server process [42]"]["logger"] == "uvicorn.error"
    assert by_event["connecting"]["password"] == "[redacted]"
    assert by_event["ours"]["token"] == "[redacted]"
    assert "hunter2" not in captured.err + captured.out and "t0ps3cret" not in captured.err + captured.out


async def test_a_started_app_keeps_the_json_format_and_tracebacks(
    json_logs: pytest.CaptureFixture[str], client: Client
) -> None:
    """Litestar's own logging config would replace the root handler once the app starts (library
    lines then in its ``LEVEL - time - name`` format); a traceback is the ``exception`` text,
    never the frames' locals."""
    assert (await client.get("/health")).status_code == 200  # the app has started
    logging.getLogger("httpx").info("after start")
    secret_local = "s3cr3t-in-a-frame"
    try:
        raise RuntimeError("boom " + secret_local[:0])
    except RuntimeError:
        get_logger("leadwarm.test").error("ours.failed", exc_info=True)
        logging.getLogger("some.lib").exception("theirs.failed")
    captured = json_logs.readouterr()
    out = captured.err + captured.out
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]  # every line is JSON
    by_event = {line["event"]: line for line in lines}
    assert by_event["after start"]["logger"] == "httpx"
    for event in ("ours.failed", "theirs.failed"):
        assert "RuntimeError: boom" in by_event[event]["exception"], by_event[event]
    assert secret_local not in out


async def test_openapi_declares_bearer_and_request_bodies(client: Client) -> None:
    doc: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["BearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["BearerAuth"]["description"],
    }
    paths = doc["paths"]
    assert paths["/api/v1/settings"]["get"]["security"] == [{"BearerAuth": []}]
    assert "security" not in paths["/health"]["get"] if "/health" in paths else True
    upload = paths["/api/v1/playbooks"]["post"]["requestBody"]["content"]
    assert "application/yaml" in upload and upload["application/yaml"]["schema"]["type"] == "string"
    assert "example" in upload["application/yaml"] or "examples" in upload["application/yaml"]
    put_settings = paths["/api/v1/settings"]["put"]["requestBody"]["content"]["application/json"]
    assert put_settings["schema"]
    leads = paths["/api/v1/leads"]["post"]["requestBody"]["content"]["application/json"]
    assert leads["schema"]


async def test_the_api_viewer_loads_no_cdn(client: Client) -> None:
    page = await client.get("/schema")
    assert page.status_code == 200
    assert "cdn." not in page.text and "unpkg" not in page.text and "jsdelivr" not in page.text
    scripts = [part.split('"', 1)[0] for part in page.text.split('src="')[1:]]
    assert scripts, page.text
    for src in scripts:
        asset = await client.get(src)
        assert asset.status_code == 200 and len(asset.content) > 10_000, src
