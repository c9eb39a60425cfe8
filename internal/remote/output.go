package remote

import (
	"bytes"
	"context"
	"fmt"

	"github.com/shipit-dev/shipit/internal/text"
)

// StderrLines is how much of a failed command's output errors keep.
const StderrLines = 15

// Output runs cmd on c and returns its stdout. A non-zero exit is a
// *CommandError carrying the tail of stderr (of stdout when stderr is
// empty); transport failures are wrapped with the host and command.
func Output(ctx context.Context, c Conn, cmd string) (string, error) {
	var out, errb bytes.Buffer
	code, err := c.Run(ctx, cmd, nil, &out, &errb)
	if err != nil {
		return out.String(), fmt.Errorf("host %s: %s: %w", c.Name(), cmd, err)
	}
	if code != 0 {
		return out.String(), Failed(c.Name(), cmd, code, errb.String(), out.String())
	}
	return out.String(), nil
}

// Failed builds the *CommandError of a command that exited with code.
func Failed(host, cmd string, code int, stderr, stdout string) *CommandError {
	tail := text.Tail(stderr, StderrLines)
	if tail == "" {
		tail = text.Tail(stdout, StderrLines)
	}
	return &CommandError{Host: host, Cmd: cmd, Code: code, Stderr: tail}
}
