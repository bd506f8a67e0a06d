"""Two tiers, told apart by folder: tests/unit/ (values in, values out: no processes, no sockets) and
tests/e2e/ (real nginx, sidecar processes, moto, PostgreSQL, the command line). Each test gets the marker
of its folder, so `pytest -m unit` (`make test-fast`) runs the fast tier alone; `make test` runs both."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import verwalter

TIERS = ("unit", "e2e")
HERE = Path(__file__).parent


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
