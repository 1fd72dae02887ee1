# icefill build, test and benchmark entry points. Everything a fresh machine
# needs is fetched by these targets (Go modules, linters); nothing else.

GO        ?= go
BIN       := bin/icefill
CACHE     := $(CURDIR)/.cache
GOBIN_DIR := $(CACHE)/bin
STATICCHECK_VERSION := v0.8.2
# Benchmark size: the issue's 10 days x 1,000,000 events.
BENCH_DAYS   ?= 10
BENCH_EVENTS ?= 1000000
BENCH_COMMITS ?= 1825
# The external path: one partition whose 8-day window holds 8 x
# BENCH_SPILL_EVENTS events (24 M by default, the size the documented
# figures use), in memory and under each of BENCH_MEMORY_LIMIT
# (comma-separated). About 5 minutes of make bench on 2 cores.
BENCH_SPILL_EVENTS ?= 3000000
BENCH_MEMORY_LIMIT ?= 256MiB,512MiB
# bench-rest: the same commit benchmark on the real REST catalog, and the
# contention benchmark (worker processes per pass, partitions each).
BENCH_REST_COMMITS ?= 1825
BENCH_PROCS        ?= 1,4,16
BENCH_PER_PROC     ?= 8
# Offline validation of deploy/k8s against the Kubernetes 1.34 API schemas
# that the PyPI package kubernetes-validate ships (no download at run time).
K8S_VALIDATE_VERSION := 1.37.0
K8S_VALIDATE_VENV    := $(or $(ICEFILL_IT_CACHE),$(CACHE))/k8s-validate-$(K8S_VALIDATE_VERSION)
K8S_MANIFESTS        := deploy/k8s/configmap.yaml deploy/k8s/secret.yaml deploy/k8s/job.yaml

.PHONY: all build test test-integration test-k8s validate-manifests test-browser browser-deps lint bench bench-rest demo clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/icefill

test: validate-manifests
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

validate-manifests: $(K8S_VALIDATE_VENV)/bin/kubernetes-validate
	$(K8S_VALIDATE_VENV)/bin/kubernetes-validate -k 1.34.0 --strict $(K8S_MANIFESTS)

$(K8S_VALIDATE_VENV)/bin/kubernetes-validate:
	rm -rf $(K8S_VALIDATE_VENV)
	python3 -m venv $(K8S_VALIDATE_VENV)
	$(K8S_VALIDATE_VENV)/bin/python -m pip install -q --no-input kubernetes-validate==$(K8S_VALIDATE_VERSION)

# The report page in a real browser: Debian's Chromium driven by chromedp
# (make test runs it too, and skips it when no Chromium is installed). The
# screenshot lands in .cache/browser/_artifacts/.
browser-deps:
	./scripts/install-chromium.sh

test-browser: browser-deps
	mkdir -p $(CACHE)/browser
	$(GO) test -count=1 -v -run TestReportInBrowser -artifacts -outputdir $(CACHE)/browser ./cmd/icefill

# lint fails on anything gofmt would change, on go.mod/go.sum that go mod
# tidy would change, on vet findings and on staticcheck findings.
lint: $(GOBIN_DIR)/staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GOBIN_DIR)/staticcheck ./...

$(GOBIN_DIR)/staticcheck:
	GOBIN=$(GOBIN_DIR) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# Integration tests against real servers (MinIO, or S3_SERVER=seaweedfs; the
# Apache Iceberg REST catalog; Trino) and real readers (PyIceberg, Spark, Trino,
# DuckDB). The first run installs everything into .cache/ or $$ICEFILL_IT_CACHE
# (see integration/README.md for the timings); later runs reuse it.
test-integration:
	./integration/run.sh

# The backfill as deploy/k8s's Indexed Job on a real single-node Kubernetes cluster
# started on this machine (etcd, containerd and runc from Debian, Kubernetes built
# from the Go module proxy; loopback only), against the integration suite's REST
# catalog and S3 server; one pod is killed mid-partition. Needs root. The first run
# builds Kubernetes into .cache/ or $$ICEFILL_IT_CACHE (see deploy/k8s/README.md).
test-k8s: $(K8S_VALIDATE_VENV)/bin/kubernetes-validate
	K8S_PYTHON=$(K8S_VALIDATE_VENV)/bin/python ./integration/k8s/run.sh

demo: build
	./scripts/demo.sh

bench: build
	./scripts/bench.sh $(BENCH_DAYS) $(BENCH_EVENTS) $(BENCH_COMMITS) $(BENCH_SPILL_EVENTS) $(BENCH_MEMORY_LIMIT)

# Commit latency to $(BENCH_REST_COMMITS) partitions and contention between
# worker processes, on the Apache Iceberg REST catalog and an S3 server
# started by integration/servers (installed into the cache on first use).
bench-rest: build
	./scripts/bench-rest.sh $(BENCH_REST_COMMITS) $(BENCH_PROCS) $(BENCH_PER_PROC)

clean:
	rm -rf bin icefill-data
