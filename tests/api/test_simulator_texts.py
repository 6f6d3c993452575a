"""The simulated phones show the texts they received (`GET /v1/simulator/texts`), as a phone
would: in the zero-setup demo that is how a staff member reads their verification code."""

from collections.abc import AsyncIterator

import httpx
import pytest

from app.container import build
from app.main import create_app
from app.settings import Settings
from providers.fake import ScriptedSender
from providers.simulated import SimulatedPhones
from routing.clock import FakeClock
from tests.harness import Harness


@pytest.fixture
async def sim(
    settings: Settings, clock: FakeClock, sender: ScriptedSender, clean_db: None
) -> AsyncIterator[Harness]:
    del clean_db
    container = build(settings, clock=clock, senders=[SimulatedPhones()], raise_errors=True)
    app = create_app(container, run_engine=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sos.test"
    ) as client:
        h = Harness(client, container, clock, sender)
        await h.setup()
        yield h
    await container.close()


async def test_a_verification_code_shows_on_the_simulated_phone(sim: Harness) -> None:
    anna = await sim.staff("Anna", "+31611111111", languages=["en"])
    r = await sim.client.post(f"/v1/staff/{anna}/verification", headers=sim.as_staff("Anna"))
    assert r.status_code == 202
    await sim.tick()

    texts = (await sim.client.get("/v1/simulator/texts", headers=sim.as_staff("Anna"))).json()

    [text] = texts
    assert (text["channel"], text["to"]) == ("sms", "+31*******11")
    assert text["body"].startswith("Your SOS service verification code: ")
    code = text["body"].split(": ")[1][:6]
    confirmed = await sim.client.post(
        f"/v1/staff/{anna}/verification/confirm",
        json={"code": code},
        headers=sim.as_staff("Anna"),
    )
    assert confirmed.status_code == 200


async def test_without_the_simulated_phones_there_is_nothing_to_show(h: Harness) -> None:
    r = await h.client.get("/v1/simulator/texts", headers=h.admin)

    assert r.status_code == 404
