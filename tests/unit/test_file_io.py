"""Nothing blocks the event loop: every file IO of a miss runs in a thread (through aiofiles), and a local
original is streamed with the size cap and the per-read timeout, like a remote one.

The misses are served in-process by the real `Handler`, from a real directory source into a real cache
directory; an audit hook records every file call made from the event loop's thread meanwhile.
"""
from __future__ import annotations

import asyncio
import collections
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple

import pytest
from PIL import Image

from sidecar.app.handler import Handler
from sidecar.builder import build_info_url, build_url
from sidecar.config import Config, load
from sidecar.config.sources import parse_source
from sidecar.errors import SourceTimeout, TooLarge
from sidecar.observe.accesslog import AccessLogTail, Counts
from sidecar.observe.metrics import Metrics
from sidecar.sources import open_chain
from sidecar.sources.local import CHUNK, LocalSource
from sidecar.url.grammar import renditions_dir

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
#: The audit events of blocking file calls (`os.stat` has none; `open` covers os.open and io.open).
FILE_EVENTS = {"open", "os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.listdir", "os.scandir",
               "os.chmod", "os.symlink", "os.link", "os.truncate", "os.utime"}


class LoopWatch:
    """Records the file calls made from one thread while it watches. Audit hooks cannot be removed, so
    there is one for the whole test process, idle unless a test sets `thread`."""

    def __init__(self) -> None:
        self.thread: int | None = None
        self.calls: list[tuple[str, object]] = []

    def __call__(self, event: str, args: tuple[object, ...]) -> None:
        if event in FILE_EVENTS and threading.get_ident() == self.thread:
            self.calls.append((event, args[0] if args else None))


_WATCH: list[LoopWatch] = []


@pytest.fixture
def watch() -> Iterator[LoopWatch]:
    if not _WATCH:
        _WATCH.append(LoopWatch())
        sys.addaudithook(_WATCH[0])
    yield _WATCH[0]
    _WATCH[0].thread, _WATCH[0].calls = None, []


def jpeg(path: Path, size: tuple[int, int]) -> None:
    Image.new("RGB", size, (40, 120, 200)).save(path, "JPEG", quality=85)


def configured(tmp_path: Path) -> Config:
    (tmp_path / "originals").mkdir()
    for name in ("warm.jpg", "photo.jpg"):
        jpeg(tmp_path / "originals" / name, (1200, 800))
    return load(None, env={"SIDECAR_SOURCES": str(tmp_path / "originals"), "SIDECAR_CACHE_DIR": str(tmp_path / "cache"),
                           "SIDECAR_ALLOW_UNSIGNED": "true"})


async def serve(handler: Handler, config: Config, key: str) -> list[tuple[int, str]]:
    """A miss from the original, one derived from it (the cascade), an info document, a readiness probe:
    (status, X-Image-Source) of each."""
    answers = []
    for path in (build_url(config, key, width=600), build_url(config, key, width=100),
                 build_info_url(config, key), "/readyz"):
        response = await handler.handle("GET", path)
        answers.append((response.status, dict(response.headers).get("X-Image-Source", "")))
    return answers


async def misses(config: Config, watch: LoopWatch) -> list[tuple[int, str]]:
    cpu, io = ThreadPoolExecutor(1), ThreadPoolExecutor(4)
    handler = Handler(config, await open_chain(config, Metrics()), cpu, io)
    try:
        await serve(handler, config, "warm.jpg")  # first calls import lazily (codecs, plugins): not ours
        watch.thread = threading.get_ident()
        try:
            return await serve(handler, config, "photo.jpg")
        finally:
            watch.thread = None
    finally:
        await handler.sources.close()
        cpu.shutdown()
        io.shutdown()


def test_a_miss_does_no_file_io_on_the_event_loop(tmp_path: Path, watch: LoopWatch) -> None:
    config = configured(tmp_path)
    answers = asyncio.run(misses(config, watch))
    assert answers == [(200, "local"), (200, "cascade"), (200, "local"), (200, "")]
    directory = tmp_path / "cache" / "img" / renditions_dir("photo.jpg")
    assert {".source.json", "w600.jpg", "w100.jpg", "info.json"} <= set(os.listdir(directory))
    assert watch.calls == []


