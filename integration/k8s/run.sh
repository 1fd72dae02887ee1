#!/usr/bin/env bash
# run.sh: make test-k8s. The backfill as the Indexed Job of deploy/k8s on a real
# single-node Kubernetes cluster on this machine (cluster.sh), against the REST catalog
# and S3 server of the integration suite (../servers), with one pod killed with
# SIGKILL in the middle of a partition. Passes when Kubernetes restarted that index,
# every index succeeded, the branch has every partition once and its rows equal, row
# for row, those of the same backfill run by a single process. Ends with
#
#   k8s-summary: job=<name> succeeded=N/N restarts=R partitions=P rows-match=yes
#
# Everything it starts (servers, etcd, containerd, the control plane, the kubelet,
# the pods) is stopped on any exit. Installs what is missing first (install.sh; the
# first run builds Kubernetes: ~10-15 min on 2 busy cores).
#
# Environment: ICEFILL_IT_CACHE (default <repo>/.cache), S3_SERVER (as in
# run.sh of the integration suite), K8S_PYTHON (a Python with PyYAML; the Makefile
# passes the kubernetes-validate venv's), K8S_COMPLETIONS (4), K8S_PARALLELISM (2),
# K8S_EVENTS_PER_DAY (40000), K8S_VICTIM_INDEX (1).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../servers/lib.sh"
cd "$IT_ROOT"
HERE=$IT_ROOT/integration/k8s
SERVERS=$IT_ROOT/integration/servers
K=$RUN/k8s
PY=${K8S_PYTHON:-python3}
JOB=icefill-backfill
COMPLETIONS=${K8S_COMPLETIONS:-4}
PARALLELISM=${K8S_PARALLELISM:-2}
EVENTS_PER_DAY=${K8S_EVENTS_PER_DAY:-40000}
VICTIM=${K8S_VICTIM_INDEX:-1}
EVENTS_FROM=2024-02-23 FROM=2024-03-01 TO=2024-03-12 # 12 partitions, a week of lookback before them
PARTITIONS=12
TABLE=k8s_it.clv_daily
LOGS=$RUN/k8s-test
MARKER=icefill-k8s-$$-$RANDOM

stop_all() {
	local rc=$?
	if ((rc != 0)) && [[ -d $K/pod-logs ]]; then
		echo "== pod logs (last lines each; all under $K/pod-logs)"
		find "$K/pod-logs" -name '*.log' | sort | while read -r f; do
			echo "--- $f"
			tail -n 8 "$f" | cut -c1-400
		done
	fi
	"$HERE/cluster.sh" stop || true
	"$SERVERS/rest-catalog.sh" stop >/dev/null 2>&1 || true
	"$SERVERS/s3.sh" stop >/dev/null 2>&1 || true
}
trap stop_all EXIT
trap 'exit 130' INT TERM

fail() {
	echo "k8s: FAIL: $*" >&2
	exit 1
}

timed() { timed_to "$LOGS/timings.txt" "$@"; }

t_all=$(now_s)
rm -rf "$LOGS"
mkdir -p "$LOGS"
: >"$LOGS/timings.txt"
"$PY" -c 'import yaml' 2>/dev/null || die "$PY has no PyYAML: set K8S_PYTHON (make test-k8s does)"

timed "install S3 server (${S3_SERVER:-minio})" "$SERVERS/s3.sh" install
timed "install REST catalog" "$SERVERS/rest-catalog.sh" install
timed "install Kubernetes and images" "$HERE/install.sh" all
ICE=$CACHE/k8s/images/icefill # the worker image's binary, run here too
IMAGE=$(cat "$CACHE/k8s/images/icefill.ref")
(cd "$IT_ROOT" && go build -o "$CACHE/k8s/rowdiff" ./integration/k8s/rowdiff) || die "building rowdiff failed"

start_servers() {
	S3=$("$SERVERS/s3.sh" start)
	REST=$("$SERVERS/rest-catalog.sh" start)
}
timed "start S3 and REST catalog" start_servers
timed "start Kubernetes" "$HERE/cluster.sh" start
kubectl() { "$CACHE/k8s/bin/kubectl" --kubeconfig "$K/kubeconfig" "$@"; }

export ICEFILL_CATALOG_URI=$REST ICEFILL_TABLE=$TABLE ICEFILL_S3_ENDPOINT=$S3 ICEFILL_S3_REGION=$AWS_REGION
export ICEFILL_S3_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID ICEFILL_S3_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
export ICEFILL_LOG_FORMAT=json
SOURCE=s3://${S3_BUCKETS%% *}/events

