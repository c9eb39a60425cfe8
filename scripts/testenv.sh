#!/usr/bin/env bash
# scripts/testenv.sh [--demo] — make this machine able to run shipit's tests
# (default) or only `make demo` (--demo).
#
# Idempotent: fast (a few seconds) when everything is already present; installs or
# starts only what is missing; exits non-zero with a clear message otherwise.
# Needs root (Debian 12).
#
# --demo installs what the demo uses: Debian packages (docker.io, docker-compose
# v1, which shipit drives like the v2 plugin, openssh, busybox-static, git),
# starts dockerd, builds the local base image shipit-busybox:latest from
# /bin/busybox, and gets a Traefik image: `docker pull traefik:v3.6` where a
# registry is reachable, else (this is the slow part) the Traefik image
# shipit-traefik:v3.6.12 built from the Go module proxy: ~6-9 min and ~5 GB of
# Go caches the first time on a machine; the binary is cached in
# /var/cache/shipit, so afterwards only a missing image is rebuilt, in seconds.
#
# Without --demo it also installs what only tests use: age, iproute2, tmux,
# gcc (go test -race), the docker compose v2 plugin (not packaged in Debian;
# built from the module proxy), always the built Traefik image (the tests pin
# v3.6.12), and a current Docker Engine's dockerd (v28.5.2, also from the
# module proxy, ~3 min the first time, cached) that an e2e test runs on one
# isolated host with the containerd image store.
set -euo pipefail

export PATH="/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}"

COMPOSE_V2_VERSION="${COMPOSE_V2_VERSION:-v2.40.3}"
BASE_IMAGE="shipit-busybox:latest"
# v3.7.x needs module versions the proxy refuses: stay on v3.6.12.
TRAEFIK_VERSION="v3.6.12"
TRAEFIK_IMAGE="shipit-traefik:$TRAEFIK_VERSION"
CACHE_DIR="/var/cache/shipit"
TRAEFIK_BIN="$CACHE_DIR/traefik-$TRAEFIK_VERSION"
DOCKERD_LOG="/var/log/shipit-dockerd.log"
# Keep in step with e2e/harness (CurrentDockerd).
CURRENT_ENGINE_VERSION="v28.5.2"
CURRENT_DOCKERD="$CACHE_DIR/dockerd-$CURRENT_ENGINE_VERSION"
DEMO=
case "${1:-}" in
--demo) DEMO=1 ;;
"") ;;
*) echo "usage: $0 [--demo]" >&2; exit 2 ;;
esac
# What the demo's Traefik is where a registry is reachable.
DEMO_TRAEFIK_PULL="traefik:v3.6"
PACKAGES=(docker.io docker-compose openssh-server openssh-client busybox-static git)
BINARIES=(dockerd docker docker-compose ssh ssh-keygen git flock)
if [[ -z "$DEMO" ]]; then
	# gcc + libc6-dev: `go test -race` needs cgo.
	PACKAGES+=(age iproute2 tmux gcc libc6-dev)
	BINARIES+=(age ip unshare nsenter tmux gcc)
fi

say() { printf 'testenv: %s\n' "$*" >&2; }
die() { printf 'testenv: FAILED: %s\n' "$*" >&2; exit 1; }

trap 'rc=$?; printf "testenv: FAILED: line %s: %s (exit %s)\n" "$LINENO" "$BASH_COMMAND" "$rc" >&2' ERR

[[ "$(id -u)" == 0 ]] || die "must run as root (installs packages, starts dockerd, runs sshd)"

