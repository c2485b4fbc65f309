"""One adapter per CRM, each over an :class:`~crm_sync.base.ApiClient`, and the registry.

``ADAPTERS`` maps a provider name (as in the connection catalog) to its adapter class. Every class
takes the connection's client first and keyword-only options after it::

    adapter = ADAPTERS["hubspot"](client)
    ids = await adapter.upsert_lead(lead)

The webhook adapter also needs its signing secret (``secret=...``, from the vault).
"""

from __future__ import annotations

from crm_sync.base import CrmAdapter
from crm_sync.crm._common import AdapterConfigError
from crm_sync.crm.gohighlevel import GoHighLevelAdapter
from crm_sync.crm.hubspot import HubSpotAdapter
from crm_sync.crm.pipedrive import PipedriveAdapter
from crm_sync.crm.salesforce import SalesforceAdapter
from crm_sync.crm.webhook import WebhookAdapter, WebhookSignatureError, sign_payload, verify_signature

__all__ = [
    "ADAPTERS",
    "AdapterConfigError",
    "GoHighLevelAdapter",
    "HubSpotAdapter",
    "PipedriveAdapter",
    "SalesforceAdapter",
    "WebhookAdapter",
    "WebhookSignatureError",
    "sign_payload",
    "verify_signature",
]

#: ``{provider: adapter class}``; the provider names are the catalog's.
ADAPTERS: dict[str, type[CrmAdapter]] = {
    "gohighlevel": GoHighLevelAdapter,
    "hubspot": HubSpotAdapter,
    "pipedrive": PipedriveAdapter,
    "salesforce": SalesforceAdapter,
    "webhook": WebhookAdapter,
}
