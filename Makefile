# The two commands of the README: `make run` and `make test`. Both install what is missing first.
PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
PILLOW_SIMD := pillow-simd==12.1.1.post0
# Wheels built here with -mavx2; pip's own cache keys wheels by sdist only, not by compiler flags.
WHEELHOUSE  ?= $(HOME)/.cache/resize-sidecar/wheels-avx2
APT_PACKAGES := nginx libjpeg62-turbo-dev zlib1g-dev libpng-dev libwebp-dev libtiff-dev liblcms2-dev \
                libfreetype-dev libopenjp2-7-dev libjpeg-turbo-progs libgs-common gcc python3-dev \
                postgresql pgbouncer systemd
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# The pipeline benchmark's own tools: vanilla Pillow, libvips and numpy live in bench/.venv, never in .venv.
BENCH_VENV   := bench/.venv
BENCH_PIP    := pillow==13.0.0 pyvips==3.2.0 pyvips-binary==8.18.7 numpy==2.4.6
# bench-bytes' judge and encoder candidates (ssimulacra2 and pillow-jxl-plugin need plain Pillow: here only).
BENCH_BYTES_PIP := ssimulacra2==0.3.0 pyjpegli==0.3.2 mozjpeg-lossless-optimization==1.3.2 pillow-jxl-plugin==1.3.8
BENCH_APT    := imagemagick

# The peer scoreboard's tools: thumbor in a venv of its own (it needs plain Pillow), Debian's image_filter.
BENCH_SCOREBOARD_PIP := aiohttp==3.14.5 matplotlib==3.11.2
THUMBOR_VENV ?= $(HOME)/.cache/resize-sidecar/thumbor-venv
THUMBOR_PIP  := thumbor==7.8.0

.PHONY: run test test-fast mutation lint install system-deps clean bench-bytes bench-pipeline bench-progressive bench-load bench-operations bench-aware bench-hits bench-grid bench-endtoend bench-scoreboard bench-venv bench-output-memory \
        fuzz fuzz-dc fuzz-dc-asan bench-front deploy-files bench-animation soak bench-odd bench-vector bench-file-io

run: install
	$(VENV)/bin/resize-sidecar run

test: install lint
	$(PY) -m pytest

# The fast tier alone (tests/unit/: no processes, no sockets), for the inner loop: about half a minute.
# The fuzz targets run one batch each instead of FUZZ_SECONDS; `make test` runs them for longer.
test-fast: install
	FUZZ_SECONDS=0 $(PY) -m pytest -q tests/unit

# Mutation testing of the modules where a silent bug is a breach or data loss (pyproject.toml's
# [tool.mutmut]: signing, the URL grammar, the cache's publish, single-flight, limits, the source chain).
# mutmut runs the tests that cover each mutant; tens of minutes, so not part of `make test`. Prints the
# score per module, and fails under 90% or on a survivor docs/mutation.md does not explain.
mutation: install
	$(PY) -m pip install -q -r requirements-mutation.txt
	rm -rf mutants && mkdir -p build
	FUZZ_SECONDS=0 SIDECAR_CORPUS=$${SIDECAR_CORPUS:-$(abspath ..)/shared/corpus} $(PY) -m mutmut run --max-children 2 > build/mutmut.log 2>&1 || { tail -c 3000 build/mutmut.log; exit 1; }
	$(PY) -m tests.support.mutation_report

# Static checks: ruff (pyproject.toml's rules, tests included) and mypy (no untyped definitions in sidecar/).
lint: install
	$(PY) -m ruff check sidecar bench fuzz tests
	$(PY) -m mypy sidecar

# The load benchmark (a few minutes; prints one table). wrk is only needed here, not by the tests.
bench-load: install
	@command -v wrk >/dev/null || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk; }
	$(PY) -m bench.load

install: system-deps $(VENV)/.installed

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:" $$missing; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# The C modules are compiled by `pip install -e .`: editing it must rebuild it.
C_SOURCES := sidecar/transform/dcjpeg_decoder.c sidecar/transform/dcjpeg_decoder.h \
                  sidecar/transform/jpegrows.c sidecar/transform/jpegrows.h \
                  sidecar/transform/_build.py pyproject.toml

