"""Chat pages on Slack: a message with the emergency summary and one Accept button.

The message says only the kind of emergency and the report's reference, never customer data (an
`OutboundPage` carries none). The button's `value` is our page id, so a click finds its page even
when it was posted to a shared channel; `action_id` is `ACCEPT_ACTION`. After an accept the
message is replaced by one without the button (`show_accepted`), so nobody clicks it again.
Every text passes the content guard `app/` hands in (a last line of defence: no IBAN, card
number, amount or balance reaches the chat), and is escaped for mrkdwn wherever Slack reads it,
the notification text included: a staff member named `<!channel>` notifies nobody. A section
holds at most 3000 characters.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from providers.base import Channel, ContentGuard, OutboundPage, OutboundText, SendResult, screen
from providers.slack.client import SlackClient

PROVIDER = "slack"
ACCEPT_ACTION = "accept_page"
ACTIONS_BLOCK = "sos_page"


def external_id(channel: str, ts: str) -> str:
    """A posted message's id as the page stores it: Slack needs both to address a message."""
    return f"{channel}:{ts}"


SECTION_MAX = 3000


def _escape(text: str) -> str:
    """Slack's mrkdwn escaping: only `&`, `<` and `>` are special."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _line(text: str) -> str:
    """A name or reply on one line, escaped: it cannot fake a second line or mention anyone."""
    return _escape(" ".join(text.split()))


def summary(*, category: str, reference: str) -> str:
    """The one line a chat page shows: category and reference (mrkdwn)."""
    label = _escape(category.replace("_", " "))
    return f":rotating_light: *SOS {label}*, report `{_escape(reference)}`"


def _section(text: str) -> dict[str, Any]:
    if len(text) > SECTION_MAX:
        text = text[: SECTION_MAX - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def page_blocks(page: OutboundPage) -> list[dict[str, Any]]:
    return [
        _section(summary(category=page.category, reference=page.reference)),
        {
            "type": "actions",
            "block_id": ACTIONS_BLOCK,
            "elements": [
                {
                    "type": "button",
                    "action_id": ACCEPT_ACTION,
                    "text": {"type": "plain_text", "text": "Accept"},
                    "style": "primary",
                    "value": str(page.page_id),
                }
            ],
        },
    ]


def accepted_text(holder_name: str) -> str:
    """The notification text of an accepted page (mrkdwn, escaped)."""
    return f"Accepted by {_line(holder_name)}"


def accepted_blocks(*, category: str, reference: str, holder_name: str) -> list[dict[str, Any]]:
    return [
        _section(summary(category=category, reference=reference)),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f":white_check_mark: {accepted_text(holder_name)}",
                }
            ],
        },
    ]


class SlackChat:
    """The `MessageSender` for chat pages; `page.to` is a Slack user or channel id."""

    name = PROVIDER
    channels = frozenset({Channel.CHAT})

    def __init__(self, client: SlackClient, *, guard: ContentGuard | None = None) -> None:
        self.client = client
        self.guard = guard

    def _safe(self, text: str, where: str) -> str:
        return screen(self.guard, text, where=where)

    async def send(self, page: OutboundPage) -> SendResult:
        """Post the page. `page.text` (ending in the accept link) is the notification and
        fallback text; the blocks show the summary and the button."""
        where = f"chat page {page.page_id}"
        safe = replace(
            page,
            text=self._safe(page.text, where),
            category=self._safe(page.category, where),
            reference=self._safe(page.reference, where),
        )
        posted = await self.client.post_message(
            channel=page.to, text=_escape(safe.text), blocks=page_blocks(safe)
        )
        return SendResult(PROVIDER, external_id(posted.channel, posted.ts))

    async def send_text(self, text: OutboundText) -> SendResult:
        """Post a plain message that is not a page (the auditor's alert to the operators): no
        button, nothing to accept."""
        safe = self._safe(text.body, f"chat text {text.message_id}")
        posted = await self.client.post_message(
            channel=text.to, text=_escape(safe), blocks=[_section(_escape(safe))]
        )
        return SendResult(PROVIDER, external_id(posted.channel, posted.ts))

    async def show_accepted(
        self, *, channel: str, ts: str, holder_name: str, category: str, reference: str
    ) -> None:
        """Replace a page message by "Accepted by <name>", without the button."""
        holder_name = self._safe(holder_name, "an accepted chat page")
        await self.client.update_message(
            channel=channel,
            ts=ts,
            text=accepted_text(holder_name),
            blocks=accepted_blocks(category=category, reference=reference, holder_name=holder_name),
        )

    async def tell(self, *, channel: str, user: str, text: str) -> None:
        """A reply only the clicking `user` sees (a late clicker, someone not on the rota)."""
        await self.client.post_ephemeral(
            channel=channel, user=user, text=_line(self._safe(text, "a chat reply"))
        )


if TYPE_CHECKING:
    from providers.base import MessageSender, TextSender

    _chat: type[MessageSender] = SlackChat
    _chat_texts: type[TextSender] = SlackChat
