"""Several engines on one database: work is shared, nothing is sent twice, an ack always wins."""

import asyncio

import pytest

from app.container import build
from app.settings import Settings
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
    try:
        await asyncio.gather(h.container.engine.run_until_idle(), other.engine.run_until_idle())
        first = h.sender.take() + other_sender.take()
        h.clock.advance(30)
        await asyncio.gather(h.container.engine.run_until_idle(), other.engine.run_until_idle())
        second = h.sender.take() + other_sender.take()
    finally:
        await other.close()

    assert sorted(p.channel for p in first) == [VOICE] * 40
    assert sorted(p.channel for p in second) == [SMS] * 40
    ids = [p.page_id for p in first + second]
    assert len(ids) == len(set(ids)) == 80, "a page went out twice"
    assert await h.count(Page, Page.state == "sent") == 80


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
