"""Every model, imported once so Alembic and the tests see the whole schema."""

from routing.audit.models import AuditEvent, AuditSeal
from routing.auth.models import ApiToken, StaffSession
from routing.bridge.models import BridgeCall
from routing.chain.models import Chain
from routing.db import Base
from routing.engine.models import Heartbeat
from routing.inbound.models import InboundMessage, SosCall
from routing.notify.models import OutboundMessage, PhoneVerification
from routing.page.models import AckLink, EscalationTimer, Page
from routing.pumping.models import CustomerSend, SendBlock, SendBreaker
from routing.report.models import IdempotencyKey, Report, StatusToken
from routing.rota.models import Schedule, ScheduleOverride
from routing.staff.models import Staff

__all__ = [
    "AckLink",
    "ApiToken",
    "AuditEvent",
    "AuditSeal",
    "Base",
    "BridgeCall",
    "Chain",
    "CustomerSend",
    "EscalationTimer",
    "Heartbeat",
    "IdempotencyKey",
    "InboundMessage",
    "OutboundMessage",
    "Page",
    "PhoneVerification",
    "Report",
    "Schedule",
    "ScheduleOverride",
    "SendBlock",
    "SendBreaker",
    "SosCall",
    "Staff",
    "StaffSession",
    "StatusToken",
]