class TripCounter(asyncio.SelectorEventLoop):
    """An event loop that counts the trips to each executor's threads (aiofiles makes every one of them
    through `run_in_executor`), by the names the test gives them (others by their threads' prefix)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: dict[object, str] = {}
        self.trips: collections.Counter[str] = collections.Counter()

    def run_in_executor(self, executor: Any, func: Callable[[*Ts], T], *args: *Ts) -> asyncio.Future[T]:
        name = self.names.get(executor) or getattr(executor, "_thread_name_prefix", None) or "default"
        self.trips[name] += 1
        return super().run_in_executor(executor, func, *args)


async def trips(config: Config) -> list[dict[str, int]]:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, TripCounter)
    cpu, io = ThreadPoolExecutor(1), ThreadPoolExecutor(4)
    loop.names = {cpu: "transform", io: "io"}
    handler = Handler(config, await open_chain(config, Metrics()), cpu, io)
    steps = [lambda: handler.handle("GET", build_url(config, "warm.jpg", width=600)),  # imports, first calls
             lambda: handler.handle("GET", build_url(config, "photo.jpg", width=600)),  # from the original
             lambda: handler.handle("GET", build_url(config, "photo.jpg", width=300)),  # from the cascade
             lambda: handler.work.publish("/img/alone.jpg", b"x" * 5000),
             lambda: handler.sources.fetch("photo.jpg", loop.time() + 30)]
    counts = []
    try:
        for step in steps:
            loop.trips.clear()
            await step()
            await asyncio.sleep(0.05)  # any trip sent without waiting for it (none should be)
            counts.append(dict(loop.trips))
    finally:
        await handler.sources.close()
        cpu.shutdown()
        io.shutdown()
    return counts[1:]


def test_a_miss_makes_no_more_trips_to_the_threads_than_blocking_code_did(tmp_path: Path) -> None:
    # Each trip costs some 50 us of CPU, as much as a small rendition's whole IO (docs/benchmarks.md).
    # Before aiofiles, a miss from a new original made 8 (lock, the cascade's look, open, read, transform,
    # publish, the original's record, unlock); one call per aiofiles file call made it 15.
    config = configured(tmp_path)
    with asyncio.Runner(loop_factory=TripCounter) as runner:
        counts = runner.run(trips(config))
    assert counts == [
        {"io": 5, "source-local": 2, "transform": 1},  # a new original: lock, look, publish, record, unlock
        {"io": 5, "transform": 1},  # from the cascade: lock, look, read the base, publish, unlock
        {"io": 1},  # publishing: temporary file, write, close, purge check, rename
        {"source-local": 2},  # a small original: open and check, read (which closes it at the end)
    ]


def test_the_access_log_tail_reads_nothing_on_the_event_loop(tmp_path: Path, watch: LoopWatch) -> None:
    log = tmp_path / "access.log"

    async def follow() -> Counts:
        tail = await AccessLogTail.open(log)
        watch.thread = threading.get_ident()
        await asyncio.to_thread(log.write_bytes, b'{"cache":"hit"}\n{"cache":"miss"}\n')
        counts = await tail.poll()
        await tail.close()
        return counts

    assert asyncio.run(follow()) == Counts(1, 1)
    assert watch.calls == []


def local_source(root: Path, max_bytes: int, timeout: float) -> LocalSource:
    return LocalSource(parse_source(str(root)), max_bytes=max_bytes, open_timeout=timeout, read_timeout=10 * timeout,
                       threads=2)


@pytest.mark.parametrize("size", [0, 100, CHUNK, 2 * CHUNK + 12345])
def test_a_local_original_is_read_whole_in_chunks(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "big.bin").write_bytes(data)

    async def fetch() -> bytes:
        source = local_source(tmp_path, len(data), 1.0)
        try:
            return await source.fetch("big.bin")
        finally:
            await source.close()

    assert asyncio.run(fetch()) == data


def feed(fifo: Path, data: bytes, hold: float) -> threading.Thread:
    """Write `data` into `fifo` once a reader opens it, then keep it open for `hold` seconds: a file
    whose reads stall (or that grows) while the source reads it."""
    def write() -> None:
        fd = os.open(fifo, os.O_WRONLY)  # blocks until the source opens it
        try:
            os.write(fd, data)
            time.sleep(hold)
        finally:
            os.close(fd)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("data, error, says", [
    (b"x" * 100, SourceTimeout, "stalled for 0.3s"),   # a read that does not return: the per-read timeout
    (b"x" * 5000, TooLarge, "larger than 4096"),      # past the cap while streaming (its size said 0)
], ids=["stalled-read", "grows-past-the-cap"])
def test_a_local_original_is_cut_while_it_streams(tmp_path: Path, data: bytes, error: type[Exception],
                                                   says: str) -> None:
    os.mkfifo(tmp_path / "original.jpg")
    writer = feed(tmp_path / "original.jpg", data, hold=0.6)  # then the stalled read returns, and closes

    async def fetch() -> None:
        source = local_source(tmp_path, 4096, 0.3)
        try:
            with pytest.raises(error, match=says):  # before the writer goes away (then the read would end)
                await source.fetch("original.jpg")
        finally:
            await source.close()

    asyncio.run(fetch())
    writer.join(5)
