package remote

// FollowWrap makes cmd die when the SSH channel closes. Killing the
// session only signals the remote shell, not the process it forked (e.g.
// `docker compose logs -f`), which would otherwise linger until it next
// writes. A watcher reads stdin, which the caller holds open and sshd
// closes with the channel, and kills the command on EOF.
func FollowWrap(cmd string) string {
	// Background jobs get /dev/null as stdin, so the watcher reads a copy
	// of the session's stdin kept on fd 3.
	return "exec 3<&0; ( " + cmd + " ) & p=$!; (cat <&3 >/dev/null; kill $p 2>/dev/null) >/dev/null 2>&1 & wait $p"
}
