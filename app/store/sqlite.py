"""The embedded store: every tenant's documents in one SQLite file (WAL mode).

One table ``docs(tenant, coll, id, data)`` holds JSON text; the fields a collection's queries
filter and order on are also columns of its rows, written from the document with each write and
indexed (:mod:`app.store.sqlite_schema`: the declarations, the column values, the migration of an
older file); filters on any other field are ``json_extract`` expressions.
Transactions take SQLite's write lock (``BEGIN IMMEDIATE``), so they are serialised across
coroutines and across processes sharing the file: a transaction never conflicts, it waits
(``busy_timeout``). Reads outside transactions use a second connection and see committed data.

Several processes may open the same file (``leadwarm serve`` and ``leadwarm chat`` side by side).

No SQLite call runs on the event loop: the writer connection belongs to one dedicated thread and
the reader connection to another; coroutines hand them work (:class:`SerialThread`) and await it. A
transaction costs one hand-off per read plus one for the writes and the ``COMMIT``.

Durability (``DURABILITY``): ``process`` (default) runs WAL with ``synchronous=NORMAL``, so a
commit survives the process being killed (the WAL is in the OS page cache) but the last commits
may be lost on power loss; ``power`` adds what ``synchronous=FULL`` adds in WAL mode, "an
additional sync of the WAL file after each transaction commit"
(https://www.sqlite.org/pragma.html#pragma_synchronous), but outside the write lock: the
connection runs ``synchronous=NORMAL`` and, once a commit is done, its caller waits in
:meth:`SQLiteStore.sync_commits` for an ``fdatasync`` of the WAL that began after it. Syncs run
on threads of their own (:data:`SYNC_THREADS`), and one sync serves every commit made before it
began, so the next transaction commits while a sync runs and a burst shares few syncs; a commit
made while a sync runs begins its own on an idle thread rather than waiting for that one to end.
The writer thread numbers its commits and wakes the sync threads itself, and a sync answers the
waiters it covers with one ``call_soon_threadsafe``: power mode adds no event-loop hand-off per
commit, and a caller whose commits a sync already covers does not wait at all (FULL syncs
inside ``COMMIT``, holding the lock: one sync per commit, and none of them overlap with the next
transaction). A WAL restart or checkpoint syncs the WAL and the database itself (NORMAL still
syncs at checkpoints and a restarted WAL's header), so a commit no longer in the WAL is in the
synced database.

Checkpoints (copying the WAL back into the database file, with an fsync) run on a third thread
and connection of their own (``PRAGMA wal_checkpoint(PASSIVE)`` every
:data:`CHECKPOINT_EVERY_WRITES` write hand-offs), never inside a commit: SQLite's automatic
checkpoint ran in the commit that crossed 1,000 WAL pages and held every webhook waiting on that
commit for 20 ms (measured: the commit latency p99.9 of 19 ms fell to under 1 ms without it).
A passive checkpoint waits for nobody and nobody waits for it (https://www.sqlite.org/wal.html,
"Checkpointing"; https://www.sqlite.org/c3ref/wal_checkpoint_v2.html).

The ingest log (:meth:`SQLiteStore.append_log`) is a table of its own, ``ingest_log``, with its
primary key as its only index: an append writes one B-tree entry, and concurrent appends share one
commit (the caller batches them, :mod:`app.messaging.ingest_log`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import functools
import json
import os
import queue
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from app.core.logs import get_logger
from app.store.base import (
    JSON,
    SYSTEM_TENANT,
    ConflictError,
    Document,
    DocumentExistsError,
    Filter,
    LogRecord,
    Order,
    Store,
    StoreError,
    Transaction,
    check_cursor,
)
from app.store.sqlite_lock import MIGRATION_WAIT_S, schema_lock
from app.store.sqlite_schema import (
    COLUMNS,
    GROUP_INDEXES,
    NON_NULL_ON,
    PARTIAL_ON,
    TENANT_INDEXES,
    changed_positions,
    column_values,
    dump,
    field_sql,
    insert_sql,
    json_path,
    leaf_of,
    load,
    migrate,
    null_sql,
    present_sql,
    sql_literal,
    update_sql,
)
from kernel.threads import SerialThread

__all__ = [
    "CHECKPOINT_EVERY_WRITES",
    "MAX_WAL_FRAMES",
    "SYNC_THREADS",
    "Durability",
    "SQLiteStore",
    "SerialThread",
]

log = get_logger("leadwarm.store")

T = TypeVar("T")
R = TypeVar("R")

Durability = Literal["process", "power"]
"""``process``: a commit survives a process kill; ``power``: it survives a power loss (fsync)."""

#: ``power`` syncs the WAL after each commit itself (:meth:`SQLiteStore.sync_commits`).
_SYNCHRONOUS: dict[str, str] = {"process": "NORMAL", "power": "NORMAL"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    tenant TEXT NOT NULL,
    coll   TEXT NOT NULL,
    id     TEXT NOT NULL,
    data   TEXT NOT NULL,
    PRIMARY KEY (tenant, coll, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS colls (
    tenant TEXT NOT NULL,
    coll   TEXT NOT NULL,
    leaf   TEXT NOT NULL,
    PRIMARY KEY (tenant, coll)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS colls_leaf ON colls (leaf, coll);
CREATE TABLE IF NOT EXISTS doc_columns (
    leaf  TEXT NOT NULL,
    field TEXT NOT NULL,
    PRIMARY KEY (leaf, field)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ingest_log (
    tenant TEXT NOT NULL,
    id     TEXT NOT NULL,
    at     REAL NOT NULL,
    data   TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
"""

#: The schema's declarations, under the names this module and its tests use.
_TENANT_INDEXES = TENANT_INDEXES
_GROUP_INDEXES = GROUP_INDEXES
_PARTIAL_ON = PARTIAL_ON
_NON_NULL_ON = NON_NULL_ON
_leaf_of = leaf_of


def _leaf_term(collection: str, *, group: bool = False) -> str:
    """The query's collection terms with the names as literals (the planner matches a partial
    index's condition against literals only): ``leaf = '<last segment>'``, and for a top-level
    collection of a tenant query ``coll = '<collection>'`` too (a collection group matches
    subcollections of that id as well, so it carries the leaf alone)."""
    term = "leaf = " + sql_literal(_leaf_of(collection))
    if group or "/" in collection:
        return term
    return f"coll = {sql_literal(collection)} AND {term}"


def _sql_value(value: JSON) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return value


def _where(
    filters: Sequence[Filter], order_by: Sequence[Order], leaf: str | None = None
) -> tuple[list[str], list[Any]]:
    """The ``WHERE`` terms and parameters of ``filters`` over documents of collection ``leaf``
    (its last path segment; ``None``: read every field from the JSON): a field the collection
    declares is its column (:func:`app.store.sqlite_schema.field_sql`), any other
    ``json_extract``. Raises :class:`StoreError` for a field name that is not one."""
    clauses: list[str] = []
    params: list[Any] = []
    for f in filters:
        expr = field_sql(leaf, f.field)
        if f.op == "==" and f.value is None:
            clauses.append(null_sql(leaf, f.field))
        elif f.op in ("==", "!=", "<", "<=", ">", ">="):
            op = "=" if f.op == "==" else f.op
            clauses.append(f"{expr} {op} ?")
            params.append(_sql_value(f.value))
        elif f.op == "in":
            values = list(f.value)
            if not values:
                clauses.append("0")
                continue
            clauses.append(f"{expr} IN ({','.join('?' * len(values))})")
            params.extend(_sql_value(v) for v in values)
        elif f.op == "array_contains":
            # json_path() admits no quote: the field name cannot break out of the literal
            clauses.append(f"EXISTS (SELECT 1 FROM json_each(data, '{json_path(f.field)}') WHERE value = ?)")  # noqa: S608
            params.append(_sql_value(f.value))
        else:  # pragma: no cover - Literal guards this
            raise StoreError(f"unsupported operator {f.op!r}")
    # Redundant for the filters (a comparison is false on a missing field) but what lets the
    # planner use the partial indexes, whose condition is this very term.
    present = dict.fromkeys([*(f.field for f in filters), *(o.field for o in order_by)])
    clauses.extend(present_sql(leaf, name) for name in present)
    return clauses, params


