"""The garbage collector of a serving process (issue 15: the webhook p99).

CPython's cyclic collector traverses every tracked object of the generations it collects. A
served LeadWarm process holds a few hundred thousand long-lived objects made at startup (the
Litestar app and its routes, pydantic and msgspec models, the playbooks, the language model), and a
full (generation 2) collection walked them all: measured with ``benchmarks/ingest_cpu.py``, pauses
of 100-200 ms that stop the event loop, so every webhook in flight waited (the open-loop p99 of
20-40 ms at 500 requests/s), and collections of the younger generations promoted ever more
objects into it.

:func:`freeze_startup_heap` runs once the app has started: one full collection, then
:func:`gc.freeze` moves every survivor to the permanent generation, which later collections
never traverse (https://docs.python.org/3/library/gc.html#gc.freeze). Objects frozen are still
freed when their reference count falls to zero; only a reference cycle among them is kept, which
is why tests (that build many apps in one process) do not freeze.

``leadwarm serve`` (:func:`app.main.create_app`'s lifespan) and ``leadwarm worker`` both freeze
once started. Measured on the answer turns of ``benchmarks/turns.py`` (callgrind, 100 turns):
9.46M -> 8.37M instructions a turn, the collections of the younger generations no longer
promoting into a generation that held every startup object.

It then raises the youngest generation's threshold from CPython's 700 to :data:`YOUNG_THRESHOLD`
allocations: a turn allocates a few thousand short-lived containers (documents, models, frames)
that are freed by their reference count, almost none by the collector (a traced run of the turns
benchmark: 0 objects collected in 200 turns), and each young collection traversed the ones still
alive at that instant. Measured the same way: 7.60M -> 7.41M instructions a turn. A young
collection then traverses at most about 10,000 objects (well under a millisecond).
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "freeze_startup_heap"]

YOUNG_THRESHOLD = 10_000
"""Allocations (less deallocations) of tracked objects between two collections of the youngest
generation, once the startup heap is frozen (CPython's default: 700)."""


def freeze_startup_heap() -> int:
    """Collect, then freeze every object alive into the permanent generation, and collect the
    youngest generation every :data:`YOUNG_THRESHOLD` allocations (the older generations' own
    thresholds unchanged); returns how many objects are frozen (:func:`gc.get_freeze_count`)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, gc.get_threshold()[0]), older, oldest)
    return gc.get_freeze_count()
