"""An OpenAI-compatible chat-completions server on 127.0.0.1 with scripted answers.

Real HTTP, so the real ``openai`` client (its own HTTP stack) talks to it through ``base_url``. It
implements ``POST /v1/chat/completions`` and records every request. Each request takes the next
:class:`Scripted` answer from :attr:`FakeOpenAI.script`, or asks :attr:`FakeOpenAI.responder` when the
script is empty: a valid structured answer (``analysis``), raw content (malformed JSON), an HTTP error
(429 with ``Retry-After``, 500...), optionally after ``delay_s`` (to pass the client's timeout).

``usage`` is reported like OpenAI's: ``prompt_tokens`` estimated as ``ceil(characters / 4)`` of the
messages' contents (OpenAI's rule of thumb, https://help.openai.com/en/articles/4936856), and
``prompt_tokens_details.cached_tokens`` simulating the prompt cache: the longest prefix shared with an
earlier request, counted only from 1024 tokens and in steps of 128
(https://platform.openai.com/docs/guides/prompt-caching).
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.recording import Recorded, RecordingServer, Reply

__all__ = [
    "FakeOpenAI",
    "Recorded",
    "Scripted",
    "analysis",
    "estimate_tokens",
    "lead_message",
]


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` by OpenAI's rule of thumb: one token per 4 characters (rounded up)."""
    return math.ceil(len(text) / 4)


def analysis(
    *,
    language: str = "en",
    intent: str = "answer",
    slots: list[dict[str, Any]] | None = None,
    sentiment: float = 0.3,
    signals: dict[str, Any] | None = None,
    question: str | None = None,
    reply: str | None = None,
) -> dict[str, Any]:
    """A schema-valid turn analysis; ``slots`` items are ``{"name", "value", "evidence"}``."""
    return {
        "language": language,
        "intent": intent,
        "slots": slots or [],
        "sentiment": sentiment,
        "signals": {"budget": None, "authority": None, "need": None, "timeline": None, **(signals or {})},
        "question": question,
        "reply": reply,
    }


@dataclass
class Scripted:
    """One answer of the fake model."""

    analysis: dict[str, Any] | None = None
    content: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    finish_reason: str = "stop"
    completion_tokens: int = 60


_LEAD = re.compile(r"<lead_message>\n(.*)\n</lead_message>", re.S)


def lead_message(request: Recorded) -> str:
    """The lead's text, decoded from between the delimiters of the request's last user message."""
    users = [m for m in request.messages if m.get("role") == "user"]
    match = _LEAD.search(str(users[0]["content"])) if users else None
    if match is None:
        raise AssertionError("no <lead_message> block in the prompt")
    return str(json.loads(match.group(1)))


class FakeOpenAI(RecordingServer):
    """The server; ``base_url`` ends in ``/v1`` like OpenAI's. Stop it with :meth:`close`."""

    def __init__(self) -> None:
        self.script: deque[Scripted] = deque()
        self.responder: Callable[[Recorded], Scripted] | None = None
        self._prompts: list[str] = []
        super().__init__(path_prefix="/v1", keep_alive=True)

    # ------------------------------------------------------------------ scripting
    def push(self, *answers: Scripted | dict[str, Any]) -> None:
        """Queue answers; a dict is a valid analysis."""
        for answer in answers:
            self.script.append(answer if isinstance(answer, Scripted) else Scripted(analysis=answer))

    def chat_requests(self) -> list[Recorded]:
        """The chat-completion requests received so far."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def _usage(self, request: Recorded, completion_tokens: int) -> dict[str, Any]:
        prompt = "".join(str(m.get("content") or "") for m in request.messages)
        prompt_tokens = estimate_tokens(prompt)
        shared = 0
        for earlier in self._prompts:
            n = 0
            for a, b in zip(earlier, prompt, strict=False):
                if a != b:
                    break
                n += 1
            shared = max(shared, n)
        self._prompts.append(prompt)
        shared_tokens = shared // 4
        cached = (shared_tokens // 128) * 128 if shared_tokens >= 1024 else 0
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": min(cached, prompt_tokens)},
        }

    def respond(self, request: Recorded) -> Reply:
        """Answer a chat completion from the script (or the responder); 404 elsewhere."""
        with self._lock:
            if not request.path.endswith("/chat/completions"):
                return Reply(404, {"error": {"message": "not found"}})
            if self.script:
                scripted = self.script.popleft()
            elif self.responder is not None:
                scripted = self.responder(request)
            else:
                scripted = Scripted(status=500)
            if scripted.status != 200:
                error = {"error": {"message": f"scripted {scripted.status}", "type": "server_error"}}
                return Reply(scripted.status, error, scripted.headers, scripted.delay_s)
            content = scripted.content if scripted.content is not None else json.dumps(scripted.analysis)
            body = {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": 1_763_000_000,
                "model": (request.body or {}).get("model", "gpt-4o-mini"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "finish_reason": scripted.finish_reason,
                        "logprobs": None,
                    }
                ],
                "usage": self._usage(request, scripted.completion_tokens),
            }
            return Reply(200, body, scripted.headers, scripted.delay_s)
