"""A seeded generator of webhook deliveries for every channel, signed correctly or forged, and the
loop that sends them to a served instance and counts the answers.

Bodies are well-formed provider payloads with random mutations (wrong types, missing or extra
fields, huge numbers and timestamps, lone surrogates, deep nesting, CR/LF in headers, nested
multipart, binary garbage), after the issue's list of what once answered 500. Every body stays
under the channel's size limit, so a forged one must get 401 and a signed one anything but 5xx.
Used by ``tests/hardening/test_fuzz_http.py`` (a few hundred) and ``benchmarks/fuzz_webhooks.py``
(15,000).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

__all__ = ["Case", "FuzzResult", "Secrets", "cases", "send_all"]

ODD_STRINGS = [
    "",
    "\ud800",
    "\udfff lone",
    "a" * 70_000,
    "x\r\ny: injected",
    "\x00\x01\x02",
    "🙂" * 500,
    "=?utf-8?q?=3Cbroken?=",
    "STOP",
    "12345678901234567890123456789012345678901234567890",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "%s%n%x",
    "9" * 5000,
]
ODD_NUMBERS: list[Any] = [0, -1, 10**30, 2**63, -(2**63) - 1, 1e308, 99999999999999999999, 3.5, True, None]


@dataclass(frozen=True)
class Secrets:
    """What the served instance was configured with; ``public_base_url`` is what Twilio signs."""

    whatsapp_app_secret: str
    twilio_auth_token: str
    email_inbound_key: str
    public_base_url: str
    phone_id: str
    twilio_number: str


@dataclass(frozen=True)
class Case:
    """One delivery: where, what, and whether its credential is forged."""

    kind: str
    path: str
    body: bytes
    headers: dict[str, str]
    forged: bool


@dataclass
class FuzzResult:
    """Counts by status (0: the connection was dropped); the cases that answered 5xx or dropped
    the connection, and forged ones that did not get 401."""

    sent: int = 0
    retried: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[tuple[Case, int, str]] = field(default_factory=list)
    forged_not_401: list[tuple[Case, int, str]] = field(default_factory=list)


def _deep(depth: int, rng: random.Random) -> Any:
    value: Any = rng.choice([*ODD_STRINGS[:3], 1, None])
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {"k": value}
    return value


def _odd(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(ODD_STRINGS)
    if roll < 0.6:
        return rng.choice(ODD_NUMBERS)
    if roll < 0.75:
        return _deep(rng.choice([5, 50, 400]), rng)
    if roll < 0.85:
        return [rng.choice(ODD_NUMBERS) for _ in range(rng.randint(0, 5))]
    return {rng.choice(ODD_STRINGS[:9]): rng.choice(ODD_NUMBERS) for _ in range(rng.randint(0, 3))}


def _mutate(doc: Any, rng: random.Random, times: int) -> Any:
    """Replace, delete or add ``times`` random nodes of a JSON document (in place when possible)."""
    for _ in range(times):
        node: Any = doc
        parent: Any = None
        key: Any = None
        for _ in range(rng.randint(0, 8)):
            if isinstance(node, dict) and node:
                parent, key = node, rng.choice(list(node))
            elif isinstance(node, list) and node:
                parent, key = node, rng.randrange(len(node))
            else:
                break
            node = parent[key]
        if parent is None:
            return _odd(rng) if rng.random() < 0.1 else doc
        roll = rng.random()
        if roll < 0.6:
            parent[key] = _odd(rng)
        elif roll < 0.8 and isinstance(parent, dict):
            del parent[key]
        elif isinstance(parent, dict):
            parent[rng.choice(ODD_STRINGS[:9])] = _odd(rng)
    return doc


def _whatsapp_doc(rng: random.Random, secrets: Secrets) -> dict[str, Any]:
    kind = rng.choice(["text", "interactive", "contacts", "location", "image", "status"])
    message: dict[str, Any] = {
        "from": "33612345678",
        "id": f"wamid.FUZZ{rng.getrandbits(48):x}",
        "timestamp": str(1_763_000_000 + rng.randint(0, 10**6)),
        "type": kind,
    }
    if kind == "text":
        message["text"] = {"body": rng.choice(["hello", "STOP", "yes", "I want solar"])}
    elif kind == "interactive":
        message["interactive"] = {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}
    elif kind == "contacts":
        message["contacts"] = [{"name": {"formatted_name": "A B"}, "phones": [{"phone": "+33612345678"}]}]
    elif kind == "location":
        message["location"] = {"latitude": 48.85, "longitude": 2.35}
    elif kind == "image":
        message["image"] = {"id": "123", "mime_type": "image/jpeg"}
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": secrets.phone_id},
        "contacts": [{"profile": {"name": "Camille"}, "wa_id": "33612345678"}],
    }
    if kind == "status":
        value["statuses"] = [
            {
                "id": f"wamid.S{rng.getrandbits(32):x}",
                "status": "delivered",
                "timestamp": "1763000000",
                "recipient_id": "33612345678",
            }
        ]
    else:
        value["messages"] = [message]
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}],
    }


def _dumps(doc: Any, rng: random.Random) -> bytes:
    try:
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.5)
    except (ValueError, RecursionError):
        text = json.dumps({"unserialisable": True})
    if rng.random() < 0.05:
        text = text[: rng.randint(0, len(text))]  # truncated JSON
    return text.encode("utf-8", errors="surrogatepass")


def _whatsapp(rng: random.Random, secrets: Secrets, forged: bool) -> Case:
    doc = _whatsapp_doc(rng, secrets)
    if rng.random() < 0.9:
        doc = _mutate(doc, rng, rng.randint(1, 4))
    roll = rng.random()
    if roll < 0.94:
        body = _dumps(doc, rng)
    elif roll < 0.97:  # nested deeper than any recursive parser's stack
        depth = rng.choice([1_000, 10_000, 100_000])
        body = ('{"object":"whatsapp_business_account","entry":' + "[" * depth + "]" * depth + "}").encode()
    else:
        body = bytes(rng.getrandbits(8) for _ in range(200))
    secret = secrets.whatsapp_app_secret if not forged else rng.choice(["wrong-secret", ""])
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json"}
    if not forged and rng.random() < 0.05:  # a malformed signature header is a forgery too
        forged, digest = True, digest[:10]
    if not forged or rng.random() < 0.7:
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    path = rng.choice(["/api/webhooks/whatsapp", "/api/webhooks/channels/whatsapp"])
    return Case("whatsapp", path, body, headers, forged)


def _twilio(rng: random.Random, secrets: Secrets, forged: bool) -> Case:
    status = rng.random() < 0.3
    path = "/api/webhooks/twilio/status" if status else "/api/webhooks/twilio/sms"
    form: dict[str, str] = {
        "MessageSid": f"SM{rng.getrandbits(128):032x}",
        "AccountSid": "AC" + "0" * 32,
        "From": "+33612345678",
        "To": secrets.twilio_number,
    }
    if status:
        form["MessageStatus"] = rng.choice(["delivered", "failed", "undelivered", "sent", "bogus"])
    else:
        form["Body"] = rng.choice(["hi", "STOP", "yes", ""])
        form["NumMedia"] = "0"
    for _ in range(rng.randint(0, 4)):
        key = rng.choice([*form, "NumMedia", "MediaUrl0", "MediaContentType0", "ErrorCode", "Latitude"])
        value = _odd(rng)
        form[key] = (value if isinstance(value, str) else json.dumps(value, default=str))[:6000]
    form = {
        k.encode("utf-8", "replace").decode(): v.encode("utf-8", "replace").decode() for k, v in form.items()
    }
    url = secrets.public_base_url + path
    token = secrets.twilio_auth_token if not forged else "forged-token"
    signature = RequestValidator(token).compute_signature(url, form)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if not forged or rng.random() < 0.8:
        headers["X-Twilio-Signature"] = signature
    return Case("twilio", path, urlencode(form).encode(), headers, forged)


def _header_value(rng: random.Random) -> str:
    return rng.choice(
        [
            "Camille <camille@example.com>",
            "<<>>",
            "=?utf-8?q?broken",
            "camille@example.com\r\nBcc: x@y.z",
            "",
            '"unterminated <a@b',
            "a@" + "b" * 300,
            "Mon, 99 Foo 99999 99:99:99 +9999",
            "(((((((((((((((((((((((((((((",
        ]
    )


def _email_raw(rng: random.Random) -> bytes:
    headers = {
        "From": "Camille <camille@example.com>",
        "To": "bot@leadwarm.test",
        "Subject": rng.choice(["Solar", "STOP", "=?utf-8?b?U29sYXI=?="]),
        "Message-ID": f"<{rng.getrandbits(64):x}@example.com>",
        "Date": "Mon, 30 Nov 2026 10:00:00 +0000",
    }
    for _ in range(rng.randint(0, 4)):
        headers[rng.choice([*headers, "In-Reply-To", "References", "Content-Type", "Auto-Submitted"])] = (
            _header_value(rng)
        )
    lines = [f"{k}: {v}" for k, v in headers.items()]
    if rng.random() < 0.1:
        lines.append("no colon here")
    roll = rng.random()
    if roll < 0.15:
        depth = rng.choice([50, 1000])
        parts = "".join(
            f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth)
        )
        lines.append('Content-Type: multipart/mixed; boundary="top"')
        body = "--top\r\n" + parts + "text\r\n"
    elif roll < 0.25:
        lines.append("Content-Type: text/plain; charset=x-unknown-charset")
        lines.append("Content-Transfer-Encoding: base64")
        body = "!!!not base64!!!"
    else:
        lines.append("Content-Type: text/plain; charset=utf-8")
        body = rng.choice(["Hello, I want solar panels", "STOP", "\ud800", "x" * 50_000])
    text = "\r\n".join(lines) + "\r\n\r\n" + body
    return text.encode("utf-8", errors="surrogatepass" if rng.random() < 0.5 else "replace")


def _sendgrid(rng: random.Random) -> tuple[bytes, str]:
    boundary = f"fuzz{rng.getrandbits(32):x}"
    fields = {
        "from": _header_value(rng) if rng.random() < 0.5 else "Camille <camille@example.com>",
        "to": "bot@leadwarm.test",
        "subject": rng.choice(ODD_STRINGS[:9]),
        "text": rng.choice(["Hello", "STOP", ""]),
        "headers": "Message-ID: <x@y>\r\nIn-Reply-To: " + _header_value(rng),
        "envelope": rng.choice(['{"from":"a@b.c","to":["bot@leadwarm.test"]}', "{", "[]", "5", "null"]),
    }
    out = []
    for name, value in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n')
    text = "".join(out) + (f"--{boundary}--\r\n" if rng.random() < 0.9 else "")
    return text.encode("utf-8", errors="replace"), f"multipart/form-data; boundary={boundary}"


def _email(rng: random.Random, secrets: Secrets, forged: bool) -> Case:
    if rng.random() < 0.6:
        body, content_type = _email_raw(rng), "message/rfc822"
    else:
        body, content_type = _sendgrid(rng)
    headers = {"Content-Type": content_type}
    if not forged:
        headers["X-LeadWarm-Inbound-Key"] = secrets.email_inbound_key
    elif rng.random() < 0.6:
        headers["X-LeadWarm-Inbound-Key"] = rng.choice(["wrong", "", secrets.email_inbound_key[:-1]])
    return Case("email", "/api/webhooks/email/inbound", body, headers, forged)


def cases(secrets: Secrets, *, count: int, seed: int = 16, forged_share: float = 0.3) -> Iterator[Case]:
    """``count`` deliveries across the channels (WhatsApp 40 %, Twilio 30 %, email 30 %)."""
    rng = random.Random(seed)
    for _ in range(count):
        forged = rng.random() < forged_share
        roll = rng.random()
        if roll < 0.4:
            yield _whatsapp(rng, secrets, forged)
        elif roll < 0.7:
            yield _twilio(rng, secrets, forged)
        else:
            yield _email(rng, secrets, forged)


async def send_all(base_url: str, deliveries: Iterator[Case], *, concurrency: int = 16) -> FuzzResult:
    """POST every case to ``base_url`` with ``concurrency`` in flight; count what came back."""
    result = FuzzResult()
    queue: asyncio.Queue[Case | None] = asyncio.Queue(maxsize=concurrency * 2)

    async def worker(client: httpx.AsyncClient) -> None:
        while (case := await queue.get()) is not None:
            try:
                response = await client.post(case.path, content=case.body, headers=case.headers)
            except httpx.TransportError:
                # Most likely a keep-alive race (the server closed an idle connection as we reused
                # it): once more on a new connection; dropped twice is as bad as a 500.
                result.retried += 1
                try:
                    async with httpx.AsyncClient(base_url=base_url, timeout=60) as fresh:
                        response = await fresh.post(case.path, content=case.body, headers=case.headers)
                except httpx.TransportError as exc:
                    result.sent += 1
                    result.statuses[0] += 1
                    result.server_errors.append((case, 0, repr(exc)))
                    continue
            result.sent += 1
            result.statuses[response.status_code] += 1
            if response.status_code >= 500:
                result.server_errors.append((case, response.status_code, response.text[:300]))
            if case.forged and response.status_code != 401:
                result.forged_not_401.append((case, response.status_code, response.text[:300]))

    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        workers = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        for case in deliveries:
            await queue.put(case)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    return result
