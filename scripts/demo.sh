#!/usr/bin/env bash
# scripts/demo.sh — deploy examples/demo to the local sandbox host, behind
# Traefik. `make demo` runs it after scripts/sandbox.sh up.
#
# First run: `shipit setup` (Traefik, published on 127.0.0.1 only), the
# first deploy, and a URL that answers through Traefik. Every later run:
# the next release (a new commit, whose page says so) is deployed while a
# live counter (bin/demoload) sends requests through Traefik, and ends with
# the counts: zero downtime is "0 failed". Exit 1 if any request failed.
#
# shipit deploys a git commit, so the example is copied into its own git
# repository (DEMO_DIR, default /tmp/shipit-demo) and committed there.
# Environment: DEMO_DIR, DEMO_HTTP_PORT (8088), DEMO_HTTPS_PORT (8443),
# SANDBOX_PORT (2222, as scripts/sandbox.sh), DEMO_TRAEFIK_IMAGE (default:
# traefik:v3.6 when the engine has it, else shipit-traefik:v3.6.12).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${DEMO_DIR:-/tmp/shipit-demo}"
http="${DEMO_HTTP_PORT:-8088}"
https="${DEMO_HTTPS_PORT:-8443}"
sandbox_port="${SANDBOX_PORT:-2222}"
domain="demo.localhost"
shipit="$root/bin/shipit"
load="$root/bin/demoload"
url="http://127.0.0.1:$http/"

say() { printf 'demo: %s\n' "$*"; }

image="${DEMO_TRAEFIK_IMAGE:-}"
if [[ -z "$image" ]]; then
	if docker image inspect traefik:v3.6 >/dev/null 2>&1; then
		image="traefik:v3.6"
	else
		image="shipit-traefik:v3.6.12"
	fi
fi

# The app answers through Traefik already: this run deploys the next release.
next=
if release="$("$load" -url "$url" -host "$domain" -wait 1s 2>/dev/null)"; then
	next=1
fi

mkdir -p "$dir"
cp -r "$root/examples/demo/." "$dir/"
cd "$dir"
sed -i -e "s|\"127.0.0.1:2222\"|\"127.0.0.1:$sandbox_port\"|" \
	-e "s|^image = \"shipit-traefik:v3.6.12\"|image = \"$image\"|" shipit.toml
if [[ ! -d .git ]]; then
	git init -q -b main
	git config user.name "shipit demo"
	git config user.email "demo@shipit.invalid"
fi
if [[ -n "$next" ]]; then
	n=$(($(git rev-list --count HEAD 2>/dev/null || echo 0) + 1))
	sed -i "s|<p id=\"message\">.*</p>|<p id=\"message\">deploy #$n, committed $(date -u +%H:%M:%S) UTC by make demo</p>|" www/index.html
fi
git add -A
git diff --cached --quiet || git commit -q -m "demo $(date -u +%Y%m%d-%H%M%S)"

# setup is idempotent: on later runs it checks and changes nothing.
say "shipit setup -s sandbox (Traefik $image on 127.0.0.1:$http)"
SHIPIT_TRAEFIK_PORTS="127.0.0.1:$http:$https" "$shipit" setup -s sandbox

if [[ -z "$next" ]]; then
	say "deploying $dir (commit $(git rev-parse --short HEAD)) to the sandbox host"
	"$shipit" deploy -s sandbox
	release="$("$load" -url "$url" -host "$domain" -wait 30s)"
	echo
	say "release $release answers through Traefik:"
	say "  open    http://$domain:$http/   (a browser resolves *.localhost to this machine)"
	say "  or run  curl -H 'Host: $domain' $url"
	say "run 'make demo' again: it deploys the next release while requests keep flowing"
	exit 0
fi

say "release $release is live; deploying the next one (commit $(git rev-parse --short HEAD)) under traffic"
"$load" -url "$url" -host "$domain" -for 3m &
load_pid=$!
stop_load() { kill -TERM "$load_pid" 2>/dev/null || true; }
trap stop_load EXIT
sleep 1
"$shipit" deploy -s sandbox
# A moment of traffic on the new release before the counts.
sleep 1
trap - EXIT
kill -TERM "$load_pid"
rc=0
wait "$load_pid" || rc=$?
echo
say "the new release answers at http://$domain:$http/ (curl -H 'Host: $domain' $url)"
if ((rc != 0)); then
	say "some requests failed during the deploy (see above)"
fi
exit "$rc"
