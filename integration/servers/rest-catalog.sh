#!/usr/bin/env bash
# rest-catalog.sh {start|stop|status|install}: the Apache Iceberg reference REST
# catalog server (org.apache.iceberg.rest.RESTCatalogServer) on a free port, with a
# JdbcCatalog on a SQLite file as its store and S3FileIO on the S3 server of s3.sh.
#
# Maven Central has the server's classes but not the project's runnable fat jar
# (iceberg-open-api-test-fixtures-runtime is built by the Iceberg project only for
# its Docker image), so the runtime classpath is assembled from published artifacts
# listed in rest-catalog.pom.xml (Iceberg 1.11.0) and started with java -cp.
#
# start prints the catalog URI (http://127.0.0.1:PORT) on stdout and writes
# $RUN/rest-catalog.{pid,port,log}; the catalog database is $RUN/rest-catalog.db,
# new at every start.
#
# Environment:
#   CATALOG_S3_ENDPOINT   S3 endpoint (default: the s3.sh server, from $RUN/s3.port)
#   CATALOG_WAREHOUSE     default s3://<first of S3_BUCKETS>/warehouse
#   REST_CATALOG_PORT     port (default: a free one)
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION   for S3FileIO
#   Any other CATALOG_* variable becomes a catalog property (CATALOG_A_B__C = a.b-c).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=rest-catalog
POM=$IT_ROOT/integration/servers/rest-catalog.pom.xml
LIB=$CACHE/rest-catalog/lib
MAIN_CLASS=org.apache.iceberg.rest.RESTCatalogServer

install() {
	local key t0
	key=$(sha256sum "$POM" | cut -c1-16)
	if stamp_ok "$LIB" "$key"; then
		return 0
	fi
	t0=$(now_s)
	log "downloading the REST catalog server's classpath from Maven Central (rest-catalog.pom.xml)"
	rm -rf "$LIB.tmp"
	mvn_cached -f "$POM" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIB.tmp" >&2 ||
		die "could not download the REST catalog server's jars (see the Maven output above)"
	rm -rf "$LIB"
	mv "$LIB.tmp" "$LIB"
	stamp_set "$LIB" "$key"
	log "REST catalog classpath ready in $(elapsed "$t0") s ($(du -sh "$LIB" | cut -f1))"
}

start() {
	if print_if_running "$NAME"; then
		return 0
	fi
	command -v java >/dev/null || die "java not found (Java 17+ is needed)"
	install

	local s3_endpoint=${CATALOG_S3_ENDPOINT:-}
	if [[ -z $s3_endpoint ]]; then
		[[ -f $RUN/s3.port ]] || die "no S3 server: run s3.sh start first or set CATALOG_S3_ENDPOINT"
		s3_endpoint=http://127.0.0.1:$(cat "$RUN/s3.port")
	fi
	local bucket=${S3_BUCKETS%% *}
	local port=${REST_CATALOG_PORT:-$(free_port)}
	local db=$RUN/$NAME.db
	rm -f "$db" "$db-journal" "$db-wal" "$db-shm"

	local t0
	t0=$(now_s)
	# RESTCatalogServer reads every CATALOG_* variable as a catalog property:
	# CATALOG_ stripped, "__" -> "-", "_" -> ".", lower case. It listens on all
	# interfaces (it has no host setting); clients use 127.0.0.1.
	CATALOG_URI=jdbc:sqlite:$db \
		CATALOG_WAREHOUSE=${CATALOG_WAREHOUSE:-s3://$bucket/warehouse} \
		CATALOG_IO__IMPL=org.apache.iceberg.aws.s3.S3FileIO \
		CATALOG_S3_ENDPOINT=$s3_endpoint \
		CATALOG_S3_PATH__STYLE__ACCESS=true \
		CATALOG_CLIENT_REGION=$AWS_REGION \
		CATALOG_CLIENTS=${CATALOG_CLIENTS:-1} \
		CATALOG_REST_PORT=$port \
		start_detached "$NAME" "$RUN/$NAME.log" \
		java -Xmx1g -XX:+UseSerialGC -cp "$LIB/*" "$MAIN_CLASS"
	local pid
	pid=$(cat "$RUN/$NAME.pid")
	local rc=0
	wait_http "http://127.0.0.1:$port/v1/config" 120 "$pid" || rc=$?
	if ((rc != 0)); then
		log "the REST catalog did not answer GET /v1/config (status $rc); its log:"
		tail -n 40 "$RUN/$NAME.log" >&2 || true
		stop_server "$NAME"
		exit 1
	fi
	echo "$port" >"$RUN/$NAME.port"
	log "Iceberg REST catalog (pid $pid) on http://127.0.0.1:$port, warehouse ${CATALOG_WAREHOUSE:-s3://$bucket/warehouse}, S3 $s3_endpoint; up in $(elapsed "$t0") s"
	echo "http://127.0.0.1:$port"
}

server_main "$NAME" "$@"
