# The two commands of the README: `make run` and `make test`. Both install what is missing first.
PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
PILLOW_SIMD := pillow-simd==12.1.1.post0
# Wheels built here with -mavx2; pip's own cache keys wheels by sdist only, not by compiler flags.
WHEELHOUSE  ?= $(HOME)/.cache/resize-sidecar/wheels-avx2
APT_PACKAGES := nginx libjpeg62-turbo-dev zlib1g-dev libpng-dev libwebp-dev libtiff-dev liblcms2-dev \
                libfreetype-dev libopenjp2-7-dev libjpeg-turbo-progs libgs-common \
                postgresql pgbouncer
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# The pipeline benchmark's own tools: vanilla Pillow, libvips and numpy live in bench/.venv, never in .venv.
BENCH_VENV   := bench/.venv
BENCH_PIP    := pillow==13.0.0 pyvips==3.2.0 pyvips-binary==8.18.7 numpy==2.4.6
BENCH_APT    := imagemagick

.PHONY: run test install system-deps clean bench-pipeline bench-load

run: install
	$(VENV)/bin/resize-sidecar run

test: install
	$(PY) -m pytest

# The load benchmark (a few minutes; prints one table). wrk is only needed here, not by the tests.
bench-load: install
	@command -v wrk >/dev/null || { if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk; }
	$(PY) bench/load.py

install: system-deps $(VENV)/.installed

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:" $$missing; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: setup.py requirements.txt requirements-dev.txt requirements-nodeps.txt constraints.txt
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
	$(PY) -c 'import sidecar.pillow; sidecar.pillow.require_simd()'
	touch $@

bench-pipeline: install
	@missing=$$(for p in $(BENCH_APT); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	PIP_CONSTRAINT= $(BENCH_VENV)/bin/python -m pip install -q $(BENCH_PIP)
	$(BENCH_VENV)/bin/python bench/pipeline.py

clean:
	rm -rf $(VENV) var $(BENCH_VENV)
