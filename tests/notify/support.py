"""Small builders for the customer-text tests: a report made the way the SOS line or SMS intake
makes one (through the report service, with a description full of things no text may carry),
and a use case run in its own committed transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.container import Container
from routing.notify.models import OutboundMessage
from routing.report import service as report_service
from routing.report.models import Report
from routing.report.schemas import ReportCreate
from routing.staff.models import Staff
from routing.types import Category, Language

CUSTOMER = "+31612345678"
# What a frightened customer types; none of it may reach any text we send.
DESCRIPTION = "Er is € 1.234,56 weg van NL91ABNA0417164300, saldo 12,50, pas 4111 1111 1111 1111"

T = TypeVar("T")


async def submit(
    container: Container,
    *,
    channel: str = "sos_line",
    language: str = "nl",
    category: str = "fraud",
    phone: str = CUSTOMER,
    sla_seconds: int = 600,
) -> Report:
    data = ReportCreate.model_construct(
        category=Category(category),
        callback_phone=phone,
        language=Language(language),
        customer_ref=None,
        description=DESCRIPTION,
        channel="app",
    )
    async with container.db.begin() as session:
        report, _ = await report_service.submit(
            session,
            data=data,
            now=container.clock.now(),
            sla_seconds=sla_seconds,
            channel=channel,
        )
    return report


async def in_tx(container: Container, use_case: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `use_case` in one transaction and commit it, as a router would."""
    async with container.db.begin() as session:
        return await use_case(session)


async def staff_named(container: Container, staff_id: str) -> Staff:
    async with container.db() as session:
        staff = await session.get(Staff, staff_id)
    assert staff is not None
    return staff


async def messages(container: Container) -> list[OutboundMessage]:
    async with container.db() as session:
        return list(await session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)))
