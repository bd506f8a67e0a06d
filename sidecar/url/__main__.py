"""`python -m sidecar.url > docs/operations-table.md`: the docs' table of operations, from the table itself."""
from __future__ import annotations

from sidecar.url.operations import markdown

print(markdown(), end="")
