"""Fixtures for the model tests: a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.main import create_app
from tests.llm.fake_openai import FakeOpenAI
from tests.llm.gpt_app import Client, gpt_runtime, llm_config
from tests.support.recording import RecordingServer


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A scripted OpenAI-compatible HTTP server, stopped after the test."""
    server = FakeOpenAI()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def fake(fake_openai: FakeOpenAI) -> FakeOpenAI:
    """The same server under the short name some tests use."""
    return fake_openai


@pytest.fixture
async def runtime(tmp_path: Path, graph: RecordingServer, fake: FakeOpenAI) -> AsyncIterator[Runtime]:
    """The GPT runtime of :func:`tests.llm.gpt_app.gpt_runtime` on the fake model, closed after."""
    rt = await gpt_runtime(tmp_path, graph, llm_config(fake.base_url))
    yield rt
    await rt.conversations.interpreters.aclose()
    await rt.channels.aclose()
    await rt.store.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[Client]:
    """A test client of the app over ``runtime`` (no worker: tests drive it)."""
    async with AsyncTestClient(app=create_app(runtime=runtime, start_worker=False)) as test_client:
        yield test_client
