// Package shell is the one place where values become remote shell words.
// Every value that reaches a remote shell goes through Quote or Join.
package shell

import (
	"strings"

	"al.essio.dev/pkg/shellescape"
)

// Quote returns s as a single POSIX shell word.
func Quote(s string) string { return shellescape.Quote(s) }

// Join quotes each argument and joins them with spaces.
func Join(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}
