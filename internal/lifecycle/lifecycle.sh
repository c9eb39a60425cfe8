# shipit's release lifecycle on a host: drain a release out of Traefik's
# rotation, stop it, point `current` at a release, write shipit.lock. This
# is the one implementation: the live deploy, rollback and cleanup run it
# (internal/lifecycle), and the lock holder (internal/hostlock, host.sh)
# runs the same functions when it settles a run or stops a stray release
# without shipit. It is shell because the host runs it alone, shipit gone.
# POSIX sh plus docker, date and sleep; no function here exits the script.
#
# Settings (shell variables, whole seconds):
#   DRAIN_MARKER     the drain marker, relative to a release (internal/probe)
#   APP_DIR          the app's directory
#   J_COMPOSE        "docker compose" or "docker-compose"
#   J_DRAIN_TIMEOUT  how long a drain waits ([deploy] drain_timeout; 30)
#   J_STOP_TIMEOUT   stop's grace period ([deploy] stop_timeout; 30)
#   J_GRACE_DRAINED  the grace period after a drain that succeeded, when
#                    shorter (shipit.traefik's stop_grace: an app that
#                    ignores its stop signal); J_STOP_TIMEOUT when unset
#   J_FOREIGN        a release without a drain marker (the original
#                    shipit's): "" stops it without a drain, "wait" waits
#                    until Traefik drops it (its probe was made to fail),
#                    "yields" calls it out of rotation (outranked)
#   J_TRAEFIK_API    where Traefik's API listens inside its container
#
# log MSG reports progress (the holder also writes it to settle.log).

# now: seconds on a clock that never jumps (since boot: /proc/uptime), where
# the host has one; the wall clock elsewhere.
now() {
	if read -r _up _ </proc/uptime 2>/dev/null; then echo "${_up%%.*}"; else date +%s; fi
}

# now_cs: now, in hundredths of a second (for durations shown to users).
now_cs() {
	if read -r _up _ </proc/uptime 2>/dev/null; then
		_cs=${_up#*.}
		echo "${_up%%.*}${_cs}" | sed 's/^0*\([0-9]\)/\1/'
	else
		echo "$(($(date +%s) * 100))"
	fi
}

log() {
	printf 'log %s\n' "$*"
}

# compose DIR ARGS...: compose for the release in DIR, as it was started:
# DIR/.shipit-compose holds its project name, then its compose files, one
# a line, taken verbatim (spaces, globs); a single files line is the older
# space-separated form. A release the original shipit started has none:
# the project is the directory's name and compose finds its files itself.
compose() {
	_d=$1
	shift
	_p=${_d##*/}
	_n=$#
	if [ -f "$_d/.shipit-compose" ]; then
		_lines=$(($(wc -l <"$_d/.shipit-compose")))
		{
			IFS= read -r _p
			if [ "$_lines" -le 2 ]; then
				IFS= read -r _x
				set -f
				for _w in $_x; do set -- "$@" -f "$_w"; done
				set +f
			else
				while IFS= read -r _x; do
					[ -z "$_x" ] || set -- "$@" -f "$_x"
				done
			fi
		} <"$_d/.shipit-compose"
	fi
	# The caller's ARGS go after the -f options.
	while [ "$_n" -gt 0 ]; do
		set -- "$@" "$1"
		shift
		_n=$((_n - 1))
	done
	# shellcheck disable=SC2086 # J_COMPOSE is "docker compose" or "docker-compose"
	(cd "$_d" 2>/dev/null && $J_COMPOSE -p "$_p" "$@")
}

# project DIR: the compose project of the release in DIR.
project() {
	if [ -f "$1/.shipit-compose" ]; then sed -n 1p "$1/.shipit-compose"; else printf '%s\n' "${1##*/}"; fi
}

# running PROJECT: the ids of its running containers.
running() {
	docker ps -q --filter "label=com.docker.compose.project=$1" 2>/dev/null
}

# throttle: how long to give the host's Traefik to apply a Docker event, in
# whole seconds: its providers throttle (flag or variable), rounded up,
# plus one; 3 when unknown (Traefik's default 2s).
throttle() {
	_th=$(docker inspect -f '{{range .Args}}{{println .}}{{end}}{{range .Config.Env}}{{println .}}{{end}}' traefik 2>/dev/null |
		grep -i -e '^--providers\.providersthrottleduration=' -e '^traefik_providers_providersthrottleduration=' | head -n 1)
	_th=${_th#*=}
	case "$_th" in
	*[!0-9]*ms) _th=2 ;;
	*ms) _th=$(((${_th%ms} + 999) / 1000)) ;;
	*[!0-9]*s) _th=2 ;;
	*s) _th=${_th%s} ;;
	"" | *[!0-9]*) _th=2 ;;
	esac
	echo $((_th + 1))
}

