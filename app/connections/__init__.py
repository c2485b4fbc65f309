"""Connections: the store-backed repository of the credential layer (``crm_sync``)."""

from app.connections.repository import StoreConnectionRepository

__all__ = ["StoreConnectionRepository"]
