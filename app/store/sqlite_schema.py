"""The embedded store's schema: the documents table, the fields its queries filter and order on
as real columns of it, the composite indexes on those columns, and the migration of a file an
older version wrote.

``docs(tenant, coll, id, data)`` holds each document as JSON text, the truth. A field that an
index below declares for a collection (by the collection path's last segment, its ``leaf``) is
also a column ``f_<field>`` of the document's row, written from the document with every write
(:func:`column_values`): the indexes are on those columns, so writing a document no longer runs
``json_extract`` once per index over its text (measured, one conversation document: 88 us with
26 expression indexes, 28 us with columns, 16 us when only its changed columns are written).
The column holds what ``json_extract(data, '$.<field>')`` returns, so SQLite compares and sorts
it exactly as before: a string as TEXT, an integer as INTEGER (past 64 bits: REAL, as SQLite
reads it), a float as REAL, ``true``/``false`` as 1/0, a map or a list as its JSON text, and
SQL ``NULL`` for JSON ``null`` and for a missing field. The columns have no declared type (no
affinity), so a value keeps its storage class and a comparison with a bound parameter converts
nothing, as with the expression. What ``NULL`` cannot tell apart (present as ``null`` or
missing: Firestore's queries leave missing fields out, keep ``null`` ones) is the ``nulls``
column: ``,a,b,`` names the row's column fields that are JSON ``null`` (``NULL`` when none).

A field a collection does not declare is read from the JSON as before (``json_extract``), and
so is every field of a collection no index names.

The columns filled, by collection, are recorded in ``doc_columns (leaf, field)``: opening a file
whose record lacks a declared pair fills that column for the collection's documents from their
JSON, and a pair no longer declared is cleared (:func:`migrate`).
"""

from __future__ import annotations

import functools
import json
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from app.store.base import StoreError

__all__ = [
    "COLUMNS",
    "FILTER_COLUMNS",
    "GROUP_INDEXES",
    "NON_NULL_ON",
    "PARTIAL_ON",
    "SUBCOLLECTION_LEAVES",
    "TENANT_INDEXES",
    "column_values",
    "dump",
    "field_sql",
    "insert_documents",
    "insert_sql",
    "leaf_of",
    "load",
    "migrate",
    "null_sql",
    "present_sql",
    "sql_literal",
    "update_sql",
    "wanted_indexes",
]

#: The generated ``leaf`` column of ``docs``: a collection path's last segment
#: (``conversations/cv_1/messages`` -> ``messages``), computed from ``coll`` alone (virtual: no
#: storage, no JSON parsing). The indexes of subcollections and collection groups are partial on
#: it, those of top-level collections on ``coll``: a write decides which indexes it enters by
#: comparing short strings.
LEAF_SQL = "substr(coll, length(rtrim(coll, replace(coll, '/', ''))) + 1)"

