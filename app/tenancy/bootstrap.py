"""First-run setup of the default tenant: profile, demo playbooks and knowledge, admin key, routes.

Idempotent: run at every start; it only fills what is missing. Several processes may start at
once on an empty store (a deployment of N instances): the one that saves a demo playbook second
finds the same version saved and goes on. A generated admin key is printed
once and kept in ``LEADWARM_DATA_DIR/admin-api-key.<tenant>.txt`` (mode 0600).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from app.ai.knowledge.demo import DEMO_AI_CONFIG, DEMO_QA
from app.authoring.repository import PlaybookVersionExistsError
from app.composition import Runtime
from app.store import collections as col
from app.tenancy.directory import new_api_key, write_key_file
from app.tenancy.records import TenantProfile
from playbooks import LIBRARY_DIR

__all__ = ["BootstrapResult", "bootstrap"]

DEMO_PLAYBOOK_EN = "solar-qualification-en"
DEMO_PLAYBOOK_FR = "renovation-qualification-fr"


@dataclass(slots=True)
class BootstrapResult:
    """What bootstrap did: ``generated_key`` is set only when a key was just created."""

    tenant_id: str
    created_tenant: bool
    generated_key: str | None = None
    key_file: str | None = None


async def bootstrap(runtime: Runtime) -> BootstrapResult:
    """Make sure the default tenant exists and can be used; see the module docstring."""
    settings, tenants = runtime.settings, runtime.tenants
    tenant_id = settings.default_tenant_id
    result = BootstrapResult(tenant_id=tenant_id, created_tenant=False)
    if not await tenants.exists(tenant_id):
        result.created_tenant = True
        profile = TenantProfile(
            id=tenant_id,
            name=settings.default_tenant_name,
            default_language="en",
            timezone=settings.default_timezone,
            default_region=settings.default_region,
            created_at=runtime.clock.now(),
        )
        if settings.seed_demo:
            for path in sorted(LIBRARY_DIR.glob("*.yaml")):
                # another process starting on the same empty store may have saved it first
                with contextlib.suppress(PlaybookVersionExistsError):
                    text = path.read_text(encoding="utf-8")
                    await runtime.playbooks.save(tenant_id, text, origin=path.name)
            profile.default_playbook = DEMO_PLAYBOOK_EN
            profile.playbooks_by_language = {"en": DEMO_PLAYBOOK_EN, "fr": DEMO_PLAYBOOK_FR}
            await runtime.knowledge.save(tenant_id, list(DEMO_QA))
            await runtime.store.set(tenant_id, col.AI_CONFIG, "default", dict(DEMO_AI_CONFIG))
        await tenants.save_profile(profile)
    if settings.admin_api_key is not None:
        await tenants.add_api_key(tenant_id, settings.admin_api_key.get_secret_value(), label="ADMIN_API_KEY")
    elif not await tenants.has_api_key(tenant_id):
        key = new_api_key()
        await tenants.add_api_key(tenant_id, key, label="generated")
        result.generated_key = key
        result.key_file = str(write_key_file(settings.leadwarm_data_dir, tenant_id, key))
    for name in runtime.channels.names():
        for address in runtime.channels.get(tenant_id, name).receiving_addresses():
            owner = await tenants.route(name, address)
            if owner is None:
                await tenants.set_route(name, address, tenant_id)
    return result
