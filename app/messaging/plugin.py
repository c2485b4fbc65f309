"""The messaging feature: provider webhooks in, the dispatcher out, delivery statuses, and the
IMAP poller when ``IMAP_HOST`` is set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from litestar.di import Provide

from app.core.features import BackgroundTask, Feature, JobKind, feature_dependencies
from app.messaging import quarantine
from app.messaging.email_poller import ImapPoller
from app.messaging.inbox import accept_status
from app.messaging.webhooks import email, generic, twilio, whatsapp
from channels.email import EmailChannel

__all__ = ["MessagingFeature"]


class MessagingFeature(Feature):
    """Webhook routes, ``jobs`` and ``channels``, the ``dispatch`` and ``status`` job kinds."""

    route_handlers = (*whatsapp.ROUTES, *twilio.ROUTES, *email.ROUTES, *generic.ROUTES, *quarantine.ROUTES)

    def dependencies(self) -> Mapping[str, Provide]:
        rt = self.runtime
        return feature_dependencies(("jobs", rt.jobs), ("channels", rt.channels))

    def job_kinds(self) -> Mapping[str, JobKind]:
        rt = self.runtime
        return {
            # the log first: a STOP answered 200 must be in the inbox when the gate looks
            "dispatch": JobKind(
                rt.ingest.before(rt.dispatcher.handle_dispatch), on_dead=rt.dispatcher.on_dead
            ),
            "status": JobKind(rt.statuses.handle_status),
            "ingest": JobKind(rt.ingest.handle_job),
        }

    def background_tasks(self) -> Sequence[BackgroundTask]:
        poller = self._imap_poller()
        return (poller.run,) if poller is not None else ()

    def _imap_poller(self) -> ImapPoller | None:
        rt, settings = self.runtime, self.runtime.settings
        channel = rt.channels.get("", "email") if "email" in rt.channels.names() else None
        if not settings.imap_host or not isinstance(channel, EmailChannel):
            return None
        tenant_id = settings.default_tenant_id

        def secret(value: object) -> str:
            return value.get_secret_value() if hasattr(value, "get_secret_value") else ""

        return ImapPoller(
            host=settings.imap_host,
            port=settings.imap_port,
            user=settings.imap_user or settings.email_user or "",
            password=secret(settings.imap_password) or secret(settings.email_password),
            folder=settings.imap_folder,
            poll_s=settings.imap_poll_seconds,
            channel=channel,
            accept=lambda m: rt.accept(tenant_id, m),
            accept_status=lambda s: accept_status(rt.jobs, tenant_id, s),
        )