$(VENV)/.installed: setup.py requirements.txt requirements-dev.txt requirements-nodeps.txt constraints.txt $(C_SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if ! ls $(WHEELHOUSE)/pillow_simd-12.1.1.post0-*.whl >/dev/null 2>&1; then \
	  echo "building $(PILLOW_SIMD) with AVX2 (about a minute, once per machine)"; \
	  CC="cc -mavx2" $(PY) -m pip wheel -q --no-cache-dir --no-deps --no-binary pillow-simd \
	    -w $(WHEELHOUSE) $(PILLOW_SIMD); \
	fi
	$(PY) -m pip install -q --no-index --find-links $(WHEELHOUSE) $(PILLOW_SIMD)
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -c 'import sidecar.transform.pillow as p; p.require_simd()'
	touch $@

# Every fuzzer for FUZZ_SECONDS each: the URL parser and the whole transform (findings land in
# tests/data/fuzz-findings/), then the DC-scan decoder.
fuzz: install
	$(PY) -m fuzz.sidecar_fuzz url $(FUZZ_SECONDS)
	$(PY) -m fuzz.sidecar_fuzz image $(FUZZ_SECONDS)
	$(MAKE) fuzz-dc

# Fuzz the DC-scan JPEG decoder (sidecar/transform/dcjpeg_decoder.c) for FUZZ_SECONDS, seeded with the
# shared corpus's JPEGs and the test layouts; findings land in build/fuzz/ as crash-* files.
FUZZ_SECONDS ?= 60
FUZZ_ARGS     = -max_total_time=$(FUZZ_SECONDS) -max_len=200000 -rss_limit_mb=4096 -artifact_prefix=build/fuzz/
ASAN_MODULE   = build/fuzz/asan/sidecar/transform/_dcjpeg.cpython-311-x86_64-linux-gnu.so

build/fuzz/seeds: install
	$(PY) -m fuzz.seeds $@

fuzz-dc: build/fuzz/seeds
	mkdir -p build/fuzz/corpus
	$(PY) -m fuzz.dcjpeg_fuzz $(FUZZ_ARGS) build/fuzz/corpus build/fuzz/seeds

# The same under AddressSanitizer: the decoder built by clang with ASan and libFuzzer coverage,
# loaded into Python beside atheris's ASan runtime.
fuzz-dc-asan: build/fuzz/seeds
	@command -v clang-14 >/dev/null || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq clang-14; }
	CC=clang-14 LDSHARED="clang-14 -shared" \
	  CFLAGS="-fsanitize=address,fuzzer-no-link -fno-omit-frame-pointer -g -O1" \
	  $(PY) sidecar/transform/_build.py build/fuzz/asan _dcjpeg
	mkdir -p build/fuzz/corpus
	ASAN_OPTIONS=detect_leaks=0,allocator_may_return_null=1 DCJPEG_MODULE=$(ASAN_MODULE) \
	  LD_PRELOAD=$$($(PY) -c 'import atheris; print(atheris.path())')/asan_with_fuzzer.so \
	  $(PY) -m fuzz.dcjpeg_fuzz $(FUZZ_ARGS) build/fuzz/corpus build/fuzz/seeds

# Progressive JPEGs: the normal path, the DC path and libvips, side by side (bench/progressive.py).
bench-progressive: install
	$(PY) -m pip install -q -r requirements-bench.txt
	$(PY) -m bench.progressive

# Issue 15's grid: every photo (and a 48 MP one made from a photo) at widths 160-1399, ours vs libvips.
bench-grid: install bench-venv
	$(BENCH_VENV)/bin/python -m bench.grid

# The same grid end to end: ours through nginx (one request at a time, every one a cold miss) against the
# libvips server over HTTP and libvips in-process, with where our time goes per request (bench/endtoend.py).
bench-endtoend: install bench-venv
	$(PY) -m bench.endtoend

bench-pipeline: BENCH_APT_NEEDED = $(BENCH_APT)
bench-pipeline: install bench-venv
	$(BENCH_VENV)/bin/python -m bench.pipeline

# Animations: ours against libvips and gifsicle (a few minutes; prints two tables).
bench-animation: BENCH_APT_NEEDED = gifsicle
bench-animation: install bench-venv
	$(BENCH_VENV)/bin/python bench/animation.py

