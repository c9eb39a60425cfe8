package remote

import (
	"fmt"
	"strings"
)

// CommandError is a command that ran but exited non-zero, locally or on a
// host: the host, the command, its exit code and the tail of its stderr
// are what a user needs to act on it.
type CommandError struct {
	Host   string // Conn.Name(), or "local"
	Cmd    string
	Code   int
	Stderr string // tail of stderr (or of stdout when stderr was empty)
}

func (e *CommandError) Error() string {
	where := "host " + e.Host
	if e.Host == "local" {
		where = "local"
	}
	msg := fmt.Sprintf("%s: command exited with code %d: %s", where, e.Code, e.Cmd)
	if s := strings.TrimRight(e.Stderr, "\n"); s != "" {
		msg += "\n  | " + strings.ReplaceAll(s, "\n", "\n  | ")
	}
	return msg
}
