package ui

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/runtime"
)

func TestProgressAndNotes(t *testing.T) {
	var out bytes.Buffer
	p := New(&out, false, []string{"web1"})
	p.Emit(runtime.Event{Host: "web1", Kind: runtime.Progress, Progress: &runtime.TransferProgress{What: "images", Phase: "sending", Done: 1, Total: 2}})
	if out.Len() != 0 {
		t.Fatalf("progress printed when not on a terminal: %q", out.String())
	}
	p.Emit(runtime.Event{Host: "web1", Kind: runtime.Note, Text: "images: 1 loaded"})
	if out.Len() != 0 {
		t.Fatalf("note printed before the summary: %q", out.String())
	}
	p.Summary("deploy", []orchestrator.Result{{Host: "web1", Release: "r1", Elapsed: time.Second}})
	if !strings.Contains(out.String(), "images: 1 loaded") {
		t.Fatalf("summary lacks the note:\n%s", out.String())
	}
}

func TestFormatProgress(t *testing.T) {
	got := FormatProgress(&runtime.TransferProgress{What: "images", Phase: "sending", Items: 3, ItemsDone: 1,
		Done: 12_100_000, Total: 40_300_000, Rate: 25_200_000, ETA: 1100 * time.Millisecond})
	if want := "images: sending 1/3 layers, 12.1 MB of 40.3 MB, 25.2 MB/s, ETA 1.1s"; got != want {
		t.Fatalf("FormatProgress = %q, want %q", got, want)
	}
}