# --- 1. Debian packages -----------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
	st="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
	[[ "$st" == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
	say "installing missing packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
fi
for b in "${BINARIES[@]}"; do
	command -v "$b" >/dev/null || die "'$b' not on PATH after installing packages"
done
[[ -x /usr/sbin/sshd ]] || die "/usr/sbin/sshd missing (package openssh-server)"
[[ -x /bin/busybox ]] || die "/bin/busybox missing (package busybox-static)"
command -v go >/dev/null || die "go not found (expected /usr/local/go/bin/go)"

# --- 2. dockerd -------------------------------------------------------------------
if ! timeout 20 docker info >/dev/null 2>&1; then
	say "dockerd not answering; starting it (log: $DOCKERD_LOG)"
	if [[ -S /var/run/docker.sock ]] && ! pgrep -x dockerd >/dev/null; then
		rm -f /var/run/docker.sock /var/run/docker.pid
	fi
	if ! pgrep -x dockerd >/dev/null; then
		# /24 pools: every release is its own compose project with its own
		# network, and the default /16 pools run out after ~30 of them.
		setsid nohup dockerd --default-address-pool base=172.20.0.0/14,size=24 >>"$DOCKERD_LOG" 2>&1 </dev/null &
	fi
	ok=
	for _ in $(seq 1 60); do
		if timeout 5 docker info >/dev/null 2>&1; then ok=1; break; fi
		sleep 1
	done
	if [[ -z "$ok" ]]; then
		tail -n 30 "$DOCKERD_LOG" >&2 || true
		die "dockerd did not answer 'docker info' within 60s (see $DOCKERD_LOG)"
	fi
fi

# --- 3. docker compose v2 plugin (tests only) ---------------------------------------
# Built from the Go module proxy inside a throwaway module (`go install` refuses it).
# Installed in ~/.docker/cli-plugins and in the system-wide plugin directory, so
# it is found by any docker client and with any $HOME. The demo does with
# Debian's docker-compose v1 (shipit detects and drives either).
SYS_PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
USER_PLUGIN="${HOME:-/root}/.docker/cli-plugins/docker-compose"
if [[ -n "$DEMO" ]]; then
	docker compose version >/dev/null 2>&1 || docker-compose version >/dev/null 2>&1 ||
		die "neither 'docker compose' nor 'docker-compose' runs"
elif ! docker compose version >/dev/null 2>&1; then
	if [[ -x "$SYS_PLUGIN" ]] && "$SYS_PLUGIN" version >/dev/null 2>&1; then
		mkdir -p "$(dirname "$USER_PLUGIN")"
		cp "$SYS_PLUGIN" "$USER_PLUGIN"
	else
		say "building docker compose $COMPOSE_V2_VERSION plugin from the Go module proxy (~3 min on 2 cores)"
		tmp="$(mktemp -d /tmp/shipit-composev2.XXXXXX)"
		log="$tmp/build.log"
		mkdir -p "$(dirname "$USER_PLUGIN")"
		if ! (cd "$tmp" && go mod init tmp &&
			go get "github.com/docker/compose/v2/cmd@$COMPOSE_V2_VERSION" &&
			CGO_ENABLED=0 go build -trimpath \
				-ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_V2_VERSION" \
				-o "$USER_PLUGIN" github.com/docker/compose/v2/cmd) >"$log" 2>&1; then
			tail -n 30 "$log" >&2
			die "building the docker compose v2 plugin failed (full log: $log)"
		fi
		rm -rf "$tmp"
	fi
fi
if [[ -z "$DEMO" ]]; then
	if [[ -x "$USER_PLUGIN" ]] && ! cmp -s "$USER_PLUGIN" "$SYS_PLUGIN" 2>/dev/null; then
		mkdir -p "$(dirname "$SYS_PLUGIN")"
		cp "$USER_PLUGIN" "$SYS_PLUGIN.tmp" && mv "$SYS_PLUGIN.tmp" "$SYS_PLUGIN"
	fi
	docker compose version >/dev/null 2>&1 || die "'docker compose version' still fails after installing the plugin"
fi

# --- 4. sshd privilege-separation directory ---------------------------------------
mkdir -p /run/sshd
chmod 0755 /run/sshd

# --- 5. base image shipit-busybox:latest ------------------------------------------
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
	say "building $BASE_IMAGE from /bin/busybox"
	ctx="$(mktemp -d /tmp/shipit-busybox.XXXXXX)"
	cp /bin/busybox "$ctx/busybox"
	cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox","--install","-s","/bin"]
EOF
	# The classic builder: Debian's engine has no buildx plugin to go with BuildKit.
	if ! DOCKER_BUILDKIT=0 docker build -q -t "$BASE_IMAGE" "$ctx" >"$ctx/build.log" 2>&1; then
		cat "$ctx/build.log" >&2
		die "docker build $BASE_IMAGE failed"
	fi
	rm -rf "$ctx"
	built_base=1
fi
# The demo checks that an image runs only when it was just built: each
# `docker run` costs seconds of every `make demo`.
if [[ -z "$DEMO" || -n "${built_base:-}" ]]; then
	docker run --rm "$BASE_IMAGE" /bin/sh -c 'true' >/dev/null 2>&1 ||
		die "$BASE_IMAGE does not run (docker run --rm $BASE_IMAGE /bin/sh -c true)"
fi

# --- 6. Traefik image shipit-traefik:v3.6.12 --------------------------------------
# The demo takes the registry's image when it can be pulled (a few seconds),
# and builds only where no registry answers (like this project's CI machines).
if [[ -n "$DEMO" ]]; then
	if docker image inspect "$DEMO_TRAEFIK_PULL" >/dev/null 2>&1; then
		demo_traefik="$DEMO_TRAEFIK_PULL"
	elif pull_out="$(timeout 300 docker pull -q "$DEMO_TRAEFIK_PULL" 2>&1)"; then
		say "pulled $DEMO_TRAEFIK_PULL"
		demo_traefik="$DEMO_TRAEFIK_PULL"
	else
		say "cannot pull $DEMO_TRAEFIK_PULL (no registry: $(tail -n 1 <<<"$pull_out" | sed 's/.*: //')): using $TRAEFIK_IMAGE, built from the Go module proxy once per machine"
	fi
	if [[ -n "${demo_traefik:-}" ]]; then
		dv="$(docker version --format 'client {{.Client.Version}}, engine {{.Server.Version}}' 2>/dev/null)"
		echo "testenv --demo ok: docker $dv; images $BASE_IMAGE, $demo_traefik"
		exit 0
	fi
fi
# Built as the main module so that its go.mod replace lines apply (`go install`
# from another module fails on them). The binary is cached outside the work
# tree: a fresh clone, or an engine whose images were wiped, rebuilds only the
# image. flock: another testenv.sh may be building it right now.
traefik_bin_ok() {
	local v
	[[ -x "$TRAEFIK_BIN" ]] && v="$("$TRAEFIK_BIN" version 2>&1)" && grep -q "^Version: *${TRAEFIK_VERSION#v}\$" <<<"$v"
}
# build_traefik SRC: copies the module out of the read-only module cache to SRC
# and builds $TRAEFIK_BIN.tmp there. Every step is checked (`set -e` does not
# apply under `if !`).
build_traefik() (
	local src="$1" vpkg=github.com/traefik/traefik/v3/pkg/version mod dir
	mod="$(go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION")" || {
		printf 'go mod download failed:\n%s\n' "$mod"
		return 1
	}
	dir="$(printf '%s\n' "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	if [[ -z "$dir" || ! -f "$dir/go.mod" ]]; then
		printf 'go mod download gave no module directory:\n%s\n' "$mod"
		return 1
	fi
	cp -a "$dir" "$src" && chmod -R u+w "$src" || return 1
	# The dashboard's assets are not in the module; without an index.html
	# Traefik logs an error on every reload when any --api flag is set.
	mkdir -p "$src/webui/static" || return 1
	echo '<!doctype html><title>Traefik</title><p>dashboard not built (shipit test image)</p>' >"$src/webui/static/index.html" || return 1
	cd "$src" || return 1
	CGO_ENABLED=0 go build -mod=readonly -trimpath \
		-ldflags "-s -w -X $vpkg.Version=${TRAEFIK_VERSION#v} -X $vpkg.Codename=shipit-test" \
		-o "$TRAEFIK_BIN.tmp" ./cmd/traefik
)
# cached_build NAME VERSION BIN OK BUILD HOWLONG: unless the function OK says
# the cached BIN is right, runs "BUILD <source dir>" (which writes BIN.tmp),
# logged, under a lock (another testenv.sh may be building it right now),
# then checks the result with OK.
cached_build() {
	local name="$1" version="$2" bin="$3" ok="$4" build="$5" howlong="$6" log src start
	mkdir -p "$CACHE_DIR"
	exec 9>"$CACHE_DIR/$name.lock"
	flock 9
	if ! "$ok"; then
		say "building $name $version from the Go module proxy ($howlong the first time)"
		log="$CACHE_DIR/$name-$version.build.log"
		src="$CACHE_DIR/$name-src-$version"
		rm -rf "$src" "$bin.tmp"
		start=$SECONDS
		if ! "$build" "$src" >"$log" 2>&1; then
			tail -n 40 "$log" >&2
			die "building $name $version failed (full log: $log)"
		fi
		mv "$bin.tmp" "$bin"
		rm -rf "$src"
		"$ok" || die "$bin was built but does not report version ${version#v}"
		say "built $name $version in $((SECONDS - start))s ($(du -h "$bin" | cut -f1)), cached as $bin"
	fi
	exec 9>&-
}
cached_build traefik "$TRAEFIK_VERSION" "$TRAEFIK_BIN" traefik_bin_ok build_traefik "~8 min and ~5 GB of Go caches"
# The image is labelled with the binary's digest: a rebuilt binary gets a new image.
traefik_sum="$(sha256sum "$TRAEFIK_BIN" | cut -d' ' -f1)"
have_sum="$(docker image inspect --format '{{index .Config.Labels "shipit.traefik-sha256"}}' "$TRAEFIK_IMAGE" 2>/dev/null || true)"
if [[ "$have_sum" != "$traefik_sum" ]]; then
	say "building $TRAEFIK_IMAGE from $TRAEFIK_BIN"
	ctx="$(mktemp -d /tmp/shipit-traefik.XXXXXX)"
	cp "$TRAEFIK_BIN" "$ctx/traefik"
	printf '%s\n' "FROM $BASE_IMAGE" "COPY traefik /traefik" \
		"LABEL shipit.traefik-sha256=\"$traefik_sum\"" 'ENTRYPOINT ["/traefik"]' >"$ctx/Dockerfile"
	if ! DOCKER_BUILDKIT=0 docker build -q -t "$TRAEFIK_IMAGE" "$ctx" >"$ctx/build.log" 2>&1; then
		cat "$ctx/build.log" >&2
		die "docker build $TRAEFIK_IMAGE failed"
	fi
	rm -rf "$ctx"
	built_traefik=1
fi
if [[ -z "$DEMO" || -n "${built_traefik:-}" ]]; then
	tv="$(docker run --rm "$TRAEFIK_IMAGE" version 2>&1)" ||
		die "$TRAEFIK_IMAGE does not run: docker run --rm $TRAEFIK_IMAGE version: $tv"
	grep -q "^Version: *${TRAEFIK_VERSION#v}\$" <<<"$tv" ||
		die "$TRAEFIK_IMAGE does not report version ${TRAEFIK_VERSION#v}: $tv"
fi

if [[ -n "$DEMO" ]]; then
	dv="$(docker version --format 'client {{.Client.Version}}, engine {{.Server.Version}}' 2>/dev/null)"
	echo "testenv --demo ok: docker $dv; images $BASE_IMAGE, $TRAEFIK_IMAGE"
	exit 0
fi

# --- 7. a current engine's dockerd (tests only) --------------------------------------
# Debian ships Engine 20.10 only; the module proxy serves moby as
# github.com/docker/docker@vX+incompatible, with its pinned dependencies in
# vendor.mod (the vendor/ tree is not in the module zip): build with
# vendor.mod as go.mod. It runs on Debian's containerd and runc.
current_dockerd_ok() {
	[[ -x "$CURRENT_DOCKERD" ]] && "$CURRENT_DOCKERD" --version 2>/dev/null | grep -q "version ${CURRENT_ENGINE_VERSION#v},"
}
build_current_dockerd() (
	local src="$1" mod dir
	mod="$(go mod download -json "github.com/docker/docker@$CURRENT_ENGINE_VERSION+incompatible")" || {
		printf 'go mod download failed:\n%s\n' "$mod"
		return 1
	}
	dir="$(printf '%s\n' "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	if [[ -z "$dir" || ! -f "$dir/vendor.mod" ]]; then
		printf 'go mod download gave no module directory with a vendor.mod:\n%s\n' "$mod"
		return 1
	fi
	cp -a "$dir" "$src" && chmod -R u+w "$src" || return 1
	cd "$src" || return 1
	rm -rf vendor && cp vendor.mod go.mod && cp vendor.sum go.sum || return 1
	CGO_ENABLED=1 GOFLAGS=-mod=mod go build -trimpath -tags exclude_graphdriver_btrfs \
		-ldflags "-s -w -X github.com/docker/docker/dockerversion.Version=${CURRENT_ENGINE_VERSION#v} -X github.com/docker/docker/dockerversion.GitCommit=module-proxy" \
		-o "$CURRENT_DOCKERD.tmp" ./cmd/dockerd
)
cached_build dockerd "$CURRENT_ENGINE_VERSION" "$CURRENT_DOCKERD" current_dockerd_ok build_current_dockerd "~3 min"

# --- summary ----------------------------------------------------------------------
dv="$(docker version --format 'client {{.Client.Version}}, engine {{.Server.Version}}' 2>/dev/null)"
cv2="$(docker compose version --short 2>/dev/null || true)"
cv1="$(docker-compose version --short 2>/dev/null || true)"
sv="$(ssh -V 2>&1 | cut -d, -f1)"
bv="$(/bin/busybox 2>&1 | awk 'NR==1{print $2}')"
av="$(age --version 2>/dev/null || true)"
gv="$(go env GOVERSION)"
echo "testenv ok: docker $dv; compose v2 $cv2, v1 $cv1; $sv; busybox $bv; age $av; $gv; images $BASE_IMAGE, $TRAEFIK_IMAGE; current engine $CURRENT_DOCKERD"
