"""Phone numbers and descriptions are encrypted at rest, found by a keyed hash, and a second key
rotates them (GoAlert's data-encryption-key rotation test, on SQLite and PostgreSQL alike):

start with key A and write data; restart with B (current) and A: everything reads, new data is
under B; `sos-router keys rotate`; restart with B alone: everything still reads, and the same
customer and the same staff phone are still recognised. The raw rows never hold a number or a
description in plaintext.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import select, text

from app import keys
from app.container import build
from app.db import create_engine
from app.main import create_app
from app.settings import PrivacySettings, Settings
from providers.fake import ScriptedSender
from routing import crypto, rekey
from routing.clock import FakeClock
from routing.crypto import BadKey, KeyRing, UnreadableData
from routing.inbound import service as inbound
from routing.models import Base
from routing.staff.models import Staff
from tests import keys as test_keys
from tests.harness import Harness

ROOT = Path(__file__).resolve().parents[2]
KEY_A, KEY_B, LOOKUP = crypto.new_key(), crypto.new_key(), crypto.new_key()
CUSTOMER = "+31612345678"
STAFF_PHONE = "+31687654321"
DESCRIPTION = "Someone moved 2400 euro from my savings at 3 at night"
# What must never be found in a raw row: the numbers (without the country code, as they are
# also typed) and the description.
PLAINTEXT = (CUSTOMER[3:], STAFF_PHONE[3:], DESCRIPTION)


@pytest.fixture(autouse=True)
def suite_ring() -> Iterator[None]:
    """The rings these tests install are put back to the suite's after each."""
    yield
    crypto.install(KeyRing.parse(test_keys.DATA_KEYS, test_keys.LOOKUP_KEY))


def settings_with(url: str, data_keys: str) -> Settings:
    privacy = PrivacySettings(data_keys=SecretStr(data_keys), lookup_key=SecretStr(LOOKUP))
    return Settings(database_url=url, sla_seconds=600, seed_demo=False, privacy=privacy)


@asynccontextmanager
async def started(url: str, data_keys: str, clock: FakeClock) -> AsyncIterator[Harness]:
    """The service as it runs after a (re)start with `data_keys`."""
    sender = ScriptedSender()
    container = build(settings_with(url, data_keys), clock=clock, senders=[sender])
    transport = httpx.ASGITransport(app=create_app(container, run_engine=False))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://sos.test") as client:
            h = Harness(client, container, clock, sender)
            await h.setup()
            yield h
    finally:
        await container.close()
    sender.assert_no_more()


async def stored(url: str) -> list[str]:
    """Every value of every encrypted column, as the database holds it."""
    engine = create_engine(url)
    values: list[str] = []
    try:
        async with engine.connect() as conn:
            for sealed in rekey.sealed_tables():
                columns = ", ".join(f'"{c}"' for c in sealed.encrypted)
                rows = await conn.execute(text(f"SELECT {columns} FROM {sealed.table.name}"))
                values += [v for row in rows for v in row if v is not None]
    finally:
        await engine.dispose()
    return values


