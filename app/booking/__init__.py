"""Booking: meetings on the tenant's calendar from a playbook's ``book`` step.

- :mod:`app.booking.calendar`: the tenant's calendar settings, the provider they name (the built-in
  calendar over :class:`StoreBookingLedger` by default; Google, GoHighLevel, Cal.com, Calendly over
  the tenant's connection) and the engine's ``SlotSource`` port over it;
- :mod:`app.booking.service`: the ``booking`` and ``reminder`` job kinds (book, move, cancel,
  invitation, reminders, changes from webhooks);
- :mod:`app.booking.routes` and :mod:`app.booking.webhooks`: the API and the calendar webhooks;
- :mod:`app.booking.plugin`: the feature.
"""

from app.booking.ledger import StoreBookingLedger

__all__ = ["StoreBookingLedger"]
