"""The ingest job a group commit enqueues (issue 15): written once while it is pending and due (a
burst does not rewrite it in every commit), written again (a new generation) when it is leased
so that it runs once more, and every entry of the burst consumed into the inbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.jobs.queue import job_doc_id
from app.main import create_app
from app.messaging.ingest_log import INGEST_JOB_KEY
from app.tenancy.bootstrap import bootstrap
from tests.app.conftest import make_settings, sign, text_webhook

WEBHOOK = "/api/webhooks/whatsapp"
JOB = job_doc_id("ingest", INGEST_JOB_KEY)


async def test_a_pending_ingest_job_is_not_rewritten_and_a_leased_one_is(tmp_path: Path) -> None:
    rt = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9"))
    await bootstrap(rt)

    async def job() -> dict[str, Any] | None:
        return await rt.store.get("demo", "jobs", JOB)

    async with AsyncTestClient(app=create_app(runtime=rt, start_worker=False)) as client:
        for i in range(3):
            body = text_webhook("Hello", wamid=f"wamid.ENQ{i}")
            assert (await client.post(WEBHOOK, content=body, headers=sign(body))).status_code == 200
            if i == 0:
                first = await job()
                assert first is not None and first["status"] == "pending"
        assert await job() == first  # pending and due: the later commits left it as it was
        leased = [j for j in await rt.jobs.lease_due(limit=64) if j.id == JOB]
        assert len(leased) == 1
        body = text_webhook("Hello", wamid="wamid.ENQ3")
        assert (await client.post(WEBHOOK, content=body, headers=sign(body))).status_code == 200
        during = await job()
        assert during is not None and during["status"] == "leased"
        assert (
            first is not None and during["generation"] == first["generation"] + 1
        )  # runs again once its holder is done
        await rt.jobs.release(leased)
        await rt.worker.drain()
        inbox = {d.data["provider_message_id"] for d in await rt.store.query("demo", "inbox")}
        assert inbox == {f"wamid.ENQ{i}" for i in range(4)}
    await rt.channels.aclose()
    await rt.store.close()
