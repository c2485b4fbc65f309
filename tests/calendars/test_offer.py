"""Offering slots, writing them in full, and understanding the lead's pick (fr/en, time zones)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from crm_sync.base import Slot
from crm_sync.calendars.offer import format_slot, match_pick, numbered_list, spread_offer

PARIS = ZoneInfo("Europe/Paris")


def at(y: int, m: int, d: int, h: int, mi: int = 0, zone: dt.tzinfo = PARIS) -> float:
    return dt.datetime(y, m, d, h, mi, tzinfo=zone).timestamp()


def slot(start: float) -> Slot:
    return Slot(start=start, end=start + 1800)


NOW = at(2026, 12, 7, 10)  # Monday 7 December 2026, 10:00 Paris
OFFERED = [slot(at(2026, 12, 8, 14)), slot(at(2026, 12, 10, 9, 30)), slot(at(2026, 12, 11, 10))]


def test_format_in_full_in_the_leads_language_and_zone() -> None:
    t = at(2026, 12, 8, 14)
    assert format_slot(t, timezone="Europe/Paris", language="fr") == "mardi 8 décembre à 14 h"
    assert format_slot(t + 1800, timezone="Europe/Paris", language="fr") == "mardi 8 décembre à 14 h 30"
    assert format_slot(t, timezone="Europe/London", language="en") == "Tuesday 8 December at 1:00 pm"
    assert (
        format_slot(at(2026, 12, 1, 12), timezone="Europe/Paris", language="fr")
        == "mardi 1er décembre à 12 h"
    )
    assert format_slot(t, timezone="America/New_York", language="en") == "Tuesday 8 December at 8:00 am"
    assert numbered_list(OFFERED[:2], timezone="Europe/Paris", language="fr") == (
        "1. mardi 8 décembre à 14 h\n2. jeudi 10 décembre à 9 h 30"
    )


def test_spread_offer_uses_distinct_days_and_the_leads_waking_hours() -> None:
    slots = [slot(at(2026, 12, d, h)) for d in (8, 9, 10) for h in (9, 10, 14, 15)]
    picked = spread_offer(slots, count=3, timezone="Europe/Paris")
    assert [dt.datetime.fromtimestamp(s.start, PARIS).strftime("%d %H") for s in picked] == [
        "08 09",
        "09 14",
        "10 09",
    ]
    # a lead in Los Angeles (UTC-8): Paris 09:00/10:00 are 00:00/01:00 there; 14:00/15:00 are 05:00/06:00
    late = [slot(at(2026, 12, d, h)) for d in (8, 9) for h in (9, 17, 18)]
    la = spread_offer(late, count=2, timezone="America/Los_Angeles")
    assert all(8 <= dt.datetime.fromtimestamp(s.start, ZoneInfo("America/Los_Angeles")).hour < 20 for s in la)
    assert len({dt.datetime.fromtimestamp(s.start, PARIS).date() for s in la}) == 2
    assert len(spread_offer(slots[:4], count=3, timezone="Europe/Paris")) == 3  # one day: filled from it
    assert spread_offer([], count=3, timezone="UTC") == []


def test_pick_by_number_or_ordinal() -> None:
    kw = dict(timezone="Europe/Paris", now=NOW)
    assert match_pick("1", OFFERED, **kw).slot == OFFERED[0]  # type: ignore[arg-type]
    assert match_pick(" 2. ", OFFERED, **kw).slot == OFFERED[1]  # type: ignore[arg-type]
    assert match_pick("the second one please", OFFERED, language="en", **kw).slot == OFFERED[1]  # type: ignore[arg-type]
    assert match_pick("le deuxième", OFFERED, language="fr", **kw).slot == OFFERED[1]  # type: ignore[arg-type]
    assert match_pick("la dernière", OFFERED, language="fr", **kw).slot == OFFERED[2]  # type: ignore[arg-type]
    assert match_pick("4", OFFERED, **kw).slot is None  # type: ignore[arg-type]
    assert not match_pick("", OFFERED, **kw).understood  # type: ignore[arg-type]
    assert not match_pick("je ne sais pas", OFFERED, language="fr", **kw).understood  # type: ignore[arg-type]


def test_pick_by_day_and_time() -> None:
    kw = dict(timezone="Europe/Paris", now=NOW)
    assert match_pick("mardi 14h", OFFERED, language="fr", **kw).slot == OFFERED[0]  # type: ignore[arg-type]
    assert match_pick("jeudi 9h30 svp", OFFERED, language="fr", **kw).slot == OFFERED[1]  # type: ignore[arg-type]
    assert match_pick("Friday at 10", OFFERED, language="en", **kw).slot == OFFERED[2]  # type: ignore[arg-type]
    assert match_pick("vendredi", OFFERED, language="fr", **kw).slot == OFFERED[2]  # type: ignore[arg-type]
    # another time: requested, to be checked against availability
    other = match_pick("mardi prochain vers 16h", OFFERED, language="fr", **kw)  # type: ignore[arg-type]
    assert other.slot is None and other.requested == at(2026, 12, 8, 16)
    tomorrow = match_pick("demain 9h30", OFFERED, language="fr", **kw)  # type: ignore[arg-type]
    assert tomorrow.requested == at(2026, 12, 8, 9, 30)
    pm = match_pick("Wednesday at 3", OFFERED, language="en", **kw)  # type: ignore[arg-type]
    assert pm.requested == at(2026, 12, 9, 15)
    monday = match_pick("lundi 9h", OFFERED, language="fr", **kw)  # Monday 09:00 has passed: next week
    assert monday.requested == at(2026, 12, 14, 9)
    dated = match_pick("le 15 décembre à 15h", OFFERED, language="fr", **kw)  # type: ignore[arg-type]
    assert dated.requested == at(2026, 12, 15, 15)
    two_on_tuesday = [OFFERED[0], slot(at(2026, 12, 8, 16))]
    assert match_pick("mardi", two_on_tuesday, language="fr", **kw).ambiguous == tuple(two_on_tuesday)  # type: ignore[arg-type]


def test_pick_in_the_leads_zone() -> None:
    # a lead in New York sees Paris 14:00 as 08:00 and answers in their own time
    pick = match_pick("Tuesday 8am", OFFERED, timezone="America/New_York", language="en", now=NOW)
    assert pick.slot == OFFERED[0]
    assert match_pick("x" * 100_000, OFFERED, timezone="UTC", now=NOW).slot is None
