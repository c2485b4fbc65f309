"""One recording HTTP server on 127.0.0.1 that the providers' fakes build on.

It records every request (method, path, headers, raw body, JSON or form decoded) and answers
:class:`Reply` objects: the queued :attr:`RecordingServer.replies` first-in first-out, else what
:meth:`RecordingServer.respond` says (a subclass overrides it: Twilio's Messages resource, OpenAI's
chat completions...). A reply may wait ``delay_s`` first, to outlast a client's timeout; closing the
server cuts such waits short. Stands in for a provider's API where the test must see the exact
request (the vendor's spec is checked separately with Prism).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["Recorded", "RecordingServer", "Reply"]


@dataclass
class Recorded:
    """A request as received. ``body`` is the decoded JSON (``None`` when the body is not JSON);
    ``form`` the decoded ``application/x-www-form-urlencoded`` body (last value wins); ``sid`` the
    id of the resource a fake created for it (Twilio's ``SM...``), if any."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes = b""
    body: Any = None
    form: dict[str, str] = field(default_factory=dict)
    sid: str | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The JSON body's ``messages`` list (chat-completion requests)."""
        return list((self.body or {}).get("messages", [])) if isinstance(self.body, dict) else []


@dataclass
class Reply:
    """An answer: ``body`` is JSON-encoded unless it is bytes; sent after ``delay_s`` seconds."""

    status: int = 200
    body: Any = field(
        default_factory=lambda: {"messaging_product": "whatsapp", "messages": [{"id": "wamid.REC"}]}
    )
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def _decode(headers: dict[str, str], raw: bytes) -> tuple[Any, dict[str, str]]:
    kind = headers.get("content-type", "")
    if "x-www-form-urlencoded" in kind:
        return None, dict(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
    if not raw:
        return None, {}
    try:
        return json.loads(raw), {}
    except ValueError:
        return None, {}


class RecordingServer:
    """The server. ``base_url`` is ``http://127.0.0.1:<port>`` plus ``path_prefix``; ``keep_alive``
    speaks HTTP/1.1 with persistent connections (else HTTP/1.0, one connection per request)."""

    def __init__(self, *, path_prefix: str = "", keep_alive: bool = False) -> None:
        self.requests: list[Recorded] = []
        self.replies: list[Reply] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                body, form = _decode(headers, raw)
                request = Recorded(self.command, self.path, headers, raw, body, form)
                with outer._lock:
                    outer.requests.append(request)
                reply = outer.respond(request)
                if reply.delay_s and outer._closing.wait(reply.delay_s):
                    return
                payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout): nothing to do

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}{path_prefix}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def take_queued(self) -> Reply | None:
        """The next queued reply, or ``None``."""
        with self._lock:
            return self.replies.pop(0) if self.replies else None

    def respond(self, request: Recorded) -> Reply:
        """The answer to ``request`` (a subclass overrides it): the next queued reply, else
        WhatsApp's 200."""
        return self.take_queued() or Reply()

    def close(self) -> None:
        """Stop serving (waits in progress are cut short)."""
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
