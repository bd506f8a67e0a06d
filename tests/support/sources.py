"""Stacks whose sources fail fast: short timeouts, so that each fault costs well under a second."""
from __future__ import annotations

CONNECT, FIRST_BYTE, BODY, DEADLINE = 0.5, 0.5, 1.0, 3.0


def fast(**settings: object) -> str:
    """TOML for a stack with short timeouts, plus `settings`. One worker process: a source's counters and
    its down/up state live in the worker that uses it."""
    values: dict[str, object] = dict(source_connect_timeout=CONNECT, source_first_byte_timeout=FIRST_BYTE,
                                     source_body_timeout=BODY, request_deadline=DEADLINE, workers=1)
    values.update(settings)
    return "".join(f"{key} = {value!r}\n" for key, value in values.items())


FAST = fast()
