"""The end-to-end tier's fixtures: real stacks (nginx + a sidecar process) and real servers behind them."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import SAMPLES
from tests.support.processes import readable_tempdir
from tests.support.servers import BlackHole, MotoS3, Origin, upload
from tests.support.stack import Stack, Stacks, make_stack


@pytest.fixture
def stack_factory() -> Iterator[Stacks]:
    """Start stacks (`stack_factory(sources, **StackOptions)`); each is stopped and removed after the test."""
    stacks = Stacks()
    yield stacks
    stacks.close()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory nginx's workers (nobody) can enter, unlike tmp_path; removed after the test."""
    with readable_tempdir() as path:
        yield path


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A signed stack serving the repo's samples, shared by a module's tests."""
    stack = make_stack([SAMPLES])
    yield stack
    stack.close()


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoS3]:
    """A real S3 server (moto's) with the bucket `servers.BUCKET` made, shared by a module's tests."""
    s3 = MotoS3()
    upload(s3.env, [], create=True)
    yield s3
    s3.stop()


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    """A real HTTP origin (aiohttp), shared by a module's tests."""
    server = Origin()
    yield server
    server.stop()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    """A port that accepts connections and never answers."""
    hole = BlackHole()
    yield hole
    hole.stop()
