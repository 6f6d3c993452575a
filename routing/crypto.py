"""Personal data at rest: phone numbers and descriptions are encrypted (AES-256-GCM) with a key
ring, and looked up through a keyed hash.

- A stored value reads `v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`: the key id says which
  key of the ring opens it, so the ring can hold a new key (it encrypts) and old ones (they still
  decrypt) until `sos-router keys rotate` has rewritten every value under the new key.
- A value without that prefix was stored before encryption existed and is read as it is; the
  rotation encrypts it.
- Equality on a ciphertext means nothing (every value has its own nonce): a phone number is
  found through `lookup_hash`, an HMAC-SHA256 over the E.164 number with a key of its own, in a
  `*_hash` column beside it (`info={"lookup_of": <column>}`).

`routing/` reads no settings: `app/` builds the `KeyRing` and calls `install` before any model is
used (the tests' conftest does too). Models declare `EncryptedText` columns; the ORM encrypts and
decrypts them, and `routing.sql.Raw.insert` encrypts them on the driver connection.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import ClauseElement, Dialect, Text, TypeDecorator

VERSION = "v1"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")


class BadKey(ValueError):
    """A key ring that cannot be used (bad format, wrong length, duplicate id)."""


class UnreadableData(Exception):
    """A stored value that claims to be encrypted but does not open: its key is not in the ring,
    or the value was changed. The message names the key id, never the value."""


def decode_key(text: str, *, what: str) -> bytes:
    """A base64 (standard or URL-safe) key of at least 32 bytes."""
    try:
        raw = base64.b64decode(text.strip().replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise BadKey(f"{what} is not base64") from None
    if len(raw) < KEY_BYTES:
        raise BadKey(f"{what} is too short: give base64 of {KEY_BYTES} random bytes")
    return raw


def new_key() -> str:
    """A fresh random key, base64 (for the data key ring or the lookup key)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


@dataclass(frozen=True)
class KeyRing:
    """Data keys by id, the first one current (it encrypts; all decrypt), and the lookup key."""

    keys: tuple[tuple[str, bytes], ...] = field(repr=False)
    lookup_key: bytes = field(repr=False)
    _ciphers: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise BadKey("the data key ring is empty")
        ids = [key_id for key_id, _ in self.keys]
        if len(set(ids)) != len(ids):
            raise BadKey("the data key ring names a key id twice")
        for key_id, key in self.keys:
            if not _KEY_ID.fullmatch(key_id):
                raise BadKey(f"data key id {key_id!r}: use 1-16 letters, digits, - or _")
            if len(key) != KEY_BYTES:
                raise BadKey(f"data key {key_id!r} must be {KEY_BYTES} bytes (AES-256)")
        if len(self.lookup_key) < KEY_BYTES:
            raise BadKey(f"the lookup key must be at least {KEY_BYTES} bytes")
        object.__setattr__(self, "_ciphers", {i: AESGCM(k) for i, k in self.keys})

    @classmethod
    def parse(cls, data_keys: str, lookup_key: str) -> KeyRing:
        """From `id:base64key,id2:base64key2` (first encrypts) and a base64 lookup key."""
        keys = []
        for entry in filter(None, (e.strip() for e in data_keys.split(","))):
            key_id, sep, key = entry.partition(":")
            if not sep:
                raise BadKey("each data key is written id:base64key")
            keys.append((key_id, decode_key(key, what=f"data key {key_id!r}")))
        return cls(tuple(keys), decode_key(lookup_key, what="the lookup key"))

    @property
    def current(self) -> str:
        return self.keys[0][0]

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.current].encrypt(nonce, plaintext.encode(), None)
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{VERSION}:{self.current}:{body}"

    def decrypt(self, stored: str) -> str:
        """The plaintext of a stored value (one stored before encryption is returned as is)."""
        key_id = key_id_of(stored)
        if key_id is None:
            return stored
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnreadableData(f"data encrypted with key {key_id!r}, which is not in the ring")
        body = stored.rsplit(":", 1)[1]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise UnreadableData(f"a value under key {key_id!r} does not open") from None

    def lookup_hash(self, value: str) -> str:
        """The keyed hash phone lookups match on (hex HMAC-SHA256 of the E.164 number)."""
        return hmac.new(self.lookup_key, value.encode(), hashlib.sha256).hexdigest()


_STORED = re.compile(rf"{VERSION}:([A-Za-z0-9_-]{{1,16}}):[A-Za-z0-9_-]+")


def key_id_of(stored: str) -> str | None:
    """The id of the key a stored value was encrypted with (None: stored as plaintext)."""
    found = _STORED.fullmatch(stored)
    return found.group(1) if found else None


_ring: KeyRing | None = None


def install(ring: KeyRing) -> None:
    """Make `ring` the one every model and raw insert uses (called by app composition)."""
    global _ring
    _ring = ring


def ring() -> KeyRing:
    if _ring is None:
        raise RuntimeError("no data key ring installed (app/keys.py installs it at startup)")
    return _ring


def encrypt(value: str | None) -> str | None:
    return None if value is None else ring().encrypt(value)


def decrypt(value: str | None) -> str | None:
    return None if value is None else ring().decrypt(value)


def phone_hash(e164: str) -> str:
    """The keyed hash of a phone number: what `*_hash` columns hold and lookups compare. Give
    the number in E.164 (as stored): the same number in another spelling hashes differently."""
    return ring().lookup_hash(e164)


class EncryptedText(TypeDecorator[str]):
    """A text column stored encrypted with the installed key ring. It cannot be compared in SQL
    (a ciphertext never equals another): that raises, look up through its `*_hash` column."""

    impl = Text
    cache_ok = True

    class Comparator(TypeDecorator.Comparator[str]):
        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            # Against a value (not a column: the ORM compares columns to columns itself).
            if any(not isinstance(o, ClauseElement) for o in other):
                raise TypeError(
                    f"{self.expr} is encrypted: SQL cannot compare it (use its *_hash column)"
                )
            return super().operate(op, *other, **kwargs)

    comparator_factory = Comparator

    def process_bind_param(self, value: str | None, _dialect: Dialect) -> str | None:
        return encrypt(value)

    def process_result_value(self, value: str | None, _dialect: Dialect) -> str | None:
        return decrypt(value)
