"""One adapter per CRM, each over an :class:`~crm_sync.base.ApiClient`, and the registry.

``ADAPTERS`` maps a provider name (as in the connection catalog) to its adapter class. Every class
takes the connection's client first and keyword-only options after it::

    adapter = ADAPTERS["hubspot"](client)
    ids = await adapter.upsert_lead(lead)

The webhook adapter also needs its signing secret (``secret=...``, from the vault).

What the app supplies in ``LeadSnapshot.options`` (all optional unless marked):

============  =====================================================================================
provider      options
============  =====================================================================================
gohighlevel   ``pipeline_id`` (no opportunity without it), ``stage_id``, ``workflow_id``,
              ``monetary_value``, ``assigned_to``, ``deal_name``, ``location_id`` (only when the
              connection's account has no ``locationId``)
hubspot       ``pipeline_id`` (default ``default``), ``stage_id`` (default
              ``appointmentscheduled``), ``deal_amount``, ``owner_id``, ``deal_name``, ``deals``
              (``False``: no deal)
pipedrive     ``pipeline_id``, ``stage_id`` (integers), ``deal_value``, ``currency``, ``owner_id``,
              ``deal_name``
salesforce    ``object`` (``lead``, default, or ``contact`` for Contact + Opportunity),
              ``external_id_field`` (e.g. ``LeadWarm_Id__c``: 1 request per lead),
              ``opportunity_external_id_field``, ``stage_name`` (default ``Prospecting``),
              ``close_in_days`` (default 30), ``company`` (a Lead's required Company when the lead
              gave none), ``lead_source``, ``owner_id``, ``deal_amount``, ``deal_name``,
              ``api_version`` (else ``client.account["api_version"]``, else ``v60.0``)
webhook       ``url`` (only when the connection's account has no ``url``)
============  =====================================================================================

``LeadSnapshot.fields`` is the tenant's mapping already applied (:mod:`crm_sync.mapping`): plain
keys are contact properties, ``deal.<name>`` keys deal properties; when it is empty each adapter
applies :func:`crm_sync.mapping.default_mapping`. ``LeadSnapshot.remote_ids`` is what the last
sync returned (:meth:`crm_sync.base.RemoteIds.as_dict`), so the next one updates.
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
