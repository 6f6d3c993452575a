"""Twilio: REST calls with httpx, TwiML and signature checks with the `twilio` package."""
