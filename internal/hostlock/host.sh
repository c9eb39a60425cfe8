# shipit's host-side program: the deploy lock holder and the settling of
# an interrupted deploy or rollback. POSIX sh plus flock(1), date, sleep,
# awk and docker: what a stock Debian, Ubuntu or Alpine host has. It is
# sent after internal/lifecycle's lifecycle.sh, whose functions (drain,
# stop_release, switch_current, write_lock, stamp) settle a run exactly as
# a live deploy runs it; log, redefined here, also writes settle.log.
#
# Run as: sh -c "$THIS" shipit-host COMMAND APP_DIR [ARGS...]
#   hold APP STAGE WAIT HB_TIMEOUT HOLDER_JSON RUN   take the lock, settle what an
#        earlier run left, then hold it for the run RUN (an id): stdin carries
#        heartbeats ("hb", answered "hb ok" or "hb failed WHY"), the journal
#        ("jb", then "j LINE" per line, then "jc SEQ": the holder writes it,
#        fsynced, and answers "ack SEQ" or "nack SEQ WHY"), "done SEQ" (the run
#        completed: forget the journal) and "settle"; end of input, or no
#        heartbeat for HB_TIMEOUT seconds, settles the journal and lets the lock
#        go. The holder is the only writer of the journal while it holds the lock.
#   status                                       print the lock's state (flock's
#        word, not a pid's: a holder file without the lock is "stale")
#   kill                                         SIGTERM the holder (it settles, then
#        exits), only if that pid really holds the lock; remove a stale holder file
#
# Files, in APP_DIR/.shipit (0700):
#   lock      flock(1) target        holder   who holds it (JSON, one line)
#   journal   the change in flight (shell assignments, written atomically)
#   settle.log what settling did      heartbeat  now (seconds since boot) of the last one
#   orphaned  the holder's client is gone and it is settling (why)
#   epoch     "live RUN" while RUN may change the host; "closed RUN" once RUN had
#             its journal settled on request (commands still run, marks are
#             refused); "settling RUN", "settled RUN WHAT" once the holder gave up
#             on its client, "ended RUN": every command RUN sends is refused
#             (hostlock.Guard). Written atomically (rename), under the mutex.
#   mutex     flock(1) serializing journal writes with settling
#   journal.corrupt-<time>  a journal that could not be settled, kept for inspection
set -u
umask 077
cmd=$1
APP_DIR=$2
S="$APP_DIR/.shipit"
J="$S/journal"
SETTLE_WAIT=300 # how long a new command queues behind a holder that is settling
OUT=1 # 0 once the client is gone: nothing more is written to stdout

say() {
	[ "$OUT" = 1 ] && { printf '%s\n' "$*" 2>/dev/null || OUT=0; }
	return 0
}

log() {
	say "log $*"
	printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$S/settle.log" 2>/dev/null
	# Bounded: keep the last 500 lines.
	if [ "$(wc -l <"$S/settle.log" 2>/dev/null || echo 0)" -gt 1000 ]; then
		tail -n 500 "$S/settle.log" >"$S/settle.log.tmp" && mv -f "$S/settle.log.tmp" "$S/settle.log"
	fi
}

# set_epoch STATE...: the run's state for hostlock.Guard, replaced atomically.
set_epoch() {
	printf '%s\n' "$*" >"$S/epoch.tmp" && mv -f "$S/epoch.tmp" "$S/epoch"
}

# live: the run this holder serves may still write its journal.
live() {
	read -r _st _id _ <"$S/epoch" 2>/dev/null && [ "$_st" = live ] && [ "$_id" = "$RUN" ]
}

# commit_journal: journal.in becomes the journal, durably (file, then the
# directory after the rename).
commit_journal() {
	durable "$S/journal.in" && mv -f "$S/journal.in" "$J" && durable "$S"
}

