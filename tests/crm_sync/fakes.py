"""Stateful fakes of HubSpot and Salesforce on 127.0.0.1, written from the vendors' documentation
(their OpenAPI descriptions cannot be shipped), so a second sync can be checked as an update.

Both check the bearer token (401 otherwise), keep every record in memory, count requests, and
enforce a rate limit over a sliding window:

- HubSpot ("API usage guidelines and limits"): 100 requests per 10 s per token (the window may be
  scaled down), and 5 search requests per second; over it, 429 with a ``RATE_LIMIT`` body, a
  ``Retry-After`` (seconds until a slot frees), and ``X-HubSpot-RateLimit-Max/-Remaining/
  -Interval-Milliseconds`` on every answer. Batch inputs are capped at 100. Batch *create*
  answers list results in reverse order (HubSpot does not promise input order). Unknown
  properties give 400 ``PROPERTY_DOESNT_EXIST``; association type ids are checked (deal->contact
  3, note->contact 202, note->deal 214).
- Salesforce ("API Request Limits and Allocations"): an allowance of N requests per window (the
  rolling 24 h scaled down); over it, 403 ``REQUEST_LIMIT_EXCEEDED`` as Salesforce answers (with a
  ``Retry-After`` until the window frees, which Salesforce does not send: marked as ours), and
  ``Sforce-Limit-Info: api-usage=N/M`` on every answer. Required fields, unknown fields, external
  id upserts (201 created / 200 updated), composite with ``allOrNone`` rollback and ``@{ref.id}``
  references (25 subrequests), and sObject Collections (200 records) behave as documented.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from collections import deque
from typing import Any, Self
from urllib.parse import unquote

from aiohttp import web

from tests.crm_sync.support import TEST_TOKEN

__all__ = ["FakeServer", "HubSpotFake", "SalesforceFake"]

Answer = tuple[int, Any, dict[str, str]]


class _Window:
    """A sliding-window limiter: at most ``limit`` events per ``window_s`` seconds."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self.events: deque[float] = deque()

    def take(self, now: float) -> float | None:
        """Record one event; ``None`` when allowed, else the seconds until a slot frees."""
        while self.events and self.events[0] <= now - self.window_s:
            self.events.popleft()
        if len(self.events) >= self.limit:
            return max(0.0, self.events[0] + self.window_s - now)
        self.events.append(now)
        return None

    def remaining(self, now: float) -> int:
        while self.events and self.events[0] <= now - self.window_s:
            self.events.popleft()
        return max(0, self.limit - len(self.events))


class FakeServer:
    """An aiohttp app on 127.0.0.1 (port 0) with one catch-all route calling :meth:`dispatch`."""

    def __init__(self, *, token: str = TEST_TOKEN) -> None:
        self.token = token
        self.requests: list[tuple[str, str]] = []
        self.rejected_429 = 0
        self.fail_next: list[int] = []  # statuses to answer before dispatching (outage simulation)
        self.fail_paths: dict[str, list[int]] = {}  # per exact path: statuses to answer first
        self.slow_paths: dict[str, list[float]] = {}  # per exact path: seconds to wait before answering
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> Self:
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return web.json_response({"message": "body is not JSON"}, status=400)
        self.requests.append((request.method, request.path))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            status, payload, headers = self.unauthorized()
            return web.json_response(payload, status=status, headers=headers)
        limited = self.limit(request.method, request.path)
        if limited is not None:
            status, payload, headers = limited
            return web.json_response(payload, status=status, headers=headers)
        planned = self.fail_paths.get(request.path)
        if self.fail_next or planned:
            status = self.fail_next.pop(0) if self.fail_next else planned.pop(0)  # type: ignore[union-attr]
            return web.json_response({"message": "simulated outage"}, status=status)
        slow = self.slow_paths.get(request.path)
        if slow:
            await asyncio.sleep(slow.pop(0))  # a slow vendor: the write lands after the wait
        status, payload, headers = self.dispatch(
            request.method, unquote(request.path), dict(request.query), body
        )
        headers = {**headers, **self.limit_headers()}
        if payload is None:
            return web.Response(status=status, headers=headers)
        return web.json_response(payload, status=status, headers=headers)

    def unauthorized(self) -> Answer:
        return 401, {"message": "unauthorized"}, {}

    def limit(self, method: str, path: str) -> Answer | None:
        return None

    def limit_headers(self) -> dict[str, str]:
        return {}

    def dispatch(self, method: str, path: str, query: dict[str, str], body: Any) -> Answer:
        raise NotImplementedError

    def count(self, method: str, pattern: str) -> int:
        """How many requests matched ``method`` and the regex ``pattern`` (full path)."""
        rx = re.compile(pattern)
        return sum(1 for m, p in self.requests if m == method and rx.fullmatch(p))


# =========================================================================== HubSpot

