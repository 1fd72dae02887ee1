#!/usr/bin/env bash
# cluster.sh {start|stop|kubectl ARGS…}: a real single-node Kubernetes cluster on
# 127.0.0.1, for make test-k8s. Nothing listens beyond loopback and nothing is pulled:
#
#   etcd (Debian)                 data in $K/etcd
#   containerd + runc (Debian)    its own root, state and socket under $K, CNI config
#                                 of a loopback network only (pods use hostNetwork),
#                                 the images of $CACHE/k8s/images (pause, icefill) imported
#   kube-apiserver                token auth (one admin token), AlwaysAllow
#   kube-controller-manager, kube-scheduler, kubelet (node "127.0.0.1", address
#   127.0.0.1, pods under the cgroup /icefill-it-k8s, pod logs in $K/pod-logs)
#
# K is $RUN/k8s (RUN from ../servers/lib.sh): wiped at every start. start writes
# $K/kubeconfig; stop kills the pods' containers, then every daemon (each by the pid
# it recorded), then unmounts and removes what they left under $K. Binaries come from
# install.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../servers/lib.sh"

K=$RUN/k8s
KBIN=$CACHE/k8s/bin
IMAGES=$CACHE/k8s/images
SOCK=$K/containerd.sock
CGROUP_ROOT=/icefill-it-k8s
# The node's name is its IP: that is the one way a kubelet takes a loopback
# address as the node address (--node-ip refuses loopback and would otherwise
# fall back to the default route's interface, which a test must never use).
NODE=127.0.0.1
PAUSE_IMAGE=icefill.local/pause:1
DAEMONS=(kubelet kube-scheduler kube-controller-manager kube-apiserver containerd etcd) # stop order

kubectl() { "$KBIN/kubectl" --kubeconfig "$K/kubeconfig" "$@"; }
ctr_() { ctr --address "$SOCK" -n k8s.io "$@"; }
ctr_quick() { ctr --address "$SOCK" --timeout 20s -n k8s.io "$@"; } # stopping: never hang on a dying containerd

cni_bin_dir() {
	local d
	for d in /usr/lib/cni /opt/cni/bin; do
		[[ -x $d/loopback ]] && { echo "$d"; return; }
	done
	die "no CNI loopback plugin (apt-get install containernetworking-plugins)"
}

# wait_for WHAT SECONDS CMD…: poll CMD until it succeeds; on timeout, show the
# logs of the daemons and fail.
wait_for() {
	local what=$1 limit=$2 start
	shift 2
	start=$(date +%s)
	until "$@" >/dev/null 2>&1; do
		if (($(date +%s) - start >= limit)); then
			log "$what: not ready after $limit s"
			local d
			for d in "${DAEMONS[@]}"; do
				[[ -f $K/$d.log ]] && { echo "--- $d.log (last lines)" >&2; tail -n 15 "$K/$d.log" >&2; }
			done
			return 1
		fi
		sleep 0.5
	done
}

start_daemon() {
	local name=$1
	shift
	setsid "$@" </dev/null >"$K/$name.log" 2>&1 &
	echo $! >"$K/$name.pid"
}

