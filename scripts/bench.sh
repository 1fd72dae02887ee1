#!/usr/bin/env bash
# Prints the compute benchmark figures: one process per logic so each peak
# memory figure is that logic's own. Usage: scripts/bench.sh DAYS EVENTS_PER_DAY
set -euo pipefail
days=${1:-10}
events=${2:-1000000}
for logic in corrected legacy; do
  ./bin/icefill bench --days "$days" --events-per-day "$events" --logic "$logic"
done
