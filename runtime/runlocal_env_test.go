package runtime_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/runtime"
)

// run_local runs on the developer's machine with its environment, minus
// the secret material shipit itself reads (SHIPIT_AGE_KEY decrypts every
// stage's secrets): a build script must not get it.
func TestRunLocalEnvHasNoSecretKey(t *testing.T) {
	t.Setenv("SHIPIT_AGE_KEY", "AGE-SECRET-KEY-1NOTREALLYAKEYBUTSECRET")
	t.Setenv("SHIPIT_TEST_KEPT", "kept-value")
	rec := &recorder{}
	user := `task("t", function(h) print(run_local("env")) end)`
	s, err := runtime.NewState(newEnv(rec), newHost(t), compile(t, "shipit.lua", user))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.RunTask(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	out := strings.Join(rec.texts(runtime.Info), "\n")
	if !strings.Contains(out, "SHIPIT_TEST_KEPT=kept-value") {
		t.Fatalf("run_local did not get the environment:\n%s", out)
	}
	if strings.Contains(out, "SHIPIT_AGE_KEY") || strings.Contains(out, "NOTREALLYAKEY") {
		t.Fatalf("SHIPIT_AGE_KEY reached run_local:\n%s", out)
	}
}
