"""Two bands for one big rendition only while a core is idle: none while every core is busy (busy-loop processes)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from sidecar.transform import parallel


def test_no_spare_core_while_every_core_is_busy() -> None:
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)
        assert not any(parallel.spare_core() for _ in range(20))
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
