"""HMAC-SHA256 URL signatures: truncated to 96 bits, URL-safe base64; the first key signs, all verify."""
from __future__ import annotations

import base64
import hashlib
import hmac

SIGNATURE_BYTES = 12  # 16 base64 characters, no padding


class Signer:
    """Signs and verifies payloads with a list of keys (rotation: prepend the new key, drop the old later)."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        if not keys:
            raise ValueError("Signer needs at least one key")
        self._keys = tuple(key.encode() for key in keys)

    def sign(self, payload: str) -> str:
        return _digest(self._keys[0], payload)

    def verify(self, payload: str, signature: str) -> bool:
        # Every key is tried, whatever matched, so timing says nothing about which key or how much matched.
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(_digest(key, payload), signature)
        return ok


def _digest(key: bytes, payload: str) -> str:
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(mac).decode()
