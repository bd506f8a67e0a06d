"""Two tiers, told apart by folder: tests/unit/ (values in, values out: no processes, no sockets) and
tests/e2e/ (real nginx, sidecar processes, moto, PostgreSQL, the command line). Each test gets the marker
of its folder, so `pytest -m unit` (`make test-fast`) runs the fast tier alone; `make test` runs both."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pillow_avif  # noqa: F401  (decodes the AVIF answers, whichever test module runs alone)
import pytest

from tests.support import verwalter
from tests.support.processes import MADE_BY, TEMP_ROOT_ENV

TIERS = ("unit", "e2e")
HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    """One directory for the session's world-readable temporary directories (stacks, sources, servers)."""
    root = Path(tempfile.mkdtemp(prefix="sidecar-tests-"))
    root.chmod(0o755)
    os.environ[TEMP_ROOT_ENV] = str(root)


#: Whether directories left behind fail the session (they are named and removed either way). On: every
#: fixture and test removes what it made, failed or not (`stack_factory.directory()`, `shared_dir`,
#: `readable_tempdir()` in tests/support/processes.py).
LEFTOVERS_FAIL = True


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Every fixture and test removes the directories it made: what is left is named, with the test that
    made it, and fails the session."""
    root = Path(os.environ.pop(TEMP_ROOT_ENV, ""))
    if not root.name.startswith("sidecar-tests-"):
        return
    left = sorted(path.name for path in root.iterdir())
    shutil.rmtree(root, ignore_errors=True)
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line("left behind by the tests (a fixture or test does not clean up):", red=True)
            for name in left:
                reporter.write_line(f"  {name}: made by {MADE_BY.get(name, 'an unknown test')}", red=True)
        if LEFTOVERS_FAIL:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = item.path.relative_to(HERE).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: a test lives in tests/unit/ or tests/e2e/, not in {tier}/")
        item.add_marker(tier)


@pytest.fixture
def variables() -> dict[str, Any]:
    """Verwalter's example variables (verwalter/example-vars.yaml), for a test to change."""
    return verwalter.example_variables()


@pytest.fixture
def rendered(tmp_path: Path, variables: dict[str, Any]) -> dict[str, verwalter.Rendered]:
    """The repo's Verwalter templates rendered with `variables`, by name."""
    return verwalter.render_dir(verwalter.TEMPLATES, variables, tmp_path)