#: Composite indexes, query-shaped as in firestore.indexes.json: the equality fields, then the
#: order or range field, each declared with the collections (by last path segment) whose queries
#: use it. An index is partial on being one of them (``coll = 'a' OR coll = 'b'``, which a
#: query's ``coll = 'a'`` term implies; ``leaf = ...`` for a subcollection), so a write to any
#: other collection evaluates a string comparison or two per index and writes no entry. Every
#: field named here for a collection is a column of its documents (:data:`COLUMNS`). Keep in
#: step with the queries the app runs (a query whose collection is not listed still answers,
#: through the primary key).
TENANT_INDEXES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("address_key", "status", "seq"): ("inbox",),  # inbox: one address's pending messages
    ("phone", "created_at"): ("leads",),  # leads by address
    ("email", "created_at"): ("leads",),
    ("webchat_id", "created_at"): ("leads",),
    ("lead_id", "channel", "created_at"): ("conversations",),  # a lead's conversations
    ("lead_id", "created_at"): ("conversations", "bookings", "crm_links", "crm_sync_logs"),
    ("created_at",): ("conversations", "leads", "lead_imports", "bookings"),  # newest first
    ("conversation_id", "seq"): ("outbox", "inbox", "qaUsage"),  # outbox, a snapshot, usage
    ("channel", "provider_message_id"): ("status_events",),  # delivery statuses
    ("seq",): ("messages",),  # a conversation's messages
    ("direction", "channel", "seq"): ("messages",),  # the lead's last email, for threading
    ("id", "status", "version"): ("playbooks",),  # a playbook's versions
    ("status", "created_at"): ("conversations", "handoffs", "crm_reviews"),  # inbox, handoffs, reviews
    ("stage", "created_at"): ("leads",),  # the dashboard's lead list by stage (and its count)
    ("source", "created_at"): ("leads",),  # the dashboard's lead list by source
    ("playbook_id", "created_at"): ("conversations",),  # analytics and inbox playbook filter
    ("playbook_id", "updated_at"): ("conversations",),  # analytics: has anything changed?
    ("connection_id", "at"): ("connection_audit", "crm_sync_logs", "crm_webhook_logs"),  # its logs
    ("lead_id", "at"): ("crm_sync_logs",),  # a lead's CRM sync log (the inbox's lead panel)
    ("lead_id", "queued_at"): ("crm_links",),  # a lead's CRM records
    ("connection_id", "status"): ("crm_links",),  # a connection's dead-lettered leads
    ("connection_id", "remote_contact"): ("crm_links",),  # the lead of an inbound CRM webhook
    ("connection_id", "shard"): ("crm_batch",),  # a connection's queued leads (grows in outages)
    ("provider_key",): ("bookings",),  # a calendar's booking by its own id
}
#: Indexes partial on fields too (after the collection, so other collections never evaluate
#: them), where the collection's documents often lack them and every query on the index names
#: them: playbook records without a ``version``, jobs never leased (most pending timers) hold no
#: entry. The condition is the field's presence term (:func:`present_sql`), which the query
#: carries too.
PARTIAL_ON: dict[tuple[str, ...], tuple[str, ...]] = {
    ("id", "status", "version"): ("version",),
    ("status", "lease_until"): ("lease_until",),
}
#: Indexes partial on their first field holding a value (``f_<field> IS NOT NULL``): a lead has an
#: address on one or two channels, and its ``null`` others held an entry in each of the other
#: address indexes, rewritten with every write of the lead. A query's equality on the field
#: implies the condition, so it still seeks the index ("a comparison operator on z other than IS"
#: implies "z IS NOT NULL", https://www.sqlite.org/partialindex.html section 2.2).
NON_NULL_ON: dict[tuple[str, ...], str] = {
    ("phone", "created_at"): "phone",
    ("email", "created_at"): "email",
    ("webchat_id", "created_at"): "webchat_id",
}
#: Collection-group indexes (no tenant): the scheduler's queries over every tenant's jobs. The
#: tenant's own jobs query (dead letters, few) seeks ``ix_g_status_due_at`` too and checks the
#: tenant on its entries: a job write (a timer: lease, then delete) keeps no second copy.
GROUP_INDEXES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("status", "due_at"): ("jobs",),
    ("status", "lease_until"): ("jobs",),
}

#: Fields the hot path filters on after seeking an index, columns too (no index of their own): a
#: row the index found is checked without parsing its JSON. The scheduler's due-jobs queries
#: name the job's ``shard`` (``shard IN window``), the dispatcher and the turn the outbox item's
#: ``status`` (a conversation's pending items).
FILTER_COLUMNS: dict[str, tuple[str, ...]] = {
    "jobs": ("shard",),
    "outbox": ("status",),
}

#: Collection ids reached only by a path (``conversations/{id}/messages``): an index declared for
#: one is partial on the computed ``leaf``; an index of top-level collections is partial on
#: ``coll`` itself.
SUBCOLLECTION_LEAVES = frozenset({"messages"})


def _columns_by_leaf() -> dict[str, tuple[str, ...]]:
    """Every declared index's fields by the collections it is declared for, then their
    :data:`FILTER_COLUMNS`, in declaration order."""
    by_leaf: dict[str, dict[str, None]] = {}
    for indexes in (TENANT_INDEXES, GROUP_INDEXES):
        for fields, leaves in indexes.items():
            for leaf in leaves:
                by_leaf.setdefault(leaf, {}).update(dict.fromkeys(fields))
    for leaf, fields in FILTER_COLUMNS.items():
        by_leaf.setdefault(leaf, {}).update(dict.fromkeys(fields))
    for names in by_leaf.values():
        for name in names:
            if not (name.isidentifier() and name.isascii()):  # pragma: no cover - declarations above
                raise StoreError(f"an indexed field must be a plain name, not {name!r}")
    return {leaf: tuple(fields) for leaf, fields in by_leaf.items()}


