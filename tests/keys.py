"""Fixed keys for personal data in the test suite and the benchmarks: never for a deployment.

`use()` puts them in the environment (unless set already), so every `Settings()` of the test
process and every process it starts (`sos-router serve`, workers) encrypts with the same ring.
"""

from __future__ import annotations

import base64
import os

DATA_KEYS = "test:" + base64.b64encode(b"sos-router test data key 32 byte").decode()
LOOKUP_KEY = base64.b64encode(b"sos-router test lookup key 32 by").decode()
ENV = {"SOS_PRIVACY__DATA_KEYS": DATA_KEYS, "SOS_PRIVACY__LOOKUP_KEY": LOOKUP_KEY}


def use() -> None:
    for name, value in ENV.items():
        os.environ.setdefault(name, value)
