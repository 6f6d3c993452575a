"""`sos-router rota import FILE.yaml`: a valid file is stored whole, in one transaction; a file with
any problem is reported line by line (`FILE:LINE: field: message`) and changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.rota_import import import_file
from routing.chain.models import Chain
from routing.errors import ValidationFailed
from routing.rota.importer import Rejected, Summary
from routing.rota.models import Schedule, ScheduleOverride
from routing.staff.models import Staff
from tests.harness import Harness

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "rota.yaml"


async def run(h: Harness, path: Path) -> Summary:
    return await import_file(
        h.container.db, path, default_time_zone="Europe/Amsterdam", now=h.clock.now()
    )


def write(tmp_path: Path, text: str, name: str = "rota.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


async def snapshot(h: Harness) -> dict[str, list[str]]:
    """Every row of the tables an import may touch."""
    found: dict[str, list[str]] = {}
    async with h.container.db() as session:
        for model in (Staff, Schedule, ScheduleOverride, Chain):
            rows = (await session.execute(select(model.__table__))).all()
            found[model.__tablename__] = sorted(repr(tuple(row)) for row in rows)
    return found


async def rows(h: Harness, model: Any) -> list[Any]:
    async with h.container.db() as session:
        return list((await session.scalars(select(model))).all())


async def on_call(h: Harness, at: str) -> list[str]:
    r = await h.client.get(
        "/v1/oncall", params={"at": at, "schedule": "fraud-primary"}, headers=h.admin
    )
    assert r.status_code == 200, r.text
    return [s["name"] for s in r.json()["schedules"][0]["on_call"]]


class TestValidFile:
    async def test_the_example_file_is_stored_and_pages_whoever_is_on_call(
        self, h: Harness
    ) -> None:
        summary = await run(h, EXAMPLE)

        assert summary.line() == (
            "imported 3 staff (3 new, 0 updated), 1 schedule (1 new, 0 updated), 1 chain"
        )
        staff = {s.name: s for s in await rows(h, Staff)}
        assert staff["Anna de Vries"].phone == "+31612345671"
        assert staff["Anna de Vries"].chat_id == "U0ANNA"
        assert staff["Anna de Vries"].languages == ["nl", "en"]
        assert staff["Bram Jansen"].phone == "+31612345672"
        [schedule] = await rows(h, Schedule)
        assert schedule.time_zone == "Europe/Amsterdam"
        anna, bram = (staff[n].id for n in ("Anna de Vries", "Bram Jansen"))
        assert schedule.layers[0]["members"] == [anna, bram]
        [chain] = await rows(h, Chain)
        assert chain.categories == ["fraud", "account_takeover"]
        assert chain.steps[0]["schedules"] == [schedule.id]
        assert chain.steps[1]["targets"] == [anna]
        assert chain.last_resort == {"channel": "voice", "targets": [anna]}
        # Weekly from Monday 2026-11-02 09:00: Anna, then Bram; Chris on weekday evenings.
        assert await on_call(h, "2026-11-03T10:00:00+01:00") == ["Anna de Vries"]
        assert await on_call(h, "2026-11-03T19:00:00+01:00") == ["Chris Bakker"]
        assert await on_call(h, "2026-11-07T19:00:00+01:00") == ["Anna de Vries"]  # Saturday
        assert await on_call(h, "2026-11-09T09:00:00+01:00") == ["Bram Jansen"]

    async def test_importing_again_updates_staff_by_phone_and_schedules_by_name(
        self, h: Harness, tmp_path: Path
    ) -> None:
        await run(h, EXAMPLE)
        before = {s.phone: s for s in await rows(h, Staff)}
        [schedule] = await rows(h, Schedule)
        h.clock.advance(60)
        changed = (
            EXAMPLE.read_text()
            .replace("Anna de Vries", "Anna de Vries-Smit")
            .replace("chat_id: U0ANNA", "chat_id: U0ANNA2")
            .replace("rotation: weekly", "rotation: daily")
        )

        summary = await run(h, write(tmp_path, changed))

        assert summary.line() == (
            "imported 3 staff (0 new, 3 updated), 1 schedule (0 new, 1 updated), 1 chain"
        )
        after = {s.phone: s for s in await rows(h, Staff)}
        assert {s.id for s in after.values()} == {s.id for s in before.values()}
        anna = after["+31612345671"]
        assert (anna.name, anna.chat_id) == ("Anna de Vries-Smit", "U0ANNA2")
        [updated] = await rows(h, Schedule)
        assert updated.id == schedule.id
        assert updated.layers[0]["rotation"] == "daily"
        assert len(await rows(h, Chain)) == 2  # chains are versions: a new one serves

    async def test_stored_staff_and_schedules_may_be_named(
        self, h: Harness, tmp_path: Path
    ) -> None:
        zoe = await h.staff("Zoe", "+31612345690")
        layer = {
            "name": "all",
            "members": [zoe],
            "rotation": "daily",
            "handoff_time": "09:00",
            "start_date": "2026-01-01",
        }
        r = await h.client.post(
            "/v1/schedules", json={"name": "cards", "layers": [layer]}, headers=h.admin
        )
        assert r.status_code == 201, r.text
        path = write(
            tmp_path,
            """
            chains:
              - name: cards
                categories: [lost_card]
                steps:
                  - {channel: voice, schedules: [cards], wait_seconds: 30}
                last_resort: {channel: sms, targets: [Zoe]}
            """,
        )

        assert (await run(h, path)).line() == (
            "imported 0 staff (0 new, 0 updated), 0 schedules (0 new, 0 updated), 1 chain"
        )
        [chain] = await rows(h, Chain)
        assert chain.steps[0]["schedules"] == [r.json()["id"]]
        assert chain.last_resort == {"channel": "sms", "targets": [zoe]}


STORED = """
staff:
  - name: Anna de Vries
    phone: "+31 6 12345671"
    languages: [nl]
