"""Slack (or any Slack-compatible chat API): chat pages with an Accept button, and their clicks.

`client` talks to the Web API with httpx and sorts its answers into the port's error classes;
`sender` is the `MessageSender` for `Channel.CHAT`; `signature` checks `X-Slack-Signature`;
`webhooks` reads an interaction payload into plain values.
"""
