"""A committed turn wakes this process's sleeping worker only for jobs due before it planned to
wake: now for an outbox to dispatch, a timer's or a planned job's due time otherwise, never for a
cancelled timer."""

from __future__ import annotations

import json

from app.composition import Runtime
from app.conversations.planning import PlannedJob, TimerChange, TurnPlan
from app.conversations.records import Conversation, Lead
from app.conversations.service import earliest_job_due
from app.messaging.records import OutboxItem

NOW = 1_000.0


def _plan() -> TurnPlan:
    conv = Conversation(
        id="cv_1",
        tenant_id="t1",
        lead_id="ld_1",
        channel="webchat",
        address="s1",
        playbook_id="pb",
        playbook_version=1,
    )
    return TurnPlan(conversation=conv, lead=Lead(id="ld_1", tenant_id="t1"))


def _outbox() -> OutboxItem:
    return OutboxItem(
        id="cv_1:1",
        lead_id="ld_1",
        conversation_id="cv_1",
        message_id="m1",
        channel="webchat",
        to="s1",
        text="hi",
    )


def test_a_wait_timer_alone_wakes_the_worker_at_its_due_time() -> None:
    plan = _plan()
    assert earliest_job_due(plan, NOW) is None  # nothing enqueued: no wake-up
    plan.timer = TimerChange("cancel", timer_id="tm_1")
    assert earliest_job_due(plan, NOW) is None  # a cancelled timer enqueues nothing
    plan.timer = TimerChange("set", timer_id="tm_1", due_at=NOW + 86_400)
    assert earliest_job_due(plan, NOW) == NOW + 86_400
    plan.jobs.append(PlannedJob(kind="reminder", key="bk_1", due_at=NOW + 3_600))
    assert earliest_job_due(plan, NOW) == NOW + 3_600
    plan.outbox.append(_outbox())
    assert earliest_job_due(plan, NOW) == NOW  # a reply to dispatch: at once


async def test_a_turn_with_a_reply_wakes_the_worker_for_now(runtime: Runtime) -> None:
    frame = json.dumps(
        {"type": "message", "id": "w1", "text": "Hi, I'd like a quote for solar panels"}
    ).encode()
    for message in runtime.webchat().parse({"x-session-id": "wake_1"}, frame).messages:
        assert await runtime.accept("demo", message)
    asked: list[float | None] = []
    notify = runtime.jobs.notify

    def spy(*, due_at: float | None = None) -> None:
        asked.append(due_at)
        notify(due_at=due_at)

    runtime.jobs.notify = spy  # type: ignore[method-assign]
    before = runtime.clock.now()
    await runtime.worker.drain()
    turn_wakeups = [due for due in asked if due is not None]
    assert turn_wakeups, asked  # the turn's commit asked for a wake-up for its dispatch job...
    assert all(before <= due <= runtime.clock.now() for due in turn_wakeups)  # ...due now
