package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// An app whose main process ignores SIGTERM (busybox httpd as PID 1, no
// init) is stopped, after its drain, with its longest requests' time
// instead of stop_timeout, on deploy and on rollback; the graceful app
// (zero-downtime suite) keeps stop_timeout. Either way the host ends with
// exactly the current release running.
func TestStopGraceOfAnAppThatIgnoresSIGTERM(t *testing.T) {
	env := harness.New(t)
	r := newRoutedAppOf(t, env, zdIsolatedHost+1, "sigign", harness.Busybox,
		func(addr, domain string) string {
			return strings.Replace(routedToml("sigign", addr, domain, ""), `stop_timeout = "10s"`, `stop_timeout = "30s"`, 1)
		}, ignoringAppFiles("1"))
	const shortened = "its processes ignore their stop signal: waiting 1s for requests in flight"

	r.commit(ignoringAppFiles("2"))
	out := r.mustShipit("deploy", "-s", "production")
	mustContain(t, "deploy", out, "drained sigign-", shortened, "not stop_timeout 30s")
	harness.WaitAnswer(t, r.url, r.domain, "version 2", 10*time.Second)
	r.onlyCurrentRuns(t, env)

	out = r.mustShipit("rollback", "-s", "production")
	mustContain(t, "rollback", out, shortened)
	harness.WaitAnswer(t, r.url, r.domain, "version 1", 10*time.Second)
	r.onlyCurrentRuns(t, env)
}

// onlyCurrentRuns checks that the one running compose project of the app
// is the current release's.
func (r *routedApp) onlyCurrentRuns(t *testing.T, env *harness.Env) {
	t.Helper()
	l, _ := readLock(t, r.host.DeployRoot+"/"+r.name)
	out := env.Docker(t, r.host, "ps", "--filter", "label=shipit.app="+r.name, "--format", `{{.Label "com.docker.compose.project"}}`)
	projects := map[string]bool{}
	for _, p := range strings.Fields(out) {
		projects[p] = true
	}
	if len(projects) != 1 || !projects[r.name+"-"+l.CurrentRelease] {
		t.Errorf("running projects %v, want only %s-%s (current)", projects, r.name, l.CurrentRelease)
	}
}
