"""Builds the running service from settings: database, clock, providers, engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import create_engine, create_sessionmaker
from app.settings import Settings
from providers.base import MessageSender
from providers.registry import ProviderRegistry
from providers.simulated import SimulatedPhones
from routing.clock import Clock, SystemClock
from routing.engine.dispatcher import Dispatcher
from routing.engine.engine import Engine
from routing.engine.escalator import Escalator
from routing.engine.reconciler import Reconciler


@dataclass
class Container:
    settings: Settings
    db_engine: AsyncEngine
    db: async_sessionmaker[AsyncSession]
    clock: Clock
    registry: ProviderRegistry
    engine: Engine
    senders: Sequence[MessageSender] = field(default_factory=list)

    @property
    def simulator(self) -> SimulatedPhones | None:
        return next((s for s in self.senders if isinstance(s, SimulatedPhones)), None)

    async def close(self) -> None:
        self.engine.stop()
        await self.db_engine.dispose()


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    senders: Sequence[MessageSender] | None = None,
    raise_errors: bool = False,
) -> Container:
    db_engine = create_engine(settings.database_url)
    db = create_sessionmaker(db_engine)
    clock = clock or SystemClock()
    senders = list(senders) if senders is not None else [SimulatedPhones()]
    registry = ProviderRegistry(senders)
    engine = Engine(
        db,
        clock,
        [Escalator(), Dispatcher(registry, clock), Reconciler(registry)],
        raise_errors=raise_errors,
    )
    return Container(settings, db_engine, db, clock, registry, engine, senders)
