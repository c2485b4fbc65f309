"""CSV import of leads: the upload splits the file, then a durable job checks and writes its rows
in batches.

Life of an import (collection ``lead_imports``, one document per import; its rows in
``lead_import_batches``, documents ``{import_id}:{n}`` of at most :data:`BATCH_ROWS` rows)::

    upload --split--> queued --job "lead_import", one batch per run--> running ... --> done

The upload only splits the file (:func:`split_csv`: bounded, at most :data:`MAX_ROWS` rows of a
file of at most :data:`MAX_BYTES` bytes) and refuses a file it cannot import at all. Each run of
the job checks one batch's rows (:func:`check_rows`, off the event loop) and writes them, so the
progress the page shows is the real work. A row is refused, with its line number, the field and
the reason, when:

- its phone is not a valid number (``phonenumbers``, in the tenant's default region), stored E.164;
- its email is not a valid address (``email-validator``, syntax only, no DNS);
- it has neither a phone nor an email;
- its ``consent`` cell is missing or not one of yes/no/true/false/1/0/oui/non/y/n;
- it repeats the email or phone of an earlier row of the file;
- its email or phone already belongs to a lead of the tenant.

The other rows are written (one transaction per batch, with the batch's report and the import's
counters), and, when the import names a playbook, each new lead that gave its consent is started
on it through the same path as ``POST /api/v1/leads`` (:class:`StartLead`), so the outbound policy
decides each opening. A crash loses nothing: the job's lease expires and the next run resumes from
the first batch not written; a lead already written by this import is never counted twice.

Times are UTC epoch seconds.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import anyio
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from app.conversations.lookup import new_lead
from app.core.coded_errors import CodedError
from app.core.logs import get_logger
from app.core.records import Record
from app.jobs.queue import Job, JobQueue
from app.store import Order, Store, Transaction, where
from app.store.collections import LEAD_IMPORT_BATCHES, LEAD_IMPORTS, LEADS
from channels.registry import CHANNELS
from kernel.clock import Clock

__all__ = [
    "BATCH_ROWS",
    "IMPORTS",
    "IMPORT_BATCHES",
    "JOB_KIND",
    "MAX_BYTES",
    "MAX_ROWS",
    "ImportFileError",
    "LeadImport",
    "LeadImporter",
    "ParsedFile",
    "RefusedRow",
    "StartLead",
    "check_rows",
    "parse_consent",
    "parse_csv",
    "split_csv",
]

log = get_logger("leadwarm.dashboard.imports")

IMPORTS = LEAD_IMPORTS
IMPORT_BATCHES = LEAD_IMPORT_BATCHES
JOB_KIND: Final = "lead_import"
#: Rows one job run writes in one transaction.
BATCH_ROWS = 100
#: Largest file accepted (bytes) and most data rows in it.
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000
#: Longest cell kept (characters); longer cells are cut.
MAX_CELL = 300
_YES = frozenset({"yes", "y", "true", "1", "oui", "o", "x"})
_NO = frozenset({"no", "n", "false", "0", "non"})
#: Header names accepted for each field (case-insensitive, French too).
_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "full_name", "full name", "nom", "nom complet"),
    "first_name": ("first_name", "first name", "firstname", "prénom", "prenom"),
    "last_name": ("last_name", "last name", "lastname", "nom de famille"),
    "email": ("email", "e-mail", "mail", "courriel"),
    "phone": ("phone", "mobile", "telephone", "téléphone", "tel", "tél"),
    "consent": ("consent", "consentement", "opt_in", "opt-in", "optin"),
    "language": ("language", "lang", "langue"),
    "source": ("source",),
}
Status = Literal["queued", "running", "done", "failed"]


class ImportFileError(CodedError):
    """The file cannot be imported at all (not CSV, too big, no ``consent`` column...); ``code`` names
    the case for translations (``file_not_text``, ``file_too_big``, ``file_empty``,
    ``no_consent_column``, ``no_address_column``, ``too_many_rows``, ``bad_csv``)."""


class RefusedRow(Record):
    """One refused row: its ``line`` in the file (the header is line 1), the ``field`` at fault
    (``email``, ``phone``, ``consent``, ``row``) and why, in plain English (``reason``); ``code`` is
    stable for translations (``bad_phone``, ``bad_email``, ``no_address``, ``bad_consent``,
    ``duplicate_in_file``, ``duplicate_existing``, ``not_started``)."""

    line: int
    field: str
    code: str
    reason: str
    value: str = ""


class LeadImport(Record):
    """One import: what was uploaded and how far the job is. Counts are rows."""

    id: str
    tenant_id: str
    filename: str = ""
    status: Status = "queued"
    total_rows: int = 0
    region: str | None = None
    batches: int = 0
    next_batch: int = 0
    processed: int = 0
    imported: int = 0
    refused: int = 0
    started: int = 0
    not_started: int = 0
    playbook_id: str | None = None
    channel: str | None = None
    created_by: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    error: str | None = None

    def view(self) -> dict[str, Any]:
        """The API's shape: the record plus ``progress`` (0..1, rows handled over all rows)."""
        body = self.to_doc()
        body["progress"] = (
            1.0 if self.status == "done" else ((self.processed / self.total_rows) if self.total_rows else 0.0)
        )
        return body


