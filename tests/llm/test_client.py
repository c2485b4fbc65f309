"""The turn-analysis client against a real OpenAI-compatible server on 127.0.0.1: the request it sends,
what it does with malformed answers, 429, 500, timeouts and a server that is down."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import openai
import pytest
from pydantic import SecretStr

from app.ai.llm.analysis import TURN_ANALYSIS_SCHEMA, TurnAnalysis
from app.ai.llm.client import LlmConfig, LlmError, TurnAnalyzer, retry_after_seconds
from tests.llm.fake_openai import FakeOpenAI, Scripted, analysis
from tests.support.ports import free_port

KEY = "sk-test-not-a-real-key-123456"
MESSAGES = [{"role": "system", "content": "static rules"}, {"role": "user", "content": "the turn"}]


def config(base_url: str, **overrides: Any) -> LlmConfig:
    values: dict[str, Any] = {
        "api_key": SecretStr(KEY),
        "base_url": base_url,
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "max_tokens": 300,
        "request_timeout_s": 0.5,
        "reply_deadline_s": 3.0,
        **overrides,
    }
    return LlmConfig(**values)


@pytest.fixture
async def analyzer(fake: FakeOpenAI) -> AsyncIterator[TurnAnalyzer]:
    client = TurnAnalyzer(config(fake.base_url))
    yield client
    await client.aclose()


async def test_one_strict_structured_call_returns_the_analysis_and_usage(
    fake: FakeOpenAI, analyzer: TurnAnalyzer
) -> None:
    fake.push(analysis(slots=[{"name": "homeowner", "value": True, "evidence": "we own it"}], sentiment=0.5))
    result = await analyzer.analyse(MESSAGES)
    assert result.analysis.slots[0].value is True
    assert result.analysis.sentiment == 0.5
    [request] = fake.chat_requests()
    body = request.body
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert body["model"] == "gpt-4o-mini"
    assert (body["temperature"], body["max_tokens"]) == (0.2, 300)
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["response_format"]["json_schema"]["schema"] == TURN_ANALYSIS_SCHEMA
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "prompt_cache_key" not in body  # only sent to OpenAI itself
    assert result.usage.calls == 1
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0


async def test_malformed_json_is_asked_again_once(fake: FakeOpenAI, analyzer: TurnAnalyzer) -> None:
    fake.push(Scripted(content='{"language": "en", "intent": '), analysis(intent="question"))
    result = await analyzer.analyse(MESSAGES)
    assert result.analysis.intent == "question"
    assert len(fake.chat_requests()) == 2
    assert result.usage.calls == 2  # the malformed answer's tokens count too


@pytest.mark.parametrize(
    "bad",
    [
        Scripted(content="not json at all"),
        Scripted(content='{"language": "en"}'),  # schema mismatch: fields missing
        Scripted(content=None, analysis={**analysis(), "intent": "dance"}),  # not an allowed intent
        Scripted(analysis=analysis(), finish_reason="length"),  # truncated at max_tokens
    ],
    ids=["not-json", "missing-fields", "bad-enum", "truncated"],
)
async def test_a_second_bad_answer_gives_up(fake: FakeOpenAI, analyzer: TurnAnalyzer, bad: Scripted) -> None:
    fake.push(bad, bad)
    with pytest.raises(LlmError) as caught:
        await analyzer.analyse(MESSAGES)
    assert caught.value.reason == "malformed"
    assert len(fake.chat_requests()) == 2
    assert caught.value.usage.calls == 2


@pytest.mark.parametrize(
    "transient",
    [Scripted(status=429, headers={"retry-after": "0"}), Scripted(status=500), Scripted(status=503)],
    ids=["429", "500", "503"],
)
async def test_transient_errors_are_retried(
    fake: FakeOpenAI, analyzer: TurnAnalyzer, transient: Scripted
) -> None:
    fake.push(transient, analysis(language="fr"))
    result = await analyzer.analyse(MESSAGES)
    assert result.analysis.language == "fr"
    assert len(fake.chat_requests()) == 2


async def test_persistent_500_gives_up_after_the_attempts(fake: FakeOpenAI, analyzer: TurnAnalyzer) -> None:
    fake.push(Scripted(status=500), Scripted(status=500), Scripted(status=500), analysis())
    with pytest.raises(LlmError) as caught:
        await analyzer.analyse(MESSAGES)
    assert caught.value.reason == "server_error"
    assert len(fake.chat_requests()) == 3


async def test_client_errors_are_not_retried(fake: FakeOpenAI, analyzer: TurnAnalyzer) -> None:
    fake.push(Scripted(status=400), analysis())
    with pytest.raises(LlmError) as caught:
        await analyzer.analyse(MESSAGES)
    assert caught.value.reason == "api_error"
    assert len(fake.chat_requests()) == 1


async def test_a_retry_after_beyond_the_deadline_is_not_waited_for(fake: FakeOpenAI) -> None:
    client = TurnAnalyzer(config(fake.base_url, reply_deadline_s=2.0))
    fake.push(Scripted(status=429, headers={"retry-after": "30"}), analysis())
    try:
        with pytest.raises(LlmError) as caught:
            await client.analyse(MESSAGES)
    finally:
        await client.aclose()
    assert caught.value.reason == "rate_limited"
    assert len(fake.chat_requests()) == 1


async def test_a_backoff_that_would_pass_the_deadline_is_not_slept(fake: FakeOpenAI) -> None:
    # 0.5 s in all: the first wait (0.2-0.5 s) may fit, the second (0.4-0.7 s) never does. The
    # error is the server's, raised at once, not a deadline reached while asleep.
    client = TurnAnalyzer(config(fake.base_url, reply_deadline_s=0.5))
    fake.responder = lambda _: Scripted(status=500)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(LlmError) as caught:
            await client.analyse(MESSAGES)
    finally:
        await client.aclose()
    assert caught.value.reason == "server_error"
    assert loop.time() - started < 0.5
    assert 1 <= len(fake.chat_requests()) <= 2


async def test_a_slow_model_times_out(fake: FakeOpenAI) -> None:
    client = TurnAnalyzer(config(fake.base_url, request_timeout_s=0.2, reply_deadline_s=1.0))
    fake.responder = lambda _: Scripted(analysis=analysis(), delay_s=30)
    try:
        with pytest.raises(LlmError) as caught:
            await client.analyse(MESSAGES)
    finally:
        await client.aclose()
    assert caught.value.reason in ("timeout", "deadline")


async def test_a_server_that_is_down_is_a_connection_error() -> None:
    client = TurnAnalyzer(config(f"http://127.0.0.1:{free_port()}/v1"))
    try:
        with pytest.raises(LlmError) as caught:
            await client.analyse(MESSAGES)
    finally:
        await client.aclose()
    assert caught.value.reason == "connection"


def _rate_limited(headers: dict[str, str]) -> openai.RateLimitError:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(429, headers=headers, request=request)
    return openai.RateLimitError("slow down", response=response, body=None)


def test_retry_after_is_read_in_every_documented_form() -> None:
    assert retry_after_seconds(_rate_limited({"retry-after-ms": "1500"})) == 1.5
    assert retry_after_seconds(_rate_limited({"retry-after": "7"})) == 7.0
    later = email.utils.formatdate(time.time() + 20, usegmt=True)
    from_date = retry_after_seconds(_rate_limited({"retry-after": later}))
    assert from_date is not None and 10 < from_date <= 20
    assert retry_after_seconds(_rate_limited({})) is None
    assert retry_after_seconds(_rate_limited({"retry-after": "soon"})) is None
    assert retry_after_seconds(ValueError("no response")) is None


def test_the_key_never_prints(fake: FakeOpenAI) -> None:
    cfg = config(fake.base_url)
    client = TurnAnalyzer(cfg)
    assert KEY not in repr(cfg) and KEY not in str(cfg)
    assert KEY not in repr(client)
    assert KEY not in str(LlmError("api_error", "AuthenticationError"))


def _objects(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            yield schema
        for value in schema.values():
            yield from _objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _objects(value)


def test_the_schema_follows_strict_mode_and_matches_the_model() -> None:
    for obj in _objects(TURN_ANALYSIS_SCHEMA):
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])
    assert set(TURN_ANALYSIS_SCHEMA["properties"]) == set(TurnAnalysis.model_fields)
    parsed = TurnAnalysis.model_validate(
        analysis(sentiment=4.0, language=" FR ", signals={"budget": {"level": "high", "evidence": "x"}})
    )
    assert (parsed.sentiment, parsed.language) == (1.0, "fr")
    assert parsed.signals.budget is not None and parsed.signals.budget.level == "high"


def test_config_from_settings_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.settings import Settings

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)

    assert LlmConfig.from_settings(Settings(_env_file=None)) is None  # type: ignore[call-arg]
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        openai_api_key=SecretStr(KEY),
        openai_base_url="http://127.0.0.1:1/v1",
        openai_model="gpt-4.1",
    )
    cfg = LlmConfig.from_settings(settings)
    assert cfg is not None
    assert (cfg.model, cfg.base_url, cfg.api_key.get_secret_value()) == (
        "gpt-4.1",
        "http://127.0.0.1:1/v1",
        KEY,
    )
