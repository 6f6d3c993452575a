"""Wake-up hints between processes (PostgreSQL LISTEN/NOTIFY): an API process's new work wakes a
worker's engine at once instead of at its next poll."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from app.wake import CHANNEL, PostgresWake, asyncpg_dsn
from routing.clock import FakeClock
from routing.engine.engine import Engine

pytestmark = pytest.mark.postgres


class _Listening(Engine):
    def __init__(self) -> None:
        super().__init__(None, FakeClock(), [])  # type: ignore[arg-type]
        self.woken = asyncio.Event()

    def wake(self) -> None:
        self.woken.set()


async def test_a_trigger_in_one_process_wakes_the_engine_of_another(migrated: str) -> None:
    api, worker = _Listening(), _Listening()
    api_wake, worker_wake = PostgresWake(migrated, api), PostgresWake(migrated, worker)
    await api_wake.start()
    await worker_wake.start()
    try:
        # Starting to listen wakes once (work may have arrived meanwhile); wait for that.
        await asyncio.wait_for(worker.woken.wait(), 5)
        worker.woken.clear()
        await asyncio.sleep(0.2)
        assert not worker.woken.is_set()
        api.trigger()
        await asyncio.wait_for(worker.woken.wait(), 2)
    finally:
        await api_wake.stop()
        await worker_wake.stop()


async def test_a_burst_of_triggers_sends_one_notify(migrated: str) -> None:
    api = _Listening()
    api_wake = PostgresWake(migrated, api)
    listener = await asyncpg.connect(asyncpg_dsn(migrated))
    heard: list[object] = []
    await listener.add_listener(CHANNEL, lambda *args: heard.append(args))
    await api_wake.start()
    try:
        for _ in range(50):
            api.trigger()
        await asyncio.sleep(0.5)
        assert len(heard) == 1
        api.trigger()
        await asyncio.sleep(0.5)
        assert len(heard) == 2
    finally:
        await api_wake.stop()
        await listener.close()


async def test_an_api_process_without_an_engine_still_wakes_the_workers(migrated: str) -> None:
    """`serve --no-engine` (the production shape beside `worker` processes): new work it commits
    must reach the workers at once, not at their next poll."""
    from app.container import build
    from app.main import create_app
    from app.settings import Settings

    listener = await asyncpg.connect(asyncpg_dsn(migrated))
    heard = asyncio.Event()
    await listener.add_listener(CHANNEL, lambda *_: heard.set())
    container = build(Settings(database_url=migrated, seed_demo=False))
    app = create_app(container, run_engine=False)
    try:
        async with app.router.lifespan_context(app):
            container.engine.trigger()
            await asyncio.wait_for(heard.wait(), 2)
    finally:
        await listener.close()
