package session

import (
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/internal/hostlock"
)

func TestDescribeLockStaleAndCorrupt(t *testing.T) {
	st := hostlock.Status{Stale: true, Holder: hostlock.Holder{User: "ann@laptop", PID: 7, Command: "deploy"},
		Corrupt: []string{"/srv/demo/.shipit/journal.corrupt-20260101T000000Z-9"}}
	got := describeLock(st)
	for _, want := range []string{"free (a stale holder file names deploy by ann@laptop (pid 7)", "lock release --force` removes it",
		"a corrupt journal was kept aside as /srv/demo/.shipit/journal.corrupt-20260101T000000Z-9"} {
		if !strings.Contains(got, want) {
			t.Errorf("describeLock = %q, missing %q", got, want)
		}
	}
	if got := describeLock(hostlock.Status{Held: true, Holder: hostlock.Holder{Command: "deploy"}}); strings.Contains(got, "stale") {
		t.Errorf("held: %q", got)
	}
}
