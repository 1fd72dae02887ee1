#!/usr/bin/env bash
# run.sh: the one entry point of the integration tests (make test-integration).
#
# Installs whatever is missing into the cache (S3 server, REST catalog classpath,
# Trino server and CLI, readers' venv with DuckDB and Spark jars; each reused on
# later runs), runs
#   go test -tags integration ./integration/ -count=1 -v -timeout 60m
# (TestMain starts and stops the servers, Trino included), prints how many rows each reader saw
# at each step and what the fault proxies injected, and stops the servers on any
# exit.
#
# Environment: S3_SERVER=minio|seaweedfs (default minio), ICEFILL_IT_CACHE (default
# <repo>/.cache), GO_TEST_ARGS (extra go test arguments, e.g. -run TestSQLite),
# ICEFILL_IT_FAULT_SEED (the fault proxies' random seed; a default is printed).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/servers/lib.sh"
cd "$IT_ROOT"
SERVERS=$IT_ROOT/integration/servers

stop_all() {
	"$SERVERS/trino.sh" stop >/dev/null 2>&1 || true
	"$SERVERS/rest-catalog.sh" stop >/dev/null 2>&1 || true
	"$SERVERS/s3.sh" stop >/dev/null 2>&1 || true
}
trap stop_all EXIT
trap 'exit 130' INT TERM

timed() { timed_to "$RUN/timings.txt" "$@"; }

t_all=$(now_s)
: >"$RUN/timings.txt"
timed "install S3 server (${S3_SERVER:-minio})" "$SERVERS/s3.sh" install
timed "install REST catalog" "$SERVERS/rest-catalog.sh" install
timed "install Trino" nice -n 10 "$SERVERS/trino.sh" install
timed "install readers" "$IT_ROOT/integration/readers/setup.sh"

t_test=$(now_s)
set +e
# shellcheck disable=SC2086 # GO_TEST_ARGS is a list of words
go test -tags integration ./integration/ -count=1 -v -timeout 60m ${GO_TEST_ARGS:-} 2>&1 | tee "$RUN/go-test.log"
rc=${PIPESTATUS[0]}
set -e
printf 'go test: %s s\n' "$(elapsed "$t_test")" >>"$RUN/timings.txt"

echo
echo "== what each reader saw (rows per ref; icefill's own scan in parentheses)"
grep -h 'reader-summary:' "$RUN/go-test.log" | sed -e 's/^.*reader-summary: */  /' || echo "  (no reader ran)"
echo "== faults injected by the fault proxies (TestFaultInjection)"
grep -h 'fault-summary:' "$RUN/go-test.log" | sed -e 's/^.*fault-summary: */  /' || echo "  (no fault test ran)"
echo "== timings"
sed 's/^/  /' "$RUN/timings.txt"
echo "  total: $(elapsed "$t_all") s"
if ((rc == 0)); then echo "integration: PASS"; else echo "integration: FAIL (go test exit $rc; full log $RUN/go-test.log)"; fi
exit "$rc"
