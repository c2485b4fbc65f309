"""The whole service on 127.0.0.1 (uvicorn on an ephemeral port, in a thread with its own event
loop, worker running), for browser tests. ``call()`` runs a coroutine on the server's loop, so a
test can act on the same runtime (a lead writing in) without sharing the store across loops."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvicorn

from app.composition import Runtime
from app.main import create_app

__all__ = ["LiveServer"]

T = TypeVar("T")


class LiveServer:
    """``LiveServer(runtime).start()``; ``base`` is its URL; ``stop()`` shuts it down and closes the store."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.loop = asyncio.new_event_loop()
        config = uvicorn.Config(
            create_app(runtime=runtime, start_worker=True),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="leadwarm-live", daemon=True)
        self.base = ""

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.serve())
            self.loop.run_until_complete(self.runtime.channels.aclose())
            self.loop.run_until_complete(self.runtime.store.close())
        finally:
            self.loop.close()

    def start(self, *, deadline_s: float = 60.0) -> LiveServer:
        """Start and wait until it listens. Raises ``RuntimeError`` when it does not within the deadline."""
        self.thread.start()
        deadline = time.monotonic() + deadline_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    def call(self, coro: Coroutine[Any, Any, T], *, timeout_s: float = 20.0) -> T:
        """Run ``coro`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def stop(self) -> None:
        """Graceful shutdown (lifespan stops the worker), then the store is closed."""
        self.server.should_exit = True
        self.thread.join(timeout=30)