@dataclass(slots=True)
class ParsedFile:
    """:func:`parse_csv`'s result: the rows to import (dicts of ``line``, ``name``, ``email``,
    ``phone``, ``consent``, ``language``, ``source``) and the rows refused while parsing."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    refused: list[RefusedRow] = field(default_factory=list)
    total: int = 0


def parse_consent(value: str) -> bool | None:
    """``True``/``False`` for yes/no words (English, French, 1/0, true/false); ``None`` otherwise."""
    word = value.strip().casefold()
    if word in _YES:
        return True
    if word in _NO:
        return False
    return None


def _columns(header: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = raw.strip().strip("\ufeff").casefold()
        for key, aliases in _ALIASES.items():
            if name in aliases and key not in found:
                found[key] = index
    return found


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError("the file is not text (UTF-8 or Windows-1252)", "file_not_text")


def split_csv(raw: bytes) -> tuple[list[dict[str, Any]], int]:
    """Split a CSV file into raw rows (no check of their values yet: see :func:`check_rows`).

    ``raw`` is the file's bytes (UTF-8, with or without BOM, or Windows-1252; comma, semicolon or
    tab separated, detected from the header line). Returns the non-empty rows as dicts of ``line``
    (the header is line 1) and the raw ``name``, ``email``, ``phone``, ``consent``, ``language``,
    ``source`` cells (cut to :data:`MAX_CELL` characters), and how many there are.
    Raises :class:`ImportFileError` when the file is larger than :data:`MAX_BYTES`, has more than
    :data:`MAX_ROWS` data rows, is not text or not CSV, or lacks a ``consent`` column or any
    address column.
    """
    if len(raw) > MAX_BYTES:
        mb = MAX_BYTES // (1024 * 1024)
        raise ImportFileError(f"the file is larger than {mb} MB", "file_too_big", mb=mb)
    text = _decode(raw)
    first_line = text.split("\n", 1)[0][:2000]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    csv.field_size_limit(MAX_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise ImportFileError("the file is empty", "file_empty") from exc
    columns = _columns(header)
    if "consent" not in columns:
        raise ImportFileError("the file needs a 'consent' column (yes/no for each lead)", "no_consent_column")
    if "email" not in columns and "phone" not in columns:
        raise ImportFileError("the file needs an 'email' or a 'phone' column", "no_address_column")
    rows: list[dict[str, Any]] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise ImportFileError(
                    f"the file has more than {MAX_ROWS} rows", "too_many_rows", max=MAX_ROWS
                )
            name = _cell(cells, columns, "name") or " ".join(
                p for p in (_cell(cells, columns, "first_name"), _cell(cells, columns, "last_name")) if p
            )
            row = {
                key: _cell(cells, columns, key) for key in ("email", "phone", "consent", "language", "source")
            }
            rows.append({"line": reader.line_num, "name": name, **row})
    except csv.Error as exc:
        raise ImportFileError(
            f"line {reader.line_num}: not valid CSV ({exc})", "bad_csv", line=reader.line_num
        ) from exc
    return rows, len(rows)


def check_rows(
    rows: list[dict[str, Any]],
    *,
    region: str | None,
    seen_email: dict[str, int] | None = None,
    seen_phone: dict[str, int] | None = None,
) -> ParsedFile:
    """Check raw rows (from :func:`split_csv`) by the module docstring's rules: the accepted rows
    with normalised values (E.164 ``phone``, lower-case ``email``, ``consent`` as a bool) and the
    refused ones. ``region`` is the ISO 3166 code for phones written without a country code
    (``None``: they must start with ``+``); ``seen_email``/``seen_phone`` (value -> line) carry
    the duplicates check across calls. Pure and CPU-bound (about 1 ms a row): run it off the loop."""
    parsed = ParsedFile(total=len(rows))
    emails = {} if seen_email is None else seen_email
    phones = {} if seen_phone is None else seen_phone
    for row in rows:
        _check_row(row, region, parsed, emails, phones)
    return parsed


def parse_csv(raw: bytes, *, region: str | None) -> ParsedFile:
    """:func:`split_csv` then :func:`check_rows` over the whole file (same errors as :func:`split_csv`)."""
    rows, _ = split_csv(raw)
    return check_rows(rows, region=region)


def _cell(cells: list[str], columns: dict[str, int], key: str) -> str:
    index = columns.get(key)
    if index is None or index >= len(cells):
        return ""
    return cells[index].strip()[:MAX_CELL]


def _check_row(
    raw: dict[str, Any],
    region: str | None,
    parsed: ParsedFile,
    seen_email: dict[str, int],
    seen_phone: dict[str, int],
) -> None:
    line = int(raw["line"])

    def refuse(field_: str, code: str, reason: str, value: str = "") -> None:
        parsed.refused.append(RefusedRow(line=line, field=field_, code=code, reason=reason, value=value[:80]))

    raw_phone, raw_email = str(raw.get("phone") or ""), str(raw.get("email") or "")
    phone = email = None
    if raw_phone:
        try:
            number = phonenumbers.parse(raw_phone[:40], region)
        except phonenumbers.NumberParseException:
            hint = "" if region else " (no default region is set: write it with + and the country code)"
            return refuse("phone", "bad_phone", f"not a phone number{hint}", raw_phone)
        if not phonenumbers.is_valid_number(number):
            return refuse("phone", "bad_phone", "not a valid phone number", raw_phone)
        phone = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if raw_email:
        try:
            email = validate_email(raw_email[:254], check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:
            return refuse("email", "bad_email", str(exc), raw_email)
    if not phone and not email:
        return refuse("row", "no_address", "neither a phone nor an email")
    raw_consent = str(raw.get("consent") or "")
    consent = parse_consent(raw_consent)
    if consent is None:
        reason = "consent is missing" if not raw_consent else "consent must be yes or no"
        return refuse("consent", "bad_consent", reason, raw_consent)
    if email and email in seen_email:
        return refuse("email", "duplicate_in_file", f"same email as line {seen_email[email]}", email)
    if phone and phone in seen_phone:
        return refuse("phone", "duplicate_in_file", f"same phone as line {seen_phone[phone]}", phone)
    if email:
        seen_email[email] = line
    if phone:
        seen_phone[phone] = line
    language = str(raw.get("language") or "").casefold()[:2]
    parsed.rows.append(
        {
            "line": line,
            "name": raw.get("name") or None,
            "email": email,
            "phone": phone,
            "consent": consent,
            "language": language if language.isalpha() and len(language) == 2 else None,
            "source": str(raw.get("source") or "")[:80] or "csv-import",
        }
    )
    return None


class StartLead(Protocol):
    """Start one lead on a playbook through the API's path (``POST /api/v1/leads``).

    Called with the tenant and the body's fields (``name``, ``phone``, ``email``, ``language``,
    ``channel``, ``playbook_id``, ``consent``, ``source``); returns ``(status_code, body)``: 201 when
    started, else the refusal (400, 409 or 422 with ``error``/``detail``)."""

    def __call__(self, tenant_id: str, body: dict[str, Any]) -> Awaitable[tuple[int, dict[str, Any]]]: ...


def _channels_for(row: dict[str, Any]) -> list[str]:
    """Channels (registry order) whose address field the row fills."""
    return [name for name, cls in CHANNELS.items() if row.get(cls.traits.address_field)]


class LeadImporter:
    """Creates imports and runs their job. ``start_lead`` starts a lead on a playbook (see
    :class:`StartLead`); ``channels`` lists the channels served, for the lead's main channel."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        jobs: JobQueue,
        start_lead: StartLead,
        channels: Callable[[], Iterable[str]],
    ) -> None:
        self.store = store
        self.clock = clock
        self.jobs = jobs
        self.start_lead = start_lead
        self.channels = channels

    async def create(
        self,
        tenant_id: str,
        rows: list[dict[str, Any]],
        *,
        filename: str,
        region: str | None,
        playbook_id: str | None,
        channel: str | None,
        created_by: str,
    ) -> LeadImport:
        """Store the import and its raw rows (from :func:`split_csv`) in batches of
        :data:`BATCH_ROWS`, and enqueue its job (one transaction). ``region`` is the tenant's
        default region for phone numbers."""
        now = self.clock.now()
        imp = LeadImport(
            id=f"im_{uuid.uuid4().hex[:16]}",
            tenant_id=tenant_id,
            filename=filename[:200],
            total_rows=len(rows),
            batches=(len(rows) + BATCH_ROWS - 1) // BATCH_ROWS,
            region=region,
            playbook_id=playbook_id,
            channel=channel,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )

        async def fn(tx: Transaction) -> None:
            job = await self.jobs.read(tx, JOB_KIND, imp.id)
            tx.set(IMPORTS, imp.id, imp.to_doc())
            for n in range(imp.batches):
                tx.set(
                    IMPORT_BATCHES,
                    f"{imp.id}:{n}",
                    {
                        "import_id": imp.id,
                        "n": n,
                        "rows": rows[n * BATCH_ROWS : (n + 1) * BATCH_ROWS],
                        "done": False,
                    },
                )
            self.jobs.write(tx, job, kind=JOB_KIND, key=imp.id, due_at=now)

        await self.store.run_transaction(tenant_id, fn)
        self.jobs.notify()
        return imp

    async def get(self, tenant_id: str, import_id: str) -> LeadImport | None:
        """The import, or ``None``."""
        doc = await self.store.get(tenant_id, IMPORTS, import_id[:64])
        return LeadImport.from_doc(doc) if doc else None

    async def recent(self, tenant_id: str, *, limit: int = 20) -> list[LeadImport]:
        """The newest imports first."""
        docs = await self.store.query(
            tenant_id, IMPORTS, order_by=[Order("created_at", descending=True)], limit=limit
        )
        return [LeadImport.from_doc(d.data) for d in docs]

    async def report(self, tenant_id: str, import_id: str) -> list[dict[str, Any]]:
        """Every refused (or not started) row, by line: ``RefusedRow`` dicts."""
        doc = await self.store.get(tenant_id, IMPORTS, import_id[:64])
        if doc is None:
            return []
        rows: list[dict[str, Any]] = []
        batches = await self.store.query(
            tenant_id, IMPORT_BATCHES, filters=[where("import_id", "==", doc["id"])], limit=2 * MAX_ROWS
        )
        for batch in batches:
            rows.extend(batch.data.get("refused") or [])
        return sorted(rows, key=lambda r: (int(r.get("line", 0)), str(r.get("code"))))

    # ------------------------------------------------------------------ the job
    async def handle_job(self, job: Job) -> None:
        """Write the import's next batch; re-enqueue itself while batches remain."""
        tenant_id, import_id = job.tenant_id, job.key
        doc = await self.store.get(tenant_id, IMPORTS, import_id)
        if doc is None:
            return
        imp = LeadImport.from_doc(doc)
        if imp.status == "done":
            return
        if imp.next_batch >= imp.batches:
            await self._finish(tenant_id, imp)
            return
        batch_id = f"{import_id}:{imp.next_batch}"
        batch = await self.store.get(tenant_id, IMPORT_BATCHES, batch_id)
        if batch is None:  # pragma: no cover - written with the import
            raise LookupError(f"batch {batch_id} is missing")
        if not batch.get("done"):
            await self._write_batch(tenant_id, imp, batch_id, list(batch.get("rows") or []))
        else:
            await self._start_pending(tenant_id, imp, batch_id, batch)

    def _main_channel(self, row: dict[str, Any], preferred: str | None) -> str | None:
        served = list(self.channels())
        options = [c for c in _channels_for(row) if c in served]
        if preferred in options:
            return preferred
        return options[0] if options else None

    async def _existing(self, tenant_id: str, row: dict[str, Any]) -> dict[str, Any] | None:
        for key in ("email", "phone"):
            if row.get(key):
                docs = await self.store.query(
                    tenant_id,
                    LEADS,
                    filters=[where(key, "==", row[key])],
                    order_by=[Order("created_at")],
                    limit=1,
                )
                if docs:
                    return docs[0].data
        return None

    async def _write_batch(
        self, tenant_id: str, imp: LeadImport, batch_id: str, raw_rows: list[dict[str, Any]]
    ) -> None:
        now = self.clock.now()
        checked = await anyio.to_thread.run_sync(lambda: check_rows(raw_rows, region=imp.region))
        refused: list[dict[str, Any]] = [r.to_doc() for r in checked.refused]
        leads: list[tuple[int, dict[str, Any]]] = []
        to_start: list[dict[str, Any]] = []
        for row in checked.rows:
            existing = await self._existing(tenant_id, row)
            if existing is not None and existing.get("import_id") == imp.id:
                earlier = int(existing.get("import_line") or 0)
                if earlier != row["line"]:  # an earlier batch of this file wrote it
                    key = "email" if row.get("email") and existing.get("email") == row["email"] else "phone"
                    refused.append(
                        RefusedRow(
                            line=row["line"],
                            field=key,
                            code="duplicate_in_file",
                            reason=f"same {key} as line {earlier}",
                            value=str(row.get(key) or ""),
                        ).to_doc()
                    )
                    continue
            elif existing is not None:
                key = "email" if row.get("email") and existing.get("email") == row["email"] else "phone"
                refused.append(
                    RefusedRow(
                        line=row["line"],
                        field=key,
                        code="duplicate_existing",
                        reason=f"a lead with this {key} exists already ({existing.get('id')})",
                        value=str(row.get(key) or ""),
                    ).to_doc()
                )
                continue
            channel = self._main_channel(row, imp.channel)
            if channel is None:
                refused.append(
                    RefusedRow(
                        line=row["line"],
                        field="row",
                        code="no_address",
                        reason="no address on a served channel",
                    ).to_doc()
                )
                continue
            lead = new_lead(
                tenant_id,
                channel,
                str(row.get(CHANNELS[channel].traits.address_field)),
                now=now,
                name=row.get("name"),
                source=row.get("source") or "csv-import",
            )
            lead.phone, lead.email, lead.language = row.get("phone"), row.get("email"), row.get("language")
            lead.consent = {c: bool(row["consent"]) for c in _channels_for(row)}
            leads.append((row["line"], {**lead.to_doc(), "import_id": imp.id, "import_line": row["line"]}))
            if imp.playbook_id:
                to_start.append({"line": row["line"], "lead_id": lead.id, **row, "channel": channel})

        async def fn(tx: Transaction) -> None:
            job = await self.jobs.read(tx, JOB_KIND, imp.id)
            current = await tx.get(IMPORTS, imp.id)
            taken = [await tx.get(LEADS, lead["id"]) for _, lead in leads]
            if current is None or int(current.get("next_batch", 0)) != imp.next_batch:
                return  # another run wrote this batch meanwhile
            report = list(refused)
            written = 0
            for (line, lead), old in zip(leads, taken, strict=True):
                if old is not None and old.get("import_id") != imp.id:
                    report.append(
                        RefusedRow(
                            line=line,
                            field="row",
                            code="duplicate_existing",
                            reason=f"a lead with this address exists already ({lead['id']})",
                        ).to_doc()
                    )
                    continue
                tx.set(LEADS, lead["id"], lead)
                written += 1
            started = [r for r in to_start if r["line"] not in {x["line"] for x in report}]
            done = not started
            tx.set(
                IMPORT_BATCHES,
                batch_id,
                {
                    "import_id": imp.id,
                    "n": imp.next_batch,
                    "rows": raw_rows,
                    "done": True,
                    "refused": report,
                    "to_start": started,
                    "started_lines": [],
                },
            )
            state = LeadImport.from_doc(current)
            state.imported += written
            state.refused += len(report)
            # Rows to start count as handled once started (see _start_pending).
            state.processed += len(raw_rows) if done else len(report)
            state.status = "running"
            state.next_batch += 1 if done else 0
            state.updated_at = now
            tx.set(IMPORTS, imp.id, {**current, **state.to_doc()})
            self.jobs.write(tx, job, kind=JOB_KIND, key=imp.id, due_at=now)

        await self.store.run_transaction(tenant_id, fn)
        self.jobs.notify()

    async def _start_pending(
        self, tenant_id: str, imp: LeadImport, batch_id: str, batch: dict[str, Any]
    ) -> None:
        """Start the batch's new leads on the playbook (those not started yet), then move on."""
        done_lines = set(batch.get("started_lines") or [])
        results: list[tuple[int, bool, dict[str, Any] | None]] = []
        for row in batch.get("to_start") or []:
            if row["line"] in done_lines:
                continue
            body = {
                "name": row.get("name"),
                "phone": row.get("phone"),
                "email": row.get("email"),
                "language": row.get("language"),
                "channel": row["channel"],
                "playbook_id": imp.playbook_id,
                "consent": {c: bool(row["consent"]) for c in _channels_for(row)},
                "source": row.get("source") or "csv-import",
            }
            if not row["consent"]:  # no consent to be contacted: imported, never written to
                status, answer = 0, {"detail": "no consent to be contacted: not started"}
            else:
                status, answer = await self.start_lead(tenant_id, body)
            started = status == 201
            refusal = None
            if not started:
                refusal = RefusedRow(
                    line=row["line"],
                    field="playbook",
                    code="not_started",
                    reason=str(answer.get("detail") or answer.get("error") or f"refused ({status})")[:300],
                ).to_doc()
            results.append((row["line"], started, refusal))
        now = self.clock.now()

        async def fn(tx: Transaction) -> None:
            job = await self.jobs.read(tx, JOB_KIND, imp.id)
            current = await tx.get(IMPORTS, imp.id)
            fresh = await tx.get(IMPORT_BATCHES, batch_id)
            if current is None or fresh is None or int(current.get("next_batch", 0)) != imp.next_batch:
                return
            state = LeadImport.from_doc(current)
            state.started += sum(1 for _, ok, _ in results if ok)
            state.not_started += sum(1 for _, ok, _ in results if not ok)
            state.processed += len(fresh.get("rows") or []) - len(fresh.get("refused") or [])
            state.next_batch += 1
            state.updated_at = now
            tx.set(
                IMPORT_BATCHES,
                batch_id,
                {
                    **fresh,
                    "started_lines": sorted(done_lines | {line for line, _, _ in results}),
                    "refused": [*(fresh.get("refused") or []), *(r for _, _, r in results if r)],
                },
            )
            tx.set(IMPORTS, imp.id, {**current, **state.to_doc()})
            self.jobs.write(tx, job, kind=JOB_KIND, key=imp.id, due_at=now)

        await self.store.run_transaction(tenant_id, fn)
        self.jobs.notify()

    async def _finish(self, tenant_id: str, imp: LeadImport) -> None:
        now = self.clock.now()

        async def fn(tx: Transaction) -> None:
            current = await tx.get(IMPORTS, imp.id)
            if current is None:
                return
            tx.set(
                IMPORTS,
                imp.id,
                {
                    **current,
                    "status": "done",
                    "processed": imp.total_rows,
                    "finished_at": now,
                    "updated_at": now,
                },
            )

        await self.store.run_transaction(tenant_id, fn)
        log.info(
            "lead_import.done", tenant=tenant_id, import_id=imp.id, imported=imp.imported, refused=imp.refused
        )