#: One term of a cursor's condition (:func:`_after_shape`): ``(key position, operator)``, the
#: operator one of ``=`` (``k = ?``), ``null`` (``k IS NULL``: equal to a null, no parameter),
#: ``>`` and ``<`` (``k > ?``), ``<~`` (``k < ? OR k IS NULL``: after a value descending, null
#: last) and ``set`` (``k IS NOT NULL``, no parameter: after a null ascending).
_Term = tuple[int, str]
#: A cursor condition's shape: ``">"``/``"<"`` (a row value) or its disjuncts of terms.
_AfterShape = str | tuple[tuple[_Term, ...], ...]


@functools.lru_cache(maxsize=256)
def _after_shape(descending: tuple[bool, ...], nulls: tuple[bool, ...]) -> _AfterShape:
    """How the rows strictly after a cursor are selected, for keys ordered in ``descending``
    directions (the order fields, then the id) and a cursor whose values are ``null`` at
    ``nulls``: ``">"`` or ``"<"`` for a row value (``(k1, ..., id) > (?, ..., ?)``, which seeks
    the index), else the disjuncts of :data:`_Term` (a row is after the cursor when its first
    key that differs from the cursor's comes after it, the keys before it equal; the id, last,
    is never null).

    The order is Firestore's, "Ordering of value types" (null before every other value;
    https://firebase.google.com/docs/firestore/manual/data-types), which is SQLite's for NULL
    and numbers ("NULL values are considered smaller than any other value" ascending and come
    last descending, https://www.sqlite.org/lang_select.html#orderby). A comparison with NULL is
    never true (https://www.sqlite.org/nulls.html), so a row value is right only when the
    cursor holds no null and every null row it cannot reach comes before the cursor: ascending,
    or descending on ONE field, whose null rows (after every value) the caller reads next
    (:func:`_null_tail`). Any other shape takes the disjuncts, nulls spelled out."""
    if not any(nulls) and len(set(descending)) == 1 and (not descending[0] or len(descending) == 2):
        return "<" if descending[0] else ">"
    equal = tuple((j, "null" if null else "=") for j, null in enumerate(nulls))
    last = len(descending) - 1
    ors: list[tuple[_Term, ...]] = []
    for i, (desc, null) in enumerate(zip(descending, nulls, strict=True)):
        if desc and null:
            continue  # nothing comes after null descending
        op = "set" if null else ("<" if i == last else "<~") if desc else ">"
        ors.append((*equal[:i], (i, op)))
    return tuple(ors)


def _after_keys(
    order_by: Sequence[Order], start_after: Sequence[JSON]
) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
    """The ``(descending, nulls)`` of :func:`_after_shape` for a cursor (the id last, in the
    last order's direction)."""
    descending = (*(o.descending for o in order_by), order_by[-1].descending)
    return descending, tuple(v is None for v in start_after)


def _after_params(shape: _AfterShape, values: Sequence[Any]) -> list[Any]:
    """The parameters of a cursor condition of ``shape`` (:func:`_after_shape`) for the cursor's
    SQL ``values``, in the order :func:`_after` writes them."""
    if isinstance(shape, str):
        return list(values)
    return [values[i] for terms in shape for i, op in terms if op not in ("set", "null")]


def _after(
    order_by: Sequence[Order], start_after: Sequence[JSON], leaf: str | None = None
) -> tuple[str, list[Any]]:
    """The cursor's condition and its parameters: rows strictly after ``start_after`` in
    ``(order fields, id)`` order, nulls first (:func:`_after_shape`; for one descending field
    and a value that is not null, the field's null rows are left to :func:`_null_tail`)."""
    keys = [field_sql(leaf, o.field) for o in order_by] + ["id"]
    values = [_sql_value(v) for v in start_after]
    shape = _after_shape(*_after_keys(order_by, start_after))
    if isinstance(shape, str):
        return f"({','.join(keys)}) {shape} ({','.join('?' * len(keys))})", values
    spelled = {
        "=": "{k} = ?",
        "null": "{k} IS NULL",
        ">": "{k} > ?",
        "<": "{k} < ?",
        "<~": "({k} < ? OR {k} IS NULL)",
        "set": "{k} IS NOT NULL",
    }
    ors = ["(" + " AND ".join(spelled[op].format(k=keys[i]) for i, op in terms) + ")" for terms in shape]
    return ("(" + " OR ".join(ors) + ")" if ors else "0"), _after_params(shape, values)


#: Filter operators a null value never matches (a range matches its own type only in Firestore,
#: and no SQL comparison with NULL is true).
_NULL_FREE_OPS = frozenset({"<", "<=", ">", ">="})


def _null_tail(
    filters: Sequence[Filter], order_by: Sequence[Order], start_after: Sequence[JSON] | None
) -> Filter | None:
    """The filter of the rows a page after ``start_after`` continues with once the row value of
    :func:`_after` runs out: ordered on ONE field descending after a value that is not null,
    the documents whose field is null come last (:func:`_after_shape`). ``None`` when there are
    none to read: no such cursor, or a filter on the field that no null matches. A separate
    statement keeps the first one a seek of the index from the cursor on."""
    if start_after is None or len(order_by) != 1 or not order_by[0].descending or start_after[0] is None:
        return None
    field = order_by[0].field
    for f in filters:
        if f.field == field and (f.op in _NULL_FREE_OPS or (f.op == "==" and f.value is not None)):
            return None
    return Filter(field, "==", None)


def _compile(
    filters: Sequence[Filter],
    order_by: Sequence[Order],
    limit: int | None,
    start_after: Sequence[JSON] | None = None,
    *,
    collection: str | None = None,
    group: bool = False,
) -> tuple[str, list[Any]]:
    """The query's SQL after ``WHERE tenant=? AND coll=?`` (or its group equivalent) and its
    parameters. ``collection`` (a path or a group's id) adds the ``leaf`` term that lets the
    planner seek the partial indexes declared for it, and reads the fields it declares from
    their columns. After a cursor on one descending field, the field's null rows are not in
    this SQL: :func:`_run_query` reads them next (:func:`_null_tail`)."""
    check_cursor(start_after, order_by)
    leaf = None if collection is None else _leaf_of(collection)
    clauses, params = _where(filters, order_by, leaf)
    if collection is not None:
        clauses.insert(0, _leaf_term(collection, group=group))
    if start_after is not None:
        clause, values = _after(order_by, start_after, leaf)
        clauses.append(clause)
        params.extend(values)
    sql = (" AND " + " AND ".join(clauses)) if clauses else ""
    orders = [f"{field_sql(leaf, o.field)} {'DESC' if o.descending else 'ASC'}" for o in order_by]
    # Ties by id in the last order's direction (as Firestore's implicit __name__ order).
    tie = " DESC" if order_by and order_by[-1].descending else ""
    orders += [f"tenant{tie}", f"id{tie}"]
    sql += " ORDER BY " + ", ".join(orders)
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return sql, params


def _filter_shape(f: Filter) -> tuple[str, str, int]:
    """What of a filter its SQL depends on: field, operator, and (``==``) whether the value is
    ``None`` or (``in``) how many values it lists."""
    if f.op == "in":
        return f.field, f.op, len(list(f.value))
    return f.field, f.op, int(f.op == "==" and f.value is None)


def _bind(
    filters: Sequence[Filter],
    order_by: Sequence[Order],
    start_after: Sequence[JSON] | None,
    limit: int | None,
) -> list[Any]:
    """The parameters of :func:`_compile`'s SQL (after its collection parameters), in its order,
    without building the SQL (a cursor's values as :func:`_after_params` lists them)."""
    params: list[Any] = []
    for f in filters:
        if f.op == "==" and f.value is None:
            continue
        if f.op == "in":
            params.extend(_sql_value(v) for v in f.value)
        else:
            params.append(_sql_value(f.value))
    if start_after is not None:
        shape = _after_shape(*_after_keys(order_by, start_after))
        params.extend(_after_params(shape, [_sql_value(v) for v in start_after]))
    if limit is not None:
        params.append(int(limit))
    return params


#: Query SQL by shape (:func:`_query_sql`); shapes come from the code's queries, so this stays small.
_SQL_CACHE_SIZE = 512


