"""Twilio answers sorted into retry, move on, or reconcile first."""

import httpx
import pytest

from providers.base import OutcomeUnknownError, PermanentProviderError, TemporaryProviderError
from providers.twilio import errors


def answer(
    status: int, code: int | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"code": code, "message": "m", "status": status} if code else {}
    return httpx.Response(status, json=body, headers=headers)


def test_rate_limit_is_retried_after_the_pause_twilio_asks_for() -> None:
    error = errors.from_response(answer(429, 20429, {"Retry-After": "3"}))
    assert isinstance(error, TemporaryProviderError)
    assert error.retry_after == 3.0


@pytest.mark.parametrize("code", [21211, 21614, 21610])
def test_rejections_move_on_without_retrying_that_number(code: int) -> None:
    error = errors.from_response(answer(400, code))
    assert isinstance(error, PermanentProviderError)
    assert error.code == str(code)
    assert str(code) in error.detail


def test_server_errors_leave_the_outcome_unknown() -> None:
    assert isinstance(errors.from_response(answer(500)), OutcomeUnknownError)
    assert isinstance(errors.from_response(httpx.Response(503, text="<html>")), OutcomeUnknownError)


def test_a_connection_that_never_opened_is_safe_to_retry() -> None:
    request = httpx.Request("POST", "https://api.twilio.test/x")
    assert isinstance(
        errors.from_transport(httpx.ConnectError("refused", request=request)),
        TemporaryProviderError,
    )
    assert isinstance(
        errors.from_transport(httpx.ReadTimeout("slow", request=request)), OutcomeUnknownError
    )
