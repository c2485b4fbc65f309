"""The Prism fixture: clear errors instead of silent skips, and a clean stop."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.support import prism
from tests.support.prism import PrismError, PrismServer


def test_missing_binary_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(prism, "PRISM_BIN", tmp_path / "no-prism")
    with pytest.raises(PrismError, match="npm ci --prefix tools"):
        prism.start_prism(tmp_path / "spec.yaml")


def test_missing_spec_is_reported(tmp_path: Path) -> None:
    if not prism.PRISM_BIN.exists():
        pytest.fail("Prism is not installed: run `npm ci --prefix tools`")
    with pytest.raises(PrismError, match="spec not found"):
        prism.start_prism(tmp_path / "missing.yaml")


def test_server_answers_then_stop_kills_its_process_group(tmp_path: Path) -> None:
    spec = tmp_path / "ping.yaml"
    spec.write_text(
        "openapi: 3.0.3\n"
        "info: {title: ping, version: '1'}\n"
        "paths:\n"
        "  /ping:\n"
        "    get:\n"
        "      responses:\n"
        "        '200':\n"
        "          description: ok\n"
        "          content:\n"
        "            application/json:\n"
        "              example: {pong: true}\n"
    )
    server: PrismServer = prism.start_prism(spec)
    try:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert httpx.get(server.base_url + "/ping").json() == {"pong": True}
    finally:
        server.stop()
    assert server.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(server.process.pid, 0)
