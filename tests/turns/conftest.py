"""The turn tests' runtime: SQLite in a temporary folder, web chat as the channel, no burst
window (a turn runs as soon as its message is in), the demo tenant bootstrapped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from app.composition import Runtime
from app.core.settings import Settings
from app.tenancy.bootstrap import bootstrap
from channels.webchat import WebChatChannel


async def webchat_runtime(tmp_path: Path, **settings: Any) -> Runtime:
    """A bootstrapped runtime over ``tmp_path``; ``settings`` override the defaults above."""
    values: dict[str, Any] = {
        "leadwarm_data_dir": tmp_path,
        "admin_api_key": SecretStr("lw_test_turns"),
        "log_level": "WARNING",
        "burst_window_seconds": 0.0,
        **settings,
    }
    rt = Runtime.build(Settings(_env_file=None, **values), channels={"webchat": WebChatChannel()})
    await bootstrap(rt)
    return rt


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = await webchat_runtime(tmp_path)
    yield rt
    await rt.store.close()
