"""How a conversation created through the API opens, so that ``POST /api/v1/leads`` never answers
201 for a lead nothing can reach.

On a channel with a customer-service window (WhatsApp: 24 h after the lead's last message, Meta's
"Customer service windows" rule), a lead outside the window may only receive an approved template.
:func:`plan_opening` chooses, in order: free text (the window is open: the playbook starts now); the
template of the playbook's opening steps (a step's ``whatsapp_template``) or the tenant's
(``whatsapp_templates`` for ``lead_created``, ``step`` or ``default``), sent alone, the playbook
starting when the lead answers (from its first question, never a re-ask); another channel the lead
has an address on, from the tenant's ``fallback_channels``; else :class:`OpeningRefusedError`, which the
API turns into 422 saying what is missing. An opted-out or undeliverable address is refused too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from app.conversations.records import Conversation, Lead
from app.messaging.directory import ChannelDirectory, UnconfiguredChannel
from app.policy.optouts import OptOutLedger
from app.tenancy.records import TenantProfile
from kernel.errors import LeadWarmError
from playbooks import AskStep, Playbook

__all__ = ["Opening", "OpeningRefusedError", "opening_template", "plan_opening"]

#: Tenant template purposes tried for an opening, in order.
TEMPLATE_PURPOSES = ("lead_created", "step", "default")


class OpeningRefusedError(LeadWarmError):
    """Nothing could reach the lead: ``reason`` (a code), ``missing`` (what would fix it)."""

    def __init__(self, reason: str, message: str, *, missing: list[str]) -> None:
        super().__init__(message)
        self.reason = reason
        self.missing = missing


@dataclass(frozen=True, slots=True)
class Opening:
    """``mode``: ``playbook`` (start the playbook now), ``template`` (send ``template`` alone; the
    playbook starts on the lead's answer). ``channel``/``address``: where; ``rerouted_from`` names
    the channel given to the API when another one is used."""

    mode: Literal["playbook", "template"]
    channel: str
    address: str
    template: dict[str, Any] | None = None
    rerouted_from: str | None = None
    notes: list[str] = field(default_factory=list)


def opening_template(playbook: Playbook, profile: TenantProfile) -> dict[str, Any] | None:
    """The template that opens ``playbook``: the first ``whatsapp_template`` among its opening
    steps (up to and including the first question), else the tenant's for ``lead_created``,
    ``step`` or ``default``; ``None`` when there is none."""
    for step in playbook.steps:
        template = getattr(step, "whatsapp_template", None)
        if template is not None:
            return dict(template.model_dump())
        if isinstance(step, AskStep):
            break
    for purpose in TEMPLATE_PURPOSES:
        chosen = profile.whatsapp_templates.get(purpose)
        if chosen:
            return dict(chosen)
    return None


async def plan_opening(
    *,
    tenant_id: str,
    profile: TenantProfile,
    playbook: Playbook,
    lead: Lead,
    channel: str,
    address: str,
    previous: Conversation | None,
    channels: ChannelDirectory,
    optouts: OptOutLedger,
    now: float,
) -> Opening:
    """How to open; see the module docstring. ``previous`` is the lead's latest conversation on
    ``channel`` (its last inbound time tells whether the window is open). Raises
    :class:`OpeningRefusedError`."""
    refusals: list[str] = []
    for candidate, to, rerouted in _candidates(profile, lead, channel, address):
        opted_out, undeliverable = await optouts.blocks(
            tenant_id,
            channel=candidate,
            address=to,
            lead_addresses=lead.addresses(),
            all_channels=profile.optout_all_channels,
        )
        if opted_out:
            raise OpeningRefusedError(
                "opted_out",
                "the lead opted out of our messages",
                missing=["the lead's consent (they sent STOP)"],
            )
        if undeliverable:
            refusals.append(f"{candidate}: {to} is known undeliverable")
            continue
        if rerouted and isinstance(await channels.resolve(tenant_id, candidate), UnconfiguredChannel):
            refusals.append(f"{candidate}: the channel is not configured")
            continue
        window_s = channels.traits(candidate).session_window_s
        if window_s is None:
            return Opening("playbook", candidate, to, rerouted_from=channel if rerouted else None)
        window_s = profile.whatsapp_window_hours * 3600 if candidate == "whatsapp" else window_s
        last_inbound = (previous.last_inbound_by_channel.get(candidate) if previous else None) or None
        if last_inbound is not None and now - last_inbound < window_s:
            return Opening("playbook", candidate, to, rerouted_from=channel if rerouted else None)
        template = opening_template(playbook, profile)
        if template is not None:
            return Opening(
                "template", candidate, to, template=template, rerouted_from=channel if rerouted else None
            )
        refusals.append(f"{candidate}: outside the customer-service window and no approved template")
    raise OpeningRefusedError(
        "outside_customer_service_window_no_template",
        f"the lead is outside {channel}'s customer-service window and no approved template is set; "
        + "; ".join(refusals),
        missing=[
            f"a `whatsapp_template` on the first steps of playbook {playbook.id!r}",
            "or whatsapp_templates.lead_created (or .default) in PUT /api/v1/settings",
            "or a channel in fallback_channels (PUT /api/v1/settings) for which the lead has an address",
        ],
    )


def _candidates(
    profile: TenantProfile, lead: Lead, channel: str, address: str
) -> list[tuple[str, str, bool]]:
    out = [(channel, address, False)]
    addresses = lead.addresses()
    for other in profile.fallback_channels:
        if other != channel and addresses.get(other):
            out.append((other, addresses[other], True))
    return out
