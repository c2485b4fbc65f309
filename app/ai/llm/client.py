"""One structured chat-completion call per lead turn, through the official ``openai`` package.

:class:`TurnAnalyzer` sends the rendered messages with ``response_format`` = the strict
:data:`app.ai.llm.analysis.TURN_ANALYSIS_SCHEMA` and returns a validated
:class:`~app.ai.llm.analysis.TurnAnalysis` with the tokens spent.

Failure policy:

- the openai client's own retries are off (``max_retries=0``); :mod:`stamina` retries only the
  transient errors :data:`TRANSIENT` (timeout, connection, 429, 5xx), waiting what ``Retry-After`` /
  ``retry-after-ms`` asks (https://platform.openai.com/docs/guides/rate-limits), else an exponential
  backoff (0.2 s doubling up to 2 s, plus up to 0.3 s of jitter); a wait that would leave less than
  0.1 s before the deadline is not taken (the transient error is the reason given, not the deadline);
- an answer that is not JSON or not the schema (or a refusal, or a truncated answer) is asked again
  once, then given up;
- everything runs under one overall deadline (``LLM_REPLY_DEADLINE_S``, 8 s by default); each HTTP
  attempt's timeout is the smaller of ``LLM_REQUEST_TIMEOUT_S`` and the time left.

Every give-up raises :class:`LlmError` with a short ``reason`` and the usage spent so far.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
import stamina
from openai.types.chat import ChatCompletion
from pydantic import SecretStr, ValidationError

from app.ai.llm.analysis import TurnAnalysis, response_format
from app.ai.llm.usage import ModelPrice, parse_prices
from app.core.settings import Settings
from kernel.errors import LeadWarmError
from kernel.http import parse_retry_after

__all__ = [
    "TRANSIENT",
    "AnalysisResult",
    "CallUsage",
    "LlmConfig",
    "LlmError",
    "TurnAnalyzer",
    "retry_after_seconds",
]

#: The errors worth another attempt (everything else fails the turn at once).
TRANSIENT: tuple[type[Exception], ...] = (
    openai.APITimeoutError,
    openai.APIConnectionError,
    openai.RateLimitError,
    openai.InternalServerError,
)

_WAIT_INITIAL_S = 0.2
_WAIT_MAX_S = 2.0
_WAIT_JITTER_S = 0.3
_LAST_TRY_S = 0.1
"""What a retry must leave before the deadline for its request (seconds)."""


@dataclass(frozen=True, slots=True)
class LlmConfig:
    """What the GPT interpreter needs from the settings.

    ``api_key`` never prints (``SecretStr``); times in seconds; ``monthly_budget_usd`` is the default
    budget per tenant; ``prices`` override the price table (micro-USD per 1M tokens).
    """

    api_key: SecretStr
    model: str = "gpt-4o-mini"
    temperature: float = 0.7
    max_tokens: int = 500
    base_url: str | None = None
    request_timeout_s: float = 6.0
    reply_deadline_s: float = 8.0
    transient_attempts: int = 3
    monthly_budget_usd: float = 50.0
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmConfig | None:
        """From :class:`app.core.settings.Settings`; ``None`` when ``OPENAI_API_KEY`` is not set.

        Reads ``openai_api_key``, ``openai_model``, ``openai_temperature``, ``openai_max_tokens``,
        ``openai_base_url`` and, when the settings have them, ``llm_request_timeout_s``,
        ``llm_reply_deadline_s``, ``llm_monthly_budget_usd`` and ``llm_prices``.
        """
        key = getattr(settings, "openai_api_key", None)
        if key is None or not key.get_secret_value():
            return None
        prices = getattr(settings, "llm_prices", None)
        return cls(
            api_key=key,
            model=settings.openai_model,
            temperature=float(settings.openai_temperature),
            max_tokens=int(settings.openai_max_tokens),
            base_url=settings.openai_base_url or None,
            request_timeout_s=float(getattr(settings, "llm_request_timeout_s", 6.0)),
            reply_deadline_s=float(getattr(settings, "llm_reply_deadline_s", 8.0)),
            monthly_budget_usd=float(getattr(settings, "llm_monthly_budget_usd", 50.0)),
            prices=parse_prices(json.loads(prices) if isinstance(prices, str) else prices),
        )


@dataclass(frozen=True, slots=True)
class CallUsage:
    """Tokens of one or more calls, from the API's ``usage``; ``calls`` counts HTTP answers."""

    calls: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: CallUsage) -> CallUsage:
        return CallUsage(
            self.calls + other.calls,
            self.prompt_tokens + other.prompt_tokens,
            self.cached_tokens + other.cached_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """A validated analysis, the raw JSON text it came from, and every token spent to get it."""

    analysis: TurnAnalysis
    raw: str
    usage: CallUsage
    model: str


class LlmError(LeadWarmError):
    """The model gave no usable analysis in time. ``reason``: ``timeout``, ``connection``,
    ``rate_limited``, ``server_error``, ``malformed``, ``deadline``, ``api_error``; ``usage``: tokens
    spent anyway."""

    def __init__(self, reason: str, detail: str, *, usage: CallUsage | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.usage = usage or CallUsage()


class _MalformedError(Exception):
    def __init__(self, detail: str, usage: CallUsage) -> None:
        super().__init__(detail)
        self.usage = usage


def retry_after_seconds(exc: BaseException) -> float | None:
    """The wait an error's response asks for (``retry-after-ms``, else ``retry-after`` as seconds or
    an HTTP date, RFC 9110 section 10.2.3: :func:`kernel.http.parse_retry_after`); ``None`` when
    absent, unreadable, or the error carries no response."""
    response = getattr(exc, "response", None)
    return parse_retry_after(getattr(response, "headers", None))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, openai.RateLimitError):
        return "rate_limited"
    if isinstance(exc, openai.InternalServerError):
        return "server_error"
    return "api_error"


def _usage_of(completion: Any) -> CallUsage:
    usage = getattr(completion, "usage", None)
    if usage is None:
        return CallUsage(calls=1)
    details = getattr(usage, "prompt_tokens_details", None)
    return CallUsage(
        calls=1,
        prompt_tokens=int(usage.prompt_tokens or 0),
        cached_tokens=int(getattr(details, "cached_tokens", 0) or 0),
        completion_tokens=int(usage.completion_tokens or 0),
    )


class TurnAnalyzer:
    """Calls the chat-completions endpoint for a :class:`TurnAnalysis`.

    ``client`` may be given (tests); otherwise an ``openai.AsyncOpenAI`` is built from ``config``
    (``base_url`` lets any OpenAI-compatible server answer: Azure, Ollama, vLLM).
    """

    def __init__(self, config: LlmConfig, *, client: openai.AsyncOpenAI | None = None) -> None:
        self.config = config
        self.client = client or openai.AsyncOpenAI(
            api_key=config.api_key.get_secret_value(),
            base_url=config.base_url,
            timeout=config.request_timeout_s,
            max_retries=0,
        )

    def __repr__(self) -> str:
        return f"TurnAnalyzer(model={self.config.model!r}, base_url={self.config.base_url!r})"

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self.client.close()

    async def analyse(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        deadline_s: float | None = None,
        cache_key: str | None = None,
    ) -> AnalysisResult:
        """One turn analysis for ``messages`` (chat messages, static system part first).

        ``deadline_s`` (default ``config.reply_deadline_s``) bounds everything, retries included.
        ``cache_key`` is sent as ``prompt_cache_key`` to OpenAI itself (not to other servers, which
        may refuse unknown fields). Raises :class:`LlmError`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.config.reply_deadline_s if deadline_s is None else deadline_s)
        spent = CallUsage()
        try:
            async with asyncio.timeout_at(deadline):
                for attempt in range(2):  # a malformed answer is asked again once
                    try:
                        result = await self._call_with_retries(messages, deadline, cache_key)
                    except _MalformedError as exc:
                        spent = spent + exc.usage
                        if attempt == 1:
                            raise LlmError("malformed", str(exc), usage=spent) from None
                        continue
                    return AnalysisResult(result.analysis, result.raw, spent + result.usage, result.model)
        except TimeoutError:
            raise LlmError("deadline", "no usable answer before the deadline", usage=spent) from None
        except openai.APIError as exc:
            raise LlmError(_reason(exc), type(exc).__name__, usage=spent) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call_with_retries(
        self, messages: Sequence[Mapping[str, str]], deadline: float, cache_key: str | None
    ) -> AnalysisResult:
        loop = asyncio.get_running_loop()
        failures = 0

        def backoff(exc: Exception) -> bool | float:
            # The wait is ours (Retry-After, else exponential from 0.2 s up to 2 s plus up to 0.3 s
            # of jitter) so that a wait which would end past the deadline is not taken: the error
            # is then the transient one, not a deadline slept into.
            nonlocal failures
            if not isinstance(exc, TRANSIENT):
                return False
            failures += 1
            wait = retry_after_seconds(exc)
            if wait is None:
                wait = min(_WAIT_MAX_S, _WAIT_INITIAL_S * 2 ** (failures - 1)) + random.uniform(
                    0, _WAIT_JITTER_S
                )
            return wait if wait < deadline - loop.time() - _LAST_TRY_S else False

        async for attempt in stamina.retry_context(
            on=backoff,
            attempts=self.config.transient_attempts,
            timeout=None,  # the deadline is enforced by the caller's asyncio.timeout_at
        ):
            with attempt:
                return await self._call_once(messages, deadline, cache_key)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call_once(
        self, messages: Sequence[Mapping[str, str]], deadline: float, cache_key: str | None
    ) -> AnalysisResult:
        left = deadline - asyncio.get_running_loop().time()
        request: dict[str, Any] = {
            "model": self.config.model,
            "messages": [dict(m) for m in messages],
            "response_format": response_format(),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "timeout": max(0.05, min(self.config.request_timeout_s, left)),
        }
        if cache_key and self.config.base_url is None:
            request["prompt_cache_key"] = cache_key
        completion: ChatCompletion = await self.client.chat.completions.create(**request)
        usage = _usage_of(completion)
        choice = completion.choices[0] if completion.choices else None
        message = choice.message if choice is not None else None
        if message is None or getattr(message, "refusal", None):
            raise _MalformedError("the model refused or returned no message", usage)
        if choice is not None and choice.finish_reason == "length":
            raise _MalformedError("the answer was cut at max_tokens", usage)
        raw = message.content or ""
        try:
            analysis = TurnAnalysis.model_validate_json(raw)
        except ValidationError as exc:
            raise _MalformedError(f"not a turn analysis ({exc.error_count()} errors)", usage) from None
        return AnalysisResult(analysis, raw, usage, completion.model or self.config.model)
