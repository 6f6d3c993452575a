"""Report references: six characters a frightened person can read out on the phone.

The alphabet leaves out look-alikes (0/O, 1/I/L, 2/Z, 5/S, 8/B) and vowels that spell words.
"""

from __future__ import annotations

import secrets

ALPHABET = "CDFGHJKMNPQRTVWXY34679"
LENGTH = 6


def new_reference() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
