# Shared helpers of the integration server and reader scripts (sourced, not run).
#
# Layout: everything downloaded or built lives under $ICEFILL_IT_CACHE (default
# <repo>/.cache, git-ignored) and is reused by later runs; nothing there has to exist
# beforehand. Running servers keep their pid, port, log and data under $RUN
# ($ICEFILL_IT_CACHE/run).

IT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${ICEFILL_IT_CACHE:-$IT_ROOT/.cache}
RUN=$CACHE/run
mkdir -p "$CACHE" "$RUN"

# Credentials and region every server and client of the tests uses. Not secrets:
# the servers listen on loopback only for the length of a test run.
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-icefill-it}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-icefill-it-secret}
export AWS_REGION=${AWS_REGION:-us-east-1}
# The bucket(s) s3.sh creates, space separated; the first holds the warehouse.
S3_BUCKETS=${S3_BUCKETS:-icefill}

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# now_s: seconds since the epoch, with fractions.
now_s() { date +%s.%N; }
# elapsed START: seconds since START (from now_s), one decimal.
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# timed_to FILE WHAT CMD...: run CMD, then log and append "WHAT: SECONDS s" to FILE.
timed_to() {
	local file=$1 what=$2 t0
	shift 2
	t0=$(now_s)
	"$@"
	printf '%s: %s s\n' "$what" "$(elapsed "$t0")" >>"$file"
	log "$what: $(elapsed "$t0") s"
}

# free_port: a TCP port nothing listens on at the moment (the kernel's pick).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL SECONDS PID: poll URL until it answers 2xx, the process PID dies, or
# SECONDS pass.
wait_http() {
	local url=$1 limit=$2 pid=$3 start
	start=$(date +%s)
	while (($(date +%s) - start < limit)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			return 2
		fi
		if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
			return 0
		fi
		sleep 0.3
	done
	return 1
}

# is_running NAME: the server NAME started by these scripts is alive.
is_running() {
	local pidf=$RUN/$1.pid
	[[ -f $pidf ]] && kill -0 "$(cat "$pidf")" 2>/dev/null
}

# print_if_running NAME: if the server NAME runs, say so and print its URI (what
# start prints); fails otherwise.
print_if_running() {
	is_running "$1" || return 1
	log "$1: already running on port $(cat "$RUN/$1.port")"
	echo "http://127.0.0.1:$(cat "$RUN/$1.port")"
}

# stop_server NAME: SIGTERM the process group of NAME's recorded pid, SIGKILL it
# after 15 s, and remove its pid and port files. Only the pid this script family
# recorded is touched.
stop_server() {
	local name=$1 pidf=$RUN/$1.pid pid i
	if [[ ! -f $pidf ]]; then
		log "$name: not running (no $pidf)"
		return 0
	fi
	pid=$(cat "$pidf")
	if kill -0 "$pid" 2>/dev/null; then
		# Started with setsid: the pid is its own process group leader.
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 150; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "$name: pid $pid ignored SIGTERM for 15 s; SIGKILL"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$pidf" "$RUN/$name.port"
	log "$name: stopped (pid $pid)"
}

# start_detached NAME LOG CMD...: start CMD in its own session (so stop_server can
# signal its whole process group), stdin closed, output to LOG; records the pid.
start_detached() {
	local name=$1 logf=$2
	shift 2
	setsid "$@" </dev/null >"$logf" 2>&1 &
	echo $! >"$RUN/$name.pid"
}

# stamp_ok DIR KEY: DIR was completed for KEY (a version or a hash of the inputs).
stamp_ok() { [[ -f $1/.icefill-stamp && $(cat "$1/.icefill-stamp") == "$2" ]]; }
stamp_set() { printf '%s' "$2" >"$1/.icefill-stamp"; }

# mvn_cached ARGS...: Maven in batch mode with its local repository inside the cache;
# its output goes to $RUN/mvn.log and is shown only when it fails.
mvn_cached() {
	command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven)"
	if ! mvn -B -Dstyle.color=never -Dmaven.repo.local="$CACHE/m2" "$@" >"$RUN/mvn.log" 2>&1; then
		grep -E 'ERROR|BUILD' "$RUN/mvn.log" >&2 || tail -n 30 "$RUN/mvn.log" >&2
		return 1
	fi
}

# server_main NAME {start|stop|status|install}: the command line every server script
# ends with; start and install are that script's functions.
server_main() {
	local name=$1
	case ${2:-} in
	start) start ;;
	stop) stop_server "$name" ;;
	install) install ;;
	status)
		if is_running "$name"; then echo "running on http://127.0.0.1:$(cat "$RUN/$name.port")"; else
			echo "stopped"
			exit 1
		fi
		;;
	*)
		echo "usage: $0 {start|stop|status|install}" >&2
		exit 2
		;;
	esac
}
