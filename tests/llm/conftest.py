"""Fixtures for the model tests: a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.llm.fake_openai import FakeOpenAI


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
