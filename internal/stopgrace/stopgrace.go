// Package stopgrace decides how long stopping a drained release waits
// before Docker kills it: the configured stop_timeout for an app that can
// react to its stop signal (it finishes its in-flight requests, then
// exits), and only its longest request's time for one that cannot.
//
// A container's main process is its PID namespace's init: the kernel
// delivers it a signal sent from outside (docker stop) only when it set a
// handler or waits for it (tini, docker's init, sleeps in sigtimedwait,
// which hides the signals it waits for from /proc's masks: its wait
// channel tells). busybox httpd as PID 1, or a shell-script entrypoint, sets none:
// SIGTERM does nothing, and docker stop waits the whole grace period before
// SIGKILL. All that grace period can give such an app is time for the
// requests in flight at the end of the drain to finish; Traefik's latency
// histogram of the app's service says how long its requests take.
package stopgrace

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/shipit-dev/shipit/internal/remote"
	"github.com/shipit-dev/shipit/internal/shell"
)

// Process is one running container's main process, as the host sees it.
type Process struct {
	Signal string // the container's stop signal (SIGTERM unless stop_signal says otherwise)
	Caught uint64 // SigCgt|SigBlk of /proc/PID/status: the signals it handles or waits for
	Waits  bool   // sleeping in sigtimedwait or sigsuspend: it reacts to whatever it waits for
	Known  bool   // false when the host's /proc could not be read as this container's
}

// Reacts reports whether the process can react to its stop signal; an
// unknown process or signal is assumed to.
func (p Process) Reacts() bool {
	n, ok := signalNumber(p.Signal)
	if !p.Known || !ok || p.Waits {
		return true
	}
	return p.Caught&(1<<(n-1)) != 0
}

// Processes reads the main process of each running container of a compose
// project, in one command.
func Processes(ctx context.Context, c remote.Conn, project string) ([]Process, error) {
	cmd := "ids=$(docker ps -q --filter " + shell.Quote("label=com.docker.compose.project="+project) + ") && " +
		"{ [ -z \"$ids\" ] || docker inspect --type container -f '{{.Id}} {{.State.Pid}} {{with index .Config \"StopSignal\"}}{{.}}{{end}}' $ids; } | " +
		// The pid is this host's only if its cgroup names the container
		// (a DOCKER_HOST elsewhere, another PID namespace: unknown).
		"while read -r id pid sig; do printf '%s ' \"${sig:-SIGTERM}\"; " +
		"if grep -q \"$id\" \"/proc/$pid/cgroup\" 2>/dev/null; then grep -E '^Sig(Blk|Cgt):' \"/proc/$pid/status\" | tr '\\n' ' '; " +
		"printf 'wchan: %s\\n' \"$(cat \"/proc/$pid/wchan\" 2>/dev/null)\"; else echo unknown; fi; done"
	out, err := remote.Output(ctx, c, cmd)
	if err != nil {
		return nil, err
	}
	return parse(out), nil
}

// parse reads lines "SIGNAL SigBlk: HEX SigCgt: HEX wchan: SYMBOL" or
// "SIGNAL unknown". A wait channel of 0 (running, or hidden by the kernel)
// leaves the process unknown.
func parse(out string) []Process {
	var ps []Process
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		p := Process{Signal: f[0]}
		masks, wchan := 0, ""
		for i := 1; i+1 < len(f); i += 2 {
			switch f[i] {
			case "SigBlk:", "SigCgt:":
				if m, err := strconv.ParseUint(f[i+1], 16, 64); err == nil {
					p.Caught |= m
					masks++
				}
			case "wchan:":
				wchan = f[i+1]
			}
		}
		p.Waits = strings.Contains(wchan, "sigtimedwait") || strings.Contains(wchan, "sigsuspend")
		p.Known = masks == 2 && wchan != "" && wchan != "0"
		ps = append(ps, p)
	}
	return ps
}

// signalNumber maps a Docker stop signal ("SIGTERM", "TERM", "15") to
// its Linux number.
func signalNumber(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 1 && n <= 64
	}
	n, ok := map[string]int{"HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "USR1": 10, "USR2": 12, "TERM": 15,
		"WINCH": 28, "PWR": 30}[strings.TrimPrefix(strings.ToUpper(s), "SIG")]
	return n, ok
}

// Bucket is a cumulative latency bucket: Count requests took <= Le seconds.
type Bucket struct {
	Le    float64
	Count float64
}

// Longest is the bound of the app's longest request: the smallest bucket
// that holds every request Traefik answered (cumulative buckets sorted by
// Le, the last one +Inf); ok is false when some took longer than the last
// finite bound, or without a histogram.
func Longest(bs []Bucket) (time.Duration, bool) {
	if len(bs) == 0 || !math.IsInf(bs[len(bs)-1].Le, 1) {
		return 0, false
	}
	total := bs[len(bs)-1].Count
	for _, b := range bs {
		if b.Count >= total {
			if math.IsInf(b.Le, 1) {
				return 0, false
			}
			return time.Duration(b.Le * float64(time.Second)), true
		}
	}
	return 0, false
}

// Decision is how long the stop waits, and why when that is not stop_timeout.
type Decision struct {
	Timeout time.Duration // whole seconds (docker's -t)
	Why     string
}

// Decide picks the stop's grace period: stopTimeout unless the release was
// drained and no process of it can react to its stop signal; then the
// longest request's time (at least a second, at most stopTimeout), when
// Traefik measured it (longest's ok).
func Decide(ps []Process, drained bool, stopTimeout, longest time.Duration, measured bool) Decision {
	full := Decision{Timeout: stopTimeout}
	if !drained || len(ps) == 0 || !measured {
		return full
	}
	for _, p := range ps {
		if p.Reacts() {
			return full
		}
	}
	t := max(time.Duration(math.Ceil(longest.Seconds()))*time.Second, time.Second)
	if t >= stopTimeout {
		return full
	}
	return Decision{Timeout: t, Why: fmt.Sprintf("its processes ignore their stop signal: waiting %s for requests in flight "+
		"(its longest requests took at most %s), not stop_timeout %s", t, longest, stopTimeout)}
}
