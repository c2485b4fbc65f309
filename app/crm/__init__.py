"""CRM sync, the app side: lead snapshots, the durable sync queue (idempotency keys, backoff, circuit
breaker, dead letter), triggers from turns, the review queue, and inbound CRM webhooks.

The vendor logic lives in :mod:`crm_sync` (adapters, mapping, webhook verification); this package
decides when a lead is written, writes it through the connection's authorised client, and records
what happened (``crm_sync_logs``, ``crm_webhook_logs``).
"""
