"""Keeping credentials out of third-party log lines.

httpx logs every request's full URL at INFO (``HTTP Request: GET https://...``); a credential that
a provider takes in the URL (a query-string API key, HubSpot's token-in-path revocation) would
land in the logs. :func:`redacting` marks the secrets of the request under way (a context
variable, so concurrent tasks do not mix), and the filter :func:`install_log_redaction` puts on
the ``httpx`` and ``httpcore`` loggers replaces them with ``***`` before any handler sees the
record.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from contextvars import ContextVar

__all__ = ["install_log_redaction", "redacting", "scrub"]

_IN_FLIGHT: ContextVar[tuple[str, ...]] = ContextVar("crm_sync_secrets_in_flight", default=())
_LOGGERS = ("httpx", "httpcore")


def scrub(text: str, values: Iterable[str]) -> str:
    """``text`` with every value of 4 characters or more replaced by ``***``."""
    for value in values:
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


@contextlib.contextmanager
def redacting(values: Iterable[str]) -> Iterator[None]:
    """Within the block (in this task), the given secrets are scrubbed from httpx/httpcore logs."""
    token = _IN_FLIGHT.set(_IN_FLIGHT.get() + tuple(v for v in values if v))
    try:
        yield
    finally:
        _IN_FLIGHT.reset(token)


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        values = _IN_FLIGHT.get()
        if values:
            try:
                message = record.getMessage()
            except (TypeError, ValueError):
                return True
            record.msg = scrub(message, values)
            record.args = None
        return True


_FILTER = _RedactFilter()


def install_log_redaction() -> None:
    """Attach the filter to the ``httpx`` and ``httpcore`` loggers (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


install_log_redaction()
