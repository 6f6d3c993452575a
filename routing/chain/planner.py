"""Pure decisions over a chain snapshot: which step comes after which. No I/O here.

A snapshot is the JSON a report copied from its chain:
`{"id", "name", "steps": [{"channel", "targets", "wait_seconds"}], "repeat", "last_resort"}`.
Steps are numbered from 1; `attempt_no` counts runs of the whole chain from `base` (0, or the
first round of a callback appointment) to `base + repeat`. The last-resort page, when the chain is
exhausted, is step 0; the all-hands page, when the promise is at risk, is step -1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LAST_RESORT_STEP = 0
ALL_HANDS_STEP = -1


@dataclass(frozen=True, slots=True)
class StepRef:
    step_no: int
    attempt_no: int


@dataclass(frozen=True, slots=True)
class Step:
    channel: str
    targets: tuple[str, ...]  # staff ids, always paged
    wait_seconds: int
    schedules: tuple[str, ...] = ()  # schedule ids: whoever is on call when the step fires


def first_step(chain: dict[str, Any] | None, base: int = 0) -> StepRef | None:
    return StepRef(1, base) if chain and chain["steps"] else None


def step_at(chain: dict[str, Any], ref: StepRef) -> Step:
    if ref.step_no == LAST_RESORT_STEP:
        last = chain["last_resort"]
        return Step(last["channel"], tuple(last["targets"]), 0)
    if ref.step_no == ALL_HANDS_STEP:
        raw = chain["all_hands"]
        return Step(raw["channel"], tuple(raw["targets"]), 0, tuple(raw.get("schedules", ())))
    raw = chain["steps"][ref.step_no - 1]
    return Step(
        raw["channel"],
        tuple(raw["targets"]),
        int(raw["wait_seconds"]),
        tuple(raw.get("schedules", ())),
    )


def step_after(chain: dict[str, Any], ref: StepRef, base: int = 0) -> StepRef | None:
    """The step to fire when `ref` has waited out its time, or None when the chain is exhausted.
    `base` is the escalation's first round."""
    if ref.step_no in (LAST_RESORT_STEP, ALL_HANDS_STEP):
        return None
    if ref.step_no < len(chain["steps"]):
        return StepRef(ref.step_no + 1, ref.attempt_no)
    if ref.attempt_no - base < int(chain.get("repeat", 0)):
        return StepRef(1, ref.attempt_no + 1)
    return None


def has_last_resort(chain: dict[str, Any]) -> bool:
    last = chain.get("last_resort")
    return bool(last and last.get("targets"))


def has_all_hands(chain: dict[str, Any] | None) -> bool:
    hands = chain.get("all_hands") if chain else None
    return bool(hands and (hands.get("targets") or hands.get("schedules")))
