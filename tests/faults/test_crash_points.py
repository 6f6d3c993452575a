"""The crash points the fault suite kills processes at: inert unless `SOS_CRASH_AT` names one,
then a SIGKILL at its `SOS_CRASH_AFTER`-th hit and at no other point; a misspelt point stops the
start."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from pydantic import ValidationError

from app.container import crash_point_from
from app.settings import EngineSettings
from tests.faults.procs import ROOT

PASSES = """
from app.container import crash_point_from
crash = crash_point_from({"SOS_CRASH_AT": "after_send", "SOS_CRASH_AFTER": "2"})
for point in ("after_claim", "after_send", "after_timer_claim", "after_send", "after_send"):
    print("passed", point, flush=True)
    crash(point)
"""


def test_without_sos_crash_at_a_crash_point_does_nothing() -> None:
    crash = crash_point_from({})
    for _ in range(3):
        crash("after_send")


def test_the_process_kills_itself_at_the_nth_hit_of_its_point() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PASSES], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL
    passed = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("passed")]
    assert passed == ["after_claim", "after_send", "after_timer_claim", "after_send"]


def test_an_unknown_crash_point_is_refused() -> None:
    with pytest.raises(ValueError, match="after_claim, after_send, after_timer_claim"):
        crash_point_from({"SOS_CRASH_AT": "after_sned"})


def test_a_send_may_not_outlast_its_page_lease() -> None:
    with pytest.raises(ValidationError, match="SEND_TIMEOUT_SECONDS must be shorter"):
        EngineSettings(page_lease_seconds=3, send_timeout_seconds=3)
