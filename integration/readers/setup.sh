#!/usr/bin/env bash
# setup.sh: install what the readers need, once, into the cache:
#   $CACHE/venv         Python venv from requirements.txt (pyiceberg, pyarrow, pyspark, duckdb…)
#   $CACHE/spark-jars   Iceberg Spark runtime + AWS bundle + sqlite-jdbc (spark-jars.pom.xml)
# Re-running is cheap: each part is redone only when its pinned inputs change.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../servers/lib.sh"
HERE=$IT_ROOT/integration/readers
VENV=$CACHE/venv
JARS=$CACHE/spark-jars

venv_key=$( (cat "$HERE/requirements.txt"; python3 --version) | sha256sum | cut -c1-16)
if ! stamp_ok "$VENV" "$venv_key" || [[ ! -x $VENV/bin/python ]]; then
	t0=$(now_s)
	log "creating the readers' venv in $VENV (pyiceberg, pyarrow, pyspark; ~500 MB download the first time)"
	rm -rf "$VENV"
	python3 -m venv "$VENV"
	PIP_CACHE_DIR=$CACHE/pip "$VENV/bin/python" -m pip install -q --no-input -r "$HERE/requirements.txt" >&2
	stamp_set "$VENV" "$venv_key"
	log "venv ready in $(elapsed "$t0") s"
fi

jars_key=$(sha256sum "$HERE/spark-jars.pom.xml" | cut -c1-16)
if ! stamp_ok "$JARS" "$jars_key"; then
	t0=$(now_s)
	log "downloading Spark's Iceberg jars from Maven Central into $JARS"
	rm -rf "$JARS.tmp"
	mvn_cached -f "$HERE/spark-jars.pom.xml" dependency:copy-dependencies -DexcludeTransitive=true \
		-DoutputDirectory="$JARS.tmp" >&2 || die "could not download the Spark jars"
	rm -rf "$JARS"
	mv "$JARS.tmp" "$JARS"
	stamp_set "$JARS" "$jars_key"
	log "Spark jars ready in $(elapsed "$t0") s"
fi
