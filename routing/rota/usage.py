"""Which chains serve new reports, and which schedules a chain pages: pure, over loaded rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from routing.chain.models import Chain
from routing.chain.service import chain_for
from routing.types import Category


def serving(chains: Sequence[Chain]) -> list[Chain]:
    """The chains a new report could follow today: the newest chain of each category and the
    newest default chain (no categories), as `routing.chain.service.snapshot_for` picks them."""
    newest_first = sorted(chains, key=lambda c: (c.created_at, c.id), reverse=True)
    chosen = {c.id: c for category in Category if (c := chain_for(newest_first, category))}
    return sorted(chosen.values(), key=lambda c: (c.name, c.created_at))


def steps(chain: Chain) -> list[dict[str, Any]]:
    return [s for s in chain.steps or [] if isinstance(s, dict)]


def schedule_refs(chain: Chain) -> set[str]:
    """Schedule ids (or names) that any step or the all-hands page of `chain` names."""
    refs = {str(r) for step in steps(chain) for r in step.get("schedules") or []}
    if isinstance(chain.all_hands, dict):
        refs |= {str(r) for r in chain.all_hands.get("schedules") or []}
    return refs
