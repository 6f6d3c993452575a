"""Shared pydantic building blocks."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict

from routing.phone import normalize_phone


def _e164(value: str) -> str:
    try:
        return normalize_phone(value)
    except ValueError as exc:
        raise ValueError(f"{exc}; give it in international (+31…) or Dutch (06…) format") from None


Phone = Annotated[str, AfterValidator(_e164)]


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; refuse it here instead of failing in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
"""A string a client sends that is stored as text."""

_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d")


def _iso_8601(value: object) -> object:
    # Pydantic would also take a number, or a string of one, as seconds since 1970: `0.5` is
    # not a date and time anyone means.
    if isinstance(value, int | float) or (
        isinstance(value, str) and not _ISO_DATE.match(value.strip())
    ):
        raise ValueError(
            "give an ISO 8601 date and time with a zone, e.g. 2026-03-29T20:00:00+02:00"
        )
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_8601)]
"""A date and time a client sends: ISO 8601 text with a zone offset."""


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
