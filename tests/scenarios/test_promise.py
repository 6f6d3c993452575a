from datetime import datetime, timedelta

import pytest

from tests.harness import VOICE, Harness, types


async def _one_long_step(h: Harness) -> dict[str, object]:
    await h.staff("Anna")
    await h.chain(("voice", ["Anna"], 3600))
    report = await h.report()
    await h.tick()
    h.expect(("Anna", VOICE))
    return report


@pytest.mark.parametrize(
    ("ack_after", "met"),
    [(599, True), (600, True), (601, False)],
    ids=["9:59", "10:00", "10:01"],
)
async def test_verdict_at_the_boundary(h: Harness, ack_after: int, met: bool) -> None:
    report = await _one_long_step(h)
    await h.advance(ack_after)
    r = await h.ack(str(report["id"]), "Anna")
    assert r.status_code == 200
    assert r.json()["sla"]["met"] is met
    assert r.json()["sla"]["time_to_ack_seconds"] == ack_after
    assert ("sla_missed" in types(r.json())) is not met


async def test_sla_missed_is_written_by_the_engine_at_the_deadline(h: Harness) -> None:
    report = await _one_long_step(h)
    await h.advance(600)
    assert (await h.get(str(report["id"])))["sla"]["met"] is None, "kept until the deadline ends"

    await h.advance(0.001)

    seen = await h.get(str(report["id"]))
    assert seen["sla"]["met"] is False
    missed = next(e for e in seen["timeline"] if e["type"] == "sla_missed")
    late = datetime.fromisoformat(missed["at"]) - datetime.fromisoformat(seen["deadline_at"])
    assert timedelta(0) < late <= timedelta(milliseconds=1)


async def test_a_late_ack_stays_missed_but_records_time_to_ack(h: Harness) -> None:
    report = await _one_long_step(h)
    await h.advance(900)
    r = await h.ack(str(report["id"]), "Anna")
    assert r.json()["sla"] == {"met": False, "time_to_ack_seconds": 900.0}
    assert types(r.json()).count("sla_missed") == 1
