"""The project's base exception."""

from __future__ import annotations

__all__ = ["LeadWarmError"]


class LeadWarmError(Exception):
    """Base of every error LeadWarm raises on purpose (channel, playbook, store, integration...).

    Catch it to tell our own, expected failures from bugs. Messages never contain credentials.
    """
