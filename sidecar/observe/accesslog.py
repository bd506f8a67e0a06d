"""nginx's JSON access log: its format (rendered into the nginx config) and the supervisor's tail of it.

Hits never reach Python, so they are counted where they happen: nginx writes one JSON line per request
(status, bytes, times, hit or miss, source, request id), and the supervisor follows the file and counts
the lines that say `"cache":"hit"` or `"cache":"miss"`. Counting is a substring count over whole lines
in C (`bytes.count`), not a JSON parse per line, so following even tens of thousands of hits a second
costs little (`bench/observability.py` measures it). nginx escapes every value that comes from the client
(`escape=json` turns `"` into `\\"`), so no request can forge the marker.

Why the log and not nginx's own counters: `stub_status` only counts all requests together, and the
per-location counters need nginx Plus or a third-party module; the access log is also what operators
ship to their log store anyway. Rotation is followed whichever way it is done: a renamed or removed file
is drained for a few more polls (nginx writes to it until `nginx -s reopen`) while the new one is read
from its start; a truncated one (`copytruncate`) is read again from the start (lines written between the
copy and the truncation are lost, as with every reader of copytruncate'd logs). The supervisor's event
loop waits for none of it: every read and stat goes through aiofiles, in a thread.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import aiofiles
import aiofiles.os
from aiofiles.threadpool.binary import AsyncBufferedReader

#: The JSON fields, in order: name, nginx value, whether it is a JSON string (else nginx gives a number).
FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("time", "$time_iso8601", True),
    ("request_id", "$REQUEST_ID", True),  # "-" on hits: nothing to join them with, and it costs (below)
    ("remote_addr", "$remote_addr", True),
    ("method", "$request_method", True),
    ("uri", "$request_uri", True),
    ("status", "$status", False),
    ("bytes", "$body_bytes_sent", False),
    ("request_time", "$request_time", False),
    ("upstream_time", "$upstream_response_time", True),  # "-", or several times after a retry
    ("cache", "$CACHE", True),  # hit, miss, limited (429 by the per-client limit), or "-" for the rest
    ("source", "$upstream_http_x_image_source", True),
    ("user_agent", "$http_user_agent", True),
)
HIT = b'"cache":"hit"'
MISS = b'"cache":"miss"'
#: A would-be miss refused by the per-client limit (429): nginx answered it without the sidecar.
LIMITED = b'"cache":"limited"'
CHUNK = 1024 * 1024
#: Polls a rotated-away file is still read, while nginx may not have reopened its log yet.
ROTATED_POLLS = 5
#: The window of the hit ratio gauge.
RATIO_WINDOW = 300.0

_pread = aiofiles.os.wrap(os.pread)


def log_format(cache_variable: str, request_id: str = "$request_id") -> str:
    """The body of nginx's `log_format ... escape=json` for FIELDS.

    Hits have a format of their own (`cache_variable` an exact map of the status, `request_id` "-"): the
    general one's hit-or-miss map runs two regular expressions per request, and `$request_id` draws 16
    random bytes from OpenSSL; together about a tenth of what plain nginx spends on a hit
    (`bench/hits.py`). A hit never reaches the sidecar, so its id would join nothing.
    """
    parts = []
    for name, value, string in FIELDS:
        value = value.replace("$CACHE", cache_variable).replace("$REQUEST_ID", request_id)
        parts.append(f'"{name}":"{value}"' if string else f'"{name}":{value}')
    return "{" + ",".join(parts) + "}"


@dataclass
class Counts:
    hits: int = 0
    misses: int = 0
    limited: int = 0


class _Follower:
    """One open log file and the unfinished line at its end."""

    def __init__(self, file: AsyncBufferedReader, inode: int, executor: Executor | None) -> None:
        self.file, self.inode, self.executor, self.rest = file, inode, executor, b""
        self.polls_left = ROTATED_POLLS

    @classmethod
    async def open(cls, path: Path, executor: Executor | None) -> _Follower | None:
        """The file at `path`, open; None when there is none (yet)."""
        try:
            file = await aiofiles.open(path, "rb", executor=executor)
        except FileNotFoundError:
            return None
        try:
            inode = (await aiofiles.os.stat(file.fileno(), executor=executor)).st_ino
        except BaseException:
            await file.close()
            raise
        return cls(file, inode, executor)

    async def read(self, counts: Counts) -> None:
        while chunk := await self.file.read(CHUNK):
            data = self.rest + chunk
            end = data.rfind(b"\n") + 1
            whole, self.rest = data[:end], data[end:]
            if len(self.rest) > CHUNK:  # not a line of ours: do not hold it forever
                self.rest = b""
            counts.hits += whole.count(HIT)
            counts.misses += whole.count(MISS)
            counts.limited += whole.count(LIMITED)

    async def truncated(self) -> bool:
        """Emptied under us: shorter than what we read, or, if it has grown past that again already, no
        longer a line end where our last whole line ended."""
        fd, position = self.file.fileno(), await self.file.tell()
        if (await aiofiles.os.stat(fd, executor=self.executor)).st_size < position:
            return True
        line_end = position - len(self.rest)
        return line_end > 0 and await _pread(fd, 1, line_end - 1, executor=self.executor) != b"\n"

    async def rewind(self) -> None:
        await self.file.seek(0)
        self.rest = b""


class AccessLogTail:
    """Follows nginx's access log at `path`; `poll()` returns what was written since the last poll.
    Lines already in the file when the tail is opened (`AccessLogTail.open`) are skipped (they belong to
    counts from before this process). Its file IO goes through aiofiles, in `executor` (the event loop's
    default one when None)."""

    def __init__(self, path: Path, executor: Executor | None = None) -> None:
        self.path, self.executor = path, executor
        self.current: _Follower | None = None
        self.rotated: list[_Follower] = []

    @classmethod
    async def open(cls, path: Path, executor: Executor | None = None) -> AccessLogTail:
        tail = cls(path, executor)
        tail.current = await _Follower.open(path, executor)
        if tail.current is not None:
            await tail.current.file.seek(0, os.SEEK_END)
        return tail

    async def poll(self) -> Counts:
        counts = Counts()
        for old in list(self.rotated):
            await old.read(counts)
            old.polls_left -= 1
            if old.polls_left <= 0:
                await old.file.close()
                self.rotated.remove(old)
        try:
            inode: int | None = (await aiofiles.os.stat(self.path, executor=self.executor)).st_ino
        except FileNotFoundError:
            inode = None
        if self.current is not None and inode != self.current.inode:
            await self.current.read(counts)
            self.rotated.append(self.current)
            self.current = None
        if self.current is None and inode is not None:
            self.current = await _Follower.open(self.path, self.executor)
        if self.current is not None:
            if await self.current.truncated():
                await self.current.rewind()
            await self.current.read(counts)
        return counts

    async def close(self) -> None:
        for follower in [*self.rotated, *filter(None, [self.current])]:
            await follower.file.close()


class HitRatio:
    """Hits / (hits + misses) over the last `window` seconds, from what each poll counted. Pure."""

    def __init__(self, window: float = RATIO_WINDOW) -> None:
        self.window = window
        self._polls: deque[tuple[float, int, int]] = deque()

    def add(self, now: float, counts: Counts) -> float | None:
        """Record a poll at `now`; the ratio over the window, or None while it holds no request."""
        self._polls.append((now, counts.hits, counts.misses))
        while self._polls and self._polls[0][0] <= now - self.window:
            self._polls.popleft()
        hits = sum(h for _, h, _ in self._polls)
        total = hits + sum(m for _, _, m in self._polls)
        return hits / total if total else None
