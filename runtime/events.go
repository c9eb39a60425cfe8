package runtime

import "time"

// EventKind says what happened on a host.
type EventKind int

const (
	StepStart EventKind = iota
	StepDone
	StepFailed
	StepSkipped
	Output  // a line of output from a command or a hook
	Command // a remote or local command about to run (shown with -v)
	Info
	Warn
	Debug
	Report // a structured report item (Item is set)
	// Progress is a long transfer's state (Event.Progress); renderers show
	// it live on a terminal and may drop it otherwise.
	Progress
	// Note is a line for the host's block of the end-of-run summary.
	Note
)

// TransferProgress is how far a transfer on one host has got.
type TransferProgress struct {
	What        string // e.g. "images"
	Phase       string // e.g. "checking", "sending", "loading", "done"
	Done, Total int64  // bytes; Total is an estimate until known
	Items       int    // e.g. layers to send
	ItemsDone   int
	Rate        float64       // bytes per second
	ETA         time.Duration // 0 when unknown
}

// Event is reported by a host's goroutine to the one renderer.
type Event struct {
	Host    string
	Kind    EventKind
	Step    string
	Index   int // 1-based position of Step in its pipeline; 0 for hooks and tasks
	Total   int
	Elapsed time.Duration
	Text    string
	Err     error
	Item    *ReportItem // for Report events
	// Progress is set for Kind Progress.
	Progress *TransferProgress
}

// Sink receives events; implementations must be safe for concurrent use.
type Sink interface{ Emit(Event) }

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

func (f SinkFunc) Emit(e Event) { f(e) }

// Discard drops every event.
var Discard Sink = SinkFunc(func(Event) {})
