from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from routing.db import Base, BigIntId, UTCDateTime


class Page(Base):
    """The outbox: one page to one staff member. Sent only after the commit that created it.

    States: pending → sending → sent → delivered | answered, or failed, canceled, unknown; a page
    of a later preference tier waits as `queued` until its tier is released.
    `(report_id, step_no, attempt_no, target_no)` identifies a page, so no step is paged twice.
    """

    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id"))
    step_no: Mapped[int] = mapped_column(Integer)
    attempt_no: Mapped[int] = mapped_column(Integer)
    target_no: Mapped[int] = mapped_column(Integer)
    # Preference tier within the step (0 = best match); tier n+1 is paged when tier n had its turn.
    tier_no: Mapped[int] = mapped_column(Integer, default=0)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    channel: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fence: Mapped[int] = mapped_column(Integer, default=0)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    provider: Mapped[str | None] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(200))
    is_late: Mapped[bool] = mapped_column(Boolean, default=False)
    # A live call to end (someone else accepted, or voicemail picked up), and when it was ended.
    hangup_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    hung_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # SMS pages sent as one bundled message share the id of the page that carried it.
    bundle_id: Mapped[int | None] = mapped_column(BigIntId)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set in its own commit just before the provider call: a page lost mid-send without it was
    # provably never sent, so it is sent again; with it, the outcome is unknown.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("report_id", "step_no", "attempt_no", "target_no"),
        Index(
            "ix_pages_hangup_due",
            "hangup_due_at",
            postgresql_where=text("hangup_due_at IS NOT NULL AND hung_up_at IS NULL"),
            sqlite_where=text("hangup_due_at IS NOT NULL AND hung_up_at IS NULL"),
        ),
        Index(
            "ix_pages_unknown_due",
            "due_at",
            postgresql_where=text("state = 'unknown'"),
            sqlite_where=text("state = 'unknown'"),
        ),
        Index(
            "ix_pages_due",
            "due_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index("ix_pages_bundle_id", "bundle_id"),
        Index("ix_pages_staff_channel_sent", "staff_id", "channel", "sent_at"),
        Index(
            "ix_pages_lease",
            "lease_until",
            postgresql_where=text("state = 'sending'"),
            sqlite_where=text("state = 'sending'"),
        ),
    )


class EscalationTimer(Base):
    """A durable "if nobody acknowledges by `due_at`, act" row.

    Kinds: `step` (step `step_no` of round `attempt_no` has waited out its time), `start` (a
    callback appointment: start the chain at `step_no` of round `attempt_no`), `prebreach` (the
    promise is at risk: page the all-hands targets) and `deadline` (the promise breaks).
    States: pending → leased → done | canceled. A claim bumps `fence`; work counts only if it holds.
    """

    __tablename__ = "escalation_timers"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("reports.id"))
    kind: Mapped[str] = mapped_column(String(16))
    step_no: Mapped[int] = mapped_column(Integer)
    attempt_no: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fence: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("report_id", "kind", "step_no", "attempt_no"),
        Index(
            "ix_escalation_timers_due",
            "due_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index(
            "ix_escalation_timers_lease",
            "lease_until",
            postgresql_where=text("state = 'leased'"),
            sqlite_where=text("state = 'leased'"),
        ),
        Index("ix_escalation_timers_report_id", "report_id"),
    )


class AckLink(Base):
    """A one-time accept link of a page; only the token's SHA-256 is stored."""

    __tablename__ = "ack_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    page_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("pages.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
