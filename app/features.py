"""The list of features the service is made of, in the order their plugins register.

Adding a capability is one subpackage with a :class:`app.core.features.Feature` and one line here.
"""

from __future__ import annotations

from app.ai.plugin import AiFeature
from app.authoring.plugin import AuthoringFeature
from app.booking.plugin import BookingFeature
from app.connections.plugin import ConnectionsFeature
from app.conversations.plugin import ConversationsFeature
from app.core.features import Feature
from app.crm.plugin import CrmFeature
from app.dashboard.plugin import DashboardFeature
from app.handoff.plugin import HandoffFeature
from app.messaging.plugin import MessagingFeature
from app.ops.api_docs import ApiDocsFeature
from app.ops.plugin import OpsFeature
from app.tenancy.plugin import TenancyFeature
from app.webchat.plugin import WebChatFeature

__all__ = ["FEATURES"]

FEATURES: tuple[type[Feature], ...] = (
    OpsFeature,
    TenancyFeature,
    MessagingFeature,
    ConversationsFeature,
    HandoffFeature,
    AuthoringFeature,
    AiFeature,
    WebChatFeature,
    ConnectionsFeature,
    CrmFeature,
    BookingFeature,
    ApiDocsFeature,
    DashboardFeature,
)
