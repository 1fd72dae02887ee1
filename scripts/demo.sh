#!/usr/bin/env bash
# The main job end to end on the embedded default catalog (SQLite file +
# local warehouse under ./icefill-data): generate 90 days of raw events,
# build the buggy production table on main with the legacy logic, backfill
# the corrected logic onto branch clv-fix, kill it part-way (kill -9, at
# the worst moment: data files written, commit not yet made), resume, and
# compare main with the branch; then validate the branch against main,
# promote it, and roll the promotion back; write the report page.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./bin/icefill
DATA=./icefill-data
FROM=2024-01-01
TO=2024-03-30
EVENTS=${DEMO_EVENTS_PER_DAY:-20000}
export ICEFILL_LOG_LEVEL=${ICEFILL_LOG_LEVEL:-warn}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "fresh start: removing $DATA"
rm -rf "$DATA"

step "1. generate 90 days of raw events ($EVENTS/day, schema v1 until 2024-02-14, v2 after)"
$BIN gen-events --out "$DATA/events" --from $FROM --to $TO --events-per-day "$EVENTS" --v2-from 2024-02-15 --seed 42

step "2. build production main with the legacy (buggy) logic"
$BIN run --source "$DATA/events" --from $FROM --to $TO --logic legacy --branch main --write-main --order oldest-first

step "3. backfill the corrected logic onto branch clv-fix — the process will be killed (kill -9) after 30 partitions"
set +e
ICEFILL_FAULT=before-commit:31 $BIN run --source "$DATA/events" --from $FROM --to $TO --branch clv-fix
rc=$?
set -e
echo "run exited with status $rc (137 = killed by SIGKILL)"
[ "$rc" -ne 0 ] || { echo "demo: the run was supposed to be killed" >&2; exit 1; }

step "4. what the catalog knows after the crash (any machine can ask)"
$BIN status --branch clv-fix

step "5. the killed attempt left data files no snapshot references"
$BIN gc --min-age 0s --dry-run

step "6. resume: the same command continues where it stopped"
$BIN run --source "$DATA/events" --from $FROM --to $TO --branch clv-fix --gc-min-age 0s

step "7. status after the resume"
$BIN status --branch clv-fix

step "8. main (legacy, what readers still see) beside clv-fix (corrected)"
$BIN totals --refs main,clv-fix

step "9. validate clv-fix against main, declaring the differences the fix intends (spec §5)"
$BIN validate --base main --candidate clv-fix --expected docs/expected-clv-fix.yaml --report "$DATA/validation.json" --html "$DATA/validation.html" --sample 5

step "10. the same validation without declaring them fails, and says why"
set +e
$BIN validate --base main --candidate clv-fix --no-record --sample 3 > "$DATA/validation-undeclared.txt"
rc=$?
set -e
# The verdict and the failed checks with their column headers; the whole
# report is in the file.
sed -n '/^RESULT/p; /^FAILED CHECKS/,/^$/p' "$DATA/validation-undeclared.txt" | head -n 14
echo "  (the full report: $DATA/validation-undeclared.txt)"
echo "validate exited with status $rc (1 = failed)"
[ "$rc" -eq 1 ] || { echo "demo: undeclared differences were supposed to fail" >&2; exit 1; }

step "11. promote clv-fix onto main (tags the old main first)"
$BIN promote --branch clv-fix --notify-cmd 'echo "  notified downstream: $ICEFILL_KIND main $ICEFILL_FROM_SNAPSHOT -> $ICEFILL_TO_SNAPSHOT"'
$BIN totals --refs main,clv-fix

step "12. roll the promotion back: main is as before"
$BIN rollback
$BIN totals --refs main,clv-fix

step "13. the table's story, from the catalog"
$BIN history

step "14. the same story as a page: partitions, progress, last validation, history"
REPORT=$($BIN report --branch clv-fix --html "$DATA/report.html")
echo "report: $REPORT (one self-contained file; open it in any browser)"
echo
echo "The catalog is $DATA/catalog.db (catalog name 'icefill', table analytics.clv_daily,"
echo "warehouse $DATA/warehouse): PyIceberg's SqlCatalog and Spark's JdbcCatalog open it as it is."