# reader: follows the client's lines (fd 3) for the holder; marks are
# written here, each under the mutex so that none lands once settling began.
reader() {
	exec 9>&- 2>/dev/null 7>>"$S/mutex" # its own open of the mutex: flock excludes the holder's
	_bad=""
	while IFS= read -r line <&3; do
		case "$line" in
		hb)
			if now >"$S/heartbeat.tmp" && mv -f "$S/heartbeat.tmp" "$S/heartbeat"; then
				say "hb ok"
			else
				say "hb failed writing $S/heartbeat"
			fi
			;;
		settle) : >"$S/settle.request" ;;
		jb) _bad="" && : >"$S/journal.in" || _bad="cannot write $S/journal.in" ;;
		"j "*) printf '%s\n' "${line#j }" >>"$S/journal.in" || _bad="cannot write $S/journal.in" ;;
		"jc "* | "done "*)
			_seq=${line#* }
			flock -x 7 >/dev/null 2>&1
			if ! live; then
				say "nack $_seq $(cat "$S/epoch" 2>/dev/null)"
			elif [ "${line%% *}" = done ]; then
				rm -rf "$J" "$S/env.undo" "$S/journal.in" && durable "$S" && say "ack $_seq" || say "nack $_seq cannot remove the journal"
			elif [ -z "$_bad" ] && commit_journal; then
				say "ack $_seq"
			else
				say "nack $_seq ${_bad:-cannot write the journal}"
			fi
			flock -u 7
			;;
		esac
	done
}

# locked: the lock is held. Asked of flock itself, never of a pid (a pid
# in the holder file may be stale after a reboot or an OOM kill, and since
# reused by anything). The shared probe lets go at once; hold retries its
# own attempt briefly so the probe never makes it fail.
locked() {
	[ -e "$S/lock" ] && ! flock -n -s "$S/lock" true 2>/dev/null
}

# holder_pid: the pid the holder file names ("" if none).
holder_pid() {
	sed -n 's/.*"holder_pid":\([0-9]*\).*/\1/p' "$S/holder" 2>/dev/null
}

# holds PID: PID is a live holder of this lock: the lock is held and PID
# has it open as fd 9, as hold does (its reader child closes it).
holds() {
	[ -n "$1" ] && locked || return 1
	_fd=$(readlink "/proc/$1/fd/9" 2>/dev/null) || return 1
	[ -n "$_fd" ] && [ "$_fd" = "$(readlink -f "$S/lock" 2>/dev/null)" ]
}

restore_env() {
	for _f in .env .env.sources; do
		if [ -e "$S/env.undo/$_f" ]; then
			mv -f "$S/env.undo/$_f" "$APP_DIR/shared/$_f"
		fi
	done
	rm -rf "$S/env.undo"
}

mark() { eval "[ \"\${S_$1:-}\" = true ]"; }

# durable FILE...: fsync FILE (a file, or a directory after a rename in it),
# where sync(1) takes arguments (coreutils 8.24+, busybox); elsewhere a
# no-op, never an error.
durable() {
	sync -- "$@" 2>/dev/null || :
}

# check_journal FILE: a journal that dash cannot source (a syntax error
# ends the whole script) or that a crash cut short (shipit's journals end
# with "# end" since the first line says v2) is moved aside as
# journal.corrupt-<time> for inspection, and reported: it must not block
# every later lock.
check_journal() {
	_why=""
	if ! sh -n "$1" 2>/dev/null; then
		_why="it is not valid shell"
	elif head -n 1 "$1" | grep -q '^# shipit journal v2' && [ "$(tail -n 1 "$1")" != "# end" ]; then
		_why="it is cut short"
	fi
	[ -n "$_why" ] || return 0
	_keep="$S/journal.corrupt-$(date -u +%Y%m%dT%H%M%SZ)-$$"
	mv -f "$1" "$_keep"
	durable "$S"
	log "the journal is corrupt ($_why): kept as $_keep for inspection and not settled; check the app's releases, current and shipit.lock by hand"
	return 1
}

