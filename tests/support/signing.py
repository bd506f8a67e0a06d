"""Forged signatures for the tests: one character changed, anywhere in the 16."""
from __future__ import annotations

import string

#: The characters of URL-safe base64, which signatures are written in.
ALPHABET = string.ascii_letters + string.digits + "-_"


def other_character(signature: str, position: int) -> str:
    """`signature` with the character at `position` changed to another one of the URL-safe alphabet."""
    replacement = next(c for c in ALPHABET if c != signature[position])
    return signature[:position] + replacement + signature[position + 1:]
