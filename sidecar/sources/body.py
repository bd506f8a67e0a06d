"""Reading a remote original's body: the size cap is enforced while it streams, under one time limit."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from sidecar.errors import SourceTimeout, TooLarge


def check_length(length: int | None, max_bytes: int) -> None:
    """Refuse before reading anything when the declared length is already over the cap."""
    if length is not None and length > max_bytes:
        raise TooLarge(f"original is larger than {max_bytes} bytes")


async def read_capped(chunks: AsyncIterator[bytes], *, max_bytes: int, timeout: float, what: str,
                      stall: float) -> bytes:
    """Join `chunks`, stopping as soon as they exceed `max_bytes` (TooLarge) or `timeout` passes
    (SourceTimeout). `stall` is the per-read timeout the client enforces itself, named in its message.
    Other errors are the caller's to classify."""
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout) as deadline:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"original is larger than {max_bytes} bytes")
                parts.append(chunk)
    except TimeoutError:
        if deadline.expired():
            raise SourceTimeout(detail=f"{what}: body not complete after {timeout}s") from None
        raise SourceTimeout(detail=f"{what}: body stalled for {stall}s") from None
    return b"".join(parts)
