"""JSON lines on stderr: one object per event, for journald, Lithos and the tests alike. Every record
names its process, since the supervisor and its workers share one stderr."""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def log(event: str, **fields: Any) -> None:
    record = {"ts": round(time.time(), 3), "pid": os.getpid(), "event": event, **fields}
    sys.stderr.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")
    sys.stderr.flush()
