# Two commands do all set-up on a fresh Debian machine with Python 3.11:
#   make run   - create .venv if missing, install, launch the app on the built-in demo data
#   make test  - create .venv if missing, install system packages (as root), run all tests
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
APT_PKGS := xvfb xauth libxcb-icccm4 libxcb-keysyms1

.PHONY: run test venv sysdeps bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q -U pip
	$(VPY) -m pip install -q -r requirements-dev.txt
	$(VPY) -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# System libraries Qt's xcb platform and the Xvfb-based 3D tests need (root only; others are told).
sysdeps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "note: missing system packages:$$missing (run 'sudo make sysdeps'); 3D-view tests will skip"; fi; \
	fi

run: $(STAMP) sysdeps
	$(VPY) main.py --demo

test: $(STAMP) sysdeps
	$(VPY) -m pytest -q -ra

bench: $(STAMP)
	$(VPY) bench/bench_scoring.py

clean:
	rm -rf $(VENV) .pytest_cache
