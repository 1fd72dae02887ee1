#!/usr/bin/env bash
# Prints every benchmark figure the README quotes. One process per
# measurement so each peak-memory figure is its own.
# Usage: scripts/bench.sh DAYS EVENTS_PER_DAY COMMITS [SPILL_EVENTS_PER_DAY [MEMORY_LIMITS]]
# MEMORY_LIMITS is a comma-separated list of budgets for the external path.
set -euo pipefail
days=${1:-10}
events=${2:-1000000}
commits=${3:-1825}
spill_events=${4:-1000000}
limits=${5:-256MiB,512MiB}
for logic in corrected legacy; do
  ./bin/icefill bench --mode compute --days "$days" --events-per-day "$events" --logic "$logic"
done
./bin/icefill bench --mode run --days "$days" --events-per-day "$events" --logic corrected
./bin/icefill bench --mode commits --commits "$commits"

# One partition whose 8-day window holds 8 x SPILL_EVENTS_PER_DAY events:
# in memory, then under each --memory-limit (the external path).
./bin/icefill bench --mode compute --days 1 --events-per-day "$spill_events" --generate-only
mem=$(./bin/icefill bench --mode compute --days 1 --events-per-day "$spill_events" --json | grep '"median"')
field() { sed -E "s/.*\"$1\":([0-9.e+]+).*/\1/" <<<"$2"; }
IFS=, read -ra budgets <<<"$limits"
for limit in "${budgets[@]}"; do
  lim=$(./bin/icefill bench --mode compute --days 1 --events-per-day "$spill_events" --memory-limit "$limit" --json | grep '"median"')
  awk -v w1="$(field wall_seconds "$mem")" -v c1="$(field cpu_seconds "$mem")" -v r1="$(field peak_rss_bytes "$mem")" \
      -v w2="$(field wall_seconds "$lim")" -v c2="$(field cpu_seconds "$lim")" -v r2="$(field peak_rss_bytes "$lim")" \
      -v l="$(field memory_limit_bytes "$lim")" -v s="$(field spill_bytes_written "$lim")" -v n="$((8 * spill_events))" \
      'BEGIN { printf "window of %d events: in memory %.1fs wall %.1fs cpu peak_rss=%.0fMiB | --memory-limit %.0fMiB: %.1fs wall %.1fs cpu peak_rss=%.0fMiB (%.0f%% of the limit) spill=%.0fMiB | time ratio %.2fx wall, %.2fx cpu\n",
        n, w1, c1, r1/1048576, l/1048576, w2, c2, r2/1048576, 100*r2/l, s/1048576, w2/w1, c2/c1 }'
done
