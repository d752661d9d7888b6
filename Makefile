# The station's two commands: `make run` and `make test`. Both set everything up first.
# System packages come from apt (as root, or through sudo); Python packages from requirements.lock
# (hashes pinned) into .venv. `make install` on a Pi takes the run-time part of both (RUNTIME_APT,
# requirements-runtime.lock: the same pins CI tested, without the test tools).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The peer normalizer `make bench` compares against: its own venv, never installed with the station.
PEER_VENV := .venv-peer
PEER_STAMP := $(PEER_VENV)/.installed
# Debian / Raspberry Pi OS packages the station uses at run time (all a Pi gets from `make install`);
# antiword reads Word 97-2003 .doc scripts and poppler-utils' pdftotext reads PDF ones (playout/documents.py).
RUNTIME_APT := ffmpeg espeak-ng libportaudio2 libsndfile1 python3-venv alsa-utils antiword poppler-utils
# ... and those only its tests and `make run` on a laptop need: a recordable PulseAudio sink, real systemd
# (systemd-container: systemd-nspawn boots it to run the shipped unit), libfaketime, a QR reader, Chromium
# (libatomic1: Playwright's bundled node needs it, and a fresh arm64 Debian does not have it; Chromium also
# prints the text PDFs the intake tests read, in DejaVu Serif, which also draws their scanned page), qpdf
# (puts a password on one of those PDFs), Mosquitto (the MQTT broker a province centre runs; the fleet
# tests start their own on a free port), and iproute2 (`ip netns`, a veth pair and tc's tbf: the fleet test
# that puts a station behind a 64 kbit/s link, as root).
TEST_APT := mosquitto pulseaudio pulseaudio-utils libasound2-plugins systemd faketime zbar-tools \
            chromium systemd-container libatomic1 qpdf fonts-dejavu-core iproute2
APT_PACKAGES := $(RUNTIME_APT) $(TEST_APT)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages runtime-packages run test bench install install-centre lock clean soak fleet-demo

setup: system-packages $(STAMP)

# Install only what is missing: apt-get is slow and needs the network, so a machine that already
# has everything is left alone.
system-packages runtime-packages: PACKAGES = $(APT_PACKAGES)
runtime-packages: PACKAGES = $(RUNTIME_APT)
system-packages runtime-packages:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

run: setup
	$(VENV)/bin/playout demo

test: setup
	$(VENV)/bin/python -m pytest -q

# About ten minutes of the real daemon under real systemd with one fault per window (part of `make test`
# too); -s shows each check as it is made.
soak: setup
	$(VENV)/bin/python -m pytest -q -s tests/test_soak.py

# A province centre, a real Mosquitto and 10 stations as processes in a temporary folder (mock GPIO, audio
# discarded): an ordinary, a priority and an emergency bulletin, then a JSON summary (issue 14).
fleet-demo: setup
	@$(VENV)/bin/python bench/fleet_demo.py

bench: setup $(PEER_STAMP)
	$(VENV)/bin/python -m bench $(BENCH)

$(PEER_STAMP): bench/peer-requirements.lock
	@test -x $(PEER_VENV)/bin/python || $(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r bench/peer-requirements.lock
	@touch $(PEER_STAMP)

# On a Raspberry Pi, as root: a `playout` system user, the code and a venv under /opt/playout,
# /etc/playout/schedule.yaml (kept if present), and the systemd service enabled and started.
install: runtime-packages
	bash systemd/install.sh

# On the province's server, as root: a `playout-centre` system user, Mosquitto, the code and venv under
# /opt/playout, the centre in /var/lib/playout-centre (made once, never replaced) and its service started.
install-centre: runtime-packages
	bash systemd/install-centre.sh

# Re-pin after changing dependencies in pyproject.toml (needs uv on the developer's machine).
# A Pi installs requirements-runtime.lock (no development tools), and requirements-piper.lock only when a
# Piper voice is configured: both are cut from requirements.lock (-c), so they pin its versions and hashes.
# The override's impossible marker drops Piper's packages, and what only they need, from the runtime lock.
PIPER_PACKAGES := piper-tts onnxruntime
lock:
	uv pip compile pyproject.toml requirements-build.in --extra dev --universal --python-version 3.11 --generate-hashes -o requirements.lock
	uv pip compile pyproject.toml requirements-build.in --universal --python-version 3.11 --generate-hashes -c requirements.lock --override <(printf '%s ; python_version < "3"\n' $(PIPER_PACKAGES)) --custom-compile-command "make lock" -o requirements-runtime.lock
	printf '%s\n' $(PIPER_PACKAGES) | uv pip compile - --universal --python-version 3.11 --generate-hashes -c requirements.lock --custom-compile-command "make lock" -o requirements-piper.lock

clean:
	rm -rf $(VENV) $(PEER_VENV) var .pytest_cache
