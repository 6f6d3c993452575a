"""Which sender serves which channel."""

from __future__ import annotations

from collections.abc import Iterable

from providers.base import Channel, MessageSender, TextSender


class UnsupportedChannel(LookupError):
    pass


class ProviderRegistry:
    def __init__(self, senders: Iterable[MessageSender]) -> None:
        self._by_channel: dict[Channel, MessageSender] = {}
        self._texts_by_channel: dict[Channel, TextSender] = {}
        for sender in senders:
            for channel in sender.channels:
                self._by_channel.setdefault(channel, sender)
                if isinstance(sender, TextSender):
                    self._texts_by_channel.setdefault(channel, sender)

    def sender_for(self, channel: Channel) -> MessageSender:
        try:
            return self._by_channel[channel]
        except KeyError:
            raise UnsupportedChannel(f"no provider configured for channel {channel}") from None

    def text_sender_for(self, channel: Channel) -> TextSender:
        """The first sender of `channel` that can also send texts (receipts, codes)."""
        try:
            return self._texts_by_channel[channel]
        except KeyError:
            raise UnsupportedChannel(f"no provider sends texts on channel {channel}") from None

    @property
    def channels(self) -> frozenset[Channel]:
        return frozenset(self._by_channel)
