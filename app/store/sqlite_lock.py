"""One process at a time brings an SQLite file's schema up to date.

:func:`app.store.sqlite_schema.migrate` runs in ONE transaction, which holds the file's write lock
for as long as it takes (15 s for the turns benchmark's 220,000-document file). A second process
opening the file meanwhile waited in its own ``BEGIN IMMEDIATE`` for its busy timeout (10 s), then
failed with "database is locked": SQLite's busy handler cannot tell a migration from any other
writer (https://www.sqlite.org/c3ref/busy_timeout.html). So every opener first takes an exclusive
advisory lock of its own beside the file (``flock`` on ``<file>-schema.lock``) around its schema
step: the one that migrates holds it to the end of its transaction, and the others wait for it,
bounded (:data:`MIGRATION_WAIT_S`), logging that they wait, then find the schema migrated and
nothing to do. The kernel releases the lock when its holder's descriptor closes, including when
the process dies, so a crash mid-migration leaves nothing to clean up (SQLite rolls the
transaction back at the next open). Linux and macOS only (``fcntl``), as the rest of the store.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator

from app.core.logs import get_logger
from app.store.base import SYSTEM_TENANT, StoreError

__all__ = ["MIGRATION_WAIT_S", "schema_lock"]

log = get_logger("leadwarm.store")

#: How long an opener waits for another process's migration of the file, seconds.
MIGRATION_WAIT_S = 300.0
#: How often a waiting opener tries the lock again, seconds.
_POLL_S = 0.05
#: How often a waiting opener logs that it still waits, seconds.
_LOG_EVERY_S = 15.0


def _holder(fd: int) -> str:
    """What the lock's holder wrote in the lock file: ``pid <n>`` (``unknown`` when nothing)."""
    with contextlib.suppress(OSError):
        text = os.pread(fd, 64, 0).decode(errors="replace").strip()
        if text:
            return f"pid {text}"
    return "unknown"


@contextlib.contextmanager
def schema_lock(
    path: str, *, wait_s: float = MIGRATION_WAIT_S, clock: Callable[[], float] = time.monotonic
) -> Iterator[None]:
    """Hold ``path``'s schema lock (an exclusive ``flock`` of ``<path>-schema.lock``, created if
    missing) for the ``with`` block. While another process holds it (migrating the file), wait
    up to ``wait_s`` seconds, trying again every 50 ms; logs ``sqlite.migration_wait`` when it
    starts waiting and every 15 s after, ``sqlite.migration_waited`` once it got the lock.

    Raises :class:`StoreError` naming the file, the holder's pid and the wait when it gives up,
    and for a lock file it cannot open."""
    lock_path = path + "-schema.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot open the schema lock {lock_path} of {path}: {exc}") from exc
    try:
        start = clock()
        next_log = start
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                now = clock()
                waited = now - start
                if waited >= wait_s:
                    raise StoreError(
                        f"cannot open {path}: another process ({_holder(fd)}) is migrating its schema "
                        f"and still held {lock_path} after {waited:.1f} s (the wait is {wait_s:.0f} s)"
                    ) from None
                if now >= next_log:
                    log.info(
                        "sqlite.migration_wait",
                        tenant=SYSTEM_TENANT,
                        path=path,
                        holder=_holder(fd),
                        waited_s=round(waited, 1),
                        wait_s=wait_s,
                    )
                    next_log = now + _LOG_EVERY_S
                time.sleep(min(_POLL_S, max(wait_s - waited, 0.0)))
        if next_log != start:
            log.info(
                "sqlite.migration_waited", tenant=SYSTEM_TENANT, path=path, waited_s=round(clock() - start, 1)
            )
        with contextlib.suppress(OSError):  # who holds it, for the messages of those who wait
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
