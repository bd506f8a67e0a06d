"""What the supervisor hands a worker process it starts, and how it starts one.

A worker is started as `python -m sidecar.server.worker` with the listening socket as an inherited file
descriptor and a `WorkerSpec` pickled on stdin, so it begins with a fresh interpreter and no threads or
locks copied from the supervisor, and the supervisor never imports the transform (nor Pillow).
"""
from __future__ import annotations

from dataclasses import dataclass

from sidecar.config import Config

#: The module a worker process runs; also how the metrics tell workers from other children.
WORKER_MODULE = "sidecar.server.worker"


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs, pickled to its stdin by the supervisor (a trusted parent)."""

    config: Config
    listen_fd: int
    row: int
