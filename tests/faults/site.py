"""The suite's view of a running sos-router: what its users do (staff, chains, reports and
acknowledgements through the HTTP API) and what an auditor reads (its database)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select, text

from app.db import create_engine, create_sessionmaker
from routing.audit.models import AuditEvent
from routing.auth import service as auth_service
from routing.page.models import EscalationTimer, Page
from routing.report.models import Report
from routing.types import Role

# The staff of every scenario; each has their own phone, so the fake provider tells them apart.
PHONES = {
    "Anna": "+31611111111",
    "Bram": "+31622222222",
    "Cas": "+31633333333",
    "Dirk": "+31644444444",
}
Step = tuple[str, Sequence[str], int]  # (channel, staff names, wait_seconds)


class Site:
    def __init__(self, database_url: str) -> None:
        # The test's own reads must outlive a database restart: ping each connection first.
        self.engine = create_engine(database_url, pool_pre_ping=True)
        self.db = create_sessionmaker(self.engine)
        self.staff: dict[str, str] = {}  # name -> id
        self.headers: dict[str, dict[str, str]] = {}  # "admin", "app", staff name -> auth
        self.customers = 0

    async def close(self) -> None:
        await self.engine.dispose()

    async def _token(self, role: Role, staff_id: str | None = None) -> dict[str, str]:
        async with self.db.begin() as session:
            secret, _ = await auth_service.create(
                session, role=role, staff_id=staff_id, now=datetime.now(UTC)
            )
        return {"Authorization": f"Bearer {secret}"}

    async def seed(self, client: httpx.AsyncClient, *steps: Step) -> None:
        """Staff and one chain for fraud reports, through the API as an administrator would."""
        self.headers["admin"] = await self._token(Role.ADMIN)
        self.headers["app"] = await self._token(Role.APP)
        for name in dict.fromkeys(n for _, names, _ in steps for n in names):
            r = await client.post(
                "/v1/staff", json={"name": name, "phone": PHONES[name]}, headers=self.admin
            )
            assert r.status_code == 201, r.text
            self.staff[name] = r.json()["id"]
            self.headers[name] = await self._token(Role.STAFF, self.staff[name])
        chain = {
            "name": "fraud",
            "categories": ["fraud"],
            "steps": [
                {"channel": ch, "targets": [self.staff[n] for n in who], "wait_seconds": wait}
                for ch, who, wait in steps
            ],
        }
        r = await client.post("/v1/chains", json=chain, headers=self.admin)
        assert r.status_code == 201, r.text

    @property
    def admin(self) -> dict[str, str]:
        return self.headers["admin"]

    def new_report(self) -> dict[str, Any]:
        """A report body from a customer not seen before (one customer's reports join one case)."""
        self.customers += 1
        return {"category": "fraud", "callback_phone": f"+316{20000000 + self.customers}"}

    async def submit(self, client: httpx.AsyncClient, **kwargs: Any) -> httpx.Response:
        return await client.post(
            "/v1/reports", json=self.new_report(), headers=self.headers["app"], **kwargs
        )

    async def report(self, client: httpx.AsyncClient) -> str:
        r = await self.submit(client)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def ack(self, client: httpx.AsyncClient, report_id: str, name: str) -> httpx.Response:
        return await client.post(f"/v1/reports/{report_id}/ack", headers=self.headers[name])

    # --- the database ----------------------------------------------------------------------

    async def reports(self) -> list[Report]:
        async with self.db() as session:
            return list(await session.scalars(select(Report).order_by(Report.received_at)))

    async def get(self, report_id: str) -> Report:
        async with self.db() as session:
            report = await session.get(Report, report_id)
        assert report is not None, f"report {report_id} is not stored"
        return report

    async def pages(self, report_id: str | None = None) -> list[Page]:
        query = select(Page).order_by(Page.id)
        if report_id is not None:
            query = query.where(Page.report_id == report_id)
        async with self.db() as session:
            return list(await session.scalars(query))

    async def timers(self) -> list[EscalationTimer]:
        async with self.db() as session:
            return list(await session.scalars(select(EscalationTimer)))

    async def events(self, report_id: str | None = None) -> list[AuditEvent]:
        query = select(AuditEvent).order_by(AuditEvent.id)
        if report_id is not None:
            query = query.where(AuditEvent.report_id == report_id)
        async with self.db() as session:
            return list(await session.scalars(query))

    async def commit_order(self) -> list[tuple[str, str, datetime]]:
        """(report id, what, when it committed) for each acknowledgement ("acknowledged"), each
        escalation that paged someone ("escalated") and each claim of a page ("claimed"), read
        from PostgreSQL's commit timestamps of rows that are written once: audit events, and the
        accept link a claim makes for an SMS page. Rows written in one transaction share it."""
        query = text(
            "SELECT report_id, type, pg_xact_commit_timestamp(xmin) FROM audit_events"
            " WHERE type IN ('acknowledged', 'escalated')"
            " UNION ALL"
            " SELECT p.report_id, 'claimed', pg_xact_commit_timestamp(l.xmin)"
            " FROM ack_links l JOIN pages p ON p.id = l.page_id"
        )
        async with self.db() as session:
            return [(r, what, at) for r, what, at in (await session.execute(query)).all()]

    async def settled(self) -> bool:
        """Nothing in flight: no page being sent or with an unknown outcome, no timer leased."""
        pages = await self.pages()
        timers = await self.timers()
        return not any(p.state in ("sending", "unknown") for p in pages) and not any(
            t.state == "leased" for t in timers
        )