_HS_PROPERTIES = {
    "contacts": {
        "email",
        "firstname",
        "lastname",
        "phone",
        "mobilephone",
        "company",
        "lifecyclestage",
        "hs_lead_status",
        "hs_language",
        "hs_email_optout",
        "leadwarm_score",
    },
    "deals": {"dealname", "pipeline", "dealstage", "amount", "description", "hubspot_owner_id", "closedate"},
    "notes": {"hs_timestamp", "hs_note_body", "hubspot_owner_id"},
}
_HS_READ_ONLY = {"contacts": {"hs_object_id", "createdate"}}
_HS_STAGES = {
    "default": {"appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "closedwon", "closedlost"}
}
_HS_ASSOC = {("deals", "contacts"): 3, ("notes", "contacts"): 202, ("notes", "deals"): 214}


class HubSpotFake(FakeServer):
    """HubSpot CRM v3/v4 in memory; see the module docstring."""

    def __init__(self, *, token: str = TEST_TOKEN, limit: int = 100, window_s: float = 10.0) -> None:
        super().__init__(token=token)
        self.window = _Window(limit, window_s)
        self.search_window = _Window(5, 1.0)
        self.objects: dict[str, dict[str, dict[str, Any]]] = {"contacts": {}, "deals": {}, "notes": {}}
        self.assocs: dict[tuple[str, str, str], set[str]] = {}  # (from type, from id, to type) -> ids
        self._by_email: dict[str, str] = {}
        self._ids = itertools.count(1001)

    # -- limits

    def unauthorized(self) -> Answer:
        return (
            401,
            {
                "status": "error",
                "message": "Authentication credentials not found.",
                "category": "INVALID_AUTHENTICATION",
            },
            {},
        )

    def limit(self, method: str, path: str) -> Answer | None:
        now = time.monotonic()
        wait = self.window.take(now)
        policy = "TEN_SECONDLY_ROLLING"
        if wait is None and path.endswith("/search"):
            wait = self.search_window.take(now)
            policy = "SECONDLY"
        if wait is None:
            return None
        self.rejected_429 += 1
        return (
            429,
            {
                "status": "error",
                "message": f"You have reached your {policy.lower()} limit.",
                "errorType": "RATE_LIMIT",
                "policyName": policy,
            },
            {"Retry-After": str(max(1, math.ceil(wait))), **self.limit_headers()},
        )

    def limit_headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Max": str(self.window.limit),
            "X-HubSpot-RateLimit-Remaining": str(self.window.remaining(time.monotonic())),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.window.window_s * 1000)),
        }

    # -- helpers

    @staticmethod
    def _error(status: int, category: str, message: str, **extra: Any) -> Answer:
        return status, {"status": "error", "category": category, "message": message, **extra}, {}

    def _check_props(self, kind: str, props: Any) -> str | None:
        if not isinstance(props, dict):
            return "properties must be an object"
        for name, value in props.items():
            if name not in _HS_PROPERTIES[kind]:
                return f'Property "{name}" does not exist'
            if not isinstance(value, str | int | float | bool) and value is not None:
                return f'Property "{name}" has an invalid value'
        if kind == "deals" and "dealstage" in props:
            stages = _HS_STAGES.get(str(props.get("pipeline", "default")))
            if stages is None or props["dealstage"] not in stages:
                return f"{props['dealstage']} is not a valid deal stage"
        return None

    def _view(self, kind: str, oid: str, *, new: bool | None = None) -> dict[str, Any]:
        rec = self.objects[kind][oid]
        out = {
            "id": oid,
            "properties": {k: (None if v is None else str(v)) for k, v in rec["properties"].items()},
            "createdAt": rec["createdAt"],
            "updatedAt": rec["updatedAt"],
            "archived": False,
        }
        if new is not None:
            out["new"] = new
        return out

    def _create(self, kind: str, props: dict[str, Any]) -> str:
        oid = str(next(self._ids))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        self.objects[kind][oid] = {"properties": dict(props), "createdAt": stamp, "updatedAt": stamp}
        self.objects[kind][oid]["properties"]["hs_object_id"] = oid
        self._index(kind, oid)
        return oid

    def _associate(self, kind: str, oid: str, associations: Any) -> str | None:
        for assoc in associations or ():
            to_id = str(assoc.get("to", {}).get("id"))
            types = assoc.get("types") or []
            type_id = types[0].get("associationTypeId") if types else None
            target = next((t for (f, t), v in _HS_ASSOC.items() if f == kind and v == type_id), None)
            if target is None or to_id not in self.objects[target]:
                return f"invalid association {type_id} to {to_id}"
            self.assocs.setdefault((kind, oid, target), set()).add(to_id)
            self.assocs.setdefault((target, to_id, kind), set()).add(oid)
        return None

    def contact_by_email(self, email: str) -> str | None:
        oid = self._by_email.get(email.lower())
        if (
            oid is not None
            and str(self.objects["contacts"][oid]["properties"].get("email", "")).lower() == email.lower()
        ):
            return oid
        return None

    def _index(self, kind: str, oid: str) -> None:
        if kind == "contacts":
            email = self.objects[kind][oid]["properties"].get("email")
            if email:
                self._by_email[str(email).lower()] = oid

    def associated(self, from_kind: str, from_id: str, to_kind: str) -> list[str]:
        return sorted(self.assocs.get((from_kind, from_id, to_kind), ()))

    # -- dispatch

    def dispatch(self, method: str, path: str, query: dict[str, str], body: Any) -> Answer:
        if method == "GET" and path == "/account-info/v3/details":
            return 200, {"portalId": 62515, "timeZone": "Europe/Paris", "companyCurrency": "EUR"}, {}
        m = re.fullmatch(r"/crm/v3/properties/(contacts|deals|notes)", path)
        if method == "GET" and m:
            results = []
            for name in sorted(_HS_PROPERTIES[m.group(1)] | _HS_READ_ONLY.get(m.group(1), set())):
                prop: dict[str, Any] = {"name": name, "label": name.title(), "type": "string", "options": []}
                if name == "hs_lead_status":
                    prop.update(
                        type="enumeration",
                        options=[{"label": v.title(), "value": v} for v in ("NEW", "OPEN", "IN_PROGRESS")],
                    )
                prop["modificationMetadata"] = {"readOnlyValue": name in _HS_READ_ONLY.get(m.group(1), set())}
                results.append(prop)
            return 200, {"results": results}, {}
        m = re.fullmatch(r"/crm/v3/objects/(contacts|deals|notes)/batch/(upsert|create|update|read)", path)
        if method == "POST" and m:
            kind, action = m.groups()
            inputs = (body or {}).get("inputs")
            if not isinstance(inputs, list) or not inputs:
                return self._error(400, "VALIDATION_ERROR", "inputs must be a non-empty array")
            if len(inputs) > 100:
                return self._error(400, "VALIDATION_ERROR", "Batch size must be at most 100")
            return getattr(self, f"_batch_{action}")(kind, inputs, body)
        if method == "POST" and path == "/crm/v3/objects/contacts/search":
            return self._search(body or {})
        m = re.fullmatch(r"/crm/v3/objects/(contacts|deals|notes)", path)
        if method == "POST" and m:
            kind = m.group(1)
            problem = self._check_props(kind, (body or {}).get("properties"))
            if problem:
                return self._error(400, "VALIDATION_ERROR", problem)
            oid = self._create(kind, body["properties"])
            problem = self._associate(kind, oid, body.get("associations"))
            if problem:
                del self.objects[kind][oid]
                return self._error(400, "VALIDATION_ERROR", problem)
            return 201, self._view(kind, oid), {}
        m = re.fullmatch(r"/crm/v4/associations/(contacts)/(deals|notes)/batch/read", path)
        if method == "POST" and m:
            from_kind, to_kind = m.groups()
            results = []
            for item in (body or {}).get("inputs") or ():
                oid = str(item.get("id"))
                targets = self.associated(from_kind, oid, to_kind)
                if targets:
                    type_id = _HS_ASSOC[(to_kind, from_kind)]
                    results.append(
                        {
                            "from": {"id": oid},
                            "to": [
                                {
                                    "toObjectId": int(t),
                                    "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id}],
                                }
                                for t in targets
                            ],
                        }
                    )
            return 200, {"status": "COMPLETE", "results": results}, {}
        return self._error(404, "OBJECT_NOT_FOUND", f"no route {method} {path}")

    def _batch_upsert(self, kind: str, inputs: list[Any], body: Any) -> Answer:
        if kind != "contacts":
            return self._error(400, "VALIDATION_ERROR", "upsert by email is for contacts")
        ids = [str(i.get("id", "")).lower() for i in inputs]
        if len(set(ids)) != len(ids) or any(i.get("idProperty") != "email" for i in inputs):
            return self._error(400, "VALIDATION_ERROR", "duplicate ids or idProperty other than email")
        for item in inputs:
            problem = self._check_props(kind, item.get("properties"))
            if problem:
                return self._error(400, "VALIDATION_ERROR", problem)
        results = []
        for item, email in zip(inputs, ids, strict=True):
            oid = self.contact_by_email(email)
            if oid is None:
                oid = self._create(kind, {**item["properties"], "email": email})
                results.append(self._view(kind, oid, new=True))
            else:
                self.objects[kind][oid]["properties"].update(item["properties"])
                self._index(kind, oid)
                results.append(self._view(kind, oid, new=False))
        return 200, {"status": "COMPLETE", "results": results}, {}

    def _batch_create(self, kind: str, inputs: list[Any], body: Any) -> Answer:
        for item in inputs:
            problem = self._check_props(kind, item.get("properties"))
            if problem:
                return self._error(400, "VALIDATION_ERROR", problem)
        created = []
        for item in inputs:
            oid = self._create(kind, item["properties"])
            problem = self._associate(kind, oid, item.get("associations"))
            if problem:
                return self._error(400, "VALIDATION_ERROR", problem)
            created.append(self._view(kind, oid))
        created.reverse()  # HubSpot does not promise input order
        return 201, {"status": "COMPLETE", "results": created}, {}

    def _batch_update(self, kind: str, inputs: list[Any], body: Any) -> Answer:
        results, errors = [], []
        for item in inputs:
            oid = str(item.get("id"))
            problem = self._check_props(kind, item.get("properties"))
            if problem:
                return self._error(400, "VALIDATION_ERROR", problem)
            if oid not in self.objects[kind]:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": "Object not found",
                        "context": {"ids": [oid]},
                    }
                )
                continue
            self.objects[kind][oid]["properties"].update(item["properties"])
            self._index(kind, oid)
            results.append(self._view(kind, oid))
        payload: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            payload.update(errors=errors, numErrors=len(errors))
            return 207, payload, {}
        return 200, payload, {}

    def _batch_read(self, kind: str, inputs: list[Any], body: Any) -> Answer:
        results = [
            self._view(kind, str(i.get("id"))) for i in inputs if str(i.get("id")) in self.objects[kind]
        ]
        return 200, {"status": "COMPLETE", "results": results}, {}

    def _search(self, body: dict[str, Any]) -> Answer:
        filters = [f for g in body.get("filterGroups") or () for f in g.get("filters") or ()]
        hits = []
        for oid, rec in self.objects["contacts"].items():
            if all(
                f.get("operator") == "EQ"
                and str(rec["properties"].get(f.get("propertyName"))) == str(f.get("value"))
                for f in filters
            ):
                hits.append(self._view("contacts", oid))
        limit = int(body.get("limit") or 10)
        return 200, {"total": len(hits), "results": hits[:limit]}, {}


