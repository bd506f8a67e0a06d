"""JSON lines on stderr: one object per event, for journald, Lithos and the tests alike. Every record
names its process, since the supervisor and its workers share one stderr, and every record written while
a request is served carries nginx's `$request_id` (sent as `X-Request-Id`), as nginx's access log does,
so the two can be joined. Work shared by identical requests (one flight) logs the first one's id."""
from __future__ import annotations

import json
import os
import sys
import time
from contextvars import ContextVar
from typing import Any

#: The request being served by the current task (set by `sidecar.server.protocol`; tasks inherit it).
request_id: ContextVar[str] = ContextVar("request_id", default="")


def log(event: str, **fields: Any) -> None:
    record = {"ts": round(time.time(), 3), "pid": os.getpid(), "event": event}
    current = request_id.get()
    if current:
        record["request_id"] = current
    record.update(fields)
    sys.stderr.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")
    sys.stderr.flush()
