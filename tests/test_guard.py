"""The outbound-content guard: no IBAN, card number, amount or balance leaves in a text; the
reference, phone numbers, times and codes we do send stay as they are."""

from __future__ import annotations

import pytest

from routing.guard import AMOUNT, BALANCE, CARD, IBAN, scrub


class TestBlocked:
    @pytest.mark.parametrize(
        "iban",
        [
            "NL91ABNA0417164300",
            "NL91 ABNA 0417 1643 00",
            "nl91abna0417164300",
            "nl91 abna 0417 1643 00",
            "DE89 3704 0044 0532 0130 00",
        ],
    )
    def test_iban(self, iban: str) -> None:
        result = scrub(f"Maak over naar {iban} vandaag")

        assert result.text == "Maak over naar [IBAN] vandaag"
        assert result.found == (IBAN,)

    @pytest.mark.parametrize(
        "card",
        ["4111 1111 1111 1111", "4111111111111111", "5500-0000-0000-0004", "378282246310005"],
    )
    def test_card_number_with_a_valid_luhn_check(self, card: str) -> None:
        result = scrub(f"Pas {card} geblokkeerd")

        assert result.text == "Pas [card] geblokkeerd"
        assert result.found == (CARD,)

    @pytest.mark.parametrize(
        "amount", ["€ 1.234,56", "€1.234,56", "EUR 100", "100 euro", "€50,-", "12,50 EUR", "$100"]
    )
    def test_amount(self, amount: str) -> None:
        result = scrub(f"Er is {amount} afgeschreven")

        assert result.text == "Er is [amount] afgeschreven"
        assert result.found == (AMOUNT,)

    @pytest.mark.parametrize(
        ("text", "safe"),
        [
            ("saldo 12,50", "[balance]"),
            ("Uw saldo is 12,50 nu", "Uw [balance] nu"),
            ("Balance: -1,234.50", "[balance]"),
        ],
    )
    def test_balance(self, text: str, safe: str) -> None:
        result = scrub(text)

        assert result.text == safe
        assert result.found == (BALANCE,)

    def test_every_kind_found_is_named_once(self) -> None:
        result = scrub("NL91ABNA0417164300, nl91abna0417164300, € 5 en 4111 1111 1111 1111")

        assert "0417" not in result.text
        assert "4111" not in result.text
        assert set(result.found) == {IBAN, AMOUNT, CARD}
        assert len(result.found) == 3
        assert result.blocked


class TestKept:
    @pytest.mark.parametrize(
        "text",
        [
            "SOS-melding K7Q4M2 ontvangen. Binnen 10 minuten belt een medewerker u.",
            "Bel +31612345678 of 06 12345678 of 0031612345673",  # 0031… passes Luhn: no card
            "+3161234567896",  # a phone number that passes Luhn after its `+`
            "Je verificatiecode voor de SOS-dienst: 123456. Geldig 10 minuten.",
            "We bellen u op maandag 5 januari om 14:30.",
            "NL92ABNA0417164300",  # wrong IBAN check digits: not an IBAN
            "4111 1111 1111 1112",  # fails the Luhn check: not a card
            "Room 101, 3 colleagues, step 2 of 4",
        ],
    )
    def test_untouched(self, text: str) -> None:
        result = scrub(text)

        assert result.text == text
        assert result.found == ()
        assert not result.blocked

    def test_a_link_token_that_looks_like_an_iban_is_kept(self) -> None:
        # One random accept-link token in ~10,000 holds a run that passes the IBAN check.
        link = "https://sos.example.nl/ack/x-NL91ABNA0417164300"

        assert scrub(f"Antwoord 1 of open {link}").text == f"Antwoord 1 of open {link}"

    def test_outside_a_link_the_same_text_is_an_iban(self) -> None:
        assert scrub("open x-NL91ABNA0417164300").found == (IBAN,)
