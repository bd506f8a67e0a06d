"""Observability on values: the access-log tail, the hit ratio, nginx's log format, the metrics' labels."""
from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from sidecar.observe.accesslog import AccessLogTail, Counts, HitRatio, log_format
from sidecar.observe.metrics import rendition_kind, write_failure_reason


def test_the_tail_counts_whole_lines_and_follows_rotation(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    hit, miss, other = (b'{"uri":"/img/a","cache":"%s","ua":"x"}\n' % c for c in (b"hit", b"miss", b"-"))
    log.write_bytes(hit * 5)  # before we started: not ours to count
    with asyncio.Runner() as loop:  # one loop for the tail's life: aiofiles' files belong to theirs
        tail = loop.run(AccessLogTail.open(log))
        assert loop.run(tail.poll()) == Counts(0, 0)
        with open(log, "ab") as file:
            file.write(hit + miss + other + hit[:10])  # the last line is still being written
        assert loop.run(tail.poll()) == Counts(1, 1)
        with open(log, "ab") as file:
            file.write(hit[10:] + hit)
        assert loop.run(tail.poll()) == Counts(2, 0)
        log.rename(tmp_path / "access.log.1")  # rotated; nginx writes to the old file until it reopens
        with open(tmp_path / "access.log.1", "ab") as file:
            file.write(miss)
        log.write_bytes(hit)
        assert loop.run(tail.poll()) == Counts(1, 1)
        log.write_bytes(b"")  # copytruncate
        with open(log, "ab") as file:
            file.write(miss * 2)
        assert loop.run(tail.poll()) == Counts(0, 2)
        forged = b'{"uri":"/img/\\"cache\\":\\"hit\\"","cache":"miss"}\n'  # what escape=json makes of a forgery
        with open(log, "ab") as file:
            file.write(forged)
        assert loop.run(tail.poll()) == Counts(0, 1)
        loop.run(tail.close())


def test_a_log_that_appears_later_is_read_from_its_start(tmp_path: Path) -> None:
    with asyncio.Runner() as loop:
        tail = loop.run(AccessLogTail.open(tmp_path / "access.log"))
        assert loop.run(tail.poll()) == Counts(0, 0)
        (tmp_path / "access.log").write_bytes(b'{"cache":"hit"}\n' * 3)
        assert loop.run(tail.poll()) == Counts(3, 0)
        loop.run(tail.close())


def test_hit_ratio_is_over_its_window() -> None:
    ratio = HitRatio(window=10)
    assert ratio.add(0, Counts(0, 0)) is None
    assert ratio.add(1, Counts(3, 1)) == 0.75
    assert ratio.add(5, Counts(0, 4)) == 3 / 8
    assert ratio.add(12, Counts(1, 0)) == 1 / 5  # the poll at 1 is out of the window
    assert ratio.add(30, Counts(0, 0)) is None


def test_log_format_is_json_with_every_field() -> None:
    line = log_format("$c")
    sample = (line.replace('"$status"', "200").replace("$status", "200").replace("$body_bytes_sent", "5")
              .replace("$request_time", "0.001"))
    record = json.loads(re.sub(r"\$[a-z_0-9]+", "x", sample))
    assert record["status"] == 200 and record["cache"] == "x" and "request_id" in record


def test_rendition_kinds_and_write_failure_reasons() -> None:
    assert rendition_kind("cascade", False, False) == "cascade"
    assert rendition_kind("local", True, False) == "passthrough"
    assert rendition_kind("s3", False, True) == "watermark"
    assert rendition_kind("http", False, False) == "resize"
    assert write_failure_reason(OSError(28, "No space left on device")) == "ENOSPC"
    assert write_failure_reason(OSError(30, "Read-only file system")) == "EROFS"
    assert write_failure_reason(OSError(1, "Operation not permitted")) == "other"
    assert write_failure_reason(RuntimeError("no errno")) == "other"
