#!/usr/bin/env bash
# scripts/demo.sh — deploy examples/demo to the local sandbox host.
# shipit deploys a git commit, so the example is copied into its own git
# repository (DEMO_DIR, default /tmp/shipit-demo) and committed there first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${DEMO_DIR:-/tmp/shipit-demo}"
mkdir -p "$dir"
cp -r "$root/examples/demo/." "$dir/"
cd "$dir"
if [[ ! -d .git ]]; then
	git init -q -b main
	git config user.name "shipit demo"
	git config user.email "demo@shipit.invalid"
fi
git add -A
git diff --cached --quiet || git commit -q -m "demo $(date -u +%Y%m%d-%H%M%S)"
echo "demo: deploying $dir (commit $(git rev-parse --short HEAD)) to the sandbox host"
"$root/bin/shipit" deploy -s sandbox "$@"
echo
echo "demo: the app answers inside its container:"
web=$(docker ps -q --filter label=com.docker.compose.service=web --filter label=shipit.app=demo | head -n1)
docker exec "$web" wget -qO- http://localhost:8080/
echo "demo: try 'cd $dir && $root/bin/shipit releases -s sandbox' or 'shipit rollback -s sandbox'"