write_configs() {
	local token=$1 api_port=$2 kubelet_port=$3 healthz_port=$4
	mkdir -p "$K/pki" "$K/cni" "$K/pod-logs" "$K/kubelet" "$K/containerd"
	openssl genrsa -out "$K/pki/sa.key" 2048 2>/dev/null
	openssl rsa -in "$K/pki/sa.key" -pubout -out "$K/pki/sa.pub" 2>/dev/null
	echo "$token,admin,admin,system:masters" >"$K/pki/tokens.csv"
	chmod 600 "$K/pki/tokens.csv" "$K/pki/sa.key"
	cat >"$K/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: icefill-it
  cluster:
    server: https://127.0.0.1:$api_port
    insecure-skip-tls-verify: true # the apiserver's self-signed certificate, on loopback
users:
- name: admin
  user:
    token: $token
contexts:
- name: icefill-it
  context: {cluster: icefill-it, user: admin, namespace: default}
current-context: icefill-it
KC
	chmod 600 "$K/kubeconfig"
	# A CNI network with only the loopback interface: the CRI plugin needs a
	# network config to call the node ready; pods use the host's (loopback) network.
	cat >"$K/cni/10-loopback.conflist" <<'CNI'
{"cniVersion": "0.4.0", "name": "icefill-it-lo", "plugins": [{"type": "loopback"}]}
CNI
	cat >"$K/containerd.toml" <<TOML
version = 2
root = "$K/containerd/root"
state = "$K/containerd/state"
plugin_dir = ""
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  level = "warn"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$K/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # The sandbox lacks CAP_SYS_RESOURCE: without this runc fails with "can't get
  # final child's PID from pipe".
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$(cni_bin_dir)"
    conf_dir = "$K/cni"
TOML
	cat >"$K/kubelet.yaml" <<KL
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failCgroupV1: false
failSwapOn: false
podLogsDir: $K/pod-logs
makeIPTablesUtilChains: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
registerNode: true
serializeImagePulls: false
KL
}

start() {
	[[ -x $KBIN/kube-apiserver ]] || die "no Kubernetes binaries in $KBIN: run integration/k8s/install.sh first"
	(($(id -u) == 0)) || die "a kubelet and containerd need root"
	stop_cluster quiet
	rm -rf "$K"
	mkdir -p "$K"
	local token etcd_port etcd_peer api_port kubelet_port healthz_port t0
	t0=$(now_s)
	token=$(openssl rand -hex 24)
	etcd_port=$(free_port) etcd_peer=$(free_port) api_port=$(free_port) kubelet_port=$(free_port) healthz_port=$(free_port)
	write_configs "$token" "$api_port" "$kubelet_port" "$healthz_port"

	start_daemon etcd etcd --name icefill-it --data-dir "$K/etcd" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
		--initial-cluster "icefill-it=http://127.0.0.1:$etcd_peer" --logger zap --log-level warn
	start_daemon containerd containerd --config "$K/containerd.toml"
	wait_for etcd 60 curl -fsS "http://127.0.0.1:$etcd_port/health"
	wait_for containerd 60 ctr_ version
	local img
	for img in "$IMAGES"/*.tar; do
		ctr_ images import "$img" >/dev/null || die "could not import $img"
	done

	start_daemon kube-apiserver "$KBIN/kube-apiserver" \
		--etcd-servers "http://127.0.0.1:$etcd_port" \
		--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
		--cert-dir "$K/pki" --token-auth-file "$K/pki/tokens.csv" --authorization-mode AlwaysAllow \
		--service-account-issuer https://kubernetes.default.svc --service-account-key-file "$K/pki/sa.pub" \
		--service-account-signing-key-file "$K/pki/sa.key" \
		--service-cluster-ip-range "${K8S_SERVICE_RANGE:-127.0.100.0/24}" --endpoint-reconciler-type none \
		--enable-priority-and-fairness=false --profiling=false --allow-privileged=false
	wait_for kube-apiserver 180 kubectl get --raw /readyz

	start_daemon kube-controller-manager "$KBIN/kube-controller-manager" \
		--kubeconfig "$K/kubeconfig" --secure-port 0 --leader-elect=false \
		--service-account-private-key-file "$K/pki/sa.key" --use-service-account-credentials=false
	start_daemon kube-scheduler "$KBIN/kube-scheduler" --kubeconfig "$K/kubeconfig" --secure-port 0 --leader-elect=false
	# The kubelet wants its cgroup root to exist in every hierarchy (cgroup v1).
	local h
	for h in /sys/fs/cgroup/*/; do
		mkdir -p "$h${CGROUP_ROOT#/}"
	done
	if [[ -d /sys/fs/cgroup/cpuset$CGROUP_ROOT ]]; then
		cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset$CGROUP_ROOT/cpuset.cpus"
		cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset$CGROUP_ROOT/cpuset.mems"
	fi
	start_daemon kubelet "$KBIN/kubelet" --config "$K/kubelet.yaml" --kubeconfig "$K/kubeconfig" \
		--root-dir "$K/kubelet" --cert-dir "$K/kubelet/pki" --hostname-override "$NODE"

	wait_for "node $NODE Ready" 180 node_ready
	wait_for "the default service account" 120 kubectl get serviceaccount default
	log "Kubernetes $(cat "$KBIN/.version") up on https://127.0.0.1:$api_port (node $NODE) in $(elapsed "$t0") s"
}

