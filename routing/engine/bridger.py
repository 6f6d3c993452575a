"""Places the voice-bridge calls queued after an acceptance (see `routing/bridge/service.py`).
A call to the customer passes the pumping guard (`routing.pumping`) first: a blocked one fails
without reaching a provider."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, ScalarSelect, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from providers.base import (
    Channel,
    PermanentProviderError,
    ProviderError,
    RoomCall,
    RoomDialer,
    TemporaryProviderError,
)
from providers.registry import ProviderRegistry, UnsupportedChannel
from routing.audit import service as audit
from routing.bridge.models import BridgeCall
from routing.bridge.service import room_name
from routing.engine.claim import claim
from routing.phone import mask_numbers
from routing.pumping import service as pumping
from routing.pumping.rules import Policy

log = logging.getLogger(__name__)

MAX_TRIES = 3


class Bridger:
    name = "bridger"

    def __init__(
        self,
        registry: ProviderRegistry,
        *,
        lease_seconds: float = 15,
        batch: int = 20,
        pumping: Policy | None = None,
    ) -> None:
        self.registry = registry
        self.lease = timedelta(seconds=lease_seconds)
        self.batch = batch
        self.pumping = pumping or Policy()

    def due(self) -> Sequence[ScalarSelect[Any]]:
        return [
            select(func.min(BridgeCall.due_at))
            .where(BridgeCall.state == "pending")
            .scalar_subquery()
        ]

    async def run_once(self, db: async_sessionmaker[AsyncSession], now: datetime) -> int:
        async with db.begin() as session:
            rows = await claim(
                session,
                BridgeCall,
                where=[BridgeCall.state == "pending", BridgeCall.due_at <= now],
                order_by=BridgeCall.due_at,
                values={
                    "state": "sending",
                    "lease_until": now + self.lease,
                    "tries": BridgeCall.tries + 1,
                },
                returning=[
                    BridgeCall.report_id,
                    BridgeCall.leg,
                    BridgeCall.to_number,
                    BridgeCall.tries,
                ],
                limit=self.batch,
            )
        for row in rows:
            await self._place(db, row, now)
        return len(rows)

    def _dialer(self) -> RoomDialer | None:
        try:
            sender = self.registry.sender_for(Channel.VOICE)
        except UnsupportedChannel:
            return None
        return sender if isinstance(sender, RoomDialer) else None

    async def _screen(
        self, db: async_sessionmaker[AsyncSession], row: Row[Any], now: datetime
    ) -> None:
        """The pumping guard's word on a call to the customer: raises when it is blocked."""
        async with db.begin() as session:
            block = await pumping.check(
                session,
                self.pumping,
                to=row.to_number,
                channel=Channel.VOICE,
                now=now,
                what="the bridge call to the customer",
                report_id=row.report_id,
            )
        if block is not None:
            raise PermanentProviderError(f"blocked: {block.reason}")

    async def _place(
        self, db: async_sessionmaker[AsyncSession], row: Row[Any], now: datetime
    ) -> None:
        dialer = self._dialer()
        values: dict[str, Any]
        try:
            if dialer is None:
                raise PermanentProviderError("no voice provider can bridge calls")
            if row.leg == "customer":
                await self._screen(db, row, now)
            result = await dialer.call_into_room(
                RoomCall(
                    call_id=row.id, to=row.to_number, room=room_name(row.report_id), leg=row.leg
                )
            )
            values = {"state": "sent", "external_id": result.external_id}
            detail = f"calling the {row.leg} into the conference"
        except TemporaryProviderError as exc:
            retry = row.tries < MAX_TRIES
            why = mask_numbers(exc.detail)  # a provider's message may name the customer's number
            values = {
                "state": "pending" if retry else "failed",
                "error": why[:200],
                "due_at": now + timedelta(seconds=2 * row.tries),
            }
            detail = f"call to the {row.leg} delayed: {why}"
        except ProviderError as exc:
            why = mask_numbers(exc.detail)
            values = {"state": "failed", "error": why[:200]}
            detail = f"could not call the {row.leg}: {why}"
        async with db.begin() as session:
            done = await session.execute(
                update(BridgeCall)
                .where(
                    BridgeCall.id == row.id,
                    BridgeCall.fence == row.fence,
                    BridgeCall.state == "sending",
                )
                .values(lease_until=None, **values)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount == 1:  # type: ignore[attr-defined]
                audit.record(
                    session,
                    at=now,
                    report_id=row.report_id,
                    detail=detail,
                    type="bridge_call" if values["state"] != "failed" else "bridge_failed",
                    data={"leg": row.leg},
                )
