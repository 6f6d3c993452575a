"""Shared value types: ids and the small enums every part of the domain speaks."""

from __future__ import annotations

from enum import StrEnum
from typing import NewType

ReportId = NewType("ReportId", str)
StaffId = NewType("StaffId", str)
ChainId = NewType("ChainId", str)
PageId = NewType("PageId", int)


class Category(StrEnum):
    FRAUD = "fraud"
    ACCOUNT_TAKEOVER = "account_takeover"
    LOST_CARD = "lost_card"
    OTHER = "other"


class Language(StrEnum):
    NL = "nl"
    EN = "en"


class IntakeChannel(StrEnum):
    APP = "app"
    WEB = "web"
    SOS_LINE = "sos_line"
    SMS = "sms"


class ReportStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Role(StrEnum):
    APP = "app"
    STAFF = "staff"
    ADMIN = "admin"
