"""The fast tier: tests on values. A test here that starts a process or opens a network socket fails, so
the tier stays fast and needs nothing running; such a test belongs in tests/e2e/."""
from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from typing import Any

import pytest


def _refuse(what: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a unit test may not {what}: move it to tests/e2e/")
    return refused


def _network_only(what: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """`original` for socket pairs (asyncio's own wake-up pipe), refused for anything with an address."""
    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
            raise AssertionError(f"a unit test may not {what} {address!r}: move it to tests/e2e/")
        return original(self, address)
    return guarded


@pytest.fixture(autouse=True)
def no_processes_or_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("start a process"))
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system"):
        monkeypatch.setattr(os, name, _refuse("start a process"))
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, _network_only(name, getattr(socket.socket, name)))