# api PATH: GET PATH of Traefik's API, inside its container (`shipit setup`
# binds it to the container's loopback: nothing else reaches it).
api() {
	docker exec traefik wget -q -O - "http://${J_TRAEFIK_API:-127.0.0.1:8080}$1" 2>/dev/null
}

# backends PROJECT: one line per routed container of the project (label
# traefik.enable=true): "ID SERVICE ADDR", the Traefik service its labels
# define and the address Traefik sends it requests at ("-" when unknown).
backends() {
	for _id in $(docker ps -q --filter "label=com.docker.compose.project=$1" --filter "label=traefik.enable=true" 2>/dev/null); do
		docker inspect -f '{{range $k, $v := .Config.Labels}}label {{$k}}={{$v}}
{{end}}{{range $n, $s := .NetworkSettings.Networks}}net {{$n}} {{$s.IPAddress}}
{{end}}' "$_id" 2>/dev/null | awk -v id="$_id" '
			/^label traefik\.http\.services\..*\.loadbalancer\.server\.port=/ {
				s = $0; sub(/^label traefik\.http\.services\./, "", s)
				port = s; sub(/^.*\.loadbalancer\.server\.port=/, "", port)
				sub(/\.loadbalancer\.server\.port=.*$/, "", s); svc = s
			}
			/^label traefik\.docker\.network=/ { n = $0; sub(/^[^=]*=/, "", n); network = n }
			/^net / { ip[$2] = $3 }
			END {
				if (network == "") network = "traefik"
				addr = (ip[network] != "" && port != "") ? ip[network] ":" port : "-"
				print id, (svc == "" ? "-" : svc), addr
			}'
	done
}

# routed_left BACKENDS USE_API: the first container of BACKENDS that Traefik
# may still send requests to ("" when none): a server of its service by the
# API, or, without the API, healthy or starting by Docker.
routed_left() {
	printf '%s\n' "$1" | while read -r _id _svc _addr; do
		[ -n "$_id" ] || continue
		_st=$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$_id" 2>/dev/null)
		case "$_st" in running*) ;; *) continue ;; esac
		if [ "$2" = 1 ] && [ "$_svc" != - ] && [ "$_addr" != - ]; then
			if api "/api/http/services/$_svc@docker" | grep -q -F "\"http://$_addr\""; then
				echo "$_id still a server of $_svc"
				break
			fi
			continue
		fi
		case "$_st" in
		"running healthy" | "running starting")
			echo "$_id still ${_st#running }"
			break
			;;
		esac
	done
}

# not_routed BACKENDS: why Traefik does not yet send requests to every
# container of BACKENDS ("" once it does): by its API, each container's
# address must be a server of its service.
not_routed() {
	printf '%s\n' "$1" | while read -r _id _svc _addr; do
		[ -n "$_id" ] || continue
		if [ "$_svc" = - ] || [ "$_addr" = - ]; then
			echo "container $_id has no address on the traefik network"
			break
		fi
		if ! api "/api/http/services/$_svc@docker" | grep -q -F "\"http://$_addr\""; then
			echo "service $_svc does not list $_addr"
			break
		fi
	done
}

# wait_routed PROJECT: wait, polling on the host, until Traefik sends
# requests to every routed container of the project, at most
# J_ROUTE_TIMEOUT seconds. Says "routed: ok", "routed: none" (nothing of
# it is routed), "routed: noapi" (no API where `shipit setup` binds it: the
# caller falls back to Docker's view) or "routed: timeout WHY".
wait_routed() {
	_bs=$(backends "$1")
	if [ -z "$_bs" ]; then
		echo "routed: none"
		return 0
	fi
	if ! api /api/version >/dev/null; then
		echo "routed: noapi"
		return 0
	fi
	_end=$(($(now) + ${J_ROUTE_TIMEOUT:-30}))
	while :; do
		_why=$(not_routed "$_bs")
		if [ -z "$_why" ]; then
			echo "routed: ok"
			return 0
		fi
		if [ "$(now)" -ge "$_end" ]; then
			echo "routed: timeout $_why"
			return 0
		fi
		sleep 0.1 2>/dev/null || sleep 1
	done
}

