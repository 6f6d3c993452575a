"""Vonage: the Voice API (calls driven by NCCO) and the Messages API (SMS), through httpx.

No Vonage SDK: the few REST calls we make are plain JSON over httpx, authenticated with an
application JWT (`auth.py`); webhooks are checked with Vonage's signed JWT (`signature.py`).
"""
