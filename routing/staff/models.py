from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column, validates

from routing import crypto
from routing.crypto import EncryptedText
from routing.db import Base, UTCDateTime, new_id


class Staff(Base):
    """A person who can be paged. `phone` is E.164, stored encrypted and found by its keyed
    hash (`phone_hash`); `languages` lists ISO codes they speak."""

    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(EncryptedText())
    phone_hash: Mapped[str | None] = mapped_column(
        String(64), index=True, info={"lookup_of": "phone"}
    )
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Free-form skill tags (`fraud`, `cards`): reports needing one page its holders first.
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    chat_id: Mapped[str | None] = mapped_column(String(120))
    # When the person confirmed a code sent to `phone`; cleared when the phone changes.
    phone_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when the person texted STOP: the carrier blocks our SMS to them until START.
    sms_stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @validates("phone")
    def _hash_phone(self, _key: str, phone: str) -> str:
        self.phone_hash = crypto.phone_hash(phone)
        return phone
