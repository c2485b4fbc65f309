"""A served LeadWarm (``leadwarm serve`` as a process, SQLite) with WhatsApp, Twilio SMS and email
configured against fakes on 127.0.0.1, and the helpers that sign webhooks for it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from app.composition import open_store
from app.core.settings import Settings
from tests.app.conftest import ADMIN_KEY, APP_SECRET, PHONE_ID, VERIFY_TOKEN
from tests.hardening.fuzzing import Secrets
from tests.support.recording import RecordingServer
from tests.support.service import LEADWARM, Service, service_env
from tests.support.smtp_server import SmtpRecorder, running_smtp_server

TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "twilio-test-auth-token"
TWILIO_NUMBER = "+15005550006"
EMAIL_KEY = "inbound-test-key"
EMAIL_FROM = "bot@leadwarm.test"
PUBLIC_BASE_URL = "https://leads.example.test"
#: The credentials of a served instance, for the fuzzer.
SECRETS = Secrets(
    whatsapp_app_secret=APP_SECRET,
    twilio_auth_token=TWILIO_TOKEN,
    email_inbound_key=EMAIL_KEY,
    public_base_url=PUBLIC_BASE_URL,
    phone_id=PHONE_ID,
    twilio_number=TWILIO_NUMBER,
)


@dataclass
class Served:
    """One running service and its fakes. ``base`` is the service's URL."""

    service: Service
    graph: RecordingServer
    twilio: RecordingServer
    smtp: SmtpRecorder
    data_dir: Path
    worker: subprocess.Popen[bytes] | None = None

    def count(self, collection: str, match: Callable[[dict[str, Any]], bool] = lambda _: True) -> int:
        """Documents of the default tenant's ``collection`` that ``match``, read from the store."""

        async def count() -> int:
            store = open_store(Settings(store="sqlite", leadwarm_data_dir=self.data_dir))
            try:
                return sum(1 for d in await store.query("demo", collection) if match(d.data))
            finally:
                await store.close()

        return asyncio.run(count())

    @property
    def base(self) -> str:
        return self.service.base

    @staticmethod
    def public_url(path: str) -> str:
        """The URL Twilio signs: PUBLIC_BASE_URL + path (the service rebuilds it the same way)."""
        return PUBLIC_BASE_URL + path


def sign_whatsapp(raw: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    """Meta's ``X-Hub-Signature-256`` over the raw body."""
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def sign_twilio(url: str, form: dict[str, str], token: str = TWILIO_TOKEN) -> tuple[bytes, dict[str, str]]:
    """A form body and its ``X-Twilio-Signature`` (the twilio package's own computation)."""
    signature = RequestValidator(token).compute_signature(url, form)
    return urlencode(form).encode(), {
        "X-Twilio-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def email_headers(key: str = EMAIL_KEY) -> dict[str, str]:
    """The inbound e-mail webhook's shared key, as a header."""
    return {"X-LeadWarm-Inbound-Key": key, "Content-Type": "message/rfc822"}


def basic(user: str, password: str) -> str:
    """An HTTP Basic credential."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@contextmanager
def serving(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """A context whose value ``start(**SETTINGS)`` starts one service (upper-case setting
    overrides) beside shared fakes (Graph API, Twilio, SMTP); everything stops on exit.
    ``start(worker_apart=True, ...)`` runs ``leadwarm serve --no-worker`` and a ``leadwarm worker``
    process beside it (turns then never run on the web server's event loop), ``worker_nice`` its
    scheduling niceness (a worker on its own machine, as production would run it, competes for
    nothing; on one small machine a positive niceness keeps the web process first)."""
    started: list[Served] = []
    graph = RecordingServer(path_prefix="")
    twilio = RecordingServer()
    with running_smtp_server() as (controller, smtp):

        def start(*, worker_apart: bool = False, worker_nice: int = 0, **overrides: str) -> Served:
            data_dir = tmp_path / f"data{len(started)}"
            env = service_env(
                data_dir=data_dir,
                graph_url=graph.base_url,
                store={"store": "sqlite"},
                admin_key=ADMIN_KEY,
                whatsapp={
                    "whatsapp_token": "test-token",
                    "whatsapp_phone_id": PHONE_ID,
                    "whatsapp_app_secret": APP_SECRET,
                    "webhook_verify_token": VERIFY_TOKEN,
                },
                TWILIO_ACCOUNT_SID=TWILIO_SID,
                TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
                TWILIO_PHONE_NUMBER=TWILIO_NUMBER,
                TWILIO_API_BASE_URL=twilio.base_url,
                EMAIL_HOST="127.0.0.1",
                EMAIL_PORT=str(controller.port),
                EMAIL_FROM=EMAIL_FROM,
                EMAIL_STARTTLS="false",
                EMAIL_INBOUND_SECRET=EMAIL_KEY,
                PUBLIC_BASE_URL=PUBLIC_BASE_URL,
                UNROUTED_WEBHOOKS="default_tenant",
                RATE_LIMIT_WEBHOOKS_PER_SECOND="100000",
                **overrides,
            )
            log = tmp_path / f"service{len(started)}.log"
            service = Service.start(env, log, *(["--no-worker"] if worker_apart else []))
            served = Served(service, graph, twilio, smtp, data_dir)
            if worker_apart:  # ``leadwarm worker`` in its own process group, as in production
                with (tmp_path / f"worker{len(started)}.log").open("wb") as out:
                    served.worker = subprocess.Popen(
                        [LEADWARM, "worker"],
                        env=env,
                        start_new_session=True,
                        stdout=subprocess.DEVNULL,
                        stderr=out,
                        preexec_fn=lambda: os.nice(worker_nice),
                    )
            started.append(served)
            return served

        try:
            yield start
        finally:
            for served in started:
                served.service.stop()
                if served.worker is not None and served.worker.poll() is None:
                    os.killpg(served.worker.pid, signal.SIGTERM)
                    try:
                        served.worker.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        os.killpg(served.worker.pid, signal.SIGKILL)
                        served.worker.wait(timeout=10)
            graph.close()
            twilio.close()