# =========================================================================== Salesforce

_SF_FIELDS = {
    "Lead": {
        "FirstName",
        "LastName",
        "Email",
        "Phone",
        "Company",
        "Description",
        "LeadSource",
        "Rating",
        "OwnerId",
        "Status",
        "LeadWarm_Id__c",
    },
    "Contact": {"FirstName", "LastName", "Email", "Phone", "Description", "OwnerId", "LeadWarm_Id__c"},
    "Opportunity": {
        "Name",
        "StageName",
        "CloseDate",
        "Amount",
        "ContactId",
        "Description",
        "OwnerId",
        "LeadWarm_Id__c",
    },
    "Note": {"ParentId", "Title", "Body"},
}
_SF_REQUIRED = {
    "Lead": {"LastName", "Company"},
    "Contact": {"LastName"},
    "Opportunity": {"Name", "StageName", "CloseDate"},
    "Note": {"ParentId", "Title"},
}
_SF_PREFIX = {"Lead": "00Q", "Contact": "003", "Opportunity": "006", "Note": "002"}
_SF_EXTERNAL = {"LeadWarm_Id__c"}
_SF_PICKLISTS = {"LeadSource": ["Web", "Phone Inquiry", "Other"], "Rating": ["Hot", "Warm", "Cold"]}


