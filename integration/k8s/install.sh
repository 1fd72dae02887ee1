#!/usr/bin/env bash
# install.sh [all|packages|kube|tools|image]: what make test-k8s needs, installed once
# into the cache ($ICEFILL_IT_CACHE, default <repo>/.cache) and reused:
#
#   packages  Debian's etcd-server, containerd, runc and containernetworking-plugins
#             (apt-get, only when a command is missing; needs root, as CI runs).
#   kube      kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and
#             kubectl $KUBE_VERSION, built from the Go module proxy through a wrapper
#             module generated in $CACHE/k8s/src (its own go.mod: none of Kubernetes
#             enters icefill's). Cold: ~10 min of nice'd compiling on 2 cores; the
#             module and build caches (several GB) are dropped afterwards.
#   tools     imgbuild and pause from integration/k8s/tools (own module, because
#             go-containerregistry is a test tool, not an icefill dependency).
#   image     the worker image: a static icefill binary in an otherwise empty image,
#             written as a docker-archive tarball $CACHE/k8s/images/icefill.tar (rebuilt
#             whenever the binary changes; seconds).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../servers/lib.sh"

# v1.34: this machine's cgroup v1 is refused by newer kubelets.
KUBE_VERSION=${KUBE_VERSION:-v1.34.4}
K8S=$CACHE/k8s
KBIN=$K8S/bin
KUBE_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
HERE=$IT_ROOT/integration/k8s

install_packages() {
	local need=() cmd pkg
	for pair in etcd:etcd-server containerd:containerd runc:runc openssl:openssl; do
		cmd=${pair%%:*} pkg=${pair#*:}
		command -v "$cmd" >/dev/null || need+=("$pkg")
	done
	[[ -x /usr/lib/cni/host-local || -x /opt/cni/bin/host-local ]] || need+=(containernetworking-plugins)
	((${#need[@]} == 0)) && return 0
	(($(id -u) == 0)) || die "missing Debian packages ${need[*]}: apt-get install them (as root)"
	log "apt-get install ${need[*]}"
	apt-get update -qq -o DPkg::Lock::Timeout=600 >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${need[@]}" >&2 ||
		die "apt-get install ${need[*]} failed"
}

install_kube() {
	local c ok=1 t0 src gomod
	for c in "${KUBE_CMDS[@]}"; do [[ -x $KBIN/$c ]] || ok=0; done
	if ((ok)) && [[ -f $KBIN/.version && $(cat "$KBIN/.version") == "$KUBE_VERSION" ]]; then
		return 0
	fi
	command -v go >/dev/null || die "go not found"
	t0=$(now_s)
	log "building Kubernetes $KUBE_VERSION (${KUBE_CMDS[*]}) from the Go module proxy (first time only; ~10 min on 2 cores)"
	src=$K8S/src
	rm -rf "$src" "$KBIN.tmp"
	mkdir -p "$src" "$KBIN.tmp"
	export GOMODCACHE=$K8S/go/mod GOCACHE=$K8S/go/build GOFLAGS=-modcacherw GOTOOLCHAIN=local
	# k8s.io/kubernetes points its staging modules (k8s.io/api, client-go, …) at
	# ./staging/src/…, which only exists in its own repository: the wrapper
	# replaces each with the published v0.x module of the same release.
	gomod=$(cd "$src" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
	{
		echo "module icefill.test/kubebuild"
		echo
		echo "go 1.24"
		echo
		echo "require k8s.io/kubernetes $KUBE_VERSION"
		echo
		echo "replace ("
		sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/.*#\1#p' "$gomod" | sort -u |
			while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "v0.${KUBE_VERSION#v1.}"; done
		echo ")"
	} >"$src/go.mod"
	{
		echo "//go:build tools"
		echo
		echo "package kubebuild"
		echo
		echo "import ("
		for c in "${KUBE_CMDS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
		echo ")"
	} >"$src/tools.go"
	(cd "$src" && go mod tidy >&2) || die "go mod tidy of the Kubernetes wrapper module failed"
	local pkgs=()
	for c in "${KUBE_CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
	(cd "$src" && CGO_ENABLED=0 nice -n 10 go build -tags providerless -trimpath -ldflags=-s -o "$KBIN.tmp/" "${pkgs[@]}" >&2) ||
		die "building Kubernetes failed"
	echo "$KUBE_VERSION" >"$KBIN.tmp/.version"
	rm -rf "$KBIN"
	mv "$KBIN.tmp" "$KBIN"
	rm -rf "$K8S/go"
	log "Kubernetes $KUBE_VERSION built in $(elapsed "$t0") s ($(du -sh "$KBIN" | cut -f1))"
}

# install_tools: imgbuild and pause, rebuilt when their sources change.
install_tools() {
	local key
	key=$(cat "$HERE"/tools/go.mod "$HERE"/tools/go.sum "$HERE"/tools/*/*.go | sha256sum | cut -c1-16)
	if stamp_ok "$K8S/tools" "$key" && [[ -x $K8S/tools/imgbuild && -x $K8S/tools/pause ]]; then
		return 0
	fi
	mkdir -p "$K8S/tools"
	(cd "$HERE/tools" && CGO_ENABLED=0 nice -n 10 go build -trimpath -o "$K8S/tools/" ./imgbuild ./pause >&2) ||
		die "building integration/k8s/tools failed"
	stamp_set "$K8S/tools" "$key"
}

# install_image: the pause image once, the worker image from the current source
# (a static binary: the image has no libc). Its tag is the binary's hash, so a
# changed icefill is a new image the kubelet cannot confuse with an old one.
install_image() {
	install_tools
	local img=$K8S/images bin sum
	mkdir -p "$img"
	if [[ ! -f $img/pause.tar ]]; then
		"$K8S/tools/imgbuild" -tag icefill.local/pause:1 -o "$img/pause.tar" -entrypoint /pause "$K8S/tools/pause=/pause"
	fi
	bin=$img/icefill
	(cd "$IT_ROOT" && CGO_ENABLED=0 nice -n 10 go build -trimpath -o "$bin" ./cmd/icefill >&2) || die "building a static icefill failed"
	sum=$(sha256sum "$bin" | cut -c1-12)
	if [[ ! -f $img/icefill.tar || $(cat "$img/icefill.ref" 2>/dev/null) != "icefill.local/icefill:$sum" ]]; then
		"$K8S/tools/imgbuild" -tag "icefill.local/icefill:$sum" -o "$img/icefill.tar" -entrypoint /icefill "$bin=/icefill"
		echo "icefill.local/icefill:$sum" >"$img/icefill.ref"
	fi
}

case ${1:-all} in
all)
	install_packages
	install_kube
	install_image
	;;
packages) install_packages ;;
kube) install_kube ;;
tools) install_tools ;;
image) install_image ;;
*)
	echo "usage: $0 [all|packages|kube|tools|image]" >&2
	exit 2
	;;
esac