@functools.lru_cache(maxsize=_SQL_CACHE_SIZE)
def _query_sql(
    head: str,
    scope: str,
    filters: tuple[tuple[str, str, int], ...],
    order_by: tuple[tuple[str, bool], ...],
    limited: bool,
    cursor: tuple[bool, ...] | None,
    group: bool,
) -> str:
    """The SQL of a query of this shape (``head`` its ``SELECT ... WHERE`` part with ``{hint}``
    where the index hint goes, ``scope`` the collection, or ``/`` and its last segment for a
    subcollection, which is all :func:`_leaf_term` and :func:`_index_hint` read of it; ``cursor``
    which of a cursor's order values are null, ``None`` without a cursor): built once
    by :func:`_compile` from stand-in values, so every later query of the shape skips building it
    (measured: about a third of a query's CPU on the reader thread)."""
    stand_in = [
        Filter(field, op, [0] * n if op == "in" else (None if n else 0))  # type: ignore[arg-type]
        for field, op, n in filters
    ]
    orders = [Order(field, descending=desc) for field, desc in order_by]
    tail, _ = _compile(
        stand_in,
        orders,
        1 if limited else None,
        None if cursor is None else [*(None if null else 0 for null in cursor), ""],
        collection=scope,
        group=group,
    )
    hint = "" if group else _index_hint(scope, stand_in, orders)
    return head.replace("{hint}", hint) + tail


def _shaped_sql(
    head: str,
    collection: str,
    filters: Sequence[Filter],
    order_by: Sequence[Order],
    limit: int | None,
    start_after: Sequence[JSON] | None = None,
    *,
    group: bool = False,
) -> tuple[str, list[Any]]:
    """The query's SQL (``head`` then :func:`_compile`'s tail) and its parameters after the
    collection's, the SQL from the cache of shapes (:func:`_query_sql`). Raises what
    :func:`_compile` raises for a bad cursor or field name."""
    check_cursor(start_after, order_by)
    scope = "/" + _leaf_of(collection) if "/" in collection else collection  # a subcollection: its leaf
    sql = _query_sql(
        head,
        scope,
        tuple(_filter_shape(f) for f in filters),
        tuple((o.field, o.descending) for o in order_by),
        limit is not None,
        None if start_after is None else tuple(v is None for v in start_after[:-1]),
        group,
    )
    return sql, _bind(filters, order_by, start_after, limit)


#: The ingest log's JSON encoder (values it cannot encode are written as their ``str``, as
#: ``json.dumps(default=str)`` would).
_LOG_ENCODER = msgspec.json.Encoder(enc_hook=str)


#: Write hand-offs between two background checkpoints (a commit of a webhook group writes a few
#: pages; SQLite's automatic checkpoint came every 1,000 pages).
CHECKPOINT_EVERY_WRITES = 128
#: WAL frames (pages, 4 KiB each) past which the writer restarts the WAL between transactions.
MAX_WAL_FRAMES = 8192
#: A restart found busy is tried again after each of the next writes, this many times at most.
WAL_RESTART_RETRIES = 3
#: Threads that sync the WAL (``DURABILITY=power``): a commit made while one sync runs begins its
#: own on the next thread instead of waiting for the running one to end. Concurrent ``fdatasync``
#: calls share the disk's cache flushes (measured on this VM's disk, two threads syncing in a
#: loop: 1,700-4,200 syncs/s against 360-630 for one, latency p50 0.3 against 0.4-3.1 ms); any
#: sync that began after a commit makes it durable, whichever ends first. Served WhatsApp webhooks
#: in power mode, 16 connections, against one sync thread in the same run (6 rounds, load 4-6):
#: 2 threads 1,172 against 975 requests/s (median), 4 threads 1,482-1,495 against 777-910,
#: 8 threads 1,011 against 952 (more syncs, each one a wake-up of the event loop).
SYNC_THREADS = 4
#: Page cache of the writer's and the reader's connections, in KiB (SQLite's default: 2,000).
CACHE_KIB = 32_768
#: Bytes of the database file each of those connections reads through a memory map instead of
#: ``pread`` (https://www.sqlite.org/mmap.html; the WAL's frames are still read with ``pread``).
MMAP_BYTES = 256 * 1024 * 1024

#: A log entry inserted unless its id is logged already.
_APPEND = "INSERT OR IGNORE INTO ingest_log VALUES (?,?,?,?)"
#: A log entry inserted unless its id is logged already or its ``seen`` document exists.
_APPEND_UNSEEN = (
    "INSERT OR IGNORE INTO ingest_log SELECT ?,?,?,? "
    "WHERE NOT EXISTS (SELECT 1 FROM docs WHERE tenant=? AND coll=? AND id=?)"
)


#: The documents' JSON codec (msgspec, :func:`app.store.sqlite_schema.dump`).
_dump = dump
_load = load


#: A point read by full primary key.
_POINT_READ = "SELECT data FROM docs WHERE tenant=? AND coll=? AND id=?"


def _point_reads(conn: sqlite3.Connection, tenant: str, refs: Sequence[tuple[str, str]]) -> list[str | None]:
    """The stored JSON text of each document ``refs`` names (``None``: absent), in order, by ONE
    statement: the refs as a ``VALUES`` list joined to the primary key (a seek per ref, planned
    ``SEARCH d USING PRIMARY KEY (tenant=? AND coll=? AND id=?)``; ``(coll, id) IN (VALUES ...)``
    would seek the tenant alone). A statement costs its thread a release and a retake of the
    GIL and the sqlite3 module's own work: a turn's commit reads five documents, the dispatcher's
    record three. One ref is a plain point read."""
    if len(refs) == 1:
        row = conn.execute(_POINT_READ, (tenant, *refs[0])).fetchone()
        return [row[0] if row else None]
    if not refs:
        return []
    values = ",".join("(?,?)" for _ in refs)
    sql = (
        f"SELECT r.column1, r.column2, d.data FROM (VALUES {values}) AS r "  # noqa: S608 - placeholders only
        "CROSS JOIN docs AS d ON d.tenant=? AND d.coll=r.column1 AND d.id=r.column2"
    )
    params: list[str] = [part for ref in refs for part in ref]
    found = {(c, i): data for c, i, data in conn.execute(sql, [*params, tenant]).fetchall()}
    return [found.get(ref) for ref in refs]


async def _now(fn: Callable[[], R]) -> R:
    """A transaction's ``run`` when it already is on the writer thread: ``fn`` in place."""
    return fn()


class _Suspended(Exception):  # noqa: N818 - a signal, not an error
    """An inline transaction function awaited something else than its transaction's reads."""


def _run_now(awaitable: Awaitable[T], *, suspended: type[Exception] = RuntimeError) -> T:
    """Run ``awaitable`` to its end without an event loop (it must never suspend: every await in
    it completes at once, as :func:`_now` does). Raises ``suspended`` if it suspends (after
    closing it)."""
    steps = awaitable.__await__()
    try:
        next(steps)
    except StopIteration as done:
        result: T = done.value
        return result
    close = getattr(steps, "close", None)
    if close is not None:
        close()
    raise suspended("a transaction function run in place awaited something other than its transaction")


