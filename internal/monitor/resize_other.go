//go:build !unix

package monitor

import "os"

// Without SIGWINCH the size is re-read on every tick.
func notifyResize(chan os.Signal) {}
