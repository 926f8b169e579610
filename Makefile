# Makefile — the entry points for developers and CI (.ci/run runs `make test`).
#
#   make services-up    install (pinned) and start the local stack, write .local/services.env
#   make services-down  stop what services-up started (keeps caches and data)
#   make build          compile everything; bin/baasmigrate once cmd/baasmigrate exists
#   make test           services-up, then all tests with -race; services are REQUIRED
#   make demo           services-up, then scripts/demo.sh (or a description of the stack)
#   make lint           gofmt, go vet, shellcheck (when installed)
#   make bench-documents, bench-files, bench-sync, bench-tables
#                       benchmark programs; they record their section in BENCHMARKS.md
#   make check-report   render a verify report of the demo in headless Chromium (after make demo)
#   make fuzz           run every native Go fuzz target for FUZZTIME (default 30s) each
#   make chaos          services-up, then the fault campaign (e2e/chaos); records RELIABILITY.md

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO ?= go
ENV_FILE := .local/services.env
TEST_TIMEOUT ?= 25m
FUZZTIME ?= 30s
# CHAOS_FLAGS is passed to the campaign, e.g. CHAOS_FLAGS='-seed 42 -only documents/kill9'.
CHAOS_FLAGS ?=

.PHONY: services-up services-down build test demo lint bench-documents bench-files bench-sync bench-tables bench-dynamodb bench-cognito check-report fuzz chaos

services-up:
	scripts/services-up.sh

services-down:
	scripts/services-down.sh

build:
	$(GO) build ./...
	@if compgen -G 'cmd/baasmigrate/*.go' >/dev/null; then \
		$(GO) build -o bin/baasmigrate ./cmd/baasmigrate && echo "built bin/baasmigrate"; \
	else \
		echo "build: cmd/baasmigrate has no Go files yet; bin/baasmigrate not built"; \
	fi

# BAASMIGRATE_REQUIRE_SERVICES=1 turns every "service not configured" skip in
# internal/testenv into a failure: a green `make test` means every test ran.
test: services-up
	set -a; . $(ENV_FILE); set +a; \
	export BAASMIGRATE_REQUIRE_SERVICES=1; \
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# Secrets are masked when printing; the full values are in $(ENV_FILE).
demo: services-up
	@if [[ -x scripts/demo.sh ]]; then \
		scripts/demo.sh; \
	else \
		echo "No scripts/demo.sh yet. The local stack is up; its environment ($(ENV_FILE), secrets masked):"; \
		sed -E "s#(://[^:/]+:)[^@]*@#\1***@#; s#^(export [A-Z0-9_]*(PASSWORD|SECRET)[A-Z0-9_]*=).*#\1'***'#" $(ENV_FILE); \
	fi

lint:
	@out=$$(gofmt -l $$($(GO) list -f '{{.Dir}}' ./...)); \
	if [[ -n $$out ]]; then echo "gofmt would reformat:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v shellcheck >/dev/null; then \
		shellcheck -x scripts/*.sh .ci/run; \
	else \
		echo "lint: shellcheck not installed (apt-get install shellcheck); shell scripts not checked"; \
	fi

bench-documents: services-up
	$(GO) run ./bench/documents -record BENCHMARKS.md

bench-files: services-up
	$(GO) run ./bench/files -record BENCHMARKS.md

# BENCH_TABLES_FLAGS shortens a smoke run, e.g. BENCH_TABLES_FLAGS='-rows 50000 -runs 1'.
BENCH_TABLES_FLAGS ?=
bench-tables: services-up
	$(GO) run ./bench/tables -record BENCHMARKS.md $(BENCH_TABLES_FLAGS)

# BENCH_SYNC_FLAGS shortens a smoke run, e.g. BENCH_SYNC_FLAGS='-duration 10s -cutover-docs 2000,20000'.
BENCH_SYNC_FLAGS ?=
bench-sync: services-up
	$(GO) run ./bench/sync -record BENCHMARKS.md $(BENCH_SYNC_FLAGS)

# BENCH_DYNAMODB_FLAGS / BENCH_COGNITO_FLAGS shorten a smoke run, e.g. '-items 20000 -runs 1' / '-users 200 -runs 1'.
BENCH_DYNAMODB_FLAGS ?=
bench-dynamodb: services-up
	$(GO) run ./bench/dynamodb -record BENCHMARKS.md $(BENCH_DYNAMODB_FLAGS)

BENCH_COGNITO_FLAGS ?=
bench-cognito: services-up
	$(GO) run ./bench/cognito -record BENCHMARKS.md $(BENCH_COGNITO_FLAGS)

check-report:
	scripts/check-html-report.sh

# Seed corpora already run as ordinary tests under `make test`; this adds
# FUZZTIME of random exploration per target, one target at a time.
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# The fault campaign: kinds x faults, each verified (verify + direct counts).
# Not part of `make test` (about 10 minutes). Exits non-zero when anything
# was lost or duplicated, or a case failed; the seed it prints makes the
# kill points repeatable (CHAOS_FLAGS='-seed N').
chaos: services-up
	set -a; . $(ENV_FILE); set +a; \
	$(GO) run ./e2e/chaos/cmd/chaos -record RELIABILITY.md $(CHAOS_FLAGS)
