"""Who is paged first within a step. Pure: the caller loads the people and the report.

Candidates are ordered, best first, by: free before busy (a busy colleague holds an accepted,
unresolved report); the colleague who helped this customer in the last 24 hours; speaks the
report's language; has the skill the report's category needs. Candidates that compare equal form
one tier and are paged together; the next tier is paged when the one before had its turn (its
wait ran out, or every page of it failed). Nobody matching is no reason to wait: then the first
tier is simply everyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

# The skill a report's category asks for; categories not listed need none.
SKILL_FOR_CATEGORY = {"fraud": "fraud", "account_takeover": "fraud", "lost_card": "cards"}


@dataclass(frozen=True, slots=True)
class Candidate:
    staff_id: str
    name: str
    languages: tuple[str, ...]
    skills: tuple[str, ...]
    busy: bool


@dataclass(frozen=True, slots=True)
class Wanted:
    """What the report asks of the person who answers it."""

    language: str
    category: str
    previous_helper_id: str | None = None

    @property
    def skill(self) -> str | None:
        return SKILL_FOR_CATEGORY.get(self.category)


def _key(c: Candidate, wanted: Wanted) -> tuple[bool, bool, bool, bool]:
    skill = wanted.skill
    return (
        c.busy,
        c.staff_id != wanted.previous_helper_id,
        wanted.language not in c.languages,
        skill is not None and skill not in c.skills,
    )


def tiers(candidates: list[Candidate], wanted: Wanted) -> list[list[Candidate]]:
    """The candidates in tiers, best first; the order within a tier is the chain's order."""
    ranked = sorted(candidates, key=lambda c: _key(c, wanted))  # stable: keeps the chain order
    return [list(group) for _, group in groupby(ranked, key=lambda c: _key(c, wanted))]


def why(c: Candidate, wanted: Wanted) -> str:
    """A short reason for the timeline: "helped this customer before, speaks nl, fraud"."""
    parts = []
    if c.staff_id == wanted.previous_helper_id:
        parts.append("helped this customer before")
    if wanted.language in c.languages:
        parts.append(f"speaks {wanted.language}")
    if wanted.skill and wanted.skill in c.skills:
        parts.append(wanted.skill)
    if c.busy:
        parts.append("busy with another report")
    return ", ".join(parts) or "no match"
