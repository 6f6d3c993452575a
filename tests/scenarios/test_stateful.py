"""Random interleavings against the real service, checked after every step.

Hypothesis drives one service in-process (real database, fake clock, the engine's modules, a
ledger-keeping fake provider) through reports and repeated contacts with and without
Idempotency-Key replays, time passing (with the engines running or down) across step timeouts,
the pre-breach point and the promise, provider faults, delivery updates in any order,
acknowledgements by anyone (also while a page is in flight), resolutions, workers that die
holding claims, and restarts. After every step `escalation_model.check` compares the rows with a
plain-Python model of what must hold: no accepted report lost, no page twice, nothing after an
acknowledgement, the promise verdict, a timeline event for every transition, a next action for
every open report.

Bounded: about 30 s on SQLite. `SOS_STATEFUL_EXAMPLES` raises the number of examples for a longer
hunt; with `CI` set the run is derandomized, so CI explores the same interleavings every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import and_, func, or_, select

from app.container import build
from app.main import create_app
from app.settings import Settings
from providers.base import Channel, DeliveryState, DeliveryUpdate, OutboundPage, ProviderError
from routing.clock import FakeClock
from routing.engine.dispatcher import Dispatcher, _Claimed
from routing.engine.escalator import Escalator
from routing.inbound import service as inbound
from routing.models import Base
from routing.page import bundle
from routing.page import service as page_service
from routing.page.models import EscalationTimer, Page
from tests.fakes.ledger import Fault, LedgerPhones, Request
from tests.harness import Harness
from tests.scenarios.escalation_model import Case, Model, Snapshot, check
from tests.unlocked import audit_unlocked

PROFILE = settings(
    max_examples=int(os.environ.get("SOS_STATEFUL_EXAMPLES", "25")),
    stateful_step_count=int(os.environ.get("SOS_STATEFUL_STEPS", "30")),
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    database=None,
    # One failure, shrunk to its shortest steps: shrinking several takes minutes.
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow],
)

# Three customers, so later contacts join an open case; staff with their languages and numbers.
CUSTOMERS = ("+31610000001", "+31610000002", "+31610000003")
STAFF = {
    "Anna": (["nl"], "+31620000001"),
    "Bram": (["nl"], "+31620000002"),
    "Chris": (["en"], "+31620000003"),
    "Duty": (["nl", "en"], "+31620000004"),
    "Eve": (["nl"], "+31620000005"),  # in no chain: paged only if she helped the customer before
}
# Time passes with the engines running, mostly; or with every engine down.
ENGINES = st.sampled_from([True, True, True, False])
AT_THE_CONSOLE, ON_A_PAGE, RESOLVES = "accepts at the console", "accepts on a page", "resolves"
ACTS = (AT_THE_CONSOLE, ON_A_PAGE, RESOLVES)
CALLBACKS = ("delivered", "answered", "undelivered", "no-answer", "busy", "machine")
CRASHES = ("escalator", "dispatcher before send", "dispatcher after send", "every process")

# Staff, their tokens and the chain are seeded once per run; what reports leave behind is emptied
# before every example.
REPORT_TABLES = [
    table
    for table in reversed(Base.metadata.sorted_tables)
    if table.name not in {"staff", "api_tokens", "chains"}
]


@dataclass(frozen=True)
class Seed:
    """The staff and the chain every example starts from, and the tokens to act with."""

    admin: dict[str, str]
    app: dict[str, str]
    names: dict[str, str]
    staff_tokens: dict[str, str]

    @classmethod
    async def plant(cls, service_settings: Settings) -> Seed:
        clock = FakeClock()
        phones = LedgerPhones(clock)
        container = build(service_settings, clock=clock, senders=[phones], raise_errors=True)
        transport = httpx.ASGITransport(app=create_app(container, run_engine=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://sos.test") as client:
            h = Harness(client, container, clock, phones)  # type: ignore[arg-type]
            await h.setup()
            for name, (languages, phone) in STAFF.items():
                chat_id = "U-DUTY" if name == "Duty" else None
                await h.staff(name, phone, languages=languages, chat_id=chat_id)
            await h.chain(
                ("voice", ["Anna"], 30),
                ("sms", ["Bram", "Chris"], 60),  # nl reports: Bram first, then Chris
                ("chat", ["Duty"], 30),
                repeat=1,
                last_resort={"channel": "sms", "targets": ["Duty"]},
                all_hands={"channel": "voice", "targets": ["Duty"]},
            )
        await container.close()
        return cls(h.admin, h.app, h.names, h.staff_tokens)

    def into(self, h: Harness) -> None:
        h.admin, h.app = self.admin, self.app
        h.names, h.staff_tokens = self.names, self.staff_tokens


M = TypeVar("M", Escalator, Dispatcher)


class WorkerDied(Exception):
    """A worker process ended between two of its transactions."""


class DyingEscalator(Escalator):
    """Claims due timers like the live escalator, then dies before firing any of them."""

    async def _fire(self, *_: object) -> None:
        raise WorkerDied


class DyingDispatcher(Dispatcher):
    """Claims due pages like the live dispatcher, then dies before recording any outcome:
    before calling the provider, or (`after_send`) after the provider got the request."""

    def __init__(self, live: Dispatcher, *, after_send: bool) -> None:
        super().__init__(
            live.registry,
            live.clock,
            lease_seconds=live.lease.total_seconds(),
            send_timeout=live.send_timeout,
            reconcile_after=live.reconcile_after.total_seconds(),
            batch=live.batch,
            link_base=live.link_base,
            limits=live.limits,
        )
        self.after_send = after_send

    async def _send_and_record(self, _: object, c: _Claimed) -> None:
        if self.after_send and c.outbound is not None:
            with contextlib.suppress(ProviderError):
                await self.registry.sender_for(c.outbound.channel).send(c.outbound)


class Escalations(RuleBasedStateMachine):
    def __init__(self, runner: asyncio.Runner, service_settings: Settings, seed: Seed) -> None:
        super().__init__()
        self.run = runner.run
        self.settings = service_settings
        self.seed = seed
        self.clock = FakeClock()
        self.phones = LedgerPhones(self.clock, covers=self._covers)
        self.model = Model(settled_at=self.clock.now())
        self.h = self.run(self._start())

    # --- the service --------------------------------------------------------------------------

    async def _start(self) -> Harness:
        h = await self._connect()
        async with h.container.db_engine.begin() as conn, audit_unlocked(conn):
            for table in REPORT_TABLES:
                await conn.execute(table.delete())
        return h

    async def _connect(self) -> Harness:
        container = build(self.settings, clock=self.clock, senders=[self.phones], raise_errors=True)
        app = create_app(container, run_engine=False)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://sos.test")
        h = Harness(client, container, self.clock, self.phones)  # type: ignore[arg-type]
        self.seed.into(h)
        return h

    async def _stop(self) -> None:
        await self.h.client.aclose()
        await self.h.container.close()

    def teardown(self) -> None:
        self.run(self._stop())

    def _module(self, kind: type[M]) -> M:
        """The live engine's module of this kind."""
        return next(m for m in self.h.container.engine.modules if isinstance(m, kind))

    async def _covers(self, page_id: int) -> tuple[int, ...]:
        """The pages a message carries: its own, then the riders of a bundle it carries."""
        async with self.h.container.db() as session:
            ids = await session.scalars(
                select(Page.id).where(
                    or_(
                        Page.id == page_id,
                        and_(Page.bundle_id == page_id, Page.state == "sending"),
                    )
                )
            )
            return tuple(sorted(ids, key=lambda i: (i != page_id, i)))

    async def _report_of(self, page_ids: tuple[int, ...]) -> set[str]:
        async with self.h.container.db() as session:
            return set(await session.scalars(select(Page.report_id).where(Page.id.in_(page_ids))))

    async def _accepted(self, case: Case, name: str) -> None:
        """Record an acknowledgement that just committed, with what existed at that moment."""
        async with self.h.container.db() as session:
            pages = int(await session.scalar(select(func.max(Page.id))) or 0)
        self.model.accept(
            case, name, self.clock.now(), pages=pages, requests=len(self.phones.ledger)
        )

    def _case(self, pick: int) -> Case:
        return self.model.cases[pick % len(self.model.cases)]

    def _request(self, pick: int) -> Request:
        taken = self.phones.taken
        return taken[pick % len(taken)]

    # --- customers ----------------------------------------------------------------------------

    @initialize(customer=st.integers(0, len(CUSTOMERS) - 1), language=st.sampled_from(["nl", "en"]))
    def first_report(self, customer: int, language: str) -> None:
        self.report(customer, language, None)

    @rule(
        customer=st.integers(0, len(CUSTOMERS) - 1),
        language=st.sampled_from(["nl", "en"]),
        key=st.sampled_from([None, "key-1", "key-2"]),
    )
    def report(self, customer: int, language: str, key: str | None) -> None:
        """A customer reports, maybe again (joining their open case), maybe a client retry
        with an Idempotency-Key it used before (with the same body or, wrongly, another)."""
        body = {"category": "fraud", "callback_phone": CUSTOMERS[customer], "language": language}
        headers = {**self.h.app, **({"Idempotency-Key": key} if key else {})}
        r = self.run(self.h.client.post("/v1/reports", json=body, headers=headers))
        if key in self.model.keys:
            first_body, report_id = self.model.keys[key]
            if first_body != body:
                assert r.status_code == 422, r.text
                assert r.json()["error"]["field"] == "Idempotency-Key"
                return
            assert r.status_code == 200, r.text
            assert r.headers["idempotent-replayed"] == "true"
            assert r.json()["id"] == report_id
            return
        case = self.model.open_case(customer)
        if case is not None:
            assert r.status_code == 200, r.text
            assert r.headers["case-joined"] == "true"
            assert r.json()["id"] == case.id, "a repeated contact must join the open case"
            case.contacts += 1
        else:
            assert r.status_code == 201, r.text
            deadline_at = self.clock.now() + timedelta(seconds=self.settings.sla_seconds)
            case = Case(r.json()["id"], customer, deadline_at)
            assert case.id not in {c.id for c in self.model.cases}
            self.model.cases.append(case)
        if key is not None:
            self.model.keys[key] = (body, case.id)

    # --- time ---------------------------------------------------------------------------------

    @rule(seconds=st.integers(0, 40), engines_running=ENGINES)
    def seconds_pass(self, seconds: int, engines_running: bool) -> None:
        """A call rings, a retry backs off, a lease (10 s, 15 s) runs out, the reconciler asks
        (after 30 s), a step times out (30 s)."""
        self._advance(seconds, engines_running)

    @rule(
        minutes=st.sampled_from([1, 1.5, 2, 3, 5, 7, 9.99, 10, 10.01, 15]), engines_running=ENGINES
    )
    def minutes_pass(self, minutes: float, engines_running: bool) -> None:
        """Steps time out, the chain repeats and runs out, the pre-breach point (7:00) and the
        promise (10:00) pass."""
        self._advance(minutes * 60, engines_running)

    def _advance(self, seconds: float, engines_running: bool) -> None:
        """With the engines running (mostly) everything due on the way is handled when it falls
        due; with every engine down nothing is, until they run again."""
        if not engines_running:
            self.clock.advance(seconds)
            return
        self.run(self.h.advance(seconds))
        self.model.settled_at = self.clock.now()

    # --- the provider -------------------------------------------------------------------------

    @rule(
        fault=st.sampled_from(list(Fault)),
        accepted_meanwhile=st.booleans(),
        status_down=st.sampled_from([False, False, True]),
    )
    def provider(self, fault: Fault, accepted_meanwhile: bool, status_down: bool) -> None:
        """The next page request meets `fault`, and maybe a colleague accepts its report while
        the provider still handles it; the status API (which the reconciler asks about unknown
        outcomes) works, or is down until the next change."""
        self.phones.upcoming = fault
        self.phones.meanwhile = self._accepted_meanwhile if accepted_meanwhile else None
        self.phones.status_down = status_down

    async def _accepted_meanwhile(self, page: OutboundPage) -> None:
        """Eve accepts the page's report at the console while the provider handles the page."""
        [report_id] = await self._report_of((page.page_id,))
        await self._ack(self.model.case(report_id), "Eve")

    @precondition(lambda self: self.phones.taken)
    @rule(pick=st.integers(0, 50), word=st.sampled_from(CALLBACKS))
    def delivery_update(self, pick: int, word: str) -> None:
        """A status callback for a message the provider took: late, repeated, out of order."""
        request = self._request(pick)
        external_id = request.external_id or ""
        state = {"delivered": DeliveryState.DELIVERED, "answered": DeliveryState.ANSWERED}.get(
            word, DeliveryState.FAILED
        )
        update = DeliveryUpdate(external_id, state, word)

        async def deliver() -> None:
            now = self.clock.now()
            async with self.h.container.db.begin() as session:
                if request.channel == Channel.VOICE:
                    machine = word == "machine"
                    await page_service.call_progress(
                        session,
                        page_id=request.page_id,
                        external_id=external_id,
                        update_=None if machine else update,
                        now=now,
                        machine=machine,
                    )
                else:
                    await page_service.apply_delivery_update(
                        session, page_id=request.page_id, update_=update, now=now
                    )

        self.run(deliver())

    # --- staff --------------------------------------------------------------------------------

    @rule(pick=st.integers(0, 50), name=st.sampled_from(list(STAFF)), action=st.sampled_from(ACTS))
    def staff(self, pick: int, name: str, action: str) -> None:
        """Someone on staff accepts a report at the console (anyone may, paged or not), the
        paged person accepts on a page they got (a keypress on the call, the link in an SMS or
        chat message; `pick` chooses the page, and before any page went out it is the console
        again), or someone resolves a report."""
        if action == ON_A_PAGE and self.phones.taken:
            self.run(self._accept_on(self._request(pick)))
        elif action == RESOLVES:
            self.run(self._resolve(self._case(pick), name))
        else:
            self.run(self._ack(self._case(pick), name))

    async def _ack(self, case: Case, name: str) -> None:
        """The first acknowledgement wins; the same person again is a no-op; anyone else is
        told who holds it."""
        r = await self.h.ack(case.id, name)
        if case.acked_by in (None, name):
            assert r.status_code == 200, r.text
            assert r.json()["acknowledged_by"]["name"] == name
            if case.acked_by is None:
                await self._accepted(case, name)
        else:
            assert r.status_code == 409, r.text
            error = r.json()["error"]
            assert error["code"] == "already_acknowledged"
            assert error["acknowledged_by"]["name"] == case.acked_by

    async def _resolve(self, case: Case, name: str) -> None:
        """Resolving a report nobody accepted accepts it for the resolver first; resolving it
        again changes nothing."""
        r = await self.h.client.post(
            f"/v1/reports/{case.id}/resolve", headers=self.h.as_staff(name)
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "resolved"
        if case.acked_by is None:
            await self._accepted(case, name)
        if case.resolved_by is None:
            case.resolved_by = name

    async def _accept_on(self, request: Request) -> None:
        """Accept on the page a request carried: it takes a report that message was about (a
        bundle's link the most urgent one still open), for the person paged, unless someone
        else holds it already."""
        now = self.clock.now()
        async with self.h.container.db.begin() as session:
            if request.channel == Channel.VOICE:
                result = await inbound.accept_page(
                    session, page_id=request.page_id, now=now, via="keypress", on_call=True
                )
            else:
                ids = await bundle.pages_to_accept(session, page_id=request.page_id)
                result = await inbound.accept_first(
                    session, page_ids=ids or [request.page_id], now=now, via="ack link"
                )
        case, name = self.model.case(result.report.id), request.staff_name
        assert case.id in await self._report_of(request.covers), "took a report not paged"
        if result.won and case.acked_by is None:
            await self._accepted(case, name)
        if result.won:
            assert case.acked_by == name
        else:
            assert case.acked_by not in (None, name)
            assert result.holder_name == case.acked_by

    # --- crashes and restarts -----------------------------------------------------------------

    def _work_due(self) -> bool:
        """Whether a page or a timer is due now: only then can a worker die holding a claim."""
        return self.run(self._due_now())

    async def _due_now(self) -> bool:
        now = self.clock.now()
        async with self.h.container.db() as session:
            for model in (Page, EscalationTimer):
                due = select(model.id).where(model.state == "pending", model.due_at <= now)
                if await session.scalar(due.limit(1)) is not None:
                    return True
        return False

    @precondition(_work_due)
    @rule(worker=st.sampled_from(CRASHES))
    def crash(self, worker: str) -> None:
        """A worker dies between two of its transactions, or every process restarts.

        An escalator that claimed the due timers dies before firing them: another takes them
        over when the lease runs out. A dispatcher that claimed the due pages dies before
        recording what happened, before or after the provider got them: their outcome becomes
        unknown and is reconciled. A restart keeps nothing in memory, only the rows."""
        if worker == "every process":
            self.run(self._stop())
            self.h = self.run(self._connect())
        elif worker == "escalator":
            self.run(self._escalator_dies())
        else:
            dying = DyingDispatcher(
                self._module(Dispatcher), after_send=worker == "dispatcher after send"
            )
            self.run(dying.run_once(self.h.container.db, self.clock.now()))

    async def _escalator_dies(self) -> None:
        live = self._module(Escalator)
        dying = DyingEscalator(lease_seconds=live.lease.total_seconds(), batch=live.batch)
        now = self.clock.now()
        with contextlib.suppress(WorkerDied):
            await dying.run_once(self.h.container.db, now)
        async with self.h.container.db() as session:
            held = await session.scalars(
                select(EscalationTimer).where(
                    EscalationTimer.kind == "deadline",
                    EscalationTimer.state == "leased",
                    EscalationTimer.claimed_at == now,
                )
            )
            for timer in held:
                self.model.case(timer.report_id).deadline_held_until = timer.lease_until

    # --- what must hold -----------------------------------------------------------------------

    @invariant()
    def holds(self) -> None:
        seen = self.run(Snapshot.read(self.h.container.db, self.clock.now()))
        check(self.model, seen, self.phones.ledger, self.h.names)


def test_escalation_state_machine(settings: Settings, clean_db: None) -> None:
    del clean_db
    # The machine runs its own event loop: Hypothesis calls rules synchronously.
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        seed = runner.run(Seed.plant(settings))
        run_state_machine_as_test(lambda: Escalations(runner, settings, seed), settings=PROFILE)
