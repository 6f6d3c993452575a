"""Pure decisions over a chain snapshot: which step comes after which. No I/O here.

A snapshot is the JSON a report copied from its chain:
`{"id", "name", "steps": [{"channel", "targets", "wait_seconds"}], "repeat", "last_resort"}`.
Steps are numbered from 1; `attempt_no` counts runs of the whole chain from 0 to `repeat`.
The last-resort page, when the chain is exhausted, is step 0 of attempt 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LAST_RESORT_STEP = 0


@dataclass(frozen=True, slots=True)
class StepRef:
    step_no: int
    attempt_no: int


@dataclass(frozen=True, slots=True)
class Step:
    channel: str
    targets: tuple[str, ...]
    wait_seconds: int


def first_step(chain: dict[str, Any] | None) -> StepRef | None:
    return StepRef(1, 0) if chain and chain["steps"] else None


def step_at(chain: dict[str, Any], ref: StepRef) -> Step:
    if ref.step_no == LAST_RESORT_STEP:
        last = chain["last_resort"]
        return Step(last["channel"], tuple(last["targets"]), 0)
    raw = chain["steps"][ref.step_no - 1]
    return Step(raw["channel"], tuple(raw["targets"]), int(raw["wait_seconds"]))


def step_after(chain: dict[str, Any], ref: StepRef) -> StepRef | None:
    """The step to fire when `ref` has waited out its time, or None when the chain is exhausted."""
    if ref.step_no == LAST_RESORT_STEP:
        return None
    if ref.step_no < len(chain["steps"]):
        return StepRef(ref.step_no + 1, ref.attempt_no)
    if ref.attempt_no < int(chain.get("repeat", 0)):
        return StepRef(1, ref.attempt_no + 1)
    return None


def has_last_resort(chain: dict[str, Any]) -> bool:
    last = chain.get("last_resort")
    return bool(last and last.get("targets"))
