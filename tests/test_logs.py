"""Structured logs (`app/logs.py`): JSON lines or text, uvicorn's lines in the same shape, and no
phone number, token or SQL value in any of them."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from sqlalchemy.exc import IntegrityError

from app import logs
from app.settings import Settings
from tests.conftest import find_leaks
from tests.harness import VOICE, Harness

PHONE = "+31612345678"
TOKEN = "sos_" + "Ab3-_x" * 7


def emit(
    log_format: logs.LogFormat,
    msg: str,
    *args: object,
    level: int = logging.WARNING,
    exc: BaseException | None = None,
    **extra: Any,
) -> str:
    """What one record looks like through a production handler."""
    out = io.StringIO()
    logger = logging.getLogger("tests.logs")
    handler = logs.handler(log_format, out)
    logger.addHandler(handler)
    try:
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        logger.log(level, msg, *args, exc_info=exc_info, extra=extra)
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


def raised(exc: BaseException) -> BaseException:
    """`exc` with a traceback, as a logged exception has."""
    try:
        raise exc
    except BaseException as caught:
        return caught


class TestFormats:
    def test_json_is_one_object_per_line_with_the_report_id(self) -> None:
        out = emit("json", "report %s: step timer fired %.1f s late", "r-1", 3.0, report_id="r-1")

        [line] = out.splitlines()
        entry = json.loads(line)
        assert entry["level"] == "WARNING"
        assert entry["logger"] == "tests.logs"
        assert entry["msg"] == "report r-1: step timer fired 3.0 s late"
        assert entry["report_id"] == "r-1"
        assert entry["ts"].endswith("Z")
        assert "exc" not in entry

    def test_json_carries_an_exception_in_exc_on_the_same_line(self) -> None:
        out = emit("json", "engine module %s failed", "dispatcher", exc=raised(ValueError("boom")))

        [line] = out.splitlines()
        entry = json.loads(line)
        assert entry["msg"] == "engine module dispatcher failed"
        assert entry["exc"].startswith("Traceback (most recent call last):")
        assert "ValueError: boom" in entry["exc"]

    def test_text_is_a_readable_line_with_its_fields(self) -> None:
        out = emit("text", "guard removed %s", "iban", report_id="r-2")

        assert out.endswith(" WARNING tests.logs: guard removed iban report_id=r-2\n")

    class _Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    def test_auto_is_text_on_a_terminal_and_json_elsewhere(self) -> None:
        assert isinstance(logs.formatter("auto", self._Terminal()), logs.TextFormatter)
        assert isinstance(logs.formatter("auto", io.StringIO()), logs.JsonFormatter)

    @pytest.mark.parametrize(("given", "used"), [("JSON", "json"), ("text", "text")])
    def test_the_setting_accepts_any_case(
        self, monkeypatch: pytest.MonkeyPatch, given: str, used: str
    ) -> None:
        monkeypatch.setenv("SOS_LOG_FORMAT", given)
        assert Settings().log_format == used

    def test_an_unknown_format_names_the_setting(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SOS_LOG_FORMAT", "xml")
        with pytest.raises(ValueError, match="SOS_LOG_FORMAT 'xml' is not one of auto, json"):
            Settings()

    def test_a_broken_log_call_still_logs_and_never_raises(self) -> None:
        out = emit("json", "two %s %s", "only one")

        assert "two %s %s (log arguments did not fit" in json.loads(out)["msg"]


class TestRedaction:
    @pytest.mark.parametrize(
        ("said", "written"),
        [
            (f"calling {PHONE} now", "calling +*********78 now"),
            ("callback 06 12345678", "callback ********78"),
            ("callback 06-1234 5678.", "callback ********78."),
            ("GET /ack/Zx9_-abcdefghijklmnop HTTP/1.1", "GET /ack/[redacted] HTTP/1.1"),
            ("GET /status/Zx9_-abcdefghijklmnop.json", "GET /status/[redacted].json"),
            ("POST /status/Zx9_-abcdefgh/callback", "POST /status/[redacted]/callback"),
            ("GET /v1/reports?token=abc123&lang=nl", "GET /v1/reports?token=[redacted]&lang=nl"),
            (f"Authorization: Bearer {TOKEN}", "Authorization: [redacted]"),
            (
                "headers {'authorization': 'Basic dXNlcjpwdw=='}",
                "headers {'authorization': '[redacted]'}",
            ),
            ("sent Bearer abc.def", "sent Bearer [redacted]"),
            (f"token {TOKEN} created", "token sos_[redacted] created"),
            ("the number %2B31612345678 in a URL", "the number +*********78 in a URL"),
        ],
    )
    def test_phone_numbers_and_secrets_are_masked(self, said: str, written: str) -> None:
        entry = json.loads(emit("json", said))

        assert entry["msg"] == written

    @pytest.mark.parametrize(
        "kept",
        [
            "report 3f2a9c1e-1234-4a5b-8c9d-0123456789ab page 12345",
            "2026-01-05 09:00:00.123 took 0.25 s, 1500 reports/s, port 5432",
            "POST /v1/reports/3f2a9c1e-1234-4a5b-8c9d-0123456789ab/ack 200",
        ],
    )
    def test_ids_times_and_counts_stay_readable(self, kept: str) -> None:
        assert json.loads(emit("json", kept))["msg"] == kept

    def test_extras_and_exception_text_are_masked_too(self) -> None:
        error = IntegrityError(
            "INSERT INTO reports (callback_phone, description) VALUES (?, ?)",
            (PHONE, "my savings went to Lisbon"),
            Exception("UNIQUE constraint failed"),
        )
        out = emit("json", "unhandled error", exc=raised(error), to=PHONE)

        entry = json.loads(out)
        assert entry["to"] == "+*********78"
        assert "[parameters: [redacted]]" in entry["exc"]
        assert find_leaks(out, ["my savings went to Lisbon"]) == []

    def test_the_leak_check_finds_what_got_through(self) -> None:
        leaked = json.dumps({"msg": f"to {PHONE}: my card was skimmed; {TOKEN}"})

        assert find_leaks(leaked, ["my card was skimmed"]) == [
            PHONE,
            TOKEN,
            "my card was skimmed",
        ]


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """`logs.setup` rewires the root logger and uvicorn's: put everything back afterwards."""
    names = ["", *logs.UVICORN_LOGGERS]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in map(logging.getLogger, names)]
    try:
        yield
    finally:
        for lg, handlers, level, propagate in saved:
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate


