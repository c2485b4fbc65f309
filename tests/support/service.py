"""``leadwarm serve`` as a real process for tests: its environment, start, kill and stop.

Each service runs in its own process group (so a kill reaches uvicorn's children) and writes its
log to a file (a pipe could fill up and block it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port

__all__ = ["LEADWARM", "Service", "service_env"]

LEADWARM = str(Path(sys.executable).parent / "leadwarm")
_OURS = ("WHATSAPP", "LEADWARM", "ADMIN", "STORE", "FIREBASE", "FIRESTORE", "GOOGLE", "WORKER", "JOB")


def service_env(
    *,
    data_dir: Path,
    graph_url: str,
    store: dict[str, Any],
    admin_key: str,
    whatsapp: dict[str, str],
    **overrides: str,
) -> dict[str, str]:
    """The process environment: this machine's, without our own settings, plus the store fields
    (``{"store": "firestore", ...}``), the WhatsApp settings pointed at ``graph_url``, and ``overrides``
    (upper-case setting names)."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(_OURS)},
        **{k.upper(): str(v) for k, v in store.items()},
        **{k.upper(): v for k, v in whatsapp.items()},
        "LEADWARM_DATA_DIR": str(data_dir),
        "ADMIN_API_KEY": admin_key,
        "WHATSAPP_API_BASE_URL": graph_url,
        "WORKER_POLL_INTERVAL": "0.1",
        "LOG_LEVEL": "WARNING",
        **overrides,
    }


@dataclass
class Service:
    """One running ``leadwarm serve``; ``base`` is its URL."""

    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    @classmethod
    def start(cls, env: dict[str, str], log: Path, *args: str, deadline_s: float = 60.0) -> Service:
        """Start it and wait until ``/health`` answers 200. Raises ``RuntimeError`` with the log's tail."""
        port = free_port()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [LEADWARM, "serve", "--port", str(port), *args],
                env=env,
                start_new_session=True,
                stdout=out,  # structlog prints to stdout
                stderr=subprocess.STDOUT,
            )
        service = cls(proc, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"service exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{service.base}/health", timeout=1).status_code == 200:
                    return service
            except httpx.HTTPError:
                time.sleep(0.1)
        service.kill()
        raise RuntimeError(f"service did not become healthy: {log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the whole group: no shutdown hook runs."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL after 15 s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