#: The column fields of each collection (by last path segment): ``f_<field>`` holds the field's
#: value for its documents (and ``nulls`` which of them are JSON ``null``). A field added here for
#: a collection is filled from the JSON of its documents the next time a file is opened.
COLUMNS: dict[str, tuple[str, ...]] = _columns_by_leaf()
#: Every column field, whichever collection declares it.
FIELDS: tuple[str, ...] = tuple(sorted({f for fields in COLUMNS.values() for f in fields}))


def leaf_of(collection: str) -> str:
    """The last path segment of ``collection``, as the ``leaf`` column computes it."""
    return collection.rsplit("/", 1)[-1]


def sql_literal(text: str) -> str:
    """``text`` as an SQL string literal (quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def json_path(field: str) -> str:
    """``$.<field>`` for a field name (dotted for a map's field); raises :class:`StoreError` for
    a name that could break out of the SQL literal (empty, a quote, ``$`` or a bracket)."""
    if not field or any(c in field for c in "'\"$[]"):
        raise StoreError(f"invalid field name {field!r}")
    return "$." + field


def field_sql(leaf: str | None, field: str) -> str:
    """The SQL of ``field``'s value in a document of collection ``leaf`` (``None``: unknown): its
    column when the collection declares one, else ``json_extract`` over the JSON text."""
    if leaf is not None and field in COLUMNS.get(leaf, ()):
        return "f_" + field
    return f"json_extract(data, '{json_path(field)}')"


def present_sql(leaf: str | None, field: str) -> str:
    """The term that says ``field`` is present (JSON ``null`` included): also the condition of
    every index partial on it (:data:`PARTIAL_ON`), so a query carrying it may seek that index."""
    if leaf is not None and field in COLUMNS.get(leaf, ()):
        return f"(f_{field} IS NOT NULL OR instr(nulls, ',{field},') > 0)"
    return f"json_type(data, '{json_path(field)}') IS NOT NULL"


def null_sql(leaf: str | None, field: str) -> str:
    """The term that says ``field`` is present and JSON ``null`` (a ``== None`` filter)."""
    if leaf is not None and field in COLUMNS.get(leaf, ()):
        return f"(f_{field} IS NULL AND instr(nulls, ',{field},') > 0)"
    return f"json_type(data, '{json_path(field)}') = 'null'"


# ----------------------------------------------------------------------- the JSON codec
#: Documents are encoded and decoded with msgspec: the same JSON text (compact, UTF-8, keys in
#: their order) at a fraction of :mod:`json`'s CPU (measured on the last 2,000 documents the turns
#: benchmark wrote, 464 characters on average: 13.1 -> 4.2 us an encode, 15.4 -> 7.4 us a decode;
#: a turn encodes about 20 and decodes about 30).
_DOC_ENCODER = msgspec.json.Encoder()
_DOC_DECODER = msgspec.json.Decoder()


def dump(data: Any) -> str:
    """``data`` as compact JSON text. A value msgspec cannot encode (an integer past 64 bits, an
    unknown type) goes through :func:`json.dumps`, which encodes it or raises its usual
    ``TypeError``/``ValueError``. A NaN or infinite float is written as ``null`` (``json.dumps``
    wrote ``NaN``, which SQLite's JSON functions reject as malformed)."""
    try:
        return _DOC_ENCODER.encode(data).decode()
    except (TypeError, OverflowError, ValueError):
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def load(text: str) -> Any:
    """A stored document's JSON text decoded; text msgspec rejects (a ``NaN`` written by an older
    version, an integer past 64 bits) is decoded by :func:`json.loads`."""
    try:
        return _DOC_DECODER.decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


# ----------------------------------------------------------------------- column values
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def sql_value_of(value: Any) -> Any:
    """What ``json_extract`` returns for ``value`` once stored as JSON (:func:`dump`): ``None``
    for JSON ``null`` (``None``, and a NaN or infinite float, which are written as ``null``);
    ``bool`` as 0/1; an integer past 64 bits as a float (SQLite reads it as REAL); a map or list
    as its JSON text; a ``str`` or ``int`` subclass (an enum) as its plain value; anything else
    as its JSON round trip."""
    kind = type(value)
    if kind is str:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else float(value)
    if value is None:
        return None
    if kind is bool:
        return int(value)
    if kind is dict or kind is list:
        return dump(value)
    # a subclass (StrEnum, IntEnum) or another type msgspec encodes: as it reads back
    decoded = load(dump([value]))[0]
    return None if decoded is None else sql_value_of(decoded)


_MISSING: Any = object()


def column_values(fields: Sequence[str], data: Mapping[str, Any]) -> tuple[Any, ...]:
    """The ``(nulls, f_<field>...)`` column values of document ``data`` for ``fields`` (a
    collection's :data:`COLUMNS`): see the module docstring. A string, a finite float and a
    64-bit integer are taken as they are (no call per field: a turn computes this for about 25
    documents)."""
    nulls: str | None = None
    values: list[Any] = [None]
    append = values.append
    for name in fields:
        value = data.get(name, _MISSING)
        kind = type(value)
        if (
            kind is str
            or (kind is float and value - value == 0)
            or (kind is int and _INT_MIN <= value <= _INT_MAX)
        ):
            append(value)  # (a NaN or an infinity minus itself is NaN, not 0)
        elif value is _MISSING:
            append(None)
        else:
            value = sql_value_of(value)
            if value is None:
                nulls = (nulls or ",") + name + ","
            append(value)
    values[0] = nulls
    return tuple(values)


def changed_positions(old: Sequence[Any], new: Sequence[Any]) -> tuple[int, ...]:
    """The positions where ``new`` differs from ``old`` (a value of another SQL storage class
    differs: 1 and 1.0 compare equal in Python and SQLite but are stored apart)."""
    if old == new and list(map(type, old)) == list(map(type, new)):
        return ()
    return tuple(i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b or type(a) is not type(b))


# ----------------------------------------------------------------------- write statements
def _names(fields: Sequence[str]) -> list[str]:
    return ["nulls", *("f_" + name for name in fields)]


@functools.cache
def insert_sql(leaf: str, *, upsert: bool) -> str:
    """The ``INSERT`` of a document of collection ``leaf`` with its column values: parameters
    ``(tenant, coll, id, data, *column_values)``. With ``upsert`` an existing row is updated in
    place (its primary key kept), every column rewritten
    (https://www.sqlite.org/lang_upsert.html)."""
    names = ["tenant", "coll", "id", "data", *(_names(COLUMNS[leaf]) if leaf in COLUMNS else [])]
    sql = f"INSERT INTO docs ({', '.join(names)}) VALUES ({','.join('?' * len(names))})"  # noqa: S608
    if upsert:
        sql += " ON CONFLICT (tenant, coll, id) DO UPDATE SET " + ", ".join(
            f"{n}=excluded.{n}" for n in names[3:]
        )
    return sql


@functools.cache
def update_sql(leaf: str, changed: tuple[int, ...]) -> str:
    """The ``UPDATE`` of an existing document's text and of the columns at ``changed`` (positions
    in its :func:`column_values`): parameters ``(data, *changed values, tenant, coll, id)``. An
    index whose columns it does not set is not touched (SQLite decides it when it prepares the
    statement), so a write that changes no indexed field writes no index entry."""
    names = _names(COLUMNS.get(leaf, ()))
    sets = ", ".join(["data=?", *(f"{names[i]}=?" for i in changed)])
    return f"UPDATE docs SET {sets} WHERE tenant=? AND coll=? AND id=?"  # noqa: S608 - declared names


def insert_documents(
    conn: sqlite3.Connection, rows: Iterable[tuple[str, str, str, str]], *, replace: bool = False
) -> int:
    """Insert documents given as ``(tenant, collection, id, JSON text)`` with their column values,
    in the caller's transaction (bulk loads: benchmarks, tools; the collection registry is the
    caller's). With ``replace`` an existing document is overwritten, else it raises
    ``sqlite3.IntegrityError``. Returns the rows written."""
    by_leaf: dict[str, list[tuple[Any, ...]]] = {}
    for tenant, coll, doc_id, text in rows:
        leaf = leaf_of(coll)
        fields = COLUMNS.get(leaf)
        values = column_values(fields, load(text)) if fields else ()
        by_leaf.setdefault(leaf, []).append((tenant, coll, doc_id, text, *values))
    for leaf, batch in by_leaf.items():
        conn.executemany(insert_sql(leaf, upsert=replace), batch)
    return sum(len(batch) for batch in by_leaf.values())


# ----------------------------------------------------------------------- indexes
def index_sql(scope: str, fields: tuple[str, ...], leaves: tuple[str, ...]) -> tuple[str, str]:
    """``(name, CREATE INDEX statement)`` of one composite index (``scope`` ``t``: per tenant,
    partial on ``coll`` for top-level collections; ``g``: collection group, partial on
    ``leaf``), on the fields' columns."""
    name = f"ix_{scope}_" + "_".join(fields)
    prefix = "coll, tenant" if scope == "t" else "coll"
    columns = ", ".join("f_" + f for f in fields)
    terms = [
        ("leaf" if scope == "g" or lf in SUBCOLLECTION_LEAVES else "coll") + " = " + sql_literal(lf)
        for lf in leaves
    ]
    where_ = f"({' OR '.join(terms)})" if len(terms) > 1 else terms[0]
    where_ = " AND ".join([where_, *(present_sql(leaves[0], f) for f in PARTIAL_ON.get(fields, ()))])
    if fields in NON_NULL_ON:
        where_ += f" AND f_{NON_NULL_ON[fields]} IS NOT NULL"
    return name, f"CREATE INDEX {name} ON docs ({prefix}, {columns}) WHERE {where_}"


def wanted_indexes() -> dict[str, str]:
    """Every declared index: name -> its ``CREATE INDEX`` statement."""
    return dict(
        index_sql(scope, fields, leaves)
        for scope, indexes in (("t", TENANT_INDEXES), ("g", GROUP_INDEXES))
        for fields, leaves in indexes.items()
    )


#: Index names of older versions, dropped when a file is opened: ``docs_group (coll, tenant)``
#: served collection-group queries before the group indexes, the ``docs_*`` single-field shapes
#: came before the composite ones. Any other ``ix_`` index whose statement is not a wanted one
#: (the expression indexes over ``json_extract``, an index no longer declared) is dropped too.
_DROPPED_PREFIXES = (
    "docs_group",
    "docs_p_",
    "docs_status",
    "docs_due_at",
    "docs_phone",
    "docs_email",
    "docs_lead_id",
    "docs_conversation_id",
    "docs_address_key",
    "docs_created_at",
    "docs_seq",
)

#: Rows filled per ``executemany`` while a column is back-filled.
_FILL_BATCH = 2_000


def migrate(conn: sqlite3.Connection) -> dict[str, int]:
    """Bring the file's schema to this version, in one transaction (a second process opening the
    file meanwhile waits for the schema lock its opener holds, :mod:`app.store.sqlite_lock`,
    then finds nothing to do): add the ``leaf``, ``nulls`` and ``f_*``
    columns a file lacks, fill the columns of each collection whose record in ``doc_columns``
    lacks one of its declared fields from its documents' JSON (every column of that collection is
    rewritten, by :func:`column_values`, the write path's own function), clear those no longer
    declared, drop the indexes of older shapes, create the missing ones (after the fill, so it
    writes no index entry), and fill the collection registry of a file written before it.

    Returns counts: ``{"filled": documents whose columns were filled, "cleared": ...,
    "dropped": indexes dropped, "created": indexes created}``. Raises ``sqlite3.Error`` (after
    rolling back) when the file cannot be changed."""
    counts = {"filled": 0, "cleared": 0, "dropped": 0, "created": 0}
    conn.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_xinfo(docs)").fetchall()}
        if "leaf" not in columns:  # a file written before the column: add it (virtual, no rewrite)
            conn.execute(f"ALTER TABLE docs ADD COLUMN leaf TEXT GENERATED ALWAYS AS ({LEAF_SQL}) VIRTUAL")
        for name in ["nulls", *("f_" + f for f in FIELDS)]:
            if name not in columns:  # no type: no affinity, a value keeps its storage class
                conn.execute(f"ALTER TABLE docs ADD COLUMN {name}")
        existing: dict[str, str | None] = dict(
            conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='docs'"
            ).fetchall()
        )
        wanted = wanted_indexes()
        for name, sql in existing.items():
            if name.startswith(_DROPPED_PREFIXES) or (name.startswith("ix_") and sql != wanted.get(name)):
                conn.execute(f'DROP INDEX IF EXISTS "{name}"')
                counts["dropped"] += 1
        filled: dict[str, set[str]] = {}
        for leaf, field in conn.execute("SELECT leaf, field FROM doc_columns").fetchall():
            filled.setdefault(leaf, set()).add(field)
        for leaf, recorded in sorted(filled.items()):
            gone = sorted(recorded - set(COLUMNS.get(leaf, ())))
            if gone:
                counts["cleared"] += _clear(conn, leaf, gone)
        for leaf, declared in sorted(COLUMNS.items()):
            if set(declared) - filled.get(leaf, set()):
                counts["filled"] += _fill(conn, leaf, declared)
        for name, sql in wanted.items():
            if existing.get(name) != sql:
                conn.execute(sql)
                counts["created"] += 1
        if conn.execute("SELECT 1 FROM colls LIMIT 1").fetchone() is None:
            conn.execute("INSERT OR IGNORE INTO colls SELECT DISTINCT tenant, coll, leaf FROM docs")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return counts


def _fill(conn: sqlite3.Connection, leaf: str, fields: tuple[str, ...]) -> int:
    """Write every column of ``leaf``'s documents from their JSON and record the pairs; returns
    the documents written. One ``UPDATE`` reads the values with ``json_extract`` itself (the
    definition of a column's value; SQLite parses each text once for all of them): the whole
    migration of the turns benchmark's 100,000-message file (220,000 documents) took 15.0 s of
    CPU, 17.7 s with the values computed in Python. A collection holding text SQLite's JSON
    functions reject (a ``NaN`` an older version wrote) is filled document by document with
    :func:`column_values` instead."""
    sets = ", ".join(f"f_{f} = json_extract(data, '$.{f}')" for f in fields)
    nulls = " || ".join(f"iif(json_type(data, '$.{f}') = 'null', '{f},', '')" for f in fields)
    try:
        count = conn.execute(
            f"UPDATE docs SET {sets}, nulls = nullif(',' || {nulls}, ',') WHERE leaf = ?",  # noqa: S608
            (leaf,),
        ).rowcount
    except sqlite3.OperationalError:  # malformed JSON: the statement alone was rolled back
        count = _fill_each(conn, leaf, fields)
    conn.execute("DELETE FROM doc_columns WHERE leaf=?", (leaf,))
    conn.executemany("INSERT INTO doc_columns VALUES (?,?)", [(leaf, f) for f in fields])
    return count


def _fill_each(conn: sqlite3.Connection, leaf: str, fields: tuple[str, ...]) -> int:
    """:func:`_fill`'s columns computed in Python, document by document (the ids read first, so
    no read cursor is open on the table while it is written); returns the documents written."""
    names = _names(fields)
    sql = f"UPDATE docs SET {', '.join(n + '=?' for n in names)} WHERE tenant=? AND coll=? AND id=?"  # noqa: S608
    keys = conn.execute("SELECT tenant, coll, id FROM docs WHERE leaf=?", (leaf,)).fetchall()
    read = "SELECT data FROM docs WHERE tenant=? AND coll=? AND id=?"
    for start in range(0, len(keys), _FILL_BATCH):
        batch = []
        for key in keys[start : start + _FILL_BATCH]:
            data = load(conn.execute(read, key).fetchone()[0])
            batch.append((*column_values(fields, data if isinstance(data, dict) else {}), *key))
        conn.executemany(sql, batch)
    return len(keys)


def _clear(conn: sqlite3.Connection, leaf: str, fields: Sequence[str]) -> int:
    """Empty the columns of ``fields`` for ``leaf``'s documents (no longer declared: its queries
    read the JSON again) and forget the pairs; returns the documents changed."""
    if not all(f.isidentifier() and f.isascii() for f in fields):
        raise StoreError(f"doc_columns names a field that is no column: {fields!r}")
    sets = ", ".join(f"f_{f}=NULL" for f in fields)
    nulls = "nulls"
    for f in fields:
        nulls = f"replace({nulls}, ',{f},', ',')"
    cursor = conn.execute(f"UPDATE docs SET {sets}, nulls=nullif({nulls}, ',') WHERE leaf=?", (leaf,))  # noqa: S608
    conn.executemany("DELETE FROM doc_columns WHERE leaf=? AND field=?", [(leaf, f) for f in fields])
    return cursor.rowcount
