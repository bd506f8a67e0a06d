"""The mutation score per module, after `mutmut run` (`make mutation` runs both):

    python -m tests.support.mutation_report [--min 90]

Reads mutmut's results (mutants/**/*.py.meta), prints killed / total per mutated module, and lists the
surviving mutants that docs/mutation.md does not explain (it names each survivor and why it is
equivalent). Exits 1 if a module scores under `--min` percent or a survivor is unexplained."""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from tests.support.paths import REPO

#: mutmut's exit codes, as its own status table reads them: a test failed (or timed out) = killed.
KILLED = {1, 3, 24, -24, 36, 152, 255, -9, -11}
SURVIVED = {0}
NO_TESTS = {5, 33}
EXPLAINED = REPO / "docs" / "mutation.md"


def results(root: Path) -> dict[str, Counter[str]]:
    """Per module: how many mutants were killed, survived, had no test, or were not run."""
    found: dict[str, Counter[str]] = {}
    for meta in sorted(root.rglob("*.py.meta")):
        module = str(meta.relative_to(root))[: -len(".meta")]
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = found.setdefault(module, Counter())
        for name, code in codes.items():
            kind = ("killed" if code in KILLED else "survived" if code in SURVIVED
                    else "no tests" if code in NO_TESTS else "not run" if code is None else "other")
            counts[kind] += 1
            if kind in ("survived", "no tests"):
                counts["names:" + name] += 1
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=float, default=90.0, help="lowest acceptable score per module, in percent")
    parser.add_argument("--mutants", type=Path, default=REPO / "mutants")
    args = parser.parse_args()
    explained = EXPLAINED.read_text() if EXPLAINED.exists() else ""
    failed = False
    print(f"{'module':34} {'killed':>7} {'total':>6} {'score':>7}  survivors")
    for module, counts in results(args.mutants).items():
        total = sum(v for k, v in counts.items() if not k.startswith("names:"))
        score = 100.0 * counts["killed"] / total if total else 100.0
        survivors = [k[len("names:"):] for k in counts if k.startswith("names:")]
        low = score < args.min or counts["not run"] or counts["other"]
        failed |= bool(low)
        print(f"{module:34} {counts['killed']:7} {total:6} {score:6.1f}%  {len(survivors)}"
              f"{'  << under ' + str(args.min) + '%' if low else ''}")
        for name in survivors:
            if name not in explained:
                failed = True
                print(f"    unexplained: {name}  (mutmut show '{name}'; explain it in docs/mutation.md or kill it)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
