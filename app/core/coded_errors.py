"""Refusals with a stable code, so a page can say them in its reader's language.

An API refusal keeps its English ``detail`` (for API users) and adds ``code`` and ``params``
(a dict of str/number values): :func:`bad_request` answers ``400`` (:func:`refusal` any status)
with ``{"status_code": 400, "detail": ..., "extra": {"code": ..., "params": {...}}}``, and a field
error list (``PUT /api/v1/settings``) carries ``code``/``params`` on each entry. The dashboard's
words for the codes are ``err_<code>`` in :mod:`app.dashboard.i18n_errors`.
"""

from __future__ import annotations

from typing import Any

from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_400_BAD_REQUEST

from kernel.errors import LeadWarmError

__all__ = ["CodedError", "bad_request", "refusal"]


class CodedError(LeadWarmError):
    """An expected failure whose English message comes with a stable ``code`` (``None``: none yet)
    and its ``params`` (str or number values)."""

    def __init__(self, message: str, code: str | None = None, **params: str | int | float) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


def refusal(
    status_code: int, detail: str, code: str | None = None, params: dict[str, Any] | None = None
) -> HTTPException:
    """An HTTP error ``status_code`` (4xx) with ``detail`` and, when ``code`` is given,
    ``extra: {code, params}``."""
    extra = {"code": code, "params": params or {}} if code else None
    return HTTPException(status_code=status_code, detail=detail, extra=extra)


def bad_request(detail: str, code: str | None = None, params: dict[str, Any] | None = None) -> HTTPException:
    """A 400 with ``detail`` and, when ``code`` is given, ``extra: {code, params}``."""
    return refusal(HTTP_400_BAD_REQUEST, detail, code, params)
