#!/usr/bin/env bash
# scripts/testenv.sh — make this machine able to run shipit's tests and demo.
#
# Idempotent: fast (a few seconds) when everything is already present; installs or
# starts only what is missing; exits non-zero with a clear message otherwise.
# Needs root (Debian 12): installs Debian packages, starts dockerd, builds the
# docker compose v2 plugin (not packaged in Debian) and the local base image
# shipit-busybox:latest (no registry is reachable on CI machines).
set -euo pipefail

export PATH="/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}"

COMPOSE_V2_VERSION="${COMPOSE_V2_VERSION:-v2.40.3}"
BASE_IMAGE="shipit-busybox:latest"
DOCKERD_LOG="/var/log/shipit-dockerd.log"
# gcc + libc6-dev: `go test -race` needs cgo.
PACKAGES=(docker.io docker-compose openssh-server openssh-client busybox-static age git iproute2 tmux gcc libc6-dev)

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
for b in dockerd docker docker-compose ssh ssh-keygen git age ip unshare nsenter tmux gcc; do
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

# --- 3. docker compose v2 plugin --------------------------------------------------
# Built from the Go module proxy inside a throwaway module (`go install` refuses it).
# Installed in ~/.docker/cli-plugins and in the system-wide plugin directory, so
# it is found by any docker client and with any $HOME.
SYS_PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
USER_PLUGIN="${HOME:-/root}/.docker/cli-plugins/docker-compose"
if ! docker compose version >/dev/null 2>&1; then
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
if [[ -x "$USER_PLUGIN" ]] && ! cmp -s "$USER_PLUGIN" "$SYS_PLUGIN" 2>/dev/null; then
	mkdir -p "$(dirname "$SYS_PLUGIN")"
	cp "$USER_PLUGIN" "$SYS_PLUGIN.tmp" && mv "$SYS_PLUGIN.tmp" "$SYS_PLUGIN"
fi
docker compose version >/dev/null 2>&1 || die "'docker compose version' still fails after installing the plugin"

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
fi
docker run --rm "$BASE_IMAGE" /bin/sh -c 'true' >/dev/null 2>&1 ||
	die "$BASE_IMAGE does not run (docker run --rm $BASE_IMAGE /bin/sh -c true)"

# --- summary ----------------------------------------------------------------------
dv="$(docker version --format 'client {{.Client.Version}}, engine {{.Server.Version}}' 2>/dev/null)"
cv2="$(docker compose version --short 2>/dev/null || true)"
cv1="$(docker-compose version --short 2>/dev/null || true)"
sv="$(ssh -V 2>&1 | cut -d, -f1)"
bv="$(/bin/busybox 2>&1 | awk 'NR==1{print $2}')"
av="$(age --version 2>/dev/null || true)"
gv="$(go env GOVERSION)"
echo "testenv ok: docker $dv; compose v2 $cv2, v1 $cv1; $sv; busybox $bv; age $av; $gv; image $BASE_IMAGE"