schedules:
  - name: fraud-primary
    layers:
      - name: days
        rotation: daily
        handoff_time: "09:00"
        start_date: 2026-01-01
        members: [Anna de Vries]
"""

# Each file has a valid change (Anna's languages) and one kind of problem, at a known line.
BAD: list[tuple[str, str, list[str]]] = [
    (
        "yaml syntax",
        """
        staff:
          - name: Anna de Vries
            phone: "+31 6 12345671"
           languages: [nl, en]
        """,
        ["rota.yaml:4: not valid YAML: "],
    ),
    (
        "unclosed list",
        """
        staff:
          - name: Anna de Vries
            phone: "+31 6 12345671"
            languages: [nl, en
        """,
        ["rota.yaml:5: not valid YAML: "],
    ),
    (
        "unknown field, bad value, missing field",
        """
        staff:
          - name: Anna de Vries
            phone: "+31 6 12345671"
            languages: [nl, en]
          - name: Bram
            phone: "12345"
            team: fraud
          - name: Chris
        """,
        [
            "rota.yaml:6: staff.1.phone: not a valid phone number",
            "rota.yaml:7: staff.1.team: Extra inputs are not permitted",
            "rota.yaml:8: staff.2.phone: Field required",
        ],
    ),
    (
        "duplicate staff name and phone",
        """
        staff:
          - name: Anna de Vries
            phone: "+31 6 12345671"
            languages: [nl, en]
          - name: Anna de Vries
            phone: "+31 6 12345672"
          - name: Bram
            phone: "06 12345671"
        """,
        [
            "rota.yaml:5: staff.1.name: another staff entry in this file (line 2) has this too",
            "rota.yaml:8: staff.2.phone: another staff entry in this file (line 3) has this too",
        ],
    ),
    (
        "unknown names",
        """
        staff:
          - name: Anna de Vries
            phone: "+31 6 12345671"
            languages: [nl, en]
        schedules:
          - name: cards
            layers:
              - name: days
                rotation: daily
                handoff_time: "09:00"
                start_date: 2026-01-01
                members: [Anna de Vries, Bram]
        chains:
          - name: fraud
            steps:
              - {channel: voice, schedules: [fraud-secondary], wait_seconds: 45}
              - {channel: sms, targets: [Anna de Vries, Zoe], wait_seconds: 60}
            last_resort: Zoe
        """,
        [
            "rota.yaml:12: schedules.0.layers.0.members.1: no staff member named 'Bram' in this "
            "file or stored",
            "rota.yaml:16: chains.0.steps.0.schedules.0: no schedule named 'fraud-secondary' in "
            "this file or stored",
            "rota.yaml:17: chains.0.steps.1.targets.1: no staff member named 'Zoe' in this file "
            "or stored",
            "rota.yaml:18: chains.0.last_resort: no staff member named 'Zoe' in this file or "
            "stored",
        ],
    ),
    (
        "bad schedule and chain values",
        """
        staff:
          - name: Anna de Vries
            phone: "+31 6 12345671"
            languages: [nl, en]
        schedules:
          - name: cards
            time_zone: Europe/Amsterdamm
            layers:
              - name: days
                rotation: monthly
                handoff_time: "9:00"
                start_date: 2026-01-01
                members: [Anna de Vries]
          - name: cards
            layers: []
        chains:
          - name: fraud
            steps:
              - {channel: pager, targets: [Anna de Vries], wait_seconds: 2}
        """,
        [
            "rota.yaml:7: schedules.0.time_zone: 'Europe/Amsterdamm' is not a known time zone",
            "rota.yaml:10: schedules.0.layers.0.rotation: Input should be 'daily' or 'weekly'",
            "rota.yaml:11: schedules.0.layers.0.handoff_time: give a local time as",
            "rota.yaml:14: schedules.1.name: another schedule in this file (line 6) has this too",
            "rota.yaml:15: schedules.1.layers: List should have at least 1 item",
            "rota.yaml:19: chains.0.steps.0.channel: Input should be 'voice', 'sms' or 'chat'",
            "rota.yaml:19: chains.0.steps.0.wait_seconds: Input should be greater than or equal",
        ],
    ),
    (
        "a key twice, an unknown section, a section that is not a list",
        """
        staff:
          - name: Anna de Vries
            phone: "+31 6 12345671"
            phone: "+31 6 12345672"
            languages: [nl, en]
        chains: fraud
        teams: []
        """,
        [
            "rota.yaml:4: staff.0.phone: written twice in the same place",
            "rota.yaml:6: chains: must be a list",
            "rota.yaml:7: teams: unknown section",
        ],
    ),
]


class TestProblems:
    @pytest.mark.parametrize(("text", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
    async def test_each_problem_is_reported_at_its_line_and_nothing_changes(
        self, h: Harness, tmp_path: Path, text: str, expected: list[str]
    ) -> None:
        await run(h, write(tmp_path, STORED, "stored.yaml"))
        before = await snapshot(h)
        h.clock.advance(60)

        with pytest.raises(Rejected) as rejected:
            await run(h, write(tmp_path, text))

        rendered = [p.render("rota.yaml") for p in rejected.value.problems]
        assert len(rendered) == len(expected), rendered
        for line, start in zip(rendered, expected, strict=True):
            assert line.startswith(start), rendered
        assert await snapshot(h) == before

    async def test_two_people_with_the_same_name_cannot_be_told_apart(
        self, h: Harness, tmp_path: Path
    ) -> None:
        await h.staff("Anna de Vries", "+31612345681")
        await h.staff("Anna de Vries", "+31612345682")
        path = write(
            tmp_path,
            """
            chains:
              - name: fraud
                steps: [{channel: voice, targets: [Anna de Vries], wait_seconds: 45}]
            """,
        )
        before = await snapshot(h)

        with pytest.raises(Rejected) as rejected:
            await run(h, path)

        [problem] = rejected.value.problems
        assert problem.render("f") == (
            "f:3: chains.0.steps.0.targets.0: 2 staff members are named 'Anna de Vries': rename one"
        )
        assert await snapshot(h) == before

    async def test_a_domain_error_while_storing_rolls_everything_back(
        self, h: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from routing.chain import service as chain_service

        async def refuse(*_: Any, **__: Any) -> None:
            raise ValidationFailed("no such schedule", field="steps.0.schedules.0")

        monkeypatch.setattr(chain_service, "create", refuse)
        before = await snapshot(h)

        with pytest.raises(Rejected) as rejected:
            await run(h, EXAMPLE)

        [problem] = rejected.value.problems
        assert problem.render("rota.yaml") == (
            "rota.yaml:44: chains.0.steps.0.schedules.0: no such schedule"
        )
        assert await snapshot(h) == before  # the staff and schedule stored first are gone too


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["SOS_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    return subprocess.run(
        [sys.executable, "-m", "app", "rota", "import", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestCommand:
    def test_a_valid_file_prints_one_summary_line_and_exits_0(self, tmp_path: Path) -> None:
        result = cli(tmp_path, str(EXAMPLE))

        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            "imported 3 staff (3 new, 0 updated), 1 schedule (1 new, 0 updated), 1 chain"
        ]

    def test_problems_go_to_stderr_with_file_and_line_and_exit_1(self, tmp_path: Path) -> None:
        bad = write(tmp_path, EXAMPLE.read_text().replace("wait_seconds: 45", "wait_seconds: 4"))

        result = cli(tmp_path, "rota.yaml")

        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            "rota.yaml:44: chains.0.steps.0.wait_seconds: Input should be greater than or "
            "equal to 5",
            "rota.yaml: nothing imported",
        ]
        assert bad.exists()

    def test_a_missing_file_is_one_line_and_exit_2(self, tmp_path: Path) -> None:
        result = cli(tmp_path, "missing.yaml")

        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            "error: cannot read missing.yaml: No such file or directory"
        ]
        assert not (tmp_path / "cli.db").exists()  # nothing done, not even a migration


def test_summary_counts_read_naturally() -> None:
    assert Summary(staff_new=1, schedules_new=2, chains=2).line() == (
        "imported 1 staff (1 new, 0 updated), 2 schedules (2 new, 0 updated), 2 chains"
    )