@pytest.mark.usefixtures("restored_logging")
def test_uvicorn_access_lines_go_through_the_same_handler_and_filter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Even where uvicorn's own handlers were installed first (its access log does not propagate).
    logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
    out = io.StringIO()
    logs.setup(level="INFO", log_format="json", stream=out)
    # What `sos-router serve` does: uvicorn sets its levels but installs no handlers of its own.
    uvicorn.Config(app=None, log_config=None, log_level="info")  # type: ignore[arg-type]

    access = logging.getLogger("uvicorn.access")
    access.info(
        '%s - "%s %s HTTP/%s" %d',
        "10.0.0.7:5123",
        "GET",
        "/ack/Zx9_-abcdefghijk?lang=nl",
        "1.1",
        200,
    )

    [line] = out.getvalue().splitlines()
    entry = json.loads(line)
    assert capsys.readouterr().err == "", "only our handler writes"
    assert entry["logger"] == "uvicorn.access"
    assert entry["msg"] == '10.0.0.7:5123 - "GET /ack/[redacted]?lang=nl HTTP/1.1" 200'


async def test_an_engine_warning_about_a_report_carries_its_id(
    h: Harness, log_leaks: list[str]
) -> None:
    """A step timer the engine reaches 30 s late: the warning is a JSON line naming the report,
    and nothing the customer typed or their number."""
    out = io.StringIO()
    handler = logs.handler("json", out)
    logging.getLogger().addHandler(handler)
    try:
        await h.staff("Anna")
        await h.staff("Bram")
        await h.chain(("voice", ["Anna"], 60), ("voice", ["Bram"], 60))
        report = await h.report(description="they emptied my savings account")
        await h.tick()
        h.expect(("Anna", VOICE))
        h.clock.advance(90)
        await h.tick()
        h.expect(("Bram", VOICE))
    finally:
        logging.getLogger().removeHandler(handler)

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    [late] = [line for line in lines if "fired" in line["msg"]]
    assert late["report_id"] == report["id"]
    assert late["msg"] == f"report {report['id']}: step timer fired 30.0 s late"
    assert log_leaks == ["they emptied my savings account"]
    assert find_leaks(out.getvalue(), log_leaks) == []