async def everything(url: str) -> str:
    """Every row of every table, as text: what someone with a copy of the database reads."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            dump = [
                repr(list(await conn.execute(text(f"SELECT * FROM {table.name}"))))
                for table in Base.metadata.sorted_tables
            ]
    finally:
        await engine.dispose()
    return "\n".join(dump)


async def key_ids(url: str) -> set[str | None]:
    return {crypto.key_id_of(v) for v in await stored(url) if v}


async def assert_no_plaintext(url: str) -> None:
    dump = await everything(url)
    for secret in PLAINTEXT:
        assert secret not in dump, f"{secret!r} is stored in plaintext"


def rotate_command(url: str, data_keys: str) -> subprocess.CompletedProcess[str]:
    """`sos-router keys rotate` in its own process, configured by the environment only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOS_")}
    env |= {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        "SOS_DATABASE_URL": url,
        "SOS_PRIVACY__DATA_KEYS": data_keys,
        "SOS_PRIVACY__LOOKUP_KEY": LOOKUP,
        "SOS_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "app", "keys", "rotate", "--batch", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def read_back(h: Harness, report_id: str) -> dict[str, Any]:
    report = await h.get(report_id)
    assert (report["callback_phone"], report["description"]) == (CUSTOMER, DESCRIPTION)
    staff = await h.client.get("/v1/staff", headers=h.admin)
    assert [s["phone"] for s in staff.json()] == [STAFF_PHONE], staff.text
    return report


async def test_rotation_from_key_a_to_key_b(
    migrated: str, clean_db: None, clock: FakeClock
) -> None:
    del clean_db
    async with started(migrated, f"a:{KEY_A}", clock) as h:
        await h.staff("Anna", STAFF_PHONE)
        report = await h.report(callback_phone="06 12345678", description=DESCRIPTION)
        # Anna accepts: "Anna belt u nu" waits in the outbox for the customer's number.
        assert (await h.ack(report["id"], "Anna")).status_code == 200
    assert await key_ids(migrated) == {"a"}
    await assert_no_plaintext(migrated)

    async with started(migrated, f"b:{KEY_B},a:{KEY_A}", clock) as h:
        await read_back(h, report["id"])
        await h.report(callback_phone="06 11122233", description="a second customer")
    assert await key_ids(migrated) == {"a", "b"}  # new data under B, the old under A

    done = rotate_command(migrated, f"b:{KEY_B},a:{KEY_A}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reports: 2 rows, 2 reencrypted, 0 encrypted" in done.stdout, done.stdout
    assert "'a' can be removed" in done.stdout, done.stdout
    assert await key_ids(migrated) == {"b"}
    await assert_no_plaintext(migrated)

    async with started(migrated, f"b:{KEY_B}", clock) as h:
        await read_back(h, report["id"])
        # Still the same customer (the case is open: this contact joins it) ...
        again = await h.submit(callback_phone="+31 6 12345678")
        assert (again.status_code, again.json()["id"]) == (200, report["id"]), again.text
        # ... and the same colleague texting from her phone.
        async with h.container.db() as session:
            assert [s.name for s in await inbound.staff_by_phone(session, STAFF_PHONE)] == ["Anna"]

    twice = rotate_command(migrated, f"b:{KEY_B}")
    assert twice.returncode == 0, twice.stdout + twice.stderr
    assert "reports: 2 rows, 0 reencrypted, 0 encrypted, 0 hashed" in twice.stdout, twice.stdout


async def test_a_missing_key_is_named_and_nothing_is_rewritten(
    migrated: str, clean_db: None, clock: FakeClock
) -> None:
    del clean_db
    async with started(migrated, f"a:{KEY_A}", clock) as h:
        report = await h.report(callback_phone="06 12345678", description=DESCRIPTION)

    done = rotate_command(migrated, f"b:{KEY_B}")  # A forgotten
    assert done.returncode == 1
    assert "1 unreadable" in done.stdout
    assert "run `sos-router keys rotate` again" in done.stdout
    assert await key_ids(migrated) == {"a"}
    with pytest.raises(UnreadableData, match="'a'"):
        KeyRing.parse(f"b:{KEY_B}", LOOKUP).decrypt((await stored(migrated))[0])
    async with started(migrated, f"a:{KEY_A}", clock) as h:
        assert (await h.get(report["id"]))["description"] == DESCRIPTION


async def test_rows_from_before_encryption_are_read_and_sealed_by_the_rotation(
    migrated: str, clean_db: None, clock: FakeClock
) -> None:
    """A database upgraded to this version holds plaintext and no lookup hashes: it still reads,
    and `keys rotate` encrypts it and fills the hashes in (then the staff phone matches)."""
    del clean_db
    async with started(migrated, f"a:{KEY_A}", clock) as h:
        await h.staff("Anna", STAFF_PHONE)
        report = await h.report(callback_phone="06 12345678", description=DESCRIPTION)
    engine = create_engine(migrated)
    async with engine.begin() as conn:  # back to how the rows were before the upgrade
        await conn.execute(
            text("UPDATE staff SET phone = :p, phone_hash = NULL"), {"p": STAFF_PHONE}
        )
        await conn.execute(
            text(
                "UPDATE reports SET callback_phone = :p, callback_phone_hash = NULL, "
                "description = :d"
            ),
            {"p": CUSTOMER, "d": DESCRIPTION},
        )
    await engine.dispose()

    async with started(migrated, f"a:{KEY_A}", clock) as h:
        await read_back(h, report["id"])
        async with h.container.db() as session:
            assert await inbound.staff_by_phone(session, STAFF_PHONE) == []  # no hash yet

    said: list[str] = []
    assert await keys.rotate(settings_with(migrated, f"a:{KEY_A}"), say=said.append) == 0
    assert any(s.startswith("staff: 1 rows, 0 reencrypted, 1 encrypted, 1 hashed,") for s in said)
    assert any(s.startswith("reports: 1 rows, 0 reencrypted, 2 encrypted, 1 hashed,") for s in said)
    await assert_no_plaintext(migrated)
    async with started(migrated, f"a:{KEY_A}", clock) as h:
        await read_back(h, report["id"])
        async with h.container.db() as session:
            assert [s.name for s in await inbound.staff_by_phone(session, STAFF_PHONE)] == ["Anna"]


class TestKeyRing:
    ring = KeyRing.parse(f"new:{KEY_B},old:{KEY_A}", LOOKUP)

    def test_values_carry_the_key_id_and_open_again(self) -> None:
        sealed = self.ring.encrypt(CUSTOMER)
        assert sealed.startswith("v1:new:")
        assert CUSTOMER[3:] not in sealed
        assert sealed != self.ring.encrypt(CUSTOMER)  # a fresh nonce each time
        assert self.ring.decrypt(sealed) == CUSTOMER

    def test_an_old_key_still_opens_its_values(self) -> None:
        old = KeyRing.parse(f"old:{KEY_A}", LOOKUP).encrypt(DESCRIPTION)
        assert self.ring.decrypt(old) == DESCRIPTION

    def test_a_changed_value_does_not_open(self) -> None:
        sealed = self.ring.encrypt(DESCRIPTION)
        body = sealed.rsplit(":", 1)[1]
        forged = sealed[: -len(body)] + ("A" if body[0] != "A" else "B") + body[1:]
        with pytest.raises(UnreadableData, match="'new'"):
            self.ring.decrypt(forged)

    def test_the_lookup_hash_is_keyed(self) -> None:
        other = KeyRing.parse(f"new:{KEY_B}", crypto.new_key())
        assert self.ring.lookup_hash(CUSTOMER) == KeyRing.parse(f"x:{KEY_A}", LOOKUP).lookup_hash(
            CUSTOMER
        )
        assert self.ring.lookup_hash(CUSTOMER) != other.lookup_hash(CUSTOMER)
        assert CUSTOMER[3:] not in self.ring.lookup_hash(CUSTOMER)

    def test_the_ring_does_not_show_its_keys(self) -> None:
        assert KEY_A not in repr(self.ring)
        assert LOOKUP not in repr(self.ring)

    @pytest.mark.parametrize(
        ("data_keys", "lookup", "problem"),
        [
            ("", LOOKUP, "empty"),
            (KEY_A, LOOKUP, "id:base64key"),
            ("a:not base64!", LOOKUP, "not base64"),
            ("a:" + KEY_A[:20], LOOKUP, "too short"),
            (f"a:{KEY_A},a:{KEY_B}", LOOKUP, "twice"),
            (f"a:b:{KEY_A}", LOOKUP, "base64"),
            (f"a:{KEY_A}", "c2hvcnQ=", "too short"),
        ],
    )
    def test_a_bad_ring_is_refused(self, data_keys: str, lookup: str, problem: str) -> None:
        with pytest.raises(BadKey, match=problem):
            KeyRing.parse(data_keys, lookup)


def test_an_encrypted_column_cannot_be_compared_in_sql() -> None:
    """A query on a ciphertext would silently match nothing: it raises instead."""
    with pytest.raises(TypeError, match=r"staff\.phone is encrypted"):
        select(Staff).where(Staff.phone == STAFF_PHONE)
    assert str(select(Staff.id).where(Staff.phone_hash == crypto.phone_hash(STAFF_PHONE)))


class TestSettings:
    @pytest.fixture(autouse=True)
    def no_keys(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in test_keys.ENV:
            monkeypatch.delenv(name, raising=False)

    def test_postgresql_without_keys_refuses_to_start(self) -> None:
        with pytest.raises(ValidationError, match="SOS_PRIVACY__DATA_KEYS"):
            Settings(database_url="postgresql+asyncpg://db/sos")

    def test_postgresql_with_a_development_key_file_starts(self, tmp_path: Path) -> None:
        settings = Settings(
            database_url="postgresql+asyncpg://db/sos",
            privacy=PrivacySettings(dev_key_file=str(tmp_path / "dev.keys")),
        )
        assert keys.dev_key_path(settings) == tmp_path / "dev.keys"

    def test_one_key_without_the_other_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SOS_PRIVACY__DATA_KEYS", f"a:{KEY_A}")
        with pytest.raises(ValidationError, match="SOS_PRIVACY__LOOKUP_KEY missing"):
            Settings()

    def test_a_malformed_ring_is_refused_at_start(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SOS_PRIVACY__DATA_KEYS", "a:c2hvcnQ=")
        monkeypatch.setenv("SOS_PRIVACY__LOOKUP_KEY", LOOKUP)
        with pytest.raises(ValidationError, match="too short"):
            Settings()

    def test_sqlite_without_keys_makes_a_development_key_file_once(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'sos.db'}")
        first = keys.key_ring(settings)
        second = keys.key_ring(settings)

        path = tmp_path / "sos.db.keys"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert second.decrypt(first.encrypt(DESCRIPTION)) == DESCRIPTION
        assert first.lookup_hash(CUSTOMER) == second.lookup_hash(CUSTOMER)
        assert "DEVELOPMENT KEYS" in caplog.text
        assert "SOS_PRIVACY__DATA_KEYS" in caplog.text

    def test_an_in_memory_database_gets_a_throwaway_ring(self) -> None:
        settings = Settings(database_url="sqlite+aiosqlite://")
        assert keys.dev_key_path(settings) is None
        ring = keys.key_ring(settings)
        assert ring.decrypt(ring.encrypt(CUSTOMER)) == CUSTOMER