# settle: undo the change in the journal, or complete it when it got past
# its point of no return (stopping the previous release); then forget it.
# Completing is idempotent: a run that had completed but for removing its
# journal is completed again, to the same state. The journal is first moved
# aside: from that moment every command shipit might still send is refused
# (hostlock.Guard), so nothing races the settling.
settle() {
	WHAT="found nothing to settle"
	if [ -f "$J" ]; then mv -f "$J" "$J.settling"; fi
	[ -f "$J.settling" ] || return 0
	check_journal "$J.settling" || return 0
	J_OP="" J_COMPOSE="docker compose"
	S_release="" S_previous_release="" S_git_sha="" S_secrets_hash=""
	# shellcheck disable=SC1090 # written by shipit, every value quoted
	. "$J.settling"
	case "$J_OP" in
	deploy)
		if mark previous_stopped; then
			log "completing the deploy of $S_release (past the point of no return)"
			stop_release "$APP_DIR/releases/$S_previous_release"
			switch_current "$S_release"
			stamp "$S_release"
			write_lock "$S_release" "$S_previous_release" "$S_git_sha" "$S_secrets_hash"
			log "deploy of $S_release completed: current -> $S_release"
			WHAT="completed the deploy of $S_release: current -> $S_release"
		else
			log "undoing the deploy of $S_release"
			if mark started; then stop_release "$APP_DIR/releases/$S_release" "" --rmi local; fi
			if mark env_written; then restore_env; fi
			if mark release_created && [ -n "$S_release" ]; then rm -rf "$APP_DIR/releases/$S_release"; fi
			log "deploy of $S_release undone${S_previous_release:+: $S_previous_release still current}"
			WHAT="undid the deploy of $S_release${S_previous_release:+: $S_previous_release still current}"
		fi
		;;
	rollback)
		if mark rb_stopping; then
			log "completing the rollback to $S_release (past the point of no return)"
			stop_release "$APP_DIR/releases/$S_previous_release"
			switch_current "$S_release"
			write_lock "$S_release" "$S_previous_release" "$S_git_sha" "$S_secrets_hash"
			log "rollback to $S_release completed: current -> $S_release"
			WHAT="completed the rollback to $S_release: current -> $S_release"
		else
			log "undoing the rollback to $S_release"
			if mark rb_started; then
				stop_release "$APP_DIR/releases/$S_release"
				restore_env
			fi
			log "rollback undone: $S_previous_release still current"
			WHAT="undid the rollback to $S_release: $S_previous_release still current"
		fi
		;;
	*)
		log "journal of an unknown operation '$J_OP' left as $J.unknown"
		mv -f "$J.settling" "$J.unknown"
		return 0
		;;
	esac
	rm -rf "$S/env.undo"
	rm -f "$J.settling"
	durable "$S"
}

