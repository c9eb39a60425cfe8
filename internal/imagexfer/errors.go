package imagexfer

import (
	"fmt"
	"strings"
)

// HostError is a host that cannot take images as it is, with the fix.
type HostError struct {
	Host, Msg, Fix string
}

func (e *HostError) Error() string { return e.Host + ": " + e.Msg }
func (e *HostError) Hint() string  { return e.Fix }

// DiskFullError is a host that ran out of disk space while receiving or
// loading layers; it carries the message of the command that failed (the
// engine's own for docker load).
type DiskFullError struct {
	*CommandError
	StagingDir string // where the layers received so far wait on the host
}

func (e *DiskFullError) Unwrap() error { return e.CommandError }

func (e *DiskFullError) Hint() string {
	return fmt.Sprintf("free disk space on %s, e.g. `docker image prune` or `docker system prune` there, "+
		"then deploy again: the layers received so far wait in %s and are not sent twice (remove it to get that space back too)", e.Host, e.StagingDir)
}

// hostFailure turns a failed host command into the most useful error.
func hostFailure(h Host, cmd string, code int, stderr string) error {
	ce := &CommandError{Host: h.Conn.Name(), Cmd: cmd, Code: code, Stderr: tail(stderr)}
	if strings.Contains(strings.ToLower(stderr), "no space left on device") {
		return &DiskFullError{CommandError: ce, StagingDir: h.StagingDir}
	}
	return ce
}

// CutError is a transfer to a host that lost its connection (or was
// cancelled) part way: what was complete stays staged there.
type CutError struct {
	Host, Layer string
	Err         error
}

func (e *CutError) Error() string {
	return fmt.Sprintf("%s: sending layer %s: %v", e.Host, e.Layer, e.Err)
}
func (e *CutError) Unwrap() error { return e.Err }
func (e *CutError) Hint() string {
	return "deploy again: the layers that reached " + e.Host + " complete are kept there and not sent twice"
}
