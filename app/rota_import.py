"""`sos-router rota import FILE.yaml`: load staff, schedules and chains from one file, in one
transaction, or nothing at all."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import keys, migrate
from app.settings import Settings
from routing.rota import importer
from routing.rota.importer import Rejected, Summary

MAX_BYTES = 5_000_000


class Unreadable(Exception):
    pass


def read(path: Path) -> str:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise Unreadable(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise Unreadable(f"{path} is larger than {MAX_BYTES // 1_000_000} MB")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Unreadable(f"{path} is not UTF-8 text") from None


async def import_file(
    db: async_sessionmaker[AsyncSession], path: Path, *, default_time_zone: str, now: datetime
) -> Summary:
    """Import the rota file at `path` in one transaction; raise `Rejected` (nothing stored) or
    `Unreadable`."""
    text = read(path)
    async with db.begin() as session:
        return await importer.import_text(
            session, text=text, default_time_zone=default_time_zone, now=now, actor="cli"
        )


async def _run(settings: Settings, path: Path) -> Summary:
    from app.db import create_engine, create_sessionmaker
    from routing.clock import SystemClock

    engine = create_engine(settings.database_url)
    try:
        return await import_file(
            create_sessionmaker(engine),
            path,
            default_time_zone=settings.time_zone,
            now=SystemClock().now(),
        )
    finally:
        await engine.dispose()


def main(file: str) -> int:
    """Exit 0 and one summary line; 1 and every problem as `FILE:LINE: field: message` on
    stderr; 2 when the file cannot be read (or the settings are wrong)."""
    import asyncio

    settings = Settings()
    path = Path(file)
    try:
        read(path)
    except Unreadable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    migrate.upgrade(settings.database_url)
    keys.install(settings, warn=False)  # staff phone numbers are stored encrypted
    try:
        summary = asyncio.run(_run(settings, path))
    except Unreadable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Rejected as exc:
        for problem in exc.problems:
            print(problem.render(file), file=sys.stderr)
        print(f"{file}: nothing imported", file=sys.stderr)
        return 1
    print(summary.line())
    return 0
