"""The webhook hot path (issue 15): the per-client GCRA budget, and the WhatsApp POST answered by
the route middleware of :mod:`app.messaging.webhooks.direct` with every guarantee of the pipeline:
stored before 200, duplicates by provider message id, 401 on a bad signature, 400-class refusals
with a reason, 413 past the body limit, request id and security headers on the answer."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import AsyncTestClient

from app.composition import Runtime
from app.main import create_app
from app.ops.limits import Budget
from app.store.sqlite import SQLiteStore
from app.tenancy.bootstrap import bootstrap
from channels.registry import channel_class
from tests.app.conftest import make_settings, sign, text_webhook


async def _logged(rt: Runtime) -> int:
    """Entries in the demo tenant's ingest log (the embedded store's)."""
    assert isinstance(rt.store, SQLiteStore)
    return await rt.store.log_size("demo")


class Ticks:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_budget_allows_a_burst_then_one_request_per_interval() -> None:
    ticks = Ticks()
    budget = Budget("webhooks", ("/api/webhooks",), 3, 1.0, clock=ticks)
    assert [budget.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # a burst of `limit`
    wait = budget.take("a")
    assert 0.3 < wait <= 1 / 3 + 1e-9  # the next slot is one interval away
    assert budget.take("b") == 0.0  # per client
    ticks.t += wait
    assert budget.take("a") == 0.0
    assert budget.take("a") > 0
    ticks.t += 10  # idle: the bucket fills again, to `limit` and no more
    assert [budget.take("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]
    assert budget.take("a") > 0


async def test_whatsapp_post_keeps_every_guarantee_on_the_direct_path(tmp_path: Path) -> None:
    rt = Runtime.build(make_settings(tmp_path / "data", "http://127.0.0.1:9"))
    await bootstrap(rt)
    async with AsyncTestClient(app=create_app(runtime=rt, start_worker=False)) as client:
        body = text_webhook("Hello", wamid="wamid.HOT1")
        first = await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
        assert (first.status_code, first.json()) == (200, {"messages": 1, "duplicates": 0, "statuses": 0})
        assert first.headers["content-type"].startswith("application/json")
        assert len(first.headers["x-request-id"]) >= 8  # the app's middlewares still wrap the route
        assert first.headers["x-content-type-options"] == "nosniff"
        assert await _logged(rt) == 1  # stored before the 200
        again = await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
        assert again.json() == {"messages": 0, "duplicates": 1, "statuses": 0}
        assert await _logged(rt) == 1

        forged = await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body, "wrong"))
        assert (forged.status_code, forged.json()) == (401, {"error": "invalid signature"})

        limit = channel_class("whatsapp").traits.max_body_bytes
        huge = b'{"object":"whatsapp_business_account","entry":[' + b" " * limit + b"]}"
        too_big = await client.post("/api/webhooks/whatsapp", content=huge, headers=sign(huge))
        assert too_big.status_code == 413 and str(limit) in too_big.json()["reason"]
        absurd = {**sign(body), "content-length": "9" * 5000}  # int() would refuse 5,000 digits
        assert (await client.post("/api/webhooks/whatsapp", content=body, headers=absurd)).status_code == 413

        garbage = b"not json"
        kept = await client.post("/api/webhooks/whatsapp", content=garbage, headers=sign(garbage))
        assert kept.status_code == 200 and kept.json()["quarantined"]  # signed, unparseable: kept
        assert await _logged(rt) == 1

        # the GET handshake is the route's own handler, untouched by the POST's middleware
        handshake = await client.get("/api/webhooks/whatsapp", params={"hub.mode": "subscribe"})
        assert handshake.status_code == 403
    await rt.channels.aclose()
    await rt.store.close()


async def test_webhooks_past_their_budget_get_429_with_a_time_to_wait(tmp_path: Path) -> None:
    rt = Runtime.build(
        make_settings(tmp_path / "data", "http://127.0.0.1:9", rate_limit_webhooks_per_second=1)
    )
    await bootstrap(rt)
    async with AsyncTestClient(app=create_app(runtime=rt, start_worker=False)) as client:
        statuses, retry = [], []
        for i in range(4):  # one a second allowed: four at once cannot all pass
            body = text_webhook("Hi", wamid=f"wamid.RL{i}")
            response = await client.post("/api/webhooks/whatsapp", content=body, headers=sign(body))
            statuses.append(response.status_code)
            if response.status_code == 429:
                retry.append(int(response.headers["retry-after"]))
                assert response.headers["ratelimit-remaining"] == "0"
        assert statuses[0] == 200 and 429 in statuses
        assert all(r >= 1 for r in retry)
        assert await _logged(rt) == statuses.count(200)  # refused ones not stored
        health = [(await client.get("/health")).status_code for _ in range(5)]
        assert set(health) == {200}  # not on that budget
    await rt.channels.aclose()
    await rt.store.close()
