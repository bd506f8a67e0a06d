"""What the tests need from the machine, and what a missing piece does.

Required (everything `make` installs, and the shared corpus): missing, a test skips on a developer's machine
with the way to get it, and fails in CI (`CI=true`, as `.ci/run` runs), so a green CI run has run
everything. Optional: a skip everywhere, only for what docs/development.md lists as optional."""
from __future__ import annotations

import os
from typing import NoReturn

import pytest

CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str, how: str) -> NoReturn:
    """A required tool or file is not there: fail in CI, skip elsewhere. `how` says how to get it."""
    if CI:
        pytest.fail(f"{what} is missing, and CI must run every test: {how}", pytrace=False)
    pytest.skip(f"{what} is missing ({how}); in CI (CI=true) this fails")


def optional(reason: str) -> NoReturn:
    """Skip for a condition docs/development.md lists as optional, in CI too."""
    pytest.skip(reason)
