#!/usr/bin/env bash
# Commit benchmarks against the real Apache Iceberg REST catalog and an S3
# server, started (and installed into the cache on first use) by the
# integration suite's scripts:
#   - commit latency as one branch grows to COMMITS partitions (median of 3);
#   - contention: PROCS worker processes committing tiny partitions to one
#     branch while a nightly writer commits to main; exits non-zero if any
#     partition is lost or doubled.
# Usage: scripts/bench-rest.sh [COMMITS [PROCS [PARTITIONS_PER_PROC]]]
# Environment: S3_SERVER (default seaweedfs here: a download of seconds,
# where MinIO is a 9-minute build), ICEFILL_IT_CACHE.
set -euo pipefail
export S3_SERVER=${S3_SERVER:-seaweedfs}
source "$(dirname "${BASH_SOURCE[0]}")/../integration/servers/lib.sh"
cd "$IT_ROOT"
commits=${1:-1825}
procs=${2:-1,4,16}
per=${3:-8}
SERVERS=$IT_ROOT/integration/servers
stop_all() {
	"$SERVERS/rest-catalog.sh" stop >/dev/null 2>&1 || true
	"$SERVERS/s3.sh" stop >/dev/null 2>&1 || true
}
trap stop_all EXIT
trap 'exit 130' INT TERM
s3=$("$SERVERS/s3.sh" start)
rest=$("$SERVERS/rest-catalog.sh" start)
args=(--catalog-uri "$rest" --s3-endpoint "$s3" --s3-region "$AWS_REGION")
./bin/icefill bench --mode commits --commits "$commits" "${args[@]}"
./bin/icefill bench --mode contention --procs "$procs" --partitions-per-proc "$per" "${args[@]}"
