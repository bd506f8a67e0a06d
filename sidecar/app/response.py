"""What the request path answers: a status, headers and a body, for the protocol to send."""
from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class Response:
    """One HTTP response; errors are not responses but `SidecarError`s, which only the protocol reports."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, value: object) -> Response:
        """A JSON answer for programs (admin API, health), never cached."""
        return cls(status, [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
                   json.dumps(value).encode() + b"\n")
