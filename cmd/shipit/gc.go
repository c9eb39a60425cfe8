package main

import (
	"os"
	"runtime/debug"
)

// gcLimit is the heap size at which the collector runs however little
// garbage there is: it keeps the peak of a 1 GB image transfer where it
// was with Go's defaults (about 100 MB RSS, docs/imagexfer.md).
const gcLimit = 96 << 20

// tuneGC trades memory shipit does not need for CPU: a command fanning out
// to many hosts allocates a few MB and, with Go's default GOGC=100,
// collects them several times for nothing (e2e's BenchmarkExecFanOut: 1.32x
// the CPU of a bare x/crypto/ssh program, 1.07x with this). The soft limit
// bounds the heap instead. GOGC or GOMEMLIMIT in the environment win.
func tuneGC() {
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(400)
		debug.SetMemoryLimit(gcLimit)
	}
}
