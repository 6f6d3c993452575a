"""Finding a page at the provider when we never learned its id: its send timed out, or its
worker died after the provider answered and before the answer was recorded.

The reconciler cannot ask about such a page by id. When its sender can list what it placed to a
number (`providers.base.SentFinder`), the reconciler lists everything placed to the staff
member since shortly before the page's dispatch mark, and `judge` decides which of it, if any,
is the page:

- only a send the provider took within `SLACK` of the dispatch mark can be the page (the slack
  covers the send deadline and the clocks of two machines);
- a send whose id another row already holds (a page, a text, a bridge call) is not the page;
- a text carrying an accept link is the page when the link is the page's own, and is not when
  it is another page's; anything else (a call, a text without a link, a body the provider no
  longer shows) may be the page;
- FOUND: the page's own link, or exactly one send that may be it. Several that may: nobody can
  tell, as when the list fails (the reconciler asks again, then gives up as before);
- ABSENT: nothing matched, the list was complete, and the provider has had time to list the
  page: `settle` (the reconciler's retry delay, or longer where the provider lists late) after
  the latest moment it could have taken it. Until then: WAIT, and ask again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import select, union_all
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from providers.base import Channel, ProviderError, SentFinder, SentQuery, SentRecord
from routing import crypto
from routing.bridge.models import BridgeCall
from routing.notify.models import OutboundMessage
from routing.page import links
from routing.page.models import AckLink, Page
from routing.staff.models import Staff

# How far from its dispatch mark the provider may have taken a page: the send deadline (8 s by
# default) plus any difference between our clock and the provider's.
SLACK = timedelta(seconds=60)


class Verdict(Enum):
    FOUND = "found"  # the provider has it: `external_id`
    ABSENT = "absent"  # it never took it: send it again
    WAIT = "wait"  # nothing yet, but too early to say it never will: ask again
    UNSURE = "unsure"  # cannot tell (the list failed, or several sends may be the page)


@dataclass(frozen=True, slots=True)
class Answer:
    verdict: Verdict
    external_id: str | None = None
    detail: str = ""


def judge(
    records: Sequence[SentRecord],
    *,
    complete: bool,
    page_id: int,
    dispatched_at: datetime,
    now: datetime,
    settle: timedelta,
    known: frozenset[str] = frozenset(),
    link_owners: Mapping[str, int] | None = None,
) -> Answer:
    """Which of `records` (what the provider placed to the page's address) is page `page_id`.
    `known`: ids other rows hold; `link_owners`: the page of each accept-link token (its hash)
    found in the records' bodies."""
    owners = link_owners or {}
    start, end = dispatched_at - SLACK, dispatched_at + SLACK
    maybe: list[SentRecord] = []
    for record in records:
        taken = record.created_at
        if (taken is not None and not start <= taken <= end) or record.external_id in known:
            continue
        pages = {owners.get(h) for h in links.hashes_in(record.body or "")}
        if page_id in pages:
            return Answer(Verdict.FOUND, record.external_id, "its accept link")
        if pages - {None}:
            continue  # another page's accept link
        maybe.append(record)
    if len(maybe) == 1:
        return Answer(Verdict.FOUND, maybe[0].external_id, "the only send to its address then")
    if maybe:
        return Answer(Verdict.UNSURE, detail=f"{len(maybe)} sends to its address could be it")
    if not complete:
        return Answer(Verdict.UNSURE, detail="the provider's list was not complete")
    if now < end + settle:
        return Answer(Verdict.WAIT, detail="not listed yet")
    return Answer(Verdict.ABSENT, detail="not listed by the provider")


async def look_up(
    db: async_sessionmaker[AsyncSession],
    finder: SentFinder,
    *,
    page_id: int,
    dispatched_at: datetime,
    now: datetime,
    retry: timedelta,
) -> Answer:
    """Ask `finder` what it placed to the page's address around its dispatch, and `judge` it."""
    async with db() as session:
        target = (
            await session.execute(
                select(Page.staff_id, Page.channel, Staff.phone, Staff.chat_id)
                .join(Staff, Staff.id == Page.staff_id)
                .where(Page.id == page_id)
            )
        ).one_or_none()
    if target is None:
        return Answer(Verdict.UNSURE, detail="no such page")
    to = target.chat_id if target.channel == Channel.CHAT else target.phone
    if not to:
        return Answer(Verdict.UNSURE, detail="its staff member has no address")
    since = dispatched_at - SLACK
    try:
        listed = await finder.sent_to(SentQuery(page_id, to, since))
    except ProviderError as exc:
        return Answer(Verdict.UNSURE, detail=f"look-up failed: {exc.detail}")
    hashes = {h for r in listed.records for h in links.hashes_in(r.body or "")}
    async with db() as session:
        known = await _known(
            session,
            [r.external_id for r in listed.records],
            page_id=page_id,
            staff_id=target.staff_id,
            channel=target.channel,
            to=to,
            since=since,
        )
        owners = await _link_owners(session, hashes)
    return judge(
        listed.records,
        complete=listed.complete,
        page_id=page_id,
        dispatched_at=dispatched_at,
        now=now,
        settle=max(retry, timedelta(seconds=finder.listed_within)),
        known=known,
        link_owners=owners,
    )


async def _known(
    session: AsyncSession,
    ids: Sequence[str],
    *,
    page_id: int,
    staff_id: str,
    channel: str,
    to: str,
    since: datetime,
) -> frozenset[str]:
    """Which of `ids` other rows hold: the staff member's other pages sent since `since`
    (`ix_pages_staff_channel_sent`), texts to the same number (`to_hash`), their bridge calls."""
    if not ids:
        return frozenset()
    held = [
        select(Page.external_id).where(
            Page.staff_id == staff_id,
            Page.channel == channel,
            Page.sent_at >= since,
            Page.id != page_id,
            Page.external_id.in_(ids),
        ),
        select(BridgeCall.external_id).where(
            BridgeCall.staff_id == staff_id, BridgeCall.external_id.in_(ids)
        ),
    ]
    if channel != Channel.CHAT:
        held.append(
            select(OutboundMessage.external_id).where(
                OutboundMessage.to_hash == crypto.phone_hash(to),
                OutboundMessage.external_id.in_(ids),
            )
        )
    return frozenset(str(i) for i in await session.scalars(union_all(*held)))


async def _link_owners(session: AsyncSession, hashes: set[str]) -> dict[str, int]:
    if not hashes:
        return {}
    rows = await session.execute(
        select(AckLink.token_hash, AckLink.page_id).where(AckLink.token_hash.in_(hashes))
    )
    return {row.token_hash: row.page_id for row in rows}