make_data() {
	"$ICE" gen-events --out "$SOURCE" --from "$EVENTS_FROM" --to "$TO" --events-per-day "$EVENTS_PER_DAY" --seed 11 >"$LOGS/gen.log" 2>&1 ||
		{ cat "$LOGS/gen.log"; fail "gen-events"; }
	# main as production has it (the legacy logic), so the branches overwrite real data.
	"$ICE" run --source "$SOURCE" --from "$FROM" --to "$TO" --logic legacy --branch main --write-main --order oldest-first >"$LOGS/main.log" 2>&1 ||
		{ tail -n 20 "$LOGS/main.log"; fail "building main"; }
}
timed "events and main (legacy)" make_data

single_run() {
	"$ICE" run --source "$SOURCE" --from "$FROM" --to "$TO" --branch single --workers 1 >"$LOGS/single.log" 2>&1 ||
		{ tail -n 20 "$LOGS/single.log"; fail "the single-process run"; }
}
timed "single-process run (branch single)" single_run

# ---- the Job ----
K8S_CONFIG="ICEFILL_SOURCE=$SOURCE
ICEFILL_FROM=$FROM
ICEFILL_TO=$TO
ICEFILL_LOGIC=corrected
ICEFILL_ORDER=newest-first
ICEFILL_BRANCH=k8s
ICEFILL_CATALOG_URI=$REST
ICEFILL_TABLE=$TABLE
ICEFILL_S3_ENDPOINT=$S3
ICEFILL_S3_REGION=$AWS_REGION
"
K8S_CONFIG=$K8S_CONFIG K8S_IMAGE=$IMAGE K8S_COMPLETIONS=$COMPLETIONS K8S_PARALLELISM=$PARALLELISM K8S_MARKER=$MARKER \
	"$PY" "$HERE/overlay.py" "$IT_ROOT/deploy/k8s" >"$LOGS/manifests.yaml"

