"""A GoAlert-style scenario harness: seed staff and chains, submit reports through the API,
move the fake clock, run the engine, and expect exactly the pages that should go out."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from app.container import Container
from providers.base import Channel, DeliveryState, DeliveryUpdate, OutboundPage, OutboundText
from providers.fake import ScriptedSender
from routing.auth import service as auth_service
from routing.clock import FakeClock
from routing.page import service as page_service
from routing.page.models import Page
from routing.report.models import Report
from routing.types import Role

VOICE, SMS, CHAT = Channel.VOICE, Channel.SMS, Channel.CHAT
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def reference_and_phone(report: Report | Mapping[str, Any]) -> tuple[str, str]:
    """A report's reference and its customer's number (E.164), from the model or the API."""
    if isinstance(report, Report):
        reference, phone = report.reference, report.callback_phone
    else:
        reference, phone = str(report["reference"]), str(report["callback_phone"])
    assert E164.fullmatch(phone), f"the customer's number {phone!r} is not E.164"
    return reference, phone


class Harness:
    def __init__(
        self,
        client: httpx.AsyncClient,
        container: Container,
        clock: FakeClock,
        sender: ScriptedSender,
    ) -> None:
        self.client = client
        self.container = container
        self.clock = clock
        self.sender = sender
        self.staff_tokens: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.customers = 0

    async def setup(self) -> None:
        self.admin = await self.token(Role.ADMIN)
        self.app = await self.token(Role.APP)

    async def token(self, role: Role, staff_id: str | None = None) -> dict[str, str]:
        async with self.container.db.begin() as session:
            secret, _ = await auth_service.create(
                session, role=role, staff_id=staff_id, now=self.clock.now()
            )
        return {"Authorization": f"Bearer {secret}"}

    # --- seeding ---------------------------------------------------------------------------

    async def staff(
        self,
        name: str,
        phone: str = "+31612345678",
        *,
        languages: list[str] | None = None,
        chat_id: str | None = None,
        skills: list[str] | None = None,
    ) -> str:
        body: dict[str, Any] = {"name": name, "phone": phone, "languages": languages or ["nl"]}
        if skills:
            body["skills"] = skills
        if chat_id:
            body["chat_id"] = chat_id
        r = await self.client.post("/v1/staff", json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        staff_id: str = r.json()["id"]
        self.names[name] = staff_id
        self.staff_tokens[name] = (await self.token(Role.STAFF, staff_id))["Authorization"]
        return staff_id

    def as_staff(self, name: str) -> dict[str, str]:
        return {"Authorization": self.staff_tokens[name]}

    async def chain(
        self,
        *steps: tuple[str, list[str], int],
        categories: list[str] | None = None,
        repeat: int = 0,
        last_resort: dict[str, Any] | None = None,
        all_hands: dict[str, Any] | None = None,
        name: str = "chain",
    ) -> dict[str, Any]:
        """Steps as (channel, [staff names], wait_seconds); `all_hands` as
        {"channel", "targets": [staff names], "schedules": [...]}."""
        body: dict[str, Any] = {
            "name": name,
            "categories": categories or [],
            "steps": [
                {"channel": ch, "targets": [self.names[n] for n in who], "wait_seconds": wait}
                for ch, who, wait in steps
            ],
            "repeat": repeat,
        }
        if last_resort is not None:
            body["last_resort"] = {
                "channel": last_resort["channel"],
                "targets": [self.names[n] for n in last_resort["targets"]],
            }
        if all_hands is not None:
            body["all_hands"] = {
                **all_hands,
                "targets": [self.names[n] for n in all_hands.get("targets", [])],
            }
        r = await self.client.post("/v1/chains", json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        return dict(r.json())

    # --- acting ----------------------------------------------------------------------------

    async def report(self, **fields: Any) -> dict[str, Any]:
        """Submit a report; each comes from a different customer (phone) unless told otherwise."""
        r = await self.submit(**fields)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def submit(self, **fields: Any) -> httpx.Response:
        phone = f"06 {12345678 + self.customers}"  # 06 12345678, 06 12345679, ...
        self.customers += 1
        body = {"category": "fraud", "callback_phone": phone, **fields}
        return await self.client.post("/v1/reports", json=body, headers=self.app)

    async def tick(self) -> int:
        return await self.container.engine.run_until_idle()

    async def route(self) -> None:
        """Run only the escalator: due steps are routed and their pages wait, unsent (to stage
        what a worker finds when it claims them)."""
        escalator = self.container.engine.modules[0]
        assert escalator.name == "escalator"
        while await escalator.run_once(self.container.db, self.clock.now()):
            pass

    async def advance(self, seconds: float) -> None:
        """Fast-forward `seconds`, stopping the clock at every due row so the engine handles it
        exactly when it falls due, as a live loop would (GoAlert's FastForward)."""
        target = self.clock.now() + timedelta(seconds=seconds)
        for _ in range(10_000):
            due = await self.container.engine.next_due_at()
            if due is None or due > target:
                break
            self.clock.set(max(due, self.clock.now()))
            if not await self.tick():
                # Due but not actionable yet (a lease ends strictly after `lease_until`).
                self.clock.set(min(self.clock.now() + timedelta(milliseconds=1), target))
        else:
            raise AssertionError("the engine keeps finding due work: a loop that never settles")
        self.clock.set(target)
        await self.tick()

    async def call_ends(self, page: OutboundPage, detail: str = "no-answer") -> None:
        """A page call ended without a keypress, as the provider's status callback would say
        (the scripted fake sends no callbacks, so its calls ring until told otherwise)."""
        async with self.container.db.begin() as session:
            external_id = await session.scalar(
                select(Page.external_id).where(Page.id == page.page_id)
            )
            await page_service.apply_delivery_update(
                session,
                page_id=page.page_id,
                update_=DeliveryUpdate(external_id or "", DeliveryState.FAILED, detail),
                now=self.clock.now(),
            )

    async def ack(self, report_id: str, name: str) -> httpx.Response:
        return await self.client.post(f"/v1/reports/{report_id}/ack", headers=self.as_staff(name))

    async def get(self, report_id: str) -> dict[str, Any]:
        r = await self.client.get(f"/v1/reports/{report_id}", headers=self.admin)
        assert r.status_code == 200, r.text
        return dict(r.json())

    # --- expecting -------------------------------------------------------------------------

    def expect(self, *pages: tuple[str, Channel]) -> list[OutboundPage]:
        """Exactly these (staff name, channel) pages went out since the last expectation."""
        return self.sender.expect(*pages)

    def expect_texts(self, *texts: tuple[str, Channel]) -> list[OutboundText]:
        """Exactly these (number, channel) texts (receipts, codes) went out since the last check."""
        return self.sender.expect_texts(*texts)

    def expect_customer_text(self, report: Report | Mapping[str, Any]) -> OutboundText:
        """Exactly one text since the last check: an SMS to the customer of `report` (its
        callback phone, E.164) that names its reference."""
        reference, phone = reference_and_phone(report)
        [text] = self.expect_texts((phone, SMS))
        assert reference in text.body, text.body
        return text

    def expect_accepted_text(
        self, *reports: Report | Mapping[str, Any], by: str
    ) -> list[OutboundText]:
        """Exactly one "Anna van het fraudeteam belt u nu" SMS to the customer of each of `reports`
        (its callback phone, E.164), naming its reference and the first name of `by`, the staff
        member who accepted it; and no other text since the last check."""
        customers = [reference_and_phone(report) for report in reports]
        got = self.expect_texts(*((phone, SMS) for _, phone in customers))
        first_name = by.split()[0]
        for reference, phone in customers:
            [text] = [t for t in got if t.to == phone and reference in t.body]
            assert f"{reference}: {first_name} " in text.body, text.body
        return got

    def expect_none(self) -> None:
        self.sender.assert_no_more()

    async def count(self, model: Any, *where: Any) -> int:
        async with self.container.db() as session:
            return int(
                await session.scalar(select(func.count()).select_from(model).where(*where)) or 0
            )


def types(report: dict[str, Any]) -> list[str]:
    return [e["type"] for e in report["timeline"]]