# Bytes at equal perceptual quality: ours (q82, qauto, WebP, AVIF), libvips q82 and the encoder candidates,
# scored by SSIMULACRA2 and SSIM (about 20 minutes on a loaded machine; prints the tables of docs/benchmarks.md).
bench-bytes: install bench-venv
	PIP_CONSTRAINT= $(BENCH_VENV)/bin/python -m pip install -q $(BENCH_BYTES_PIP)
	$(BENCH_VENV)/bin/python bench/bytes.py

# The peer scoreboard (a few minutes; prints one table, writes docs/scoreboard.png).
bench-scoreboard: BENCH_APT_NEEDED = wrk libnginx-mod-http-image-filter
bench-scoreboard: install bench-venv
	test -x $(THUMBOR_VENV)/bin/thumbor || { $(PYTHON) -m venv $(THUMBOR_VENV) && \
	  PIP_CONSTRAINT= $(THUMBOR_VENV)/bin/python -m pip install -q $(THUMBOR_PIP); }
	THUMBOR_VENV=$(THUMBOR_VENV) $(PY) -m bench.scoreboard

# bench/.venv (vanilla Pillow, libvips, numpy, aiohttp, matplotlib) plus the apt packages a target names.
bench-venv:
	@missing=$$(for p in $(BENCH_APT_NEEDED); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	PIP_CONSTRAINT= $(BENCH_VENV)/bin/python -m pip install -q $(BENCH_PIP) $(BENCH_SCOREBOARD_PIP)

# Face gravity, smart gravity and trim on a labelled set, against libvips' attention crop (bench/aware_crops.py).
bench-aware: install
	$(PY) -m pip install -q -r requirements-bench.txt
	$(PY) bench/aware_crops.py

# The soak test (not in `make test`): SOAK_SECONDS (default one hour) of mixed hits, misses and hostile
# input at SOAK_RATE requests per second through nginx; RSS, open files and errors at the start and end.
SOAK_SECONDS ?= 3600
SOAK_RATE    ?= 20
soak: install
	$(PY) bench/soak.py --seconds $(SOAK_SECONDS) --rate $(SOAK_RATE)

# Every odd input through nginx: the shared corpus, tests/data/odd, the fuzz seeds, and ODD_EXTRA (a
# directory, say Pillow's Tests/images); fails on any 5xx, hang, worker restart or `bug` log line.
bench-odd: install
	$(PY) -m bench.odd_inputs $(if $(ODD_EXTRA),--extra $(ODD_EXTRA))

# A miss's file IO: the last commit before aiofiles against this checkout, interleaved (bench/file_io.py,
# about 2 minutes; one table). FILE_IO_ARGS for others: "--rev before=afb9195 --rev main=main --tree this=.".
bench-file-io: install
	$(PY) -m bench.file_io $(FILE_IO_ARGS)

# SVG drawn at the rendition's size against drawn at its own size and resized: time, SSIM, bytes.
bench-vector: install
	$(PY) bench/vector.py

bench-operations: install
	$(PY) -m bench.operations

# Peak memory per output pixel by encoder (pad and force-up of a small GIF): behind max_output_pixels.
bench-output-memory: install
	$(PY) bench/output_memory.py

# What our nginx config costs per hit against plain static nginx, feature by feature (wrk, loopback).
bench-hits: install
	@command -v wrk >/dev/null || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk; }
	$(PY) -m bench.hits

# The multi-node front's cost on hits and with a dead node (wrk drives the load).
bench-front: install
	@if ! command -v wrk >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk; \
	fi
	$(PY) -m bench.front

# The deployment files kept in the repo, rendered from deploy/sidecar.toml for the paths docs/operations.md uses.
# A test fails when they differ from what this renders.
DEPLOY := $(VENV)/bin/resize-sidecar deploy-config --config deploy/sidecar.toml \
          --installed-config /etc/resize-sidecar/sidecar.toml --executable /opt/resize-sidecar/bin/resize-sidecar
deploy-files: install
	$(DEPLOY) systemd-service > deploy/systemd/resize-sidecar.service
	$(DEPLOY) systemd-socket > deploy/systemd/resize-sidecar.socket
	$(DEPLOY) lithos > lithos.yaml

clean:
	rm -rf $(VENV) var build $(BENCH_VENV)