# victim_pid: the icefill process of the victim index's pod: among the processes
# of the cluster's pod cgroups (cluster.sh), the one with the marker variable the
# overlay puts in the pods' environment and the victim's JOB_COMPLETION_INDEX.
victim_pid() {
	local p
	for p in $(cat /sys/fs/cgroup/pids/icefill-it-k8s/kubepods*/*/pod*/*/cgroup.procs /sys/fs/cgroup/pids/icefill-it-k8s/kubepods*/pod*/*/cgroup.procs 2>/dev/null); do
		if grep -qzxF "ICEFILL_K8S_TEST=$MARKER" "/proc/$p/environ" 2>/dev/null &&
			grep -qzxF "JOB_COMPLETION_INDEX=$VICTIM" "/proc/$p/environ" 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# victim_log: the log file of the first pod of the victim index.
victim_log() { find "$K/pod-logs" -path "*_${JOB}-${VICTIM}-*/icefill/*.log" 2>/dev/null | head -n 1 || true; }

commits_in() { grep -c '"msg":"partition committed"' "$1" 2>/dev/null || true; }

# kill_mid_partition: once the victim's pod has committed a partition and has more
# to do, wait a third of that partition's time (into the next one) and SIGKILL it,
# as the kernel's OOM killer or a lost node would.
kill_mid_partition() {
	local start f n took todo pid
	start=$(date +%s)
	while (($(date +%s) - start < 600)); do
		f=$(victim_log)
		if [[ -n $f ]]; then
			n=$(commits_in "$f")
			todo=$(grep -o '"to_compute":[0-9]*' "$f" | head -n 1 | cut -d: -f2 || true)
			if ((n >= 1)) && [[ -n $todo ]]; then
				((n < todo)) || fail "index $VICTIM finished its $todo partitions before it could be killed (raise K8S_EVENTS_PER_DAY)"
				took=$(grep '"msg":"partition committed"' "$f" | tail -n 1 | grep -o '"took_ms":[0-9]*' | cut -d: -f2 || true)
				sleep "$(awk -v t="${took:-900}" 'BEGIN { printf "%.2f", t / 3000 }')"
				pid=$(victim_pid) || fail "no process of index $VICTIM to kill"
				if (($(commits_in "$f") == n)); then
					kill -KILL "$pid"
					KILLED_AFTER=$n KILLED_TODO=$todo
					log "killed index $VICTIM (pid $pid) with SIGKILL after $n of its $todo partitions, ~${took} ms/partition, in the middle of the next"
					return 0
				fi
			fi
		fi
		sleep 0.2
	done
	fail "index $VICTIM never committed a partition"
}

job_cond() { kubectl get job "$JOB" -o "jsonpath={.status.conditions[?(@.type==\"$1\")].status}" 2>/dev/null; }

run_job() {
	kubectl apply -f "$LOGS/manifests.yaml" >&2
	kill_mid_partition
	local start
	start=$(date +%s)
	until [[ $(job_cond Complete) == True ]]; do
		[[ $(job_cond Failed) == True ]] && { kubectl get job "$JOB" -o yaml | sed -n '/^status:/,$p' >&2; fail "the Job failed"; }
		(($(date +%s) - start < 900)) || fail "the Job did not complete in 15 min"
		sleep 1
	done
}
timed "the Job (${COMPLETIONS} indexes, ${PARALLELISM} at once)" run_job

# ---- checks ----
succeeded=$(kubectl get job "$JOB" -o 'jsonpath={.status.succeeded}')
restarts=$(kubectl get job "$JOB" -o 'jsonpath={.status.failed}')
kubectl get pods -l "job-name=$JOB" -o 'jsonpath={range .items[*]}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index} {.status.phase} {.status.containerStatuses[0].state.terminated.exitCode} {.metadata.name}{"\n"}{end}' |
	sort -n >"$LOGS/pods.txt"
echo "== pods (index phase exit name)"
sed 's/^/  /' "$LOGS/pods.txt"
[[ $succeeded == "$COMPLETIONS" ]] || fail "succeeded $succeeded of $COMPLETIONS indexes"
grep -q "^$VICTIM Failed 137 " "$LOGS/pods.txt" || fail "no pod of index $VICTIM failed with 137 (SIGKILL)"
grep -q "^$VICTIM Succeeded 0 " "$LOGS/pods.txt" || fail "Kubernetes did not restart index $VICTIM to success"
((restarts >= 1)) || fail "the Job counts no failed pod"
# The replacement pod resumed from the checkpoints: it planned only what the killed
# pod had not committed.
want_plan="\"to_compute\":$((KILLED_TODO - KILLED_AFTER)),\"already_done\":$KILLED_AFTER"
echo "  index $VICTIM: killed after $KILLED_AFTER of its $KILLED_TODO partitions"
find "$K/pod-logs" -path "*_${JOB}-${VICTIM}-*/icefill/*.log" -exec grep -qF "$want_plan" {} \; -print | grep -q . ||
	fail "no restarted pod of index $VICTIM planned to redo $((KILLED_TODO - KILLED_AFTER)) partitions and skip the $KILLED_AFTER committed"
echo "  index $VICTIM: the restarted pod skipped the $KILLED_AFTER committed and redid the other $((KILLED_TODO - KILLED_AFTER))"

# The pods took their memory budget from the manifest's ICEFILL_MEMORY_LIMIT.
budget_logs=$(find "$K/pod-logs" -name '*.log' -exec grep -l '"msg":"memory budget".*"from":"--memory-limit"' {} + | wc -l)
echo "  pods that took their memory budget from ICEFILL_MEMORY_LIMIT: $budget_logs"
((budget_logs >= COMPLETIONS)) || fail "only $budget_logs pod logs show the budget of ICEFILL_MEMORY_LIMIT"

"$ICE" status --branch k8s --json >"$LOGS/status.json" || fail "icefill status --branch k8s"
read -r done total failed < <("$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["done"], s["total"], len(s.get("failed") or []))' "$LOGS/status.json")
echo "  branch k8s: $done of $total partitions done, $failed failed"
[[ $done == "$PARTITIONS" && $total == "$PARTITIONS" && $failed == 0 ]] || fail "branch k8s: $done/$total done, $failed failed; want $PARTITIONS/$PARTITIONS, 0"

t_cmp=$(now_s)
"$CACHE/k8s/rowdiff" single k8s | tee "$LOGS/rowdiff.txt" || fail "branch k8s differs from the single-process run"
printf 'compare rows: %s s\n' "$(elapsed "$t_cmp")" >>"$LOGS/timings.txt"
parts=$(sed -n 's/.* k8s rows=[0-9]* partitions=\([0-9]*\) .*/\1/p' "$LOGS/rowdiff.txt")
[[ $parts == "$PARTITIONS" ]] || fail "branch k8s holds $parts partitions, want $PARTITIONS"

echo "== timings"
sed 's/^/  /' "$LOGS/timings.txt"
echo "  total $(elapsed "$t_all") s"
echo "k8s-summary: job=$JOB succeeded=$succeeded/$COMPLETIONS restarts=$restarts partitions=$parts rows-match=yes"
