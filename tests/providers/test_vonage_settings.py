"""Configuration: Vonage on without what it needs stops the service at start, clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings
from tests.fakes.vonage import APPLICATION_ID, SIGNATURE_SECRET, key_pair


def test_enabled_without_credentials_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOS_VONAGE__APPLICATION_ID", APPLICATION_ID)
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = str(caught.value)
    for name in (
        "SOS_VONAGE__PRIVATE_KEY or SOS_VONAGE__PRIVATE_KEY_FILE",
        "SOS_VONAGE__SIGNATURE_SECRET",
        "SOS_VONAGE__FROM_NUMBER",
        "SOS_PUBLIC_BASE_URL",
    ):
        assert name in message


def test_the_key_may_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    private, _ = key_pair()
    key_file = tmp_path / "private.key"
    key_file.write_text(private)
    for name, value in {
        "SOS_VONAGE__APPLICATION_ID": APPLICATION_ID,
        "SOS_VONAGE__PRIVATE_KEY_FILE": str(key_file),
        "SOS_VONAGE__SIGNATURE_SECRET": SIGNATURE_SECRET,
        "SOS_VONAGE__FROM_NUMBER": "020 123 4567",
        "SOS_PUBLIC_BASE_URL": "https://sos.example.nl",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.vonage.enabled
    assert settings.vonage.from_number == "+31201234567"
    assert settings.vonage.private_key.get_secret_value() == private
    assert "PRIVATE KEY" not in repr(settings)
    assert SIGNATURE_SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("SOS_VONAGE__PRIVATE_KEY", "-----BEGIN PRIVATE KEY-----\nnope", "private key is unusable"),
        ("SOS_VONAGE__PRIVATE_KEY_FILE", "/nonexistent/private.key", "cannot be read"),
    ],
)
def test_an_unusable_key_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, complaint: str
) -> None:
    for name, setting in {
        "SOS_VONAGE__APPLICATION_ID": APPLICATION_ID,
        variable: value,
        "SOS_VONAGE__SIGNATURE_SECRET": SIGNATURE_SECRET,
        "SOS_VONAGE__FROM_NUMBER": "+31201234567",
        "SOS_PUBLIC_BASE_URL": "https://sos.example.nl",
    }.items():
        monkeypatch.setenv(name, setting)
    with pytest.raises(ValidationError, match=complaint):
        Settings()


def test_without_an_application_id_vonage_is_off_and_failover_has_defaults() -> None:
    settings = Settings()
    assert not settings.vonage.enabled
    assert settings.failover.failures_in_a_row == 3
    assert settings.failover.cooldown_seconds == 60
