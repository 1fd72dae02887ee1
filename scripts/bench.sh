#!/usr/bin/env bash
# Prints every benchmark figure the README quotes. One process per
# measurement so each peak-memory figure is its own.
# Usage: scripts/bench.sh DAYS EVENTS_PER_DAY COMMITS
set -euo pipefail
days=${1:-10}
events=${2:-1000000}
commits=${3:-1825}
for logic in corrected legacy; do
  ./bin/icefill bench --mode compute --days "$days" --events-per-day "$events" --logic "$logic"
done
./bin/icefill bench --mode run --days "$days" --events-per-day "$events" --logic corrected
./bin/icefill bench --mode commits --commits "$commits"