# drain DIR PROJECT: take the project's routed containers out of Traefik's
# rotation and wait until Traefik no longer sends them requests, at most
# J_DRAIN_TIMEOUT seconds: the drain marker in DIR fails their health
# check, Docker calls them unhealthy, Traefik's Docker provider drops
# them. Traefik's API confirms it where `shipit setup` bound one; without
# it, Docker's unhealthy plus Traefik's throttle. Says what happened
# ("drain: ..."); returns 0 once out of rotation, 1 when the drain timed
# out or could not be made (the caller stops the release anyway).
drain() {
	_dd=$1 _dp=$2
	_bs=$(backends "$_dp")
	[ -n "$_bs" ] || return 0 # nothing routed: nothing to drain
	_wait=${J_DRAIN_TIMEOUT:-30}
	if [ -d "$_dd/${DRAIN_MARKER%/*}" ]; then
		: >"$_dd/$DRAIN_MARKER" || {
			echo "drain: cannot write the drain marker of $_dp: stopping it without a drain"
			return 1
		}
	else
		case "${J_FOREIGN:-}" in
		yields)
			echo "drain: drained $_dp in 0.0s (the new release's routers outrank its own: Traefik sends it nothing new)"
			return 0
			;;
		wait) [ "$_wait" -ge 75 ] || _wait=75 ;; # its own health check's interval and retries decide
		*)
			echo "drain: $_dp has no drain marker (the original shipit started it): stopping it without a drain"
			return 1
			;;
		esac
	fi
	_useapi=0
	api /api/version >/dev/null && _useapi=1
	_start=$(now_cs)
	_end=$(($(now) + _wait))
	while :; do
		_left=$(routed_left "$_bs" "$_useapi")
		[ -n "$_left" ] || break
		if [ "$(now)" -ge "$_end" ]; then
			echo "drain: drain of $_dp timed out after ${_wait}s ($_left); stopping it anyway"
			return 1
		fi
		sleep 0.25 2>/dev/null || sleep 1
	done
	# Without the API, Docker says unhealthy and Traefik's provider applies
	# it within its throttle.
	[ "$_useapi" = 1 ] || sleep "$(throttle)"
	_took=$(($(now_cs) - _start))
	echo "drain: drained $_dp in $((_took / 100)).$(((_took % 100) / 10))s"
	return 0
}

# stop_release DIR [PROJECT] [DOWN_ARGS...]: drain the release in DIR, stop
# it with its grace period for in-flight requests, remove its containers.
# Idempotent; PROJECT names it when DIR is gone. Returns non-zero, saying
# why on stderr, only when containers of it still run afterwards.
stop_release() {
	_sd=$1
	_sp=${2:-$(project "$_sd")}
	if [ $# -ge 2 ]; then shift 2; else shift $#; fi
	[ -n "$_sp" ] || return 0
	if [ -n "$(running "$_sp")" ]; then
		log "stopping $_sp (drain at most ${J_DRAIN_TIMEOUT:-30}s, then Traefik's throttle; stop -t ${J_STOP_TIMEOUT:-30}${J_GRACE_DRAINED:+, $J_GRACE_DRAINED once drained})"
		_grace=${J_STOP_TIMEOUT:-30}
		_said=$(drain "$_sd" "$_sp") && _grace=${J_GRACE_DRAINED:-$_grace}
		[ -z "$_said" ] || log "${_said#drain: }"
		if ! _err=$(compose "$_sd" stop -t "$_grace" 2>&1 >/dev/null); then
			# No compose files left: stop the containers by label.
			# shellcheck disable=SC2046
			docker stop -t "$_grace" $(running "$_sp") >/dev/null 2>&1
		fi
	fi
	compose "$_sd" down --remove-orphans "$@" >/dev/null 2>&1 || {
		_all=$(docker ps -aq --filter "label=com.docker.compose.project=$_sp" 2>/dev/null)
		# shellcheck disable=SC2086
		[ -z "$_all" ] || docker rm -f $_all >/dev/null 2>&1
	}
	if [ -n "$(running "$_sp")" ]; then
		printf 'release %s still runs after stop and down: %s\n' "$_sp" "${_err:-docker stop failed}" >&2
		return 1
	fi
	return 0
}

# switch_current RELEASE: point current at releases/RELEASE (atomic rename).
switch_current() {
	mkdir -p "$APP_DIR/.shipit" &&
		ln -sfn "releases/$1" "$APP_DIR/.shipit/current.tmp" && mv -Tf "$APP_DIR/.shipit/current.tmp" "$APP_DIR/current"
}

# write_lock CURRENT PREVIOUS SHA SECRETS_HASH: shipit.lock, as
# internal/lockfile reads it (the values are checked names and hex), written
# atomically (rename).
write_lock() {
	mkdir -p "$APP_DIR/.shipit" &&
		printf '{\n  "current_release": "%s",\n  "previous_release": "%s",\n  "git_sha": "%s",\n  "secrets_hash": "%s",\n  "deployed_at": "%s"\n}\n' \
			"$1" "$2" "$3" "$4" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$APP_DIR/.shipit/lock.json.tmp" &&
		chmod 644 "$APP_DIR/.shipit/lock.json.tmp" &&
		mv -f "$APP_DIR/.shipit/lock.json.tmp" "$APP_DIR/shipit.lock"
}

# stamp RELEASE: when the release was deployed (shipit releases shows it).
stamp() {
	date -u +%Y-%m-%dT%H:%M:%SZ >"$APP_DIR/releases/$1/.shipit-deployed-at.tmp" &&
		chmod 644 "$APP_DIR/releases/$1/.shipit-deployed-at.tmp" &&
		mv -f "$APP_DIR/releases/$1/.shipit-deployed-at.tmp" "$APP_DIR/releases/$1/.shipit-deployed-at"
}
