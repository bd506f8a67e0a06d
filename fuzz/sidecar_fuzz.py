"""The long fuzz run (`make fuzz`): atheris, coverage-guided, on the targets of tests/support/fuzz_targets.py.

    .venv/bin/python -m fuzz.sidecar_fuzz url|image SECONDS

Each target starts from seeds (canonical URLs; the small files of ../shared/corpus/real), keeps its
growing corpus in build/fuzz/TARGET/, and writes any input that crashes it to
tests/data/fuzz-findings/TARGET/, where tests/unit/test_fuzz.py replays it from then on: commit it with the fix.
"""
from __future__ import annotations

import hashlib
import sys

import atheris

with atheris.instrument_imports(include=["sidecar"]):
    from sidecar.url.grammar import Ops, Rendition
    from tests.support import fuzz_targets

from tests.support.paths import CORPUS, REPO  # noqa: E402


def url_seeds() -> list[bytes]:
    examples = [Rendition("products/red shoe.jpg", Ops("webp", width=300, height=200, fit="fill", gravity="n")),
                Rendition("a.png", Ops("png")), Rendition("k/é.jpg", Ops("avif", width=9, dpr=1.5, expires=99)),
                Rendition("x.jpg", Ops("auto", width=400, height=400, fit="fill", gravity="fp", focus=(300, 450)))]
    return [r.path(fuzz_targets.PREFIX, s).encode() for r in examples for s in (None, "A" * 16)]


def image_seeds() -> list[bytes]:
    return [bytes([pick]) + seed for seed in fuzz_targets.seeds(CORPUS)
            for pick in range(0, len(fuzz_targets.OPS), 3)]


def main() -> None:
    name, seconds = sys.argv[1], int(sys.argv[2])
    target = {"url": fuzz_targets.url_target, "image": fuzz_targets.image_target}[name]
    corpus = REPO / "build" / "fuzz" / name
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in url_seeds() if name == "url" else image_seeds():
        (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    findings = REPO / "tests" / "data" / "fuzz-findings" / name
    findings.mkdir(parents=True, exist_ok=True)
    atheris.Setup([sys.argv[0], str(corpus), f"-max_total_time={seconds}", f"-artifact_prefix={findings}/",
                   "-timeout=30", "-rss_limit_mb=3072", "-max_len=300000", "-print_final_stats=1"], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
