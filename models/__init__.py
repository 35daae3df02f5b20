"""SQLAlchemy models, one module per aggregate; importing this package registers them all."""

from models.agents import AgentStateSpan, AgentStatus, CallSettings, RosterChanges
from models.alerts import Alert, Notification
from models.auth import (
    AgencySettings,
    ApiToken,
    LoginFailure,
    RecoveryCode,
    SecondFactor,
    UserSession,
)
from models.base import Base
from models.billing import BillingPlan
from models.channels import CannedReply, Line
from models.contacts import Contact
from models.events import Event
from models.feedback import Comment, InteractionRating
from models.leads import Interaction, Lead, LeadAlarm
from models.on_call import OnCallRota, OverflowRule, Page
from models.owner_notices import OwnerNotices
from models.push import PushKeys, PushSubscription
from models.recordings import Recording, RecordingSettings
from models.records import Appointment, AuditEvent, ChangeRequest, Survey
from models.scripts import Script
from models.sla import SlaPolicy, TaskPolicy
from models.tasks import Task
from models.tenancy import (
    Business,
    MemberRole,
    OwnerMembership,
    Role,
    SecretaryAssignment,
    User,
)
from models.voice import Call, CallTransfer
from models.webhooks import WebhookCursor, WebhookDelivery, WebhookEndpoint

__all__ = [
    "AgencySettings",
    "AgentStateSpan",
    "AgentStatus",
    "Alert",
    "ApiToken",
    "Appointment",
    "AuditEvent",
    "Base",
    "BillingPlan",
    "Business",
    "Call",
    "CallSettings",
    "CallTransfer",
    "CannedReply",
    "ChangeRequest",
    "Comment",
    "Contact",
    "Event",
    "Interaction",
    "InteractionRating",
    "Lead",
    "LeadAlarm",
    "Line",
    "LoginFailure",
    "MemberRole",
    "Notification",
    "OnCallRota",
    "OverflowRule",
    "OwnerMembership",
    "OwnerNotices",
    "Page",
    "PushKeys",
    "PushSubscription",
    "Recording",
    "RecordingSettings",
    "RecoveryCode",
    "Role",
    "RosterChanges",
    "Script",
    "SecondFactor",
    "SecretaryAssignment",
    "SlaPolicy",
    "Survey",
    "Task",
    "TaskPolicy",
    "User",
    "UserSession",
    "WebhookCursor",
    "WebhookDelivery",
    "WebhookEndpoint",
]
