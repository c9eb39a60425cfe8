package health

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeDocker answers the commands Wait issues from a scripted sequence of
// container states.
type fakeDocker struct {
	states []string // "running healthy", "running starting", "exited none"...
	calls  int
}

func (f *fakeDocker) run(_ context.Context, cmd string) (string, error) {
	switch {
	case strings.Contains(cmd, " ps -aq "):
		return "abc123\n", nil
	case strings.Contains(cmd, "logs --tail"):
		return "line 1\nboom: port in use\n", nil
	case strings.Contains(cmd, "Health.Log"):
		return "exit 1: wget: 404\n\nexit 1: wget: 404\n", nil
	case strings.Contains(cmd, "inspect"):
		st := f.states[min(f.calls, len(f.states)-1)]
		f.calls++
		return "abc123abc123abc123 " + st + "\n", nil
	}
	return "", errors.New("unexpected command " + cmd)
}

func opts() Options {
	return Options{Project: "app-1", Service: "web", Interval: time.Millisecond, Timeout: time.Second}
}

func TestWaitHealthyAfterStarting(t *testing.T) {
	f := &fakeDocker{states: []string{"running starting", "running starting", "running healthy"}}
	if err := Wait(context.Background(), f.run, opts()); err != nil {
		t.Fatal(err)
	}
	if f.calls != 3 {
		t.Fatalf("polled %d times", f.calls)
	}
}

func TestWaitUnhealthyExplains(t *testing.T) {
	f := &fakeDocker{states: []string{"running starting", "running unhealthy"}}
	err := Wait(context.Background(), f.run, opts())
	var he *Error
	if !errors.As(err, &he) || he.Status != "unhealthy" {
		t.Fatalf("want unhealthy *Error, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"boom: port in use", "exit 1: wget: 404", "abc123abc123"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(he.Probe, "\n\n") {
		t.Errorf("blank lines kept in probe output: %q", he.Probe)
	}
}

func TestWaitExitedContainerFailsAtOnce(t *testing.T) {
	f := &fakeDocker{states: []string{"exited none"}}
	err := Wait(context.Background(), f.run, opts())
	var he *Error
	if !errors.As(err, &he) || !strings.Contains(he.Status, "exited") {
		t.Fatalf("want exited, got %v", err)
	}
}

func TestWaitWithoutHealthcheckCountsRunning(t *testing.T) {
	f := &fakeDocker{states: []string{"running none"}}
	if err := Wait(context.Background(), f.run, opts()); err != nil {
		t.Fatal(err)
	}
}

func TestWaitTimesOut(t *testing.T) {
	f := &fakeDocker{states: []string{"running starting"}}
	o := opts()
	o.Timeout = 20 * time.Millisecond
	err := Wait(context.Background(), f.run, o)
	var he *Error
	if !errors.As(err, &he) || !strings.Contains(he.Status, "still not healthy") {
		t.Fatalf("want timeout, got %v", err)
	}
}