def _settle_all(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    """On a waiter's event loop: settle each of ``waiters`` (a sync's answer)."""
    for waiter in waiters:
        if not waiter.done():
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(None)


class _SQLiteTransaction(Transaction):
    """A transaction on the writer connection. Every statement runs on the writer thread
    (``run``); ``BEGIN IMMEDIATE`` rides on the first hand-off, the writes and ``COMMIT`` on the
    last (:meth:`SQLiteStore._finish`)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        tenant_id: str,
        registered: set[tuple[str, str]],
        run: Callable[[Callable[[], Any]], Awaitable[Any]],
        *,
        begun: bool = False,
    ) -> None:
        self.tenant_id = tenant_id
        self._conn = conn
        self._run = run
        self.begun = begun
        self._writes: list[tuple[str, str, str, dict[str, JSON] | None, bool]] = []
        self.registered = registered
        self.newly: list[tuple[str, str]] = []
        self._known: _Known = {}
        """The stored JSON text (``None``: absent) and column values of the documents this
        transaction read by id, as its writes leave them once applied: a merge of one of them
        needs no second read, a write of one sets only the columns it changes."""

    def _begin(self) -> None:
        """On the writer thread: open the transaction if this is its first statement."""
        if not self.begun:
            self._conn.execute("BEGIN IMMEDIATE")
            self.begun = True

    async def get(self, collection: str, doc_id: str) -> dict[str, JSON] | None:
        def read() -> Any:
            self._begin()
            return self._conn.execute(
                "SELECT data FROM docs WHERE tenant=? AND coll=? AND id=?",
                (self.tenant_id, collection, doc_id),
            ).fetchone()

        row = await self._run(read)
        if not row:
            self._known[(collection, doc_id)] = (None, None)
            return None
        data: dict[str, JSON] = _load(row[0])
        self._known[(collection, doc_id)] = (row[0], _columns_of(collection, data))
        return data

    async def get_many(self, refs: Sequence[tuple[str, str]]) -> list[dict[str, JSON] | None]:
        """Every document of ``refs`` in one hand-off to the writer thread and one statement (a
        seek by primary key each, :func:`_point_reads`); see :meth:`Transaction.get_many`."""
        wanted = list(refs)

        def read() -> list[str | None]:
            self._begin()
            return _point_reads(self._conn, self.tenant_id, wanted)

        texts: list[str | None] = await self._run(read)
        docs: list[dict[str, JSON] | None] = []
        for ref, text in zip(wanted, texts, strict=True):
            data = None if text is None else _load(text)
            self._known[ref] = (text, None if data is None else _columns_of(ref[0], data))
            docs.append(data)
        return docs

    async def query(
        self,
        collection: str,
        *,
        filters: Sequence[Filter] = (),
        order_by: Sequence[Order] = (),
        limit: int | None = None,
    ) -> list[Document]:
        def read() -> list[Document]:
            self._begin()
            return _run_query(self._conn, self.tenant_id, collection, filters, order_by, limit)

        result: list[Document] = await self._run(read)
        return result

    def set(self, collection: str, doc_id: str, data: dict[str, JSON], *, merge: bool = False) -> None:
        self._writes.append(("merge" if merge else "set", collection, doc_id, dict(data), False))

    def create(self, collection: str, doc_id: str, data: dict[str, JSON]) -> None:
        self._writes.append(("create", collection, doc_id, dict(data), False))

    def delete(self, collection: str, doc_id: str) -> None:
        self._writes.append(("delete", collection, doc_id, None, False))

    def apply(self) -> None:
        """On the writer thread: apply the buffered writes (the transaction is open)."""
        for kind, coll, doc_id, data, _ in self._writes:
            _write(
                self._conn, kind, self.tenant_id, coll, doc_id, data, self.registered, self.newly, self._known
            )


_Known = dict[tuple[str, str], tuple[str | None, tuple[Any, ...] | None]]
"""``(collection, id)`` -> the document's stored JSON text (``None``: absent) and its column
values (:func:`app.store.sqlite_schema.column_values`; ``None``: not known), as the open
transaction last read or wrote it."""


def _columns_of(collection: str, data: dict[str, JSON]) -> tuple[Any, ...]:
    """The column values of document ``data`` of ``collection`` (``()`` for a collection that
    declares no column)."""
    fields = COLUMNS.get(collection.rsplit("/", 1)[-1])
    return column_values(fields, data) if fields else ()


def _write(
    conn: sqlite3.Connection,
    kind: str,
    tenant: str,
    coll: str,
    doc_id: str,
    data: dict[str, JSON] | None,
    registered: frozenset[tuple[str, str]] | set[tuple[str, str]] = frozenset(),
    newly: list[tuple[str, str]] | None = None,
    known: _Known | None = None,
) -> None:
    """Apply one write, its row's columns written from ``data`` (the collection's declared
    fields, :mod:`app.store.sqlite_schema`). A collection not in ``registered`` is added to the
    registry and to ``newly``; the caller adds ``newly`` to its cache once the transaction has
    committed.

    ``known`` (:data:`_Known`) holds the documents the open transaction last read or wrote: a
    merge into one of them is applied to that text instead of reading the row again (a turn
    merges into the lead and the inbox items it read, the dispatcher into the message it read),
    and a write of an existing one is an ``UPDATE`` of its text and of the columns whose values
    changed only (an index on columns it leaves alone is not touched: a conversation's turn
    changes its ``updated_at`` and maybe its ``status``, not its lead or channel). Any other
    write of a whole document is an upsert that updates the row in place rather than deleting
    and re-inserting it (measured: 277 -> 211 us CPU per write of a 2 KB document, 13 writes a
    commit; https://www.sqlite.org/lang_upsert.html). Raises :class:`DocumentExistsError` for a
    ``create`` of an existing document."""
    ref = (coll, doc_id)
    if kind == "delete":
        conn.execute("DELETE FROM docs WHERE tenant=? AND coll=? AND id=?", (tenant, coll, doc_id))
        if known is not None:
            known[ref] = (None, None)
        return
    assert data is not None
    if (tenant, coll) not in registered and (newly is None or (tenant, coll) not in newly):
        conn.execute("INSERT OR IGNORE INTO colls VALUES (?,?,?)", (tenant, coll, coll.rsplit("/", 1)[-1]))
        if newly is not None:
            newly.append((tenant, coll))
    leaf = coll.rsplit("/", 1)[-1]
    if kind == "create":
        text = _dump(data)
        columns = _columns_of(coll, data)
        try:
            conn.execute(insert_sql(leaf, upsert=False), (tenant, coll, doc_id, text, *columns))
        except sqlite3.IntegrityError as exc:
            raise DocumentExistsError(f"{coll}/{doc_id} already exists") from exc
        if known is not None:
            known[ref] = (text, columns)
        return
    stored, old = known.get(ref, (None, None)) if known is not None else (None, None)
    if kind == "merge":
        if known is None or ref not in known:
            row = conn.execute(
                "SELECT data FROM docs WHERE tenant=? AND coll=? AND id=?", (tenant, coll, doc_id)
            ).fetchone()
            stored = row[0] if row else None
        if stored is not None:
            before = _load(stored)
            if old is None:
                old = _columns_of(coll, before)
            data = {**before, **data}
    text = _dump(data)
    columns = _columns_of(coll, data)
    if stored is not None and old is not None:  # the row exists: only what changed
        changed = changed_positions(old, columns)
        params = (text, *(columns[i] for i in changed), tenant, coll, doc_id)
        if conn.execute(update_sql(leaf, changed), params).rowcount != 1:  # pragma: no cover - lock held
            conn.execute(insert_sql(leaf, upsert=True), (tenant, coll, doc_id, text, *columns))
    else:
        conn.execute(insert_sql(leaf, upsert=True), (tenant, coll, doc_id, text, *columns))
    if known is not None:
        known[ref] = (text, columns)


def _index_hint(collection: str, filters: Sequence[Filter], order_by: Sequence[Order]) -> str:
    """``INDEXED BY <index>`` for a tenant query with equality filters and no order (or an order
    on fields only ``== None`` filters fix, as :func:`_null_tail`'s), when an index declared for
    its collection starts with one of those fields; else ``""``.

    Without statistics SQLite prefers walking the collection by primary key (it yields the
    ``tenant, id`` order for free) to seeking an expression index and sorting what it finds, so
    ``status == 'dead'`` over the jobs collection read every pending timer, and the null rows of
    a descending page (:func:`_null_tail`: ``f == None`` ordered on ``f``) read the whole
    collection. The index chosen has the longest prefix of equality fields (``== None`` too: its
    ``IS NULL`` seeks the index, https://www.sqlite.org/optoverview.html#where_clause_analysis)
    and is partial on nothing the query lacks; an index's entries end with the primary key, so
    past the fixed fields they come in ``id`` order, the query's ties."""
    equal = {f.field for f in filters if f.op == "==" and f.value is not None}
    nulls = {f.field for f in filters if f.op == "==" and f.value is None}
    if not filters or any(o.field not in nulls for o in order_by):
        return ""
    fixed = equal | nulls
    named = {f.field for f in filters}
    leaf = _leaf_of(collection)
    best, best_len = "", 0
    for scope, indexes in (("t", _TENANT_INDEXES), ("g", _GROUP_INDEXES)):
        for fields, leaves in indexes.items():
            if leaf not in leaves or not set(_PARTIAL_ON.get(fields, ())) <= named:
                continue
            if fields in _NON_NULL_ON and _NON_NULL_ON[fields] not in equal:
                continue
            prefix = 0
            while prefix < len(fields) and fields[prefix] in fixed:
                prefix += 1
            if prefix > best_len:  # a tenant index first, on a tie
                best, best_len = f"ix_{scope}_" + "_".join(fields), prefix
    return f" INDEXED BY {best}" if best else ""


#: The collection's parameter in a query: ``+?``, not ``?``. To decide whether a partial index
#: (``WHERE coll = 'inbox'``) may serve a query, SQLite compares the query's ``coll = ?`` with the
#: index's condition using the value bound at the time, and marks the statement to be prepared
#: again whenever that parameter is bound anew: every execution re-planned the query against the
#: 21 indexes (measured: 150 us for the inbox's pending-items query, 10 us with ``+?``). A unary
#: plus is a different expression, so the comparison does not look at the value; the query still
#: seeks the primary key on ``coll`` and names the collection as a literal for the partial indexes
#: (:func:`_leaf_term`). Point reads by full primary key are planned by a shortcut that never
#: looks at the partial indexes, and keep ``coll=?``. (SQLite's ``exprCompareVariable`` and
#: ``sqlite3VdbeSetVarmask``, https://www.sqlite.org/c3ref/prepare.html on re-preparation.)
_COLL_PARAM = "+?"


def _run_query(
    conn: sqlite3.Connection,
    tenant: str | None,
    collection: str,
    filters: Sequence[Filter],
    order_by: Sequence[Order],
    limit: int | None,
    start_after: Sequence[JSON] | None = None,
) -> list[Document]:
    """The documents of ``collection`` (of ``tenant``; ``None``: every tenant's but the system's)
    matching ``filters`` in ``order_by`` order, at most ``limit``, after the cursor
    ``start_after``. A page after a cursor on one descending field reads that field's null rows
    with a second statement once the first runs out (:func:`_null_tail`), both in one read
    transaction (one snapshot). Raises :class:`StoreError` for a bad cursor or field name."""
    if tenant is None:
        head = f"SELECT tenant, coll, id, data FROM docs WHERE coll={_COLL_PARAM} AND tenant != ?"  # noqa: S608
        head_params: list[Any] = [collection, SYSTEM_TENANT]
    else:
        # {hint}: a declared index's name (_index_hint), never input
        head = f"SELECT tenant, coll, id, data FROM docs{{hint}} WHERE tenant=? AND coll={_COLL_PARAM}"  # noqa: S608
        head_params = [tenant, collection]
    sql, params = _shaped_sql(head, collection, filters, order_by, limit, start_after)
    tail = _null_tail(filters, order_by, start_after)
    if tail is None:
        rows = conn.execute(sql, head_params + params).fetchall()
    else:
        own = not conn.in_transaction
        if own:
            conn.execute("BEGIN")
        try:
            rows = conn.execute(sql, head_params + params).fetchall()
            if limit is None or len(rows) < limit:
                left = None if limit is None else limit - len(rows)
                sql, params = _shaped_sql(head, collection, [*filters, tail], order_by, left)
                rows += conn.execute(sql, head_params + params).fetchall()
        finally:
            if own:
                conn.execute("COMMIT")
    return [Document(r[0], r[1], r[2], _load(r[3])) for r in rows]


@dataclasses.dataclass(eq=False)
class _Inline:
    """An inline transaction waiting for (then run in) a group (:meth:`SQLiteStore._run_group`)."""

    tenant_id: str
    fn: Callable[[Transaction], Awaitable[Any]]
    context: contextvars.Context
    outcome: Literal["queued", "done", "fallback", "error", "failed"] = "queued"
    result: Any = None
    error: BaseException | None = None
    newly: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    ready: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


class SQLiteStore(Store):
    """The embedded default backend: one SQLite file, or ``":memory:"`` for a throwaway store.

    ``commits`` counts the transactions this instance committed (the group-commit tests read it).
    """

    group_commit_log = True

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_s: float = 10.0,
        durability: Durability = "process",
        migration_wait_s: float = MIGRATION_WAIT_S,
    ) -> None:
        """Open (and create) the database at ``path``; parent folders are created.

        ``durability`` chooses ``synchronous`` (see the module docstring). Raises ``ValueError``
        for another value. The file's schema is brought to this version at open
        (:meth:`_prepare_file`): an opener waits up to ``migration_wait_s`` seconds for another
        process migrating the file, then raises :class:`StoreError` naming the file and why.
        """
        if durability not in _SYNCHRONOUS:
            raise ValueError(f"durability must be 'process' or 'power', not {durability!r}")
        self.path = str(path)
        self.durability: Durability = durability
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            uri = False
            target = self.path
        else:  # two connections must see one in-memory database
            uri = True
            target = f"file:leadwarm-{id(self)}?mode=memory&cache=shared"
        self._writer = sqlite3.connect(
            target, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s, uri=uri
        )
        try:
            self._prepare_file(None if uri else migration_wait_s, busy_timeout_s)
        except BaseException:
            self._writer.close()
            raise
        self._writer.execute(f"PRAGMA synchronous={_SYNCHRONOUS[durability]}")
        # power: the WAL synced after each commit by sync_commits (see the module docstring)
        self._syncs_wal = self.syncs_commits_apart = durability == "power" and not uri
        # power: commits are numbered on the writer thread, which wakes the sync threads itself
        self._commit_seq = 0
        """Commits made by the writer thread (written there only)."""
        self._changes_seen = 0
        """The writer's ``total_changes`` at the last commit counted (writer thread only)."""
        self._acked_seq = 0
        """The highest commit number a write hand-off returned to the event loop."""
        self._synced_seq = 0
        """Every commit numbered up to this is synced (written by the sync threads, under
        ``_sync_lock``)."""
        self._failed_through = 0
        """The highest commit number a failed sync was meant to cover."""
        self._sync_lock = threading.Lock()
        self._sync_waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._sync_wake: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._sync_begun = 0
        """The highest commit number a sync in flight or done was begun for (under the lock)."""
        self._wal_fd: int | None = None
        self._sync_threads = [
            threading.Thread(target=self._sync_loop, name=f"sqlite-sync-{i}", daemon=True)
            for i in range(SYNC_THREADS if self._syncs_wal else 0)
        ]
        for thread in self._sync_threads:
            thread.start()
        self.wal_syncs = 0
        """WAL syncs made for ``DURABILITY=power`` (each serves every commit made before it)."""
        # checkpoints on their own thread (see the module docstring), not in a commit
        self._checkpointer: sqlite3.Connection | None = None
        if not uri:
            self._writer.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = sqlite3.connect(
                target, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
            )
        self._checkpoint_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
        self._writes_since_checkpoint = 0
        self._checkpointing: concurrent.futures.Future[int] | None = None
        self.checkpoints = 0
        """Background checkpoints run (tests read it)."""
        self._wal_restart_due = False
        self._wal_restart_busy = 0
        """Restarts found busy in a row (see :meth:`_restart_wal`)."""
        self.wal_restarts = 0
        """WAL restarts made on the writer thread once the WAL passed :data:`MAX_WAL_FRAMES`."""
        self._reader = sqlite3.connect(
            target, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s, uri=uri
        )
        if not uri:
            for conn in (self._writer, self._reader):
                conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
                conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        self._writer_thread = SerialThread("sqlite-writer")
        self._reader_thread = SerialThread("sqlite-reader")
        self._lock = asyncio.Lock()
        self._inline_queue: list[_Inline] = []
        """Inline transactions waiting for the writer (:meth:`_run_inline`)."""
        self._drainer: asyncio.Task[None] | None = None
        """The task running them, group after group, while any wait (:meth:`_drain_inline`)."""
        self._registered: set[tuple[str, str]] = set()
        """Collections known to be in the registry (filled after each commit that added some)."""
        self.commits = 0
        self._closed = False

    async def _write_op(self, fn: Callable[[], R]) -> R:
        """Run ``fn`` on the writer thread (the caller holds ``_lock`` when it spans statements);
        every :data:`CHECKPOINT_EVERY_WRITES` of them, start a background checkpoint. With
        ``DURABILITY=power`` the hand-off also numbers the commit it made, if any, and wakes the
        sync threads (:meth:`_numbered`)."""
        if self._syncs_wal:
            result, seq = await self._writer_thread.call(functools.partial(self._numbered, fn))
            if seq > self._acked_seq:
                self._acked_seq = seq
        else:
            result = await self._writer_thread.call(fn)
        self._writes_since_checkpoint += 1
        if (
            self._writes_since_checkpoint >= CHECKPOINT_EVERY_WRITES
            and self._checkpointing is None
            and self._checkpointer is not None
            and not self._closed
            and not self._wal_restart_due  # the restart checkpoints; a passive one would block it
        ):
            self._writes_since_checkpoint = 0
            # a thread future, not the loop's: a store may outlive the event loop that wrote last
            self._checkpointing = self._checkpoint_thread.submit(self._checkpoint)
            self._checkpointing.add_done_callback(self._checkpointed)
        if self._wal_restart_due and not self._closed:
            self._wal_restart_due = False
            self._writer_thread.call(self._restart_wal)  # before the next write
        return result

    def _checkpoint(self) -> int:
        """On the checkpoint thread: copy what the WAL holds into the database (passive); returns
        the frames the WAL holds."""
        if self._checkpointer is None:
            return 0
        row = self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[1]) if row else 0

    def _checkpointed(self, future: concurrent.futures.Future[int]) -> None:
        """On the checkpoint thread, once a checkpoint ended: count it, ask for a WAL restart past
        :data:`MAX_WAL_FRAMES`, log a failure (the next checkpoint tries again). The restart is
        asked for BEFORE ``_checkpointing`` is cleared: the other way round, a write in between
        could start the next passive checkpoint, which then held the restart busy (it gave up
        after its retries and the WAL grew until the checkpoint after)."""
        if not future.cancelled() and future.exception() is None:
            self.checkpoints += 1
            if future.result() > MAX_WAL_FRAMES:
                self._wal_restart_due = True
        self._checkpointing = None
        if not future.cancelled() and future.exception() is not None:
            # a busy or failing file: the next one tries again
            log.warning("sqlite.checkpoint_failed", error=type(future.exception()).__name__)

    def _restart_wal(self) -> None:
        """On the writer thread, between transactions: checkpoint what is left and start the WAL
        over (``TRUNCATE``). A passive checkpoint never restarts the WAL while writes keep coming
        (new frames arrive behind it), so a sustained load would grow the file without bound; this
        short stall (the frames the passive ones left) bounds it to :data:`MAX_WAL_FRAMES`."""
        if self._writer.in_transaction:
            self._wal_restart_due = True  # a transaction spans hand-offs: after it
            return
        try:
            row = self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            self._wal_restart_busy = 0  # the next request starts its retries afresh
            log.warning("sqlite.wal_restart_failed", tenant=SYSTEM_TENANT, error=type(exc).__name__)
            return  # the next passive checkpoint asks again
        if row is not None and row[0]:
            # busy (the pragma reports it rather than raising, https://www.sqlite.org/pragma.html
            # #pragma_wal_checkpoint): the checkpoint thread's passive checkpoint held the lock,
            # or a reader its snapshot. Try again after the next write, a few times (a long
            # reader makes each try wait its busy timeout), then leave it to the next passive
            # checkpoint, which asks again while the WAL is too long. Giving up resets the
            # count, so that next request has its retries too (kept, every later restart found
            # busy once gave up at once, and the WAL grew past MAX_WAL_FRAMES).
            self._wal_restart_busy += 1
            if self._wal_restart_busy <= WAL_RESTART_RETRIES:
                self._wal_restart_due = True
            else:
                self._wal_restart_busy = 0
                log.warning("sqlite.wal_restart_busy", tenant=SYSTEM_TENANT, tries=WAL_RESTART_RETRIES + 1)
            return
        self._wal_restart_busy = 0
        self.wal_restarts += 1

    def _numbered(self, fn: Callable[[], R]) -> tuple[R, int]:
        """On the writer thread (``DURABILITY=power``): run ``fn``; if the connection then is
        outside a transaction and has changed rows since the last commit counted, count a commit
        and wake the sync threads, one of which starts a sync at once if any is idle (no trip
        through the event loop). Returns ``fn``'s result and the number of the writer's last commit (this
        one's, or an earlier one: a hand-off that committed nothing waits for nothing new)."""
        result = fn()
        conn = self._writer
        try:
            changes = -1 if conn.in_transaction else conn.total_changes
        except sqlite3.ProgrammingError:  # fn closed the connection (close): it committed nothing
            changes = -1
        if changes not in (-1, self._changes_seen):
            # a rolled-back change counts too: one sync too many, never one too few
            self._changes_seen = changes
            self._commit_seq += 1
            self._sync_wake.put(True)
        return result, self._commit_seq

    async def sync_commits(self) -> None:
        """Return once every commit made before this call is on stable storage: with
        ``DURABILITY=power``, an ``fdatasync`` of the WAL that began after the commit (see the
        module docstring); otherwise at once. Commits are numbered on the writer thread, which
        wakes the sync threads after each one (:meth:`_sync_loop`): a caller whose commits a sync
        already covers returns without waiting, the others wait for the sync that covers them,
        shared with every commit made before it began. Raises :class:`StoreError` when that sync
        failed (the commit may not survive a power loss; a process kill it does); a later call
        tries the sync again."""
        if not self._syncs_wal:
            return
        needed = self._acked_seq
        if self._synced_seq >= needed:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        with self._sync_lock:
            if self._synced_seq >= needed:
                return
            if self._closed and not any(thread.is_alive() for thread in self._sync_threads):
                raise StoreError("WAL sync failed: the store is closed")
            self._sync_waiters.append((needed, loop, waiter))
            retry = needed <= self._failed_through
        if retry:  # the sync meant to cover it failed: try again
            self._sync_wake.put(True)
        await waiter

    def _sync_loop(self) -> None:
        """A sync thread (``DURABILITY=power``; :data:`SYNC_THREADS` of them): wait for a commit,
        ``fdatasync`` the WAL for every commit numbered when the sync began, unless a sync in
        flight or done began after it (the wake-ups that came meanwhile are folded into one),
        then answer the waiters it covers, one ``call_soon_threadsafe`` per event loop. Returns
        when :meth:`close` queues ``False`` (passed on to the next thread)."""
        wake = self._sync_wake
        stop = False
        while not stop:
            stop = not wake.get()
            while True:
                try:
                    stop = not wake.get_nowait() or stop
                except queue.Empty:
                    break
            with self._sync_lock:
                # read before the sync begins: every commit it counts is written
                target = self._commit_seq
                if target <= self._sync_begun:  # a sync in flight (or done) began after it
                    continue
                self._sync_begun = target
            error: BaseException | None = None
            try:
                self._fsync_wal()
            except BaseException as exc:  # handed to the waiters, whatever it is
                error = exc
            self._settle_syncs(target, error)
        wake.put(False)  # the next thread stops too

    def _settle_syncs(self, target: int, error: BaseException | None, *, every: bool = False) -> None:
        """On a sync thread (or at close): record a sync of every commit up to ``target`` (or
        its ``error``) and settle the waiters it covers (all of them with ``every``)."""
        failure = None if error is None else StoreError(f"WAL sync failed: {type(error).__name__}")
        with self._sync_lock:
            if failure is None:
                self._synced_seq = max(self._synced_seq, target)
                self.wal_syncs += 1
            else:
                self._failed_through = max(self._failed_through, target)
                # the next caller's wake-up begins a new sync (retry) for what this one missed
                self._sync_begun = min(self._sync_begun, self._synced_seq)
            ready: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            keep = []
            for entry in self._sync_waiters:
                if every or entry[0] <= target:
                    ready.setdefault(entry[1], []).append(entry[2])
                else:
                    keep.append(entry)
            self._sync_waiters = keep
        for loop, waiters in ready.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle_all, waiters, failure)

    def _fsync_wal(self) -> None:
        """On a sync thread: ``fdatasync`` the WAL file (the database file when there is no
        WAL: it was checkpointed into the database and removed). The WAL's descriptor is kept
        open: the file is never removed while the writer's connection is open (SQLite removes it
        when the last connection closes; a restart truncates it in place), and this runs only
        while it is."""
        sync = getattr(os, "fdatasync", os.fsync)
        fd = self._wal_fd
        if fd is None:
            with self._sync_lock:
                if self._wal_fd is None:
                    with contextlib.suppress(FileNotFoundError):
                        self._wal_fd = os.open(self.path + "-wal", os.O_RDONLY)
                fd = self._wal_fd
        if fd is not None:
            sync(fd)
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            sync(fd)
        finally:
            os.close(fd)

    async def _read_op(self, fn: Callable[[], R]) -> R:
        """Run ``fn`` on the reader thread."""
        return await self._reader_thread.call(fn)

    def _prepare_file(self, migration_wait_s: float | None, busy_timeout_s: float) -> None:
        """WAL mode, the tables, then the file's schema brought to this version
        (:func:`app.store.sqlite_schema.migrate`: columns added and filled from the JSON, indexes
        of older shapes dropped, the declared ones created), under the file's schema lock
        (:func:`app.store.sqlite_lock.schema_lock`; ``migration_wait_s`` ``None``: no file, no
        lock): a process migrating the file holds it, and this one waits for it, up to
        ``migration_wait_s`` seconds, instead of failing with "database is locked" once its busy
        timeout is over. Logs what it changed in a file an older version wrote.

        Raises :class:`StoreError` naming the file and the reason when the lock is not had in
        time, or when the write lock is not (a writer that is no migration held it past
        ``busy_timeout_s``)."""
        lock = (
            contextlib.nullcontext()
            if migration_wait_s is None
            else schema_lock(self.path, wait_s=migration_wait_s)
        )
        with lock:
            try:
                self._writer.execute("PRAGMA journal_mode=WAL")
                self._writer.executescript(_SCHEMA)
                counts = migrate(self._writer)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                raise StoreError(
                    f"cannot open {self.path}: its schema could not be brought up to date, another "
                    f"connection held the write lock past the busy timeout ({busy_timeout_s:g} s): {exc}"
                ) from exc
        if counts["filled"] or counts["cleared"] or counts["dropped"]:
            log.info("sqlite.schema_migrated", tenant=SYSTEM_TENANT, path=self.path, **counts)

    async def get(self, tenant_id: str, collection: str, doc_id: str) -> dict[str, JSON] | None:
        row = await self._read_op(
            lambda: self._reader.execute(
                "SELECT data FROM docs WHERE tenant=? AND coll=? AND id=?", (tenant_id, collection, doc_id)
            ).fetchone()
        )
        return _load(row[0]) if row else None

    async def get_many(self, tenant_id: str, refs: Sequence[tuple[str, str]]) -> list[dict[str, JSON] | None]:
        """Every document of ``refs`` in one hand-off to the reader thread and one statement (a
        seek by primary key each, :func:`_point_reads`, so they are read at one instant); see
        :meth:`Store.get_many`."""
        wanted = list(refs)

        texts = await self._read_op(lambda: _point_reads(self._reader, tenant_id, wanted))
        return [_load(text) if text is not None else None for text in texts]

    async def get_many_then_query(
        self,
        tenant_id: str,
        refs: Sequence[tuple[str, str]],
        collection: str,
        *,
        filters: Sequence[Filter] = (),
        order_by: Sequence[Order] = (),
        limit: int | None = None,
    ) -> tuple[list[dict[str, JSON] | None], list[Document]]:
        """The point reads (one statement, :func:`_point_reads`), then the query, in ONE hand-off
        to the reader thread (in that order, as the two calls would); see
        :meth:`Store.get_many_then_query`."""
        wanted = list(refs)

        def read() -> tuple[list[str | None], list[Document]]:
            texts = _point_reads(self._reader, tenant_id, wanted)
            return texts, _run_query(self._reader, tenant_id, collection, filters, order_by, limit)

        texts, found = await self._read_op(read)
        return [_load(text) if text is not None else None for text in texts], found

    async def set(
        self, tenant_id: str, collection: str, doc_id: str, data: dict[str, JSON], *, merge: bool = False
    ) -> None:
        kind = "merge" if merge else "set"
        data = dict(data)

        def write() -> list[tuple[str, str]]:
            newly: list[tuple[str, str]] = []
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                _write(self._writer, kind, tenant_id, collection, doc_id, data, self._registered, newly)
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")
            return newly

        async with self._lock:
            newly = await self._write_op(write)
            self.commits += 1
            self._registered.update(newly)
        await self.sync_commits()

    async def delete(self, tenant_id: str, collection: str, doc_id: str) -> None:
        async with self._lock:
            await self._write_op(
                lambda: self._writer.execute(
                    "DELETE FROM docs WHERE tenant=? AND coll=? AND id=?", (tenant_id, collection, doc_id)
                )
            )
        await self.sync_commits()

    async def query(
        self,
        tenant_id: str,
        collection: str,
        *,
        filters: Sequence[Filter] = (),
        order_by: Sequence[Order] = (),
        limit: int | None = None,
        start_after: Sequence[JSON] | None = None,
    ) -> list[Document]:
        return await self._read_op(
            functools.partial(
                _run_query, self._reader, tenant_id, collection, filters, order_by, limit, start_after
            )
        )

    async def count(self, tenant_id: str, collection: str, *, filters: Sequence[Filter] = ()) -> int:
        """``SELECT COUNT(*)`` over the query's index (no document is decoded)."""
        clauses, params = _where(filters, (), _leaf_of(collection))
        clauses.insert(0, _leaf_term(collection))
        # _where() quotes no value: every value is a bound parameter
        head = f"SELECT COUNT(*) FROM docs WHERE tenant=? AND coll={_COLL_PARAM}"  # noqa: S608
        sql = head + "".join(" AND " + c for c in clauses)
        row = await self._read_op(
            lambda: self._reader.execute(sql, [tenant_id, collection, *params]).fetchone()
        )
        return int(row[0])

    async def query_group(
        self,
        collection: str,
        *,
        filters: Sequence[Filter] = (),
        order_by: Sequence[Order] = (),
        limit: int | None = None,
    ) -> list[Document]:
        # A collection group matches the last path segment, as in Firestore.
        if "/" in collection:
            raise StoreError("query_group takes a collection id, not a path")
        # The registry names every collection whose last segment is `collection`, so the query
        # seeks the group indexes instead of scanning every document of every tenant.
        head = (
            "SELECT tenant, coll, id, data FROM docs "
            "WHERE coll IN (SELECT coll FROM colls WHERE leaf=?) AND tenant != ?"
        )
        sql, params = _shaped_sql(head, collection, filters, order_by, limit, group=True)
        rows = await self._read_op(
            lambda: self._reader.execute(sql, [collection, SYSTEM_TENANT, *params]).fetchall()
        )
        return [Document(r[0], r[1], r[2], _load(r[3])) for r in rows]

    async def list_collections(self, tenant_id: str) -> list[str]:
        rows = await self._read_op(
            lambda: self._reader.execute(
                "SELECT DISTINCT coll FROM docs WHERE tenant=? ORDER BY coll", (tenant_id,)
            ).fetchall()
        )
        return [r[0] for r in rows]

    async def list_tenants(self) -> list[str]:
        rows = await self._read_op(
            lambda: self._reader.execute(
                "SELECT DISTINCT tenant FROM docs WHERE tenant != ? ORDER BY tenant", (SYSTEM_TENANT,)
            ).fetchall()
        )
        return [r[0] for r in rows]

    def _finish(
        self,
        txs: Sequence[_SQLiteTransaction],
        before: Callable[[], None] | None = None,
        *,
        begun: bool = False,
    ) -> None:
        """On the writer thread: open the transaction unless ``begun`` or a read did, run
        ``before``, apply every ``txs``' writes and commit; roll back and re-raise on any error."""
        if not begun and not any(tx.begun for tx in txs):
            self._writer.execute("BEGIN IMMEDIATE")
        try:
            if before is not None:
                before()
            for tx in txs:
                tx.apply()
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise
        self._writer.execute("COMMIT")

    def _rollback(self) -> None:
        if self._writer.in_transaction:
            self._writer.execute("ROLLBACK")

    def _run_group(self, group: Sequence[_Inline]) -> None:
        """On the writer thread: run every transaction of ``group`` in ONE SQLite transaction,
        each in a savepoint of its own (so one that fails or falls back is rolled back alone),
        then commit once. Each entry's ``outcome`` says what happened to it; raises (after rolling
        back everything) when ``BEGIN`` or ``COMMIT`` fail, which then concerns them all."""
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            for entry in group:
                conn.execute("SAVEPOINT inline_tx")
                tx = _SQLiteTransaction(conn, entry.tenant_id, self._registered, _now, begun=True)
                try:
                    entry.result = entry.context.run(_run_now, entry.fn(tx), suspended=_Suspended)
                    tx.apply()
                except _Suspended:
                    entry.outcome = "fallback"
                except RuntimeError as exc:  # fn asked for the event loop, which this thread has not
                    entry.outcome, entry.error = ("fallback" if "event loop" in str(exc) else "error"), exc
                except Exception as exc:
                    entry.outcome, entry.error = "error", exc
                else:
                    entry.outcome, entry.newly = "done", tx.newly
                if entry.outcome != "done":
                    conn.execute("ROLLBACK TO inline_tx")
                conn.execute("RELEASE inline_tx")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def _run_inline(
        self, tenant_id: str, fn: Callable[[Transaction], Awaitable[T]]
    ) -> tuple[bool, T | None]:
        """Queue ``fn`` for the next group (:meth:`_drain_inline`) and wait for its commit;
        returns ``(True, result)``, or ``(False, None)`` when it must run the ordinary way.
        Raises what ``fn`` raised, or what ``BEGIN``/``COMMIT`` raised for the whole group."""
        entry = _Inline(tenant_id, fn, contextvars.copy_context())
        self._inline_queue.append(entry)
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain_inline())
        await entry.ready.wait()
        if entry.outcome in ("error", "failed"):
            assert entry.error is not None
            raise entry.error
        if entry.outcome == "done":
            await self.sync_commits()
        return entry.outcome == "done", entry.result

    async def _drain_inline(self) -> None:
        """Run the queued inline transactions, a group per turn of the writer lock (those that
        queue while one group runs, or while an ordinary transaction holds the lock, form the
        next), until none is left."""
        try:
            while self._inline_queue:
                async with self._lock:
                    group, self._inline_queue = self._inline_queue, []
                    try:
                        await self._write_op(functools.partial(self._run_group, group))
                    except BaseException as exc:
                        for entry in group:
                            entry.outcome, entry.error = "failed", exc
                        if not isinstance(exc, Exception):
                            raise
                    else:
                        self.commits += 1
                        for entry in group:
                            if entry.outcome == "done":
                                self._registered.update(entry.newly)
                    finally:
                        for entry in group:
                            entry.ready.set()
        finally:
            self._drainer = None

    async def run_transaction(
        self,
        tenant_id: str,
        fn: Callable[[Transaction], Awaitable[T]],
        *,
        max_attempts: int = 5,
        inline: bool = False,
    ) -> T:
        """See :meth:`Store.run_transaction`.

        With ``inline``, ``fn`` runs on the writer thread with its reads in place, and the inline
        transactions that queued while another held the writer run together: one hand-off and ONE
        commit for the group, each in a savepoint of its own (a failing one is rolled back alone;
        each caller returns once the commit that holds its writes is done). A hand-off costs the
        process about 0.1 ms of CPU and a commit writes each page it changed to the WAL once, so a
        burst of small transactions (timers falling due together) costs a fraction of running them
        one by one. A caller cancelled while it waits for its group may still see its writes
        committed (as with a cancellation during an ordinary ``COMMIT``)."""
        last: Exception | None = None
        for _ in range(max_attempts):
            if inline:
                try:
                    done, result = await self._run_inline(tenant_id, fn)
                except sqlite3.OperationalError as exc:  # database locked by another process
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                    last = exc
                    await asyncio.sleep(0.05)
                    continue
                if done:
                    return result  # type: ignore[return-value]
            async with self._lock:
                tx = _SQLiteTransaction(self._writer, tenant_id, self._registered, self._write_op)
                try:
                    result = await fn(tx)
                    await self._write_op(functools.partial(self._finish, [tx]))
                except sqlite3.OperationalError as exc:  # database locked by another process
                    await self._write_op(self._rollback)
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                    last = exc
                    await asyncio.sleep(0.05)
                    continue
                except BaseException:
                    await asyncio.shield(self._write_op(self._rollback))
                    raise
                self.commits += 1
                self._registered.update(tx.newly)
            await self.sync_commits()  # outside the lock: the next transaction commits meanwhile
            return result
        raise ConflictError(f"transaction did not commit after {max_attempts} attempts: {last}")

    # ----------------------------------------------------------------- the ingest log
    async def append_log(
        self,
        records: Sequence[LogRecord],
        *,
        on_new: Callable[[Transaction], Awaitable[None]] | None = None,
        defer_sync: bool = False,
    ) -> list[bool]:
        """Every record in ONE commit (whatever their tenants); see :meth:`Store.append_log`.
        With ``DURABILITY=power`` the call returns once the WAL is synced, or, with
        ``defer_sync``, once the commit is done: the caller then awaits :meth:`sync_commits`.

        The whole group is ONE hand-off to the writer thread: the inserts, ``on_new`` for each
        tenant and the commit (a hand-off costs the event loop more CPU than a small commit).
        So ``on_new`` runs on the writer thread and may await nothing but its transaction's own
        reads (which then run in place); awaiting anything else raises ``RuntimeError`` and
        rolls the group back.

        The entries are JSON-encoded on the writer thread (msgspec: a tenth of :func:`json.dumps`'s
        CPU), not on the event loop."""

        def append() -> tuple[list[bool], list[_SQLiteTransaction]]:
            rows = [(r.tenant_id, r.id, r.at, _LOG_ENCODER.encode(r.data).decode()) for r in records]
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                fresh: list[bool] = []
                for record, row in zip(records, rows, strict=True):
                    if record.seen is None:
                        cursor = self._writer.execute(_APPEND, row)
                    else:  # one statement: new unless logged already or its document exists
                        cursor = self._writer.execute(_APPEND_UNSEEN, (*row, record.tenant_id, *record.seen))
                    fresh.append(cursor.rowcount == 1)
                tenants = sorted({r.tenant_id for r, new in zip(records, fresh, strict=True) if new})
                txs = [
                    _SQLiteTransaction(self._writer, t, self._registered, _now, begun=True) for t in tenants
                ]
                if on_new is not None:
                    for tx in txs:
                        _run_now(on_new(tx))
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._finish(txs, begun=True)  # commits, or rolls back and raises
            return fresh, txs

        async with self._lock:
            fresh, txs = await self._write_op(append)
            self.commits += 1
            for tx in txs:
                self._registered.update(tx.newly)
        if not defer_sync:
            await self.sync_commits()
        return fresh

    async def consume_log(
        self,
        tenant_id: str,
        fn: Callable[[Transaction, list[LogRecord]], Awaitable[None]],
        *,
        limit: int = 256,
    ) -> int:
        """See :meth:`Store.consume_log`; the entries are read and deleted in the transaction."""

        def read() -> list[Any]:
            self._writer.execute("BEGIN IMMEDIATE")
            return self._writer.execute(
                "SELECT id, at, data FROM ingest_log WHERE tenant=? ORDER BY at, id LIMIT ?",
                (tenant_id, int(limit)),
            ).fetchall()

        async with self._lock:
            tx = _SQLiteTransaction(self._writer, tenant_id, self._registered, self._write_op, begun=True)
            try:
                rows = await self._write_op(read)
                if not rows:
                    await self._write_op(self._rollback)
                    return 0
                await fn(tx, [LogRecord(tenant_id, r[0], float(r[1]), json.loads(r[2])) for r in rows])
                ids = [(tenant_id, r[0]) for r in rows]

                def delete_consumed() -> None:
                    self._writer.executemany("DELETE FROM ingest_log WHERE tenant=? AND id=?", ids)

                await self._write_op(functools.partial(self._finish, [tx], delete_consumed, begun=True))
            except BaseException:
                await asyncio.shield(self._write_op(self._rollback))
                raise
            self.commits += 1
            self._registered.update(tx.newly)
        await self.sync_commits()
        return len(rows)

    async def has_log(self, tenant_id: str) -> bool:
        sql = "SELECT 1 FROM ingest_log WHERE tenant=? LIMIT 1"
        row = await self._read_op(lambda: self._reader.execute(sql, (tenant_id,)).fetchone())
        return row is not None

    async def log_size(self, tenant_id: str | None = None) -> int:
        """Entries waiting in the ingest log (of one tenant, or of all)."""
        sql, params = (
            ("SELECT COUNT(*) FROM ingest_log", ())
            if tenant_id is None
            else ("SELECT COUNT(*) FROM ingest_log WHERE tenant=?", (tenant_id,))
        )
        row = await self._read_op(lambda: self._reader.execute(sql, params).fetchone())
        return int(row[0])

    async def close(self) -> None:
        """Close both connections and stop their threads (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True

        def close_writer() -> None:
            self._writer.close()

        def close_reader() -> None:
            self._reader.close()

        def close_checkpointer() -> None:
            if self._checkpointer is not None:
                self._checkpointer.close()

        # after any checkpoint in flight (one thread, first come first served)
        await asyncio.get_running_loop().run_in_executor(self._checkpoint_thread, close_checkpointer)
        await self._write_op(close_writer)
        await self._read_op(close_reader)
        if self._sync_threads:
            self._sync_wake.put(False)  # after a last sync of what is committed

            def join_syncs() -> None:
                for thread in self._sync_threads:
                    thread.join()

            await asyncio.get_running_loop().run_in_executor(None, join_syncs)
            if self._wal_fd is not None:
                os.close(self._wal_fd)
                self._wal_fd = None
            self._settle_syncs(self._commit_seq, StoreError("the store is closed"), every=True)
        self._writer_thread.shutdown(wait=True)
        self._reader_thread.shutdown(wait=True)
        self._checkpoint_thread.shutdown(wait=True)