class _SfError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def answer(self) -> Answer:
        return self.status, [{"message": self.message, "errorCode": self.code, "fields": []}], {}


class SalesforceFake(FakeServer):
    """Salesforce REST in memory; see the module docstring. ``allowance`` requests per ``window_s``."""

    def __init__(
        self, *, token: str = TEST_TOKEN, allowance: int = 100_000, window_s: float = 86_400.0
    ) -> None:
        super().__init__(token=token)
        self.window = _Window(allowance, window_s)
        self.records: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in _SF_FIELDS}
        self._ids = itertools.count(1)
        self._journal: list[tuple[str, str, dict[str, Any] | None]] | None = None  # composite undo log
        self.used = 0

    def unauthorized(self) -> Answer:
        return 401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], {}

    def limit(self, method: str, path: str) -> Answer | None:
        wait = self.window.take(time.monotonic())
        if wait is None:
            self.used += 1
            return None
        self.rejected_429 += 1
        return (
            403,
            [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
            {"Retry-After": str(max(1, math.ceil(wait))), **self.limit_headers()},
        )

    def limit_headers(self) -> dict[str, str]:
        used = self.window.limit - self.window.remaining(time.monotonic())
        return {"Sforce-Limit-Info": f"api-usage={used}/{self.window.limit}"}

    # -- records

    def _new_id(self, sobject: str) -> str:
        return f"{_SF_PREFIX[sobject]}{next(self._ids):012d}AAA"

    def _sobject(self, name: str) -> str:
        if name not in _SF_FIELDS:
            raise _SfError(404, "NOT_FOUND", f"The requested resource does not exist: {name}")
        return name

    def _check(self, sobject: str, fields: Any, *, creating: bool) -> dict[str, Any]:
        if not isinstance(fields, dict):
            raise _SfError(400, "JSON_PARSER_ERROR", "body must be an object")
        fields = {k: v for k, v in fields.items() if k != "attributes"}
        for name, value in fields.items():
            if name not in _SF_FIELDS[sobject]:
                raise _SfError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}")
            if name in _SF_PICKLISTS and value not in _SF_PICKLISTS[name]:
                raise _SfError(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"bad value for restricted picklist field: {value}",
                )
            if name in {"ParentId", "ContactId"} and not self._find_any(str(value)):
                raise _SfError(400, "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {name}")
            if name == "CloseDate" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
                raise _SfError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of date")
        if creating:
            missing = sorted(_SF_REQUIRED[sobject] - {k for k, v in fields.items() if v not in (None, "")})
            if missing:
                raise _SfError(
                    400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]"
                )
        return fields

    def _find_any(self, rid: str) -> bool:
        return any(rid in table for table in self.records.values())

    def create(self, sobject: str, fields: Any) -> str:
        clean = self._check(sobject, fields, creating=True)
        rid = self._new_id(sobject)
        if self._journal is not None:
            self._journal.append((sobject, rid, None))
        self.records[sobject][rid] = {"Id": rid, **clean, "CreatedDate": f"{time.time():.6f}"}
        return rid

    def update(self, sobject: str, rid: str, fields: Any) -> None:
        if rid not in self.records[sobject]:
            raise _SfError(404, "NOT_FOUND", "Provided external ID field does not exist or is not accessible")
        clean = self._check(sobject, fields, creating=False)
        if self._journal is not None:
            self._journal.append((sobject, rid, dict(self.records[sobject][rid])))
        self.records[sobject][rid].update(clean)

    def upsert(self, sobject: str, field: str, value: str, fields: Any) -> tuple[str, bool]:
        if field not in _SF_EXTERNAL or field not in _SF_FIELDS[sobject]:
            raise _SfError(
                404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field}"
            )
        if isinstance(fields, dict) and field in fields and str(fields[field]) != value:
            raise _SfError(400, "INVALID_FIELD", "The external ID in the body does not match the URL")
        matches = [rid for rid, rec in self.records[sobject].items() if str(rec.get(field)) == value]
        if len(matches) > 1:
            raise _SfError(300, "MULTIPLE_CHOICES", "more than one record has this external id")
        if matches:
            self.update(sobject, matches[0], fields)
            return matches[0], False
        return self.create(sobject, {**fields, field: value}), True

    # -- dispatch

    def dispatch(self, method: str, path: str, query: dict[str, str], body: Any) -> Answer:
        m = re.fullmatch(r"/services/data/(v\d+\.\d)(/.*)", path)
        if not m:
            return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], {}
        try:
            return self._route(method, m.group(2), query, body, version=m.group(1))
        except _SfError as exc:
            return exc.answer()

    def _route(self, method: str, rest: str, query: dict[str, str], body: Any, *, version: str) -> Answer:
        if method == "GET" and rest == "/query":
            return 200, self._query(query.get("q", "")), {}
        if method == "POST" and rest == "/composite":
            return self._composite(body or {}, version)
        m = re.fullmatch(r"/composite/sobjects/(\w+)/(\w+)", rest)
        if method == "PATCH" and m:
            return self._collection_upsert(self._sobject(m.group(1)), m.group(2), body or {})
        if rest == "/composite/sobjects" and method in {"POST", "PATCH"}:
            return self._collection(method, body or {})
        m = re.fullmatch(r"/sobjects/(\w+)/describe", rest)
        if method == "GET" and m:
            sobject = self._sobject(m.group(1))
            fields = [
                {
                    "name": name,
                    "label": name,
                    "type": "picklist" if name in _SF_PICKLISTS else "string",
                    "picklistValues": [{"value": v, "active": True} for v in _SF_PICKLISTS.get(name, [])],
                    "createable": True,
                    "updateable": True,
                    "externalId": name in _SF_EXTERNAL,
                }
                for name in sorted(_SF_FIELDS[sobject])
            ]
            fields.append(
                {
                    "name": "Id",
                    "label": "Id",
                    "type": "id",
                    "picklistValues": [],
                    "createable": False,
                    "updateable": False,
                }
            )
            return 200, {"name": sobject, "fields": fields}, {}
        m = re.fullmatch(r"/sobjects/(\w+)", rest)
        if method == "POST" and m:
            rid = self.create(self._sobject(m.group(1)), body)
            return 201, {"id": rid, "success": True, "errors": []}, {}
        m = re.fullmatch(r"/sobjects/(\w+)/([\w-]+)", rest)
        if method == "PATCH" and m:
            self.update(self._sobject(m.group(1)), m.group(2), body)
            return 204, None, {}
        m = re.fullmatch(r"/sobjects/(\w+)/(\w+)/([^/]+)", rest)
        if method == "PATCH" and m:
            rid, created = self.upsert(self._sobject(m.group(1)), m.group(2), m.group(3), body or {})
            return (
                (201 if created else 200),
                {"id": rid, "success": True, "errors": [], "created": created},
                {},
            )
        raise _SfError(404, "NOT_FOUND", f"The requested resource does not exist: {method} {rest}")

    def _query(self, soql: str) -> dict[str, Any]:
        if re.fullmatch(r"SELECT Id, Name FROM Organization LIMIT 1", soql):
            return {
                "totalSize": 1,
                "done": True,
                "records": [
                    {"attributes": {"type": "Organization"}, "Id": "00D000000000001EAA", "Name": "Acme"}
                ],
            }
        m = re.fullmatch(r"SELECT ([\w, ]+) FROM (\w+) WHERE (.+) ORDER BY CreatedDate LIMIT (\d+)", soql)
        if not m:
            raise _SfError(400, "MALFORMED_QUERY", "unexpected token")
        columns = [c.strip() for c in m.group(1).split(",")]
        sobject = self._sobject(m.group(2))
        literal = r"(\w+) = (?:'((?:[^'\\]|\\.)*)'|(true|false))"
        where = m.group(3)
        conditions = [
            (col, re.sub(r"\\(.)", r"\1", text) if flag is None or flag == "" else flag)
            for col, text, flag in re.findall(literal, where)
        ]
        skeleton = re.sub(literal, "C", where)
        if not re.fullmatch(r"C(?: (?:AND|OR) C)*", skeleton) or ("AND" in skeleton and "OR" in skeleton):
            raise _SfError(400, "MALFORMED_QUERY", "unexpected token")
        combine = any if "OR" in skeleton else all

        def matches(record: dict[str, Any]) -> bool:
            checks = []
            for column, value in conditions:
                if column == "IsClosed":
                    checks.append(value == "false")  # the fake keeps every Opportunity open
                else:
                    checks.append(str(record.get(column)) == value)
            return combine(checks)

        rows = sorted(
            (r for r in self.records[sobject].values() if matches(r)), key=lambda r: r["CreatedDate"]
        )
        records = [
            {"attributes": {"type": sobject}, **{c: r.get(c) for c in columns}}
            for r in rows[: int(m.group(4))]
        ]
        return {"totalSize": len(records), "done": True, "records": records}

    def _composite(self, body: dict[str, Any], version: str) -> Answer:
        parts = body.get("compositeRequest") or []
        if len(parts) > 25:
            raise _SfError(400, "LIMIT_EXCEEDED", "at most 25 subrequests")
        self._journal = []
        refs: dict[str, dict[str, Any]] = {}
        out: list[dict[str, Any]] = []
        failed = False
        for part in parts:
            ref = str(part.get("referenceId"))
            if failed:
                out.append(
                    {
                        "body": [
                            {
                                "errorCode": "PROCESSING_HALTED",
                                "message": "The transaction was rolled back since another operation in the same transaction failed.",
                            }
                        ],
                        "httpHeaders": {},
                        "httpStatusCode": 400,
                        "referenceId": ref,
                    }
                )
                continue
            prefix = f"/services/data/{version}"
            try:
                resolved = _resolve_refs(part, refs)
                url = str(resolved.get("url", ""))
                if not url.startswith(prefix):
                    raise _SfError(400, "INVALID_URL", url)
                status, payload, _ = self._route(
                    str(resolved.get("method")), url[len(prefix) :], {}, resolved.get("body"), version=version
                )
            except _SfError as exc:
                status, payload, _ = exc.answer()
            out.append({"body": payload, "httpHeaders": {}, "httpStatusCode": status, "referenceId": ref})
            if status >= 400:
                if body.get("allOrNone"):
                    failed = True
                    self._rollback()
                    for earlier in out[:-1]:
                        earlier.update(
                            httpStatusCode=400,
                            body=[
                                {
                                    "errorCode": "PROCESSING_HALTED",
                                    "message": "The transaction was rolled back since another operation in the same transaction failed.",
                                }
                            ],
                        )
            elif isinstance(payload, dict):
                refs[ref] = payload
        self._journal = None
        return 200, {"compositeResponse": out}, {}

    def _rollback(self) -> None:
        for sobject, rid, previous in reversed(self._journal or []):
            if previous is None:
                self.records[sobject].pop(rid, None)
            else:
                self.records[sobject][rid] = previous
        self._journal = []

    def _collection_upsert(self, sobject: str, field: str, body: dict[str, Any]) -> Answer:
        records = body.get("records") or []
        if len(records) > 200:
            raise _SfError(400, "EXCEEDED_ID_LIMIT", "record limit exceeded: 200")
        out = []
        for record in records:
            if (record.get("attributes") or {}).get("type") != sobject:
                out.append(
                    {"success": False, "errors": [{"statusCode": "INVALID_TYPE", "message": "type mismatch"}]}
                )
                continue
            try:
                value = str(record.get(field, ""))
                fields = {k: v for k, v in record.items() if k not in {"attributes", field}}
                rid, created = self.upsert(sobject, field, value, fields)
                out.append({"id": rid, "success": True, "errors": [], "created": created})
            except _SfError as exc:
                out.append(
                    {
                        "success": False,
                        "errors": [{"statusCode": exc.code, "message": exc.message, "fields": []}],
                    }
                )
        return 200, out, {}

    def _collection(self, method: str, body: dict[str, Any]) -> Answer:
        records = body.get("records") or []
        if len(records) > 200:
            raise _SfError(400, "EXCEEDED_ID_LIMIT", "record limit exceeded: 200")
        out = []
        for record in records:
            sobject = (record.get("attributes") or {}).get("type", "")
            try:
                self._sobject(sobject)
                fields = {k: v for k, v in record.items() if k not in {"attributes", "id"}}
                if method == "POST":
                    out.append({"id": self.create(sobject, fields), "success": True, "errors": []})
                else:
                    self.update(sobject, str(record.get("id")), fields)
                    out.append({"id": record.get("id"), "success": True, "errors": []})
            except _SfError as exc:
                out.append(
                    {
                        "success": False,
                        "errors": [{"statusCode": exc.code, "message": exc.message, "fields": []}],
                    }
                )
        return 200, out, {}


