package remote

import "fmt"

// CommandError is a command that ran but exited non-zero, locally or on a host.
type CommandError struct {
	Host   string // Conn.Name(), or "local"
	Cmd    string
	Code   int
	Stderr string // tail of stderr
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("%s: command %q exited with code %d", e.Host, e.Cmd, e.Code)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}
