"""Connections: the credential layer (``crm_sync``) wired over the store.

:func:`build_connection_services` builds everything; see :mod:`app.connections.services`.
"""

from app.connections.repository import StoreConnectionRepository
from app.connections.services import ConnectionServices, build_connection_services

__all__ = ["ConnectionServices", "StoreConnectionRepository", "build_connection_services"]