def _resolve_refs(value: Any, refs: dict[str, dict[str, Any]]) -> Any:
    """Replace ``@{ref.field}`` in strings (composite references)."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            ref, _, name = match.group(1).partition(".")
            if ref not in refs or name not in refs[ref]:
                raise _SfError(400, "INVALID_REFERENCE", f"unresolved reference {match.group(0)}")
            return str(refs[ref][name])

        return re.sub(r"@\{([\w.]+)\}", sub, value)
    if isinstance(value, dict):
        return {k: _resolve_refs(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, refs) for v in value]
    return value


# =========================================================================== GoHighLevel


class GoHighLevelFake(FakeServer):
    """GoHighLevel API v2 in memory, for state and limits (request shapes are checked by Prism
    against GoHighLevel's own spec in test_gohighlevel.py). ``Version: 2021-07-28`` is required.
    Limits ("Rate Limits", marketplace.gohighlevel.com): a burst of 100 requests per 10 s and
    200,000 a day per location; over either, 429 with ``X-RateLimit-*`` headers (and a
    ``Retry-After``, ours). The upsert matches an existing contact of the location on email, then
    phone, as the location's default duplicate settings do."""

    def __init__(
        self, *, token: str = TEST_TOKEN, limit: int = 100, window_s: float = 10.0, daily: int = 200_000
    ) -> None:
        super().__init__(token=token)
        self.window = _Window(limit, window_s)
        self.daily = _Window(daily, 86_400.0)
        self.contacts: dict[str, dict[str, Any]] = {}
        self.opportunities: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, dict[str, Any]] = {}
        self.workflows: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._email: dict[str, str] = {}
        self._phone: dict[str, str] = {}
        self._by_contact: dict[tuple[str, str], list[str]] = {}  # ("o"|"n", contact id) -> ids

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):017d}"

    def limit(self, method: str, path: str) -> Answer | None:
        now = time.monotonic()
        wait = self.window.take(now)
        if wait is None:
            wait = self.daily.take(now)
        if wait is None:
            return None
        self.rejected_429 += 1
        return (
            429,
            {"statusCode": 429, "message": "Too many requests"},
            {"Retry-After": str(max(1, math.ceil(wait))), **self.limit_headers()},
        )

    def limit_headers(self) -> dict[str, str]:
        now = time.monotonic()
        return {
            "X-RateLimit-Limit-Daily": str(self.daily.limit),
            "X-RateLimit-Daily-Remaining": str(self.daily.remaining(now)),
            "X-RateLimit-Interval-Milliseconds": str(int(self.window.window_s * 1000)),
            "X-RateLimit-Max": str(self.window.limit),
            "X-RateLimit-Remaining": str(self.window.remaining(now)),
        }

    def _index(self, cid: str) -> None:
        contact = self.contacts[cid]
        if contact.get("email"):
            self._email[str(contact["email"]).lower()] = cid
        if contact.get("phone"):
            self._phone[str(contact["phone"])] = cid

    async def _handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Version") != "2021-07-28":
            return web.json_response({"statusCode": 400, "message": "Version header is required"}, status=400)
        return await super()._handle(request)

    def dispatch(self, method: str, path: str, query: dict[str, str], body: Any) -> Answer:
        body = body or {}
        if method == "POST" and path == "/contacts/upsert":
            if not body.get("locationId"):
                return 422, {"statusCode": 422, "message": ["locationId should not be empty"]}, {}
            cid = None
            if body.get("email"):
                cid = self._email.get(str(body["email"]).lower())
            if cid is None and body.get("phone"):
                cid = self._phone.get(str(body["phone"]))
            new = cid is None
            if cid is None:
                cid = self._id("c")
                self.contacts[cid] = {"id": cid, "tags": [], "dateAdded": time.time()}
            self.contacts[cid].update({k: v for k, v in body.items() if k != "tags"})
            self._index(cid)
            return 200, {"new": new, "contact": self.contacts[cid], "traceId": "t"}, {}
        m = re.fullmatch(r"/contacts/([^/]+)", path)
        if method == "PUT" and m:
            cid = m.group(1)
            if cid not in self.contacts:
                return 400, {"statusCode": 400, "message": "Contact not found"}, {}
            self.contacts[cid].update({k: v for k, v in body.items() if k != "tags"})
            self._index(cid)
            return 200, {"succeded": True, "contact": self.contacts[cid]}, {}
        m = re.fullmatch(r"/contacts/([^/]+)/tags", path)
        if method == "POST" and m and m.group(1) in self.contacts:
            tags = self.contacts[m.group(1)]["tags"]
            tags.extend(t for t in body.get("tags", []) if t not in tags)
            return 201, {"tags": tags}, {}
        if method == "GET" and path == "/opportunities/search":
            found = [
                o
                for o in self.opportunities.values()
                if o["contactId"] == query.get("contact_id")
                and (not query.get("pipeline_id") or o["pipelineId"] == query["pipeline_id"])
            ]
            return 200, {"opportunities": found, "meta": {"total": len(found)}}, {}
        if method == "POST" and path == "/opportunities/":
            missing = [
                k for k in ("pipelineId", "locationId", "name", "status", "contactId") if not body.get(k)
            ]
            if missing or body["contactId"] not in self.contacts:
                return 422, {"statusCode": 422, "message": missing or ["contact not found"]}, {}
            oid = self._id("o")
            self.opportunities[oid] = {"id": oid, **body}
            self._by_contact.setdefault(("o", body["contactId"]), []).append(oid)
            return 201, {"opportunity": self.opportunities[oid]}, {}
        m = re.fullmatch(r"/opportunities/([^/]+)", path)
        if method == "PUT" and m:
            if m.group(1) not in self.opportunities:
                return 404, {"statusCode": 404, "message": "Opportunity not found"}, {}
            self.opportunities[m.group(1)].update(body)
            return 200, {"opportunity": self.opportunities[m.group(1)]}, {}
        m = re.fullmatch(r"/contacts/([^/]+)/notes", path)
        if m and m.group(1) in self.contacts:
            cid = m.group(1)
            if method == "GET":
                return 200, {"notes": [self.notes[n] for n in self._by_contact.get(("n", cid), ())]}, {}
            if method == "POST":
                nid = self._id("n")
                self.notes[nid] = {"id": nid, "contactId": cid, "body": body.get("body", "")}
                self._by_contact.setdefault(("n", cid), []).append(nid)
                return 201, {"note": self.notes[nid]}, {}
        m = re.fullmatch(r"/contacts/([^/]+)/notes/([^/]+)", path)
        if method == "PUT" and m:
            note = self.notes.get(m.group(2))
            if note is None or note["contactId"] != m.group(1):
                return 404, {"statusCode": 404, "message": "Note not found"}, {}
            note["body"] = body.get("body", "")
            return 200, {"note": note}, {}
        m = re.fullmatch(r"/contacts/([^/]+)/workflow/([^/]+)", path)
        if method == "POST" and m and m.group(1) in self.contacts:
            self.workflows.append((m.group(1), m.group(2)))
            return 200, {"succeded": True}, {}
        m = re.fullmatch(r"/locations/([^/]+)", path)
        if method == "GET" and m:
            return 200, {"location": {"id": m.group(1), "name": "Boulangerie Martin"}}, {}
        return 404, {"statusCode": 404, "message": f"Cannot {method} {path}"}, {}


