"""Several engines on one database: work is shared, nothing is sent twice, per-person limits hold
across engines, an ack always wins."""

import asyncio

import pytest
from sqlalchemy import select

from app.container import build
from app.settings import Settings
from providers.base import OutboundPage
from providers.fake import ScriptedSender
from routing.page.models import Page
from tests.harness import SMS, VOICE, Harness


async def _seed(h: Harness, reports: int) -> list[dict[str, object]]:
    await h.staff("Anna")
    await h.staff("Bram")
    await h.chain(("voice", ["Anna"], 30), ("sms", ["Bram"], 30))
    return [await h.report() for _ in range(reports)]


@pytest.mark.postgres
async def test_two_workers_share_the_work_and_never_page_twice(
    h: Harness, settings: Settings
) -> None:
    await _seed(h, 40)
    other_sender = ScriptedSender()
    other = build(settings, clock=h.clock, senders=[other_sender], raise_errors=True)

    async def both() -> list[OutboundPage]:
        await asyncio.gather(h.container.engine.run_until_idle(), other.engine.run_until_idle())
        return h.sender.take() + other_sender.take()

    try:
        first = await both()
        h.clock.advance(30)
        second = await both()
        h.clock.advance(900)  # Bram's SMS window frees; Anna's first call is long over
        third = await both()
    finally:
        await other.close()

    # However many engines run, one call at a time rings Anna; the rest wait their turn.
    assert [p.channel for p in first] == [VOICE]
    assert [p.channel for p in third if p.channel == VOICE] == [VOICE]
    ids = [p.page_id for p in first + second + third]
    assert len(ids) == len(set(ids)), "a message went out twice"
    # Bram's SMS pages: at most five messages per window, the rest bundled when it frees.
    assert {p.channel for p in second} == {SMS}
    assert 1 <= len(second) <= 5
    assert len([p for p in third if p.channel == SMS]) <= 5
    carried = {p.page_id for p in second + third}
    async with h.container.db() as session:
        sms = list(await session.scalars(select(Page).where(Page.channel == SMS)))
    assert len(sms) == 40
    assert {p.state for p in sms} == {"sent"}
    assert all((p.bundle_id or p.id) in carried for p in sms), "a page was never sent"


async def test_no_page_is_created_after_an_ack_commits(h: Harness) -> None:
    reports = await _seed(h, 30)
    await h.tick()
    h.sender.take()
    h.clock.advance(30)  # every step-2 timer is due now: race the engine against the acks

    async def ack_all() -> None:
        for report in reports:
            r = await h.ack(str(report["id"]), "Anna")
            assert r.status_code == 200

    await asyncio.gather(ack_all(), h.container.engine.run_until_idle())
    await h.tick()
    h.sender.take()  # some step-2 pages may have been created before their ack: fine
    h.expect_accepted_text(*reports, by="Anna")  # one "Anna belt u nu" per customer, no more

    for report in reports:
        timeline = (await h.get(str(report["id"])))["timeline"]
        kinds = [e["type"] for e in timeline]
        after_ack = kinds[kinds.index("acknowledged") + 1 :]
        assert "escalated" not in after_ack, f"escalated after the ack: {kinds}"
    assert await h.count(Page, Page.state.in_(("pending", "sending"))) == 0
