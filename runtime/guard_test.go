package runtime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/internal/remote/localconn"
	"github.com/shipit-dev/shipit/runtime"
)

// Every remote operation of a host goes behind its guard: h:run, h:put,
// and a builtin's direct use of h.Conn alike; a failing check stops
// anything from being sent at all.
func TestGuardCoversEveryRemoteOperation(t *testing.T) {
	h := newHost(t)
	dir := h.Conn.(*localconn.Conn).Dir
	user := `task("run", function(h) h:run("touch ran") end)
task("put", function(h) h:put(h.app_path .. "/put", "x", "0644") end)`
	s, err := runtime.NewState(newEnv(&recorder{}), h, compile(t, "shipit.lua", user))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h.SetGuard("{ echo refused >&2; exit 97; }; ", nil)
	for _, task := range []string{"run", "put"} {
		if _, err := s.RunTask(context.Background(), task); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s behind a refusing guard: %v", task, err)
		}
	}
	if code, _ := h.Conn.Run(context.Background(), "touch direct", nil, nil, nil); code != 97 {
		t.Errorf("a direct h.Conn.Run behind a refusing guard: code %d", code)
	}
	gaveUp := errors.New("shipit gave the host up")
	h.SetGuard("", func() error { return gaveUp })
	if _, err := h.Conn.Run(context.Background(), "touch direct", nil, nil, nil); !errors.Is(err, gaveUp) {
		t.Errorf("Run with a failing check: %v", err)
	}
	for _, f := range []string{"ran", "put", "direct"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s reached the host past the guard", f)
		}
	}
	h.SetGuard("", nil)
	if _, err := s.RunTask(context.Background(), "run"); err != nil {
		t.Fatalf("without a guard: %v", err)
	}
}
