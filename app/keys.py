"""The key ring for personal data, from settings (`routing/crypto.py` does the cryptography), and
`sos-router keys rotate`.

With `SOS_PRIVACY__DATA_KEYS` and `SOS_PRIVACY__LOOKUP_KEY` set, those are the keys. Without them
(a zero-setup start on SQLite), a development key file is used, created on first use beside the
database file, readable by its owner only, with a warning at every start: the data is then only
as safe as that file. On PostgreSQL the settings refuse to start without keys unless
`SOS_PRIVACY__DEV_KEY_FILE` names such a file explicitly.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from app.settings import Settings
from routing import crypto, rekey
from routing.crypto import KeyRing

log = logging.getLogger(__name__)

DATA_KEYS = "SOS_PRIVACY__DATA_KEYS"
LOOKUP_KEY = "SOS_PRIVACY__LOOKUP_KEY"
DEV_KEY_ID = "dev"


def install(settings: Settings, *, warn: bool = True) -> KeyRing:
    """Build the key ring `settings` ask for and make it the one the models use (`warn`: say so
    when it holds development keys; the long-running commands do)."""
    ring = key_ring(settings, warn=warn)
    crypto.install(ring)
    return ring


def key_ring(settings: Settings, *, warn: bool = True) -> KeyRing:
    if settings.privacy.configured:
        return settings.privacy.key_ring()
    path = dev_key_path(settings)
    if path is None:
        log.warning(
            "personal data is encrypted with a throwaway key (in-memory database): set %s and %s",
            DATA_KEYS,
            LOOKUP_KEY,
        )
        return KeyRing.parse(f"{DEV_KEY_ID}:{crypto.new_key()}", crypto.new_key())
    values = _read_or_create(path)
    if warn:
        log.warning(
            "DEVELOPMENT KEYS: personal data is encrypted with the keys in %s, stored beside "
            "the data. For production set %s and %s (README, Security).",
            path,
            DATA_KEYS,
            LOOKUP_KEY,
        )
    return KeyRing.parse(values[DATA_KEYS], values[LOOKUP_KEY])


def dev_key_path(settings: Settings) -> Path | None:
    """The development key file: as configured, else beside a SQLite database file (None for an
    in-memory database)."""
    if settings.privacy.dev_key_file:
        return Path(settings.privacy.dev_key_file)
    database = make_url(settings.database_url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).with_name(Path(database).name + ".keys")


def _read_or_create(path: Path) -> dict[str, str]:
    """The keys in `path`, writing fresh ones first if it does not exist (two processes starting
    together agree: the file appears complete or not at all)."""
    if not path.exists():
        fresh = (
            "# sos-router DEVELOPMENT keys for personal data (see README, Security). Losing\n"
            "# this file makes the phone numbers and descriptions in the database unreadable.\n"
            f"{DATA_KEYS}={DEV_KEY_ID}:{crypto.new_key()}\n{LOOKUP_KEY}={crypto.new_key()}\n"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(fresh)
        try:
            os.link(partial, path)
        except FileExistsError:
            pass  # another process was first: use its keys
        finally:
            with contextlib.suppress(OSError):
                partial.unlink()
    lines = path.read_text(encoding="utf-8").splitlines()
    values = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    missing = {DATA_KEYS, LOOKUP_KEY} - set(values)
    if missing:
        raise ValueError(f"the development key file {path} lacks {', '.join(sorted(missing))}")
    return values


async def rotate(settings: Settings, *, batch: int = 500, say: Callable[[str], None]) -> int:
    """`sos-router keys rotate`: every encrypted value under the current key and every lookup
    hash up to date, a batch per transaction. Says what it did per table; returns the exit code
    (1 when some value could not be read or was changed meanwhile: run it again)."""
    from app.db import create_engine, create_sessionmaker

    ring = install(settings)
    engine = create_engine(settings.database_url)
    total = rekey.Counts()
    try:
        db = create_sessionmaker(engine)
        for sealed in rekey.sealed_tables():
            counts, after, more = rekey.Counts(), None, True
            while more:
                async with db.begin() as session:
                    after, done = await rekey.rotate_batch(
                        session, sealed, after=after, batch=batch
                    )
                counts.add(done)
                more = after is not None
            say(f"{sealed.table.name}: {counts}")
            total.add(counts)
    finally:
        await engine.dispose()
    old = [key_id for key_id, _ in ring.keys[1:]]
    if total.unreadable or total.changed_meanwhile:
        say("not done: run `sos-router keys rotate` again (with every key the data needs)")
        return 1
    say(
        f"every value is under key {ring.current!r}"
        + (f"; {', '.join(map(repr, old))} can be removed from {DATA_KEYS}" if old else "")
    )
    return 0
