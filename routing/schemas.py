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


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
