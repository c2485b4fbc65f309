"""``leadwarm worker`` and the benchmarks run on the loop ``leadwarm serve`` runs on: uvloop
(installed with uvicorn[standard]), so what they measure and do is what the service does."""

from __future__ import annotations

import asyncio

import pytest

from app.core.runner import run


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_run_uses_uvloop_and_returns_the_result() -> None:
    assert run(_loop_module()).startswith("uvloop")


def test_run_raises_what_the_coroutine_raises() -> None:
    async def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run(fail())
