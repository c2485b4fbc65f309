"""A runtime whose conversations go through the GPT interpreter and the fake model on 127.0.0.1,
shared by the GPT interpreter tests (the fixtures ``runtime`` and ``client`` of ``conftest.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from pydantic import SecretStr

from app.ai.directory import InterpreterDirectory
from app.ai.llm.client import LlmConfig
from app.composition import Runtime
from app.tenancy.bootstrap import bootstrap
from tests.app.conftest import make_settings
from tests.support.recording import RecordingServer

__all__ = ["KEY", "Client", "gpt_runtime", "llm_config"]

Client = AsyncTestClient[Litestar]
KEY = "sk-test-interpreter-key-98765"


def llm_config(base_url: str, **overrides: Any) -> LlmConfig:
    """The model settings of these tests (short deadlines), ``overrides`` applied."""
    values: dict[str, Any] = {
        "api_key": SecretStr(KEY),
        "base_url": base_url,
        "request_timeout_s": 0.5,
        "reply_deadline_s": 2.0,
        "monthly_budget_usd": 5.0,
        **overrides,
    }
    return LlmConfig(**values)


async def gpt_runtime(tmp_path: Path, graph: RecordingServer, llm: LlmConfig) -> Runtime:
    """A SQLite runtime (tenant bootstrapped) whose conversations read leads through the GPT
    interpreter against ``llm`` (the fake model), its WhatsApp sends going to ``graph``."""
    settings = make_settings(
        tmp_path / "data",
        graph.base_url,
        store="sqlite",
        openai_api_key=KEY,
        openai_base_url=llm.base_url,
    )
    rt = Runtime.build(settings)
    await bootstrap(rt)
    # until app/runtime.py passes settings/store/playbooks itself, wire the GPT interpreter here
    rt.conversations.interpreters = InterpreterDirectory(
        rt.knowledge, clock=rt.clock, store=rt.store, playbooks=rt.playbooks, llm=llm
    )
    return rt
