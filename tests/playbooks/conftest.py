"""Shared helpers for the playbook tests: a fixed clock and a small conversation driver."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from playbooks import (
    ConversationState,
    EngineResult,
    InboundEvent,
    Playbook,
    Ports,
    RuleInterpreter,
    SendMessage,
    StartEvent,
    TimerFiredEvent,
    advance,
    load_library,
    new_state,
)

PARIS = "Europe/Paris"
# Monday 23 November 2026, 10:00 in Paris.
MONDAY_10AM = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo(PARIS)).timestamp()


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = MONDAY_10AM) -> None:
        self.value = now

    def now(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


def simple_detector(text: str) -> str | None:
    """A tiny language guesser for tests: French cue words -> 'fr'."""
    words = set(text.lower().replace("'", " ").replace(",", " ").split())
    french = {"bonjour", "je", "suis", "oui", "non", "merci", "propriétaire", "voudrais", "est", "une", "des"}
    return "fr" if words & french else None


class Conversation:
    """Drives one conversation through the engine, keeping the state between turns."""

    def __init__(
        self, playbook: Playbook, *, ports: Ports, clock: FakeClock, state: ConversationState
    ) -> None:
        self.playbook = playbook
        self.ports = ports
        self.clock = clock
        self.state = state
        self.results: list[EngineResult] = []

    @property
    def last(self) -> EngineResult:
        return self.results[-1]

    async def _apply(self, event: Any) -> EngineResult:
        result = await advance(self.playbook, self.state, event, self.ports)
        self.state = result.state
        self.results.append(result)
        return result

    async def start(self, text: str | None = None, trigger: str = "lead_created") -> EngineResult:
        return await self._apply(StartEvent(trigger=trigger, text=text))  # type: ignore[arg-type]

    async def say(self, text: str, choice_id: str | None = None) -> EngineResult:
        return await self._apply(InboundEvent(text=text, choice_id=choice_id))

    async def fire(self, timer_id: str | None = None) -> EngineResult:
        timer_id = timer_id or (self.state.timer.id if self.state.timer else "none")
        return await self._apply(TimerFiredEvent(timer_id=timer_id))

    def texts(self, result: EngineResult | None = None) -> list[str]:
        result = result or self.last
        return [a.text for a in result.actions if isinstance(a, SendMessage)]

    def all_actions(self, kind: type) -> list[Any]:
        return [a for r in self.results for a in r.actions if isinstance(a, kind)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def library() -> dict[str, Playbook]:
    return load_library()


@pytest.fixture
def make_conversation(clock: FakeClock) -> Callable[..., Conversation]:
    def make(
        playbook: Playbook,
        *,
        language: str | None = None,
        lead: dict[str, Any] | None = None,
        answer: Any = None,
        detect_language: Callable[[str], str | None] | None = None,
        region: str | None = "FR",
    ) -> Conversation:
        interpreter = RuleInterpreter(
            clock=clock, timezone=PARIS, default_region=region, answer=answer, detect_language=detect_language
        )
        ports = Ports(
            interpreter=interpreter,
            clock=clock,
            timezone=PARIS,
            default_region=region,
            fallback_text={"en": "Thanks, we'll get back to you.", "fr": "Merci, nous revenons vers vous."},
        )
        state = new_state(playbook, language=language, lead=lead or {})
        return Conversation(playbook, ports=ports, clock=clock, state=state)

    return make
