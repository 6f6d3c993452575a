"""Configuration: Twilio on without what it needs must stop the service at start, clearly."""

import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_twilio_enabled_without_credentials_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOS_TWILIO__ACCOUNT_SID", "AC123")
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = str(caught.value)
    for name in ("SOS_TWILIO__AUTH_TOKEN", "SOS_TWILIO__FROM_NUMBER", "SOS_PUBLIC_BASE_URL"):
        assert name in message


def test_twilio_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SOS_TWILIO__ACCOUNT_SID": "AC123",
        "SOS_TWILIO__AUTH_TOKEN": "tok-7f3a9c",
        "SOS_TWILIO__FROM_NUMBER": "020 123 4567",
        "SOS_TWILIO__API_BASE": "http://127.0.0.1:9999",
        "SOS_PUBLIC_BASE_URL": "https://sos.example.nl",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.twilio.enabled
    assert settings.twilio.from_number == "+31201234567"
    assert settings.twilio.api_base == "http://127.0.0.1:9999"
    assert settings.twilio.auth_token.get_secret_value() == "tok-7f3a9c"
    assert "tok-7f3a9c" not in repr(settings)


def test_without_an_account_sid_twilio_is_off() -> None:
    assert not Settings().twilio.enabled


def test_chat_without_a_signing_secret_stops_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOS_SLACK__BOT_TOKEN", "xoxb-1")
    with pytest.raises(ValidationError, match="SOS_SLACK__SIGNING_SECRET"):
        Settings()


def test_the_operators_phone_is_stored_in_e164(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOS_OPERATORS__PHONE", "06 11112222")
    monkeypatch.setenv("SOS_AUDITOR__INTERVAL_SECONDS", "60")
    settings = Settings()
    assert settings.operators.phone == "+31611112222"
    assert settings.auditor.interval_seconds == 60


@pytest.mark.parametrize("phone", ["not a number", "020 123 4567"], ids=["garbage", "landline"])
def test_an_operators_phone_no_sms_reaches_stops_at_start(
    monkeypatch: pytest.MonkeyPatch, phone: str
) -> None:
    monkeypatch.setenv("SOS_OPERATORS__PHONE", phone)
    with pytest.raises(ValidationError, match="SOS_OPERATORS__PHONE"):
        Settings()
