"""Benchmarks (not tests: they measure and print tables). Run each from the repo root as a module,
`python -m bench.NAME`, or through its `make bench-*` target; they share the tests' helpers
(`tests.support`: real stacks, servers, PostgreSQL) by importing them, never by editing sys.path."""
