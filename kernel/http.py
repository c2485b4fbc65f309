"""Reading what an HTTP server asks of its clients."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

__all__ = ["parse_retry_after"]

#: Longest wait we honour (seconds): a server asking for more is treated as asking for this.
MAX_RETRY_AFTER_S = 3600.0


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """The wait a response asks for, in seconds, or ``None`` when it asks none.

    Reads ``retry-after-ms`` (OpenAI's milliseconds), then ``retry-after`` as delta-seconds or an
    HTTP-date (RFC 9110 section 10.2.3). ``headers`` must be case-insensitive or lower-case
    (httpx's ``Headers`` are). ``now`` (epoch seconds, UTC) anchors an HTTP-date; default: the
    system clock. The result is clamped to ``0 .. MAX_RETRY_AFTER_S``; unreadable values give
    ``None``. Never raises.
    """
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        seconds = _number(raw_ms)
        if seconds is not None:
            return _clamp(seconds / 1000)
    raw = (headers.get("retry-after") or "").strip()
    if not raw or len(raw) > 64:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return _clamp(seconds)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return _clamp(when.timestamp() - (time.time() if now is None else now))


def _number(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _clamp(seconds: float) -> float:
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))