# =========================================================================== Pipedrive

#: Token costs per call kind. Pipedrive publishes a cost per endpoint; these are the broad classes
#: (single-entity GET 2, list GET 20, write 10, search 40) as summarised from its rate-limiting
#: guide, and can be overridden per test.
PIPEDRIVE_COSTS = {"get": 2, "list": 20, "write": 10, "search": 40}


class PipedriveFake(FakeServer):
    """Pipedrive API v2 (persons, deals) and v1 (notes, users) in memory, for state and limits
    (shapes are checked by Prism in test_pipedrive.py). Limits ("Rate limiting", Pipedrive
    developer docs): a burst of ``burst`` requests per 2-second window per token (80 for an
    Essential plan's OAuth token) and a daily token budget (30,000 x plan multiplier x seats) that
    each call spends by its cost; over either, 429 ``{"success": false, "error": "Request over
    limit"}`` with ``x-ratelimit-*`` headers and a ``Retry-After``. Search matches exactly on the
    email or phone."""

    def __init__(
        self,
        *,
        token: str = TEST_TOKEN,
        burst: int = 80,
        window_s: float = 2.0,
        daily_tokens: int = 30_000 * 7,
    ) -> None:
        super().__init__(token=token)
        self.window = _Window(burst, window_s)
        self.budget = daily_tokens
        self.spent = 0
        self.persons: dict[int, dict[str, Any]] = {}
        self.deals: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._values: dict[tuple[str, str], set[int]] = {}  # ("email"|"phone", value) -> person ids
        self._by_person: dict[tuple[str, str], list[int]] = {}  # ("deal"|"note", person id) -> ids

    def _index_person(self, pid: int) -> None:
        person = self.persons[pid]
        for field, key in (("email", "emails"), ("phone", "phones")):
            for item in person.get(key) or ():
                self._values.setdefault((field, str(item.get("value"))), set()).add(pid)

    def _cost(self, method: str, path: str) -> int:
        if path.endswith("/search"):
            return PIPEDRIVE_COSTS["search"]
        if method != "GET":
            return PIPEDRIVE_COSTS["write"]
        return PIPEDRIVE_COSTS["get"] if re.search(r"/\d+$", path) else PIPEDRIVE_COSTS["list"]

    def limit(self, method: str, path: str) -> Answer | None:
        cost = self._cost(method, path)
        wait = self.window.take(time.monotonic())
        if wait is None and self.spent + cost > self.budget:
            wait = 3600.0
        if wait is None:
            self.spent += cost
            return None
        self.rejected_429 += 1
        return (
            429,
            {"success": False, "error": "Request over limit", "errorCode": 429},
            {"Retry-After": str(max(1, math.ceil(wait))), **self.limit_headers()},
        )

    def limit_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.window.limit),
            "x-ratelimit-remaining": str(self.window.remaining(time.monotonic())),
            "x-ratelimit-reset": str(int(self.window.window_s)),
        }

    def dispatch(self, method: str, path: str, query: dict[str, str], body: Any) -> Answer:
        body = body or {}
        ok = {"success": True}
        if method == "GET" and path == "/api/v2/persons/search":
            term, field = query.get("term", ""), query.get("fields", "")
            items = []
            for pid in sorted(self._values.get((field, term), ())):
                person = self.persons[pid]
                values = [e["value"] for e in person.get("emails" if field == "email" else "phones", [])]
                if term in values:
                    items.append({"result_score": 1.0, "item": {"id": person["id"], "name": person["name"]}})
            return 200, {**ok, "data": {"items": items[: int(query.get("limit", 100))]}}, {}
        if method == "POST" and path == "/api/v2/persons":
            if not body.get("name"):
                return 400, {"success": False, "error": "Name must be given"}, {}
            pid = next(self._ids)
            self.persons[pid] = {"id": pid, **body}
            self._index_person(pid)
            return 200, {**ok, "data": self.persons[pid]}, {}
        m = re.fullmatch(r"/api/v2/(persons|deals)/(\d+)", path)
        if method == "PATCH" and m:
            table = self.persons if m.group(1) == "persons" else self.deals
            record = table.get(int(m.group(2)))
            if record is None:
                return 404, {"success": False, "error": "not found"}, {}
            record.update(body)
            if m.group(1) == "persons":
                self._index_person(record["id"])
            return 200, {**ok, "data": record}, {}
        if method == "GET" and path == "/api/v2/deals":
            found = [
                self.deals[did]
                for did in self._by_person.get(("deal", str(query.get("person_id"))), ())
                if (d := self.deals[did])
                and (not query.get("pipeline_id") or str(d.get("pipeline_id")) == query["pipeline_id"])
                and d.get("status", "open") == query.get("status", "open")
            ]
            return 200, {**ok, "data": found[: int(query.get("limit", 100))]}, {}
        if method == "POST" and path == "/api/v2/deals":
            if not body.get("title") or int(body.get("person_id", 0)) not in self.persons:
                return 400, {"success": False, "error": "title and an existing person are required"}, {}
            did = next(self._ids)
            self.deals[did] = {"id": did, "status": "open", **body}
            self._by_person.setdefault(("deal", str(body["person_id"])), []).append(did)
            return 200, {**ok, "data": self.deals[did]}, {}
        if method == "GET" and path == "/api/v1/notes":
            found = [self.notes[n] for n in self._by_person.get(("note", str(query.get("person_id"))), ())]
            return 200, {**ok, "data": found[: int(query.get("limit", 100))]}, {}
        if method == "POST" and path == "/api/v1/notes":
            if not body.get("content"):
                return 400, {"success": False, "error": "content is required"}, {}
            nid = next(self._ids)
            self.notes[nid] = {"id": nid, **body}
            self._by_person.setdefault(("note", str(body.get("person_id"))), []).append(nid)
            return 200, {**ok, "data": self.notes[nid]}, {}
        m = re.fullmatch(r"/api/v1/notes/(\d+)", path)
        if method == "PUT" and m:
            note = self.notes.get(int(m.group(1)))
            if note is None:
                return 404, {"success": False, "error": "not found"}, {}
            note.update(body)
            return 200, {**ok, "data": note}, {}
        if method == "GET" and path == "/api/v1/users/me":
            return (
                200,
                {**ok, "data": {"id": 1, "name": "Paul", "company_id": 77, "company_name": "Acme"}},
                {},
            )
        return 404, {"success": False, "error": f"no route {method} {path}"}, {}
