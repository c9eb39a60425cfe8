
# Run as: sh -c "SETTINGS; lifecycle.sh; main.sh" shipit-lifecycle COMMAND APP_DIR ARGS...
#   wait_routed PROJECT                        says "routed: ..."
#   drain DIR PROJECT                          says "drain: ..." lines
#   stop DIR PROJECT [DOWN_ARGS...]            drain, stop, down
#   switch RELEASE                             current -> releases/RELEASE
#   lock CURRENT PREVIOUS SHA SECRETS [stamp]  shipit.lock (and the release's deployed-at)
set -u
umask 077
_cmd=$1
APP_DIR=$2
shift 2
case "$_cmd" in
wait_routed) wait_routed "$1" ;;
drain) drain "$1" "$2" || : ;;
stop) stop_release "$@" ;;
switch) switch_current "$1" ;;
lock) write_lock "$1" "$2" "$3" "$4" && { [ "${5:-}" != stamp ] || stamp "$1"; } ;;
*)
	echo "shipit-lifecycle: unknown command $_cmd" >&2
	exit 64
	;;
esac
