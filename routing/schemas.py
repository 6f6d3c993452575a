"""Shared pydantic building blocks."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

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


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
