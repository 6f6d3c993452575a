"""The scripted fake sender's texts: recorded apart from pages, scripted apart from pages, and an
unexpected text fails the test just like an unexpected page."""

import pytest

from providers.base import Channel, OutboundPage, OutboundText, PermanentProviderError
from providers.fake import FAILS_PERMANENTLY, NO_ANSWER, ScriptedSender

TEXT = OutboundText(1, Channel.SMS, "+31612345678", "SOS-melding K7Q4M2 ontvangen.", "nl")
PAGE = OutboundPage(1, Channel.SMS, "+31611111111", "Anna", "nl", "K7Q4M2", "fraud", "SOS")


async def test_an_unexpected_text_fails_assert_no_more() -> None:
    sender = ScriptedSender()
    await sender.send_text(TEXT)

    with pytest.raises(AssertionError, match="unexpected texts"):
        sender.assert_no_more()


async def test_expect_texts_takes_exactly_what_was_sent() -> None:
    sender = ScriptedSender()
    await sender.send_text(TEXT)

    with pytest.raises(AssertionError, match="expected texts"):
        sender.expect_texts((TEXT.to, Channel.VOICE))
    await sender.send_text(TEXT)
    assert sender.expect_texts((TEXT.to, Channel.SMS)) == [TEXT]
    sender.assert_no_more()


async def test_texts_are_not_pages_and_have_their_own_script() -> None:
    sender = ScriptedSender()
    sender.script(NO_ANSWER)
    sender.script_texts(FAILS_PERMANENTLY)

    with pytest.raises(PermanentProviderError):
        await sender.send_text(TEXT)
    result = await sender.send(PAGE)

    assert result.detail == "no-answer"  # the page script was not used up by the text
    assert sender.texts == []
    assert sender.text_attempts == [TEXT]
    sender.expect(("Anna", Channel.SMS))
    sender.assert_no_more()
