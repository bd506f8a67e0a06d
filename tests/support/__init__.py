"""Helpers shared by the tests, the benchmarks and the fuzzers: real servers (nginx + sidecar stacks, moto,
an HTTP origin, PostgreSQL), test images and the paths of the repo's samples and the shared corpus.

Import them as `tests.support.<module>` from the repo root (pytest puts it on sys.path; benchmarks run as
`python -m bench.<name>`), never by editing sys.path."""