# backstop APP STAGE: stop every running compose project of this app and
# stage that is not the current release, once the current one runs; and
# remove temp files a cut transfer left.
backstop() {
	_cur=$(readlink "$APP_DIR/current" 2>/dev/null)
	_cur=${_cur##*/}
	find "$APP_DIR" -maxdepth 2 -name '.*.shipit-tmp-*' -exec rm -f {} + 2>/dev/null
	rm -f "$APP_DIR"/.image-layers/*.part-* 2>/dev/null
	[ -n "$_cur" ] || return 0
	_lines=$(docker ps --filter "label=shipit.app=$1" --filter "label=shipit.stage=$2" \
		--format '{{.Label "com.docker.compose.project"}} {{.Label "shipit.release"}}' 2>/dev/null | sort -u)
	case "$_lines" in *" $_cur"*) ;; *) return 0 ;; esac # current not running: touch nothing
	printf '%s\n' "$_lines" | while read -r _p _r; do
		if [ -z "$_p" ] || [ "$_r" = "$_cur" ]; then continue; fi
		log "stopping $_p: release $_r is running but is not current ($_cur)"
		# Asked only now: compose's start-up would hold every lock taken.
		: "${J_COMPOSE:=$(docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)}"
		stop_release "$APP_DIR/releases/$_r" "$_p"
	done
}

hold() {
	APP=$3 STAGE=$4 WAIT=$5 HB_TIMEOUT=$6 HOLDER=$7 RUN=$8
	# Asked here rather than by a command of its own: one login shell less.
	command -v flock >/dev/null 2>&1 || { say noflock; exit 69; }
	mkdir -p "$S" && chmod 700 "$S" || exit 70
	exec 9>>"$S/lock"
	# Tried twice: a status probe may hold it for an instant (busybox's
	# flock has no -w for the retry).
	if ! flock -n 9 && ! { sleep 1 && flock -n 9; }; then
		# A holder whose client is gone (or silent) only settles and lets
		# go: queue behind it even without --lock-wait, bounded.
		_hb=$(cat "$S/heartbeat" 2>/dev/null)
		if [ "$WAIT" -eq 0 ] && { [ -e "$S/orphaned" ] || { [ -n "$_hb" ] && [ $(($(now) - _hb)) -gt 5 ]; }; }; then
			say "settling $(cat "$S/holder" 2>/dev/null)"
			WAIT=$((HB_TIMEOUT + SETTLE_WAIT))
		else
			say "busy $(cat "$S/holder" 2>/dev/null)"
		fi
		if [ "$WAIT" -gt 0 ] && flock -w "$WAIT" 9; then
			:
		else
			exit 75
		fi
	fi
	rm -f "$S/orphaned"
	trap '' HUP PIPE INT
	TERMED=0
	trap 'TERMED=1' TERM
	printf '%s\n' "$HOLDER" | sed "s/\"holder_pid\":0/\"holder_pid\":$$/" >"$S/holder.tmp" && mv -f "$S/holder.tmp" "$S/holder"
	settle
	backstop "$APP" "$STAGE"
	rm -f "$S/journal.in"
	set_epoch live "$RUN"
	now >"$S/heartbeat"
	rm -f "$S/heartbeat.tmp"
	exec 7>>"$S/mutex"
	say "locked"
	# The reader follows the session's stdin (kept on fd 3: a background
	# job's own stdin is /dev/null); the loop below watches it.
	exec 3<&0
	reader &
	reader=$!
	reason="end of input"
	while :; do
		if [ -e "$S/settle.request" ]; then
			rm -f "$S/settle.request"
			flock -x 7 >/dev/null 2>&1
			settle
			set_epoch closed "$RUN"
			flock -u 7
			say "settled"
		fi
		if [ "$TERMED" = 1 ]; then
			reason="lock release --force"
			kill "$reader" 2>/dev/null
			break
		fi
		kill -0 "$reader" 2>/dev/null || break
		last=$(cat "$S/heartbeat" 2>/dev/null)
		if [ -n "$last" ] && [ $(($(now) - last)) -gt "$HB_TIMEOUT" ]; then
			reason="no heartbeat for ${HB_TIMEOUT}s"
			kill "$reader" 2>/dev/null
			break
		fi
		sleep 1
	done
	# From here nothing the client sends changes the host: a mark in flight
	# is finished first (the mutex), then every command is refused.
	flock -x 7
	if [ -f "$J" ] || [ -f "$J.settling" ]; then
		set_epoch settling "$RUN"
		log "client gone ($reason): settling"
		printf '%s\n' "$reason" >"$S/orphaned"
		settle
		set_epoch settled "$RUN" "$WHAT"
		say "outcome $WHAT"
	elif [ "$reason" = "end of input" ]; then
		set_epoch ended "$RUN"
	else
		set_epoch settled "$RUN" "nothing to settle: the run had not changed the host"
		say "outcome nothing to settle: the run had not changed the host"
	fi
	flock -u 7
	rm -f "$S/holder" "$S/heartbeat" "$S/heartbeat.tmp" "$S/settle.request" "$S/orphaned" "$S/journal.in"
	say "released"
}

case "$cmd" in
hold) hold "$@" ;;
status)
	# Held is what flock says; the holder file only names the holder. A
	# holder file without the lock is stale (its holder died without
	# cleaning up: a reboot, an OOM kill).
	if locked; then
		echo "held $(cat "$S/holder" 2>/dev/null)"
		_hb=$(cat "$S/heartbeat" 2>/dev/null)
		case "$_hb" in '' | *[!0-9]*) ;; *) echo "heartbeat $(($(now) - _hb))" ;; esac
	else
		echo "free"
		[ -s "$S/holder" ] && echo "stale $(cat "$S/holder")"
	fi
	for _j in "$J" "$J.settling"; do
		[ -f "$_j" ] && echo "journal $(sed -n "s/^J_OP=//p" "$_j")"
	done
	for _j in "$S"/journal.corrupt-*; do
		[ -f "$_j" ] && echo "corrupt $_j"
	done
	exit 0
	;;
kill)
	# SIGTERM only a process that really holds this lock: never a pid read
	# from a file alone.
	pid=$(holder_pid)
	if holds "$pid"; then
		kill -TERM "$pid" 2>/dev/null && echo "signalled $pid"
	elif locked; then
		echo "unverified $(cat "$S/holder" 2>/dev/null)"
	elif [ -e "$S/holder" ]; then
		# Stale: removed under the lock, so never a new holder's file.
		flock -n "$S/lock" rm -f "$S/holder" "$S/heartbeat" "$S/orphaned" && echo "stale ${pid:-unknown}"
	fi
	exit 0
	;;
*)
	echo "shipit-host: unknown command $cmd" >&2
	exit 64
	;;
esac
