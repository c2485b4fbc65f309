"""The adapter registry: one class per provider, each with the CrmAdapter methods."""

from __future__ import annotations

import inspect

from crm_sync.crm import ADAPTERS


def test_registry_names_every_crm_and_each_has_the_contract():
    assert set(ADAPTERS) == {"gohighlevel", "hubspot", "pipedrive", "salesforce", "webhook"}
    for provider, cls in ADAPTERS.items():
        assert cls.provider == provider
        for method in ("upsert_lead", "record_activity", "test_connection"):
            assert inspect.iscoroutinefunction(getattr(cls, method)), (provider, method)
        assert cls.__doc__ and "request" in (inspect.getmodule(cls).__doc__ or "")
