"""Web-chat abuse limits against a served instance: sockets and messages per client address, new
leads per embedding site per hour, and the HTTP pages' 429 (see ``app/webchat/limits.py``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.store import collections as col
from tests.hardening.serving import Served

SESSIONS = 1_000


async def _open(url: str, gate: asyncio.Semaphore) -> tuple[str, int | None, dict[str, Any] | None]:
    """Open one socket: ``("refused", close code, error frame)`` or ``("open", None, None)``."""
    async with gate, connect(url) as ws:
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=1.5))
        except TimeoutError:
            return "open", None, None
        except ConnectionClosed as exc:
            return "closed", exc.rcvd.code if exc.rcvd else None, None
        try:
            await asyncio.wait_for(ws.recv(), timeout=2)
        except ConnectionClosed as exc:
            return "refused", exc.rcvd.code if exc.rcvd else None, frame
        return "frame", None, frame


def test_a_thousand_sessions_in_a_second_are_refused_past_the_limit(serve: Callable[..., Served]) -> None:
    served = serve(WEBCHAT_SESSIONS_PER_MINUTE="50")
    ws_base = served.base.replace("http://", "ws://")

    async def storm() -> list[tuple[str, int | None, dict[str, Any] | None]]:
        gate = asyncio.Semaphore(200)
        return await asyncio.gather(
            *(_open(f"{ws_base}/chat/ws?session=storm_session_{i:04d}", gate) for i in range(SESSIONS))
        )

    started = time.monotonic()
    results = asyncio.run(storm())
    elapsed = time.monotonic() - started
    opened = [r for r in results if r[0] == "open"]
    refused = [r for r in results if r[0] == "refused"]
    # A leaky bucket of 50 a minute lets 50 through at once, then one more every 1.2 s.
    assert 50 <= len(opened) <= 50 + int(elapsed / 1.2) + 1, (len(opened), elapsed)
    assert len(opened) + len(refused) == SESSIONS, {r[0] for r in results}
    assert {code for _, code, _ in refused} == {4429}
    assert all(f and f["type"] == "error" and f["retry_after"] >= 1 for _, _, f in refused)
    print(f"{SESSIONS} sockets in {elapsed:.2f}s: {len(opened)} open, {len(refused)} refused (4429)")


def test_messages_past_the_budget_get_an_error_frame_and_the_socket_stays(
    serve: Callable[..., Served],
) -> None:
    served = serve(WEBCHAT_MESSAGES_PER_MINUTE="5")
    url = served.base.replace("http://", "ws://") + "/chat/ws?session=chatty_session_1"

    async def chat() -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        async with connect(url) as ws:
            for i in range(8):
                await ws.send(json.dumps({"type": "message", "id": f"m{i}", "text": f"hello {i}"}))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=10)))
                acks = [f for f in frames if f["type"] == "ack"]
                errors = [f for f in frames if f["type"] == "error"]
                if len(acks) + len(errors) == 8:
                    break
            await ws.send(json.dumps({"type": "typing"}))  # still open after the refusals
        return frames

    frames = asyncio.run(chat())
    acks = [f["id"] for f in frames if f["type"] == "ack"]
    errors = [f for f in frames if f["type"] == "error"]
    assert acks == [f"m{i}" for i in range(5)]
    assert len(errors) == 3 and all(e["reason"] == "too many messages" for e in errors)


def test_new_leads_per_site_are_capped_per_hour(serve: Callable[..., Served]) -> None:
    served = serve(WEBCHAT_LEADS_PER_ORIGIN_PER_HOUR="3")
    ws_base = served.base.replace("http://", "ws://")

    async def start(i: int) -> tuple[str, int | None]:
        async with connect(f"{ws_base}/chat/ws?session=capped_session_{i}") as ws:
            await ws.send(json.dumps({"type": "start"}))
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                if frame["type"] == "error":
                    await asyncio.wait_for(ws.recv(), timeout=5)
            except ConnectionClosed as exc:
                return frame["reason"], exc.rcvd.code if exc.rcvd else None
            return frame["type"], None

    async def run() -> list[tuple[str, int | None]]:
        return [await start(i) for i in range(5)]

    results = asyncio.run(run())
    assert results[:3] == [("typing", None)] * 3
    assert results[3:] == [("chat is busy, try again later", 4429)] * 2
    # a session that already has its lead comes back freely
    assert asyncio.run(start(0)) != ("chat is busy, try again later", 4429)
    leads = served.count(col.LEADS, lambda d: "capped_session" in json.dumps(d))
    assert leads == 3


def test_public_pages_answer_429_with_retry_after(serve: Callable[..., Served]) -> None:
    served = serve(RATE_LIMIT_PUBLIC_PER_MINUTE="30")
    with httpx.Client(base_url=served.base, timeout=10) as client:
        codes = [client.get("/chat/config") for _ in range(60)]
    assert [r.status_code for r in codes[:30]] == [200] * 30
    assert {r.status_code for r in codes[30:]} == {429}
    assert all(int(r.headers["Retry-After"]) >= 1 for r in codes[30:])
