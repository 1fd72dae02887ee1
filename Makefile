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
BENCH_COMMITS ?= 1000

.PHONY: all build test test-integration lint bench demo clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/icefill

test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

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
# Apache Iceberg REST catalog) and real readers (PyIceberg, Spark). The first
# run installs everything into .cache/ or $$ICEFILL_IT_CACHE (about 13 min with
# the MinIO build); later runs take about 2 min.
test-integration:
	./integration/run.sh

demo: build
	./scripts/demo.sh

bench: build
	./scripts/bench.sh $(BENCH_DAYS) $(BENCH_EVENTS) $(BENCH_COMMITS)

clean:
	rm -rf bin icefill-data
