"""Two processes starting at once on an empty store: first-run setup must not kill either."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.composition import Runtime
from app.tenancy.bootstrap import DEMO_PLAYBOOK_EN, bootstrap
from tests.app.conftest import make_settings
from tests.support.recording import RecordingServer


async def test_concurrent_first_runs_both_finish(tmp_path: Path, graph: RecordingServer) -> None:
    settings = make_settings(tmp_path / "data", graph.base_url)
    first, second = Runtime.build(settings), Runtime.build(settings)
    try:
        results = await asyncio.gather(bootstrap(first), bootstrap(second), return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)], results
        profile = await first.tenants.profile(settings.default_tenant_id)
        assert profile.default_playbook == DEMO_PLAYBOOK_EN
        saved = await first.playbooks.versions(settings.default_tenant_id, DEMO_PLAYBOOK_EN)
        assert len(saved) == 1  # one version, saved once
    finally:
        for rt in (first, second):
            await rt.channels.aclose()
            await rt.store.close()
