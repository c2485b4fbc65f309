"""Structured logs (structlog), with secrets redacted before anything is written.

Every log call goes through :func:`redact_secrets`: values of keys that look like credentials
(token, secret, password, authorization, api_key, ...) are replaced, whatever their nesting.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["configure_logging", "get_logger", "redact_secrets"]

_SECRET_KEY = re.compile(r"(token|secret|password|passwd|authorization|api_?key|signature|cookie)", re.I)
REDACTED = "[redacted]"


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (REDACTED if _SECRET_KEY.search(str(k)) else _redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(v) for v in value)
    return value


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: blank out credential-looking keys at any depth."""
    for key in list(event_dict):
        if key != "event" and _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(event_dict[key])
    return event_dict


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to whatever ``sys.stderr`` is at the time of the write (test captures swap it)."""

    @property  # type: ignore[override,unused-ignore]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


#: Library loggers that a library's own logging config may give handlers of their own.
_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def configure_logging(*, level: str = "INFO", fmt: str = "console") -> None:
    """Configure structlog and the stdlib root logger once per process.

    Every line comes out in one format: structlog's own and those of third-party libraries logging
    through :mod:`logging` (httpx, uvicorn, aiosmtplib...), which go through the same timestamp,
    redaction and renderer (JSON lines with ``fmt="json"``, with their ``logger`` name)."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    # JSON lines carry a traceback as the text of an ``exception`` key (the console renderer
    # prints it itself); never the frames' local variables, which may hold credentials
    tracebacks: list[Any] = [structlog.processors.format_exc_info] if fmt == "json" else []
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.stdlib.add_log_level,
                structlog.stdlib.ExtraAdder(),
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                redact_secrets,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tracebacks, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in _OWN_HANDLERS:
        # uvicorn's default logging config (a server started without ``log_config=None``) gives
        # these loggers handlers of their own and stops them propagating: back through ours
        library = logging.getLogger(name)
        library.handlers = []
        library.propagate = True
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *tracebacks,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A structlog logger with ``component=name``; lazy, so it follows :func:`configure_logging` even
    when created at import time."""
    return structlog.get_logger(component=name)
