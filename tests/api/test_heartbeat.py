"""`GET /heartbeat`: an outside monitor sees a live auditor as 200 and a stopped one (or a stopped
engine) as 503, without signing in and without learning anything about customers."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import delete

from routing.page.models import EscalationTimer
from tests.harness import VOICE, Harness

INTERVAL = 30  # SOS_AUDITOR__INTERVAL_SECONDS by default


async def heartbeat(h: Harness, status: int) -> dict[str, Any]:
    r = await h.client.get("/heartbeat")
    assert r.status_code == status, r.text
    if status == 503:
        assert r.headers["Retry-After"] == str(INTERVAL)
    body: dict[str, Any] = r.json()
    return body


async def test_stale_until_the_auditor_first_runs(h: Harness) -> None:
    body = await heartbeat(h, 503)
    assert body["status"] == "stale"
    assert body["auditor"]["last_beat_at"] is None


async def test_fresh_while_the_auditor_runs_and_stale_when_it_stops(h: Harness) -> None:
    await h.tick()
    body = await heartbeat(h, 200)
    assert body["status"] == "ok"
    assert body["auditor"]["last_beat_at"] == "2026-01-05T09:00:00Z"
    assert body["auditor"]["age_seconds"] == 0
    assert body["engine"] == {"last_tick_at": "2026-01-05T09:00:00Z", "age_seconds": 0}

    await h.advance(300)  # the engine runs: the auditor beats every 30 s
    assert (await heartbeat(h, 200))["auditor"]["age_seconds"] == 0

    h.clock.advance(3 * INTERVAL)  # the engine stops: three intervals pass without a beat
    assert (await heartbeat(h, 200))["auditor"]["age_seconds"] == 3 * INTERVAL
    h.clock.advance(1)
    body = await heartbeat(h, 503)
    assert body["status"] == "stale"
    assert body["auditor"]["age_seconds"] == 3 * INTERVAL + 1

    await h.tick()  # back
    assert (await heartbeat(h, 200))["status"] == "ok"


async def test_shows_what_the_auditor_found_as_counts_only(h: Harness) -> None:
    await h.staff("Anna")
    await h.chain(("voice", ["Anna"], 600))
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    async with h.container.db.begin() as session:
        await session.execute(
            delete(EscalationTimer).where(EscalationTimer.report_id == report["id"])
        )

    await h.advance(INTERVAL)

    r = await h.client.get("/heartbeat")
    assert r.json()["auditor"]["findings"] == {
        "lost_escalations": 1,
        "stuck_timers": 0,
        "stuck_pages": 0,
        "stuck_texts": 0,
    }
    for private in (report["id"], report["reference"], report["callback_phone"]):
        assert str(private) not in r.text


async def test_needs_no_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/heartbeat")
    assert r.status_code == 503  # not 401: an uptime checker has no token
    assert set(r.json()) == {"status", "auditor", "engine"}
