"""The demo rota: seeded into an empty database so `sos-router serve` is useful at once.

Everything seeded is marked "(demo)"; the numbers only ever ring the simulated phones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from routing.auth import service as auth_service
from routing.chain import service as chain_service
from routing.chain.models import Chain
from routing.chain.schemas import ChainCreate
from routing.staff import service as staff_service
from routing.staff.models import Staff
from routing.staff.schemas import StaffCreate
from routing.types import Role

DEMO_STAFF = [
    ("Anna de Vries (demo)", "+31612345671", ["nl", "en"]),
    ("Bram Jansen (demo)", "+31612345672", ["nl"]),
    ("Chris Bakker (demo)", "+31612345673", ["en", "nl"]),
]


@dataclass(frozen=True)
class DemoRota:
    staff: list[Staff]
    chain: Chain
    tokens: dict[str, str]


async def is_empty(session: AsyncSession) -> bool:
    staff = await session.scalar(select(func.count()).select_from(Staff))
    chains = await session.scalar(select(func.count()).select_from(Chain))
    return not staff and not chains


async def seed_demo(session: AsyncSession, *, now: datetime) -> DemoRota:
    staff = [
        await staff_service.create(
            session,
            now=now,
            data=StaffCreate.model_validate({"name": name, "phone": phone, "languages": languages}),
        )
        for name, phone, languages in DEMO_STAFF
    ]
    anna, bram, chris = (s.id for s in staff)
    chain = await chain_service.create(
        session,
        now=now,
        data=ChainCreate.model_validate(
            {
                "name": "Fraud team (demo)",
                "steps": [
                    {"channel": "voice", "targets": [anna], "wait_seconds": 30},
                    {"channel": "sms", "targets": [anna, bram], "wait_seconds": 60},
                    {"channel": "voice", "targets": [bram], "wait_seconds": 45},
                    {"channel": "voice", "targets": [chris], "wait_seconds": 45},
                ],
                "repeat": 1,
                "last_resort": {"channel": "sms", "targets": [chris]},
            }
        ),
    )
    tokens = {
        "app": (await auth_service.create(session, role=Role.APP, now=now, name="demo app"))[0],
        "admin": (await auth_service.create(session, role=Role.ADMIN, now=now, name="demo admin"))[
            0
        ],
    }
    for member in staff[:2]:
        tokens[f"staff ({member.name})"] = (
            await auth_service.create(
                session, role=Role.STAFF, staff_id=member.id, now=now, name=f"demo {member.name}"
            )
        )[0]
    return DemoRota(staff, chain, tokens)
