"""Booking: the built-in calendar's ledger in the store (more of the capability lands here)."""

from app.booking.ledger import StoreBookingLedger

__all__ = ["StoreBookingLedger"]
