"""A page Twilio may have taken without our learning its sid (the create timed out; a worker died
between Twilio's answer and its record) is looked up by number and time: found, it counts as
sent, once; never taken, it is sent once more; when Twilio cannot say, it is asked again and
then given up as a possible duplicate, as before.

The fake Twilio lists calls and messages as Twilio does: a message only once it has left the
queue (it has a sent date), a call still queued by its status."""

from __future__ import annotations

from sqlalchemy import select

from routing.page.models import Page
from tests.harness import types
from tests.scenarios.twilio_harness import ANNA, BRAM, CUSTOMER, Twilio, tw

__all__ = ["tw"]


def flagged(page: Page) -> bool:
    """Given up as a possible duplicate."""
    return "possible duplicate" in (page.error or "")


async def the_page(t: Twilio) -> Page:
    async with t.h.container.db() as session:
        page = await session.scalar(select(Page).order_by(Page.id).limit(1))
    assert page is not None
    return page


async def test_a_call_twilio_took_is_found_by_number_and_time_and_counted_once(
    tw: Twilio,
) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.staff("Bram", BRAM)
    await tw.h.chain(("voice", ["Anna"], 120), ("sms", ["Bram"], 60))
    tw.fake.hang_next("Calls")  # Twilio queued the call, but our request timed out
    report = await tw.h.report()
    await tw.h.tick()
    call = await tw.fake.expect_call(to=ANNA)
    assert (await the_page(tw)).state == "unknown"

    await tw.h.advance(30)  # the reconciler: no sid to ask about, so it lists Anna's calls

    page = await the_page(tw)
    assert (page.state, page.external_id) == ("sent", call.sid)
    assert not flagged(page)
    assert types(await tw.h.get(str(report["id"])))[-2:] == ["page_unknown", "page_sent"]
    await call.answer()
    await call.press("1")
    seen = await tw.h.get(str(report["id"]))
    assert seen["acknowledged_by"]["name"] == "Anna"
    await tw.h.tick()
    await tw.fake.expect_participant(to=CUSTOMER)
    await tw.expect_accepted_sms(report, by="Anna")
    await tw.h.advance(300)  # Anna was called once; nobody else is paged


async def test_an_sms_twilio_sent_is_found_by_its_accept_link_though_no_callback_came(
    tw: Twilio,
) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.staff("Bram", BRAM)
    await tw.h.chain(("sms", ["Anna"], 120), ("voice", ["Bram"], 60))
    tw.fake.hang_next("Messages")  # Twilio took the SMS, but our request timed out
    report = await tw.h.report()
    await tw.h.tick()
    sms = await tw.fake.expect_sms(to=ANNA)
    assert "/ack/" in sms.body
    sms.callbacks_lost = True  # its status callbacks never reach us
    await sms.mark_sent()

    await tw.h.advance(30)

    page = await the_page(tw)
    assert (page.state, page.external_id) == ("sent", sms.sid)
    assert not flagged(page)
    assert types(await tw.h.get(str(report["id"])))[-2:] == ["page_unknown", "page_sent"]
    await tw.h.advance(89)  # Anna's step runs its course: no second SMS, no flag
    tw.fake.assert_clean()
    await tw.h.advance(1)
    await tw.fake.expect_call(to=BRAM)


async def test_a_call_twilio_never_took_is_placed_once_more(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.chain(("voice", ["Anna"], 600))
    tw.fake.lose_next("Calls")  # our request timed out before Twilio had it
    report = await tw.h.report()
    await tw.h.tick()
    assert tw.fake.calls_to(ANNA) == []

    # Listed at 30 s and 60 s: not there, but too early to say it never will be (the provider
    # may have taken it up to a minute after the dispatch mark, and needs time to list it).
    await tw.h.advance(60)
    assert tw.fake.calls_to(ANNA) == []
    assert (await the_page(tw)).state == "unknown"

    await tw.h.advance(30)

    call = await tw.fake.expect_call(to=ANNA)  # the same page, sent once more
    page = await the_page(tw)
    assert (page.state, page.external_id) == ("sent", call.sid)
    assert not flagged(page)
    assert types(await tw.h.get(str(report["id"]))).count("page_sent") == 1


async def test_an_sms_twilio_never_took_is_sent_once_more_after_its_validity_period(
    tw: Twilio,
) -> None:
    """A message waiting in Twilio's queue has no sent date, so the list by sent date cannot show
    it yet; one held there past its validity period (300 s) fails instead of going out. Only
    then may a message missing from the list count as never taken."""
    await tw.h.staff("Anna", ANNA)
    await tw.h.chain(("sms", ["Anna"], 900))
    tw.fake.lose_next("Messages")
    report = await tw.h.report()
    await tw.h.tick()

    await tw.h.advance(330)  # past the give-up time (300 s): waiting for the list is not giving up
    page = await the_page(tw)
    assert page.state == "unknown"
    assert not flagged(page)
    tw.fake.assert_clean()

    await tw.h.advance(30)  # the slack (60 s) and the validity period after the dispatch mark

    sms = await tw.fake.expect_sms(to=ANNA)
    assert "/ack/" in sms.body
    page = await the_page(tw)
    assert (page.state, page.external_id) == ("sent", sms.sid)
    assert not flagged(page)
    assert types(await tw.h.get(str(report["id"]))).count("page_sent") == 1


async def test_when_twilio_cannot_list_the_page_is_given_up_as_before(tw: Twilio) -> None:
    await tw.h.staff("Anna", ANNA)
    await tw.h.staff("Bram", BRAM)
    await tw.h.chain(("voice", ["Anna"], 600), ("sms", ["Bram"], 60))
    tw.fake.hang_next("Calls")  # Twilio has the call ...
    tw.fake.fail_next_list("Calls", 500, 20500, times=100)  # ... but cannot list it
    await tw.h.report()
    await tw.h.tick()
    await tw.fake.expect_call(to=ANNA)

    await tw.h.advance(299)  # asked every 30 s, no answer
    assert (await the_page(tw)).state == "unknown"
    await tw.h.advance(1)  # give-up time: moving on, flagged, never a blind second call

    page = await the_page(tw)
    assert page.state == "failed"
    assert flagged(page)
    await tw.fake.expect_sms(to=BRAM)
    assert len(tw.fake.calls_to(ANNA)) == 1
