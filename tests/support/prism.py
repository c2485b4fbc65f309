"""Stoplight Prism mock servers for vendor OpenAPI specs, on 127.0.0.1, for tests.

``tools/package.json`` pins ``@stoplight/prism-cli``; ``npm ci --prefix tools`` installs it.
Prism answers a valid request with 2xx and the spec's example, a request that breaks the spec
with 422, a request without the required auth with 401, and serves paths without the spec's
server path prefix. ``Prefer: code=NNN`` picks a response the spec declares (an undeclared code
gives 404).

Usage::

    with start_prism(spec_path) as prism:
        httpx.get(prism.base_url + "/v23.0/...")
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from tests.support.ports import free_port

__all__ = ["PRISM_BIN", "PrismError", "PrismServer", "start_prism"]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The pinned Prism binary; ``LEADWARM_PRISM_BIN`` overrides it.
PRISM_BIN = Path(
    os.environ.get("LEADWARM_PRISM_BIN", REPO_ROOT / "tools" / "node_modules" / ".bin" / "prism")
)


class PrismError(RuntimeError):
    """Prism is not installed or did not start."""


@dataclass
class PrismServer:
    """A running ``prism mock``: ``base_url`` is ``http://127.0.0.1:PORT`` (no trailing slash)."""

    base_url: str
    process: subprocess.Popen[bytes]
    log: IO[bytes] = field(repr=False)

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop Prism's whole process group (SIGTERM, then SIGKILL after ``timeout_s`` seconds)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout_s)
        self.log.close()

    def output(self) -> str:
        """Everything Prism printed so far (for failure messages)."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def __enter__(self) -> PrismServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _launch(spec_path: Path, host: str, port: int, timeout_s: float) -> PrismServer | None:
    """Start Prism on ``port``; ``None`` when it exited early (port taken); raises on timeout."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by PrismServer.stop
    process = subprocess.Popen(
        [str(PRISM_BIN), "mock", "-h", host, "-p", str(port), str(spec_path)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: stop() kills node and its children
    )
    server = PrismServer(base_url=f"http://{host}:{port}", process=process, log=log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = server.output()
            server.stop()
            if "EADDRINUSE" in output:
                return None
            raise PrismError(f"prism exited with {process.returncode} before listening:\n{output[-4000:]}")
        if _accepts(host, port):
            return server
        time.sleep(0.1)
    output = server.output()
    server.stop()
    raise PrismError(
        f"prism did not accept connections on {host}:{port} within {timeout_s} s:\n{output[-4000:]}"
    )


def start_prism(
    spec_path: Path, *, host: str = "127.0.0.1", timeout_s: float = 30.0, attempts: int = 3
) -> PrismServer:
    """Start ``prism mock -h HOST -p PORT SPEC`` on a free port and wait until it accepts connections.

    Waits at most ``timeout_s`` seconds per attempt; tries a new port (up to ``attempts`` times)
    when the chosen one was taken meanwhile. Raises :class:`PrismError` when the binary is
    missing (run ``npm ci --prefix tools``), the spec does not exist, or Prism does not start.
    """
    if not PRISM_BIN.exists():
        raise PrismError(f"Prism is not installed at {PRISM_BIN}: run `npm ci --prefix tools` in {REPO_ROOT}")
    if not spec_path.is_file():
        raise PrismError(f"OpenAPI spec not found: {spec_path}")
    for _ in range(attempts):
        server = _launch(spec_path, host, free_port(host), timeout_s)
        if server is not None:
            return server
    raise PrismError(f"prism could not bind a free port on {host} after {attempts} attempts")