node_ready() {
	[[ $(kubectl get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

# pid_alive NAME: the daemon NAME's recorded pid, if it still runs.
daemon_pid() {
	local f=$K/$1.pid p
	[[ -f $f ]] || return 1
	p=$(cat "$f")
	kill -0 "$p" 2>/dev/null && echo "$p"
}

stop_cluster() {
	local quiet=${1:-} d p i
	[[ -d $K ]] || return 0
	# The pods' containers first (they are children of containerd's shims, not of
	# anything this script started), while containerd still answers.
	if daemon_pid containerd >/dev/null && [[ -S $SOCK ]]; then
		if p=$(daemon_pid kubelet); then
			kill -TERM "$p" 2>/dev/null || true
		fi
		for d in $(ctr_quick tasks ls -q 2>/dev/null); do
			ctr_quick tasks kill -a -s SIGKILL "$d" >/dev/null 2>&1 || true
		done
		for ((i = 0; i < 50; i++)); do
			[[ -z $(ctr_quick tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"') ]] && break
			sleep 0.2
		done
		for d in $(ctr_quick tasks ls -q 2>/dev/null); do ctr_quick tasks delete -f "$d" >/dev/null 2>&1 || true; done
		for d in $(ctr_quick containers ls -q 2>/dev/null); do ctr_quick containers delete "$d" >/dev/null 2>&1 || true; done
	fi
	for d in "${DAEMONS[@]}"; do
		if p=$(daemon_pid "$d"); then
			kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
			for ((i = 0; i < 100; i++)); do
				kill -0 "$p" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL -- "-$p" 2>/dev/null || true
		fi
		rm -f "$K/$d.pid"
	done
	# Shims and container processes the above missed (a daemon killed before it
	# could clean up): every process in this cluster's pod cgroups, and the shims
	# whose command line names this cluster's containerd socket.
	local procs=()
	for f in /sys/fs/cgroup/*/"${CGROUP_ROOT#/}"; do
		[[ -d $f ]] && mapfile -t -O "${#procs[@]}" procs < <(find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null)
	done
	for p in /proc/[0-9]*; do
		if grep -qzxF -- "$SOCK" "$p/cmdline" 2>/dev/null; then procs+=("${p#/proc/}"); fi
	done
	if ((${#procs[@]})); then
		[[ $quiet ]] || log "killing ${#procs[@]} leftover container process(es)"
		kill -KILL "${procs[@]}" 2>/dev/null || true
		sleep 0.5
	fi
	# Mounts under $K (container root filesystems, sandbox shm, volumes), deepest first.
	awk -v k="$K/" 'index($2, k) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	# The pod cgroups the kubelet created, deepest first.
	for f in /sys/fs/cgroup/*/"${CGROUP_ROOT#/}"; do
		[[ -d $f ]] && find "$f" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
	[[ $quiet ]] || log "cluster stopped"
}

case ${1:-} in
start) start ;;
stop) stop_cluster ;;
kubectl)
	shift
	kubectl "$@"
	;;
*)
	echo "usage: $0 {start|stop|kubectl ARGS…}" >&2
	exit 2
	;;
esac
