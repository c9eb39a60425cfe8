package runtime_test

import (
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/internal/config"
	"github.com/shipit-dev/shipit/runtime"
)

// Durations reach Lua as Go duration strings, batches as written.
func TestConfigViewDurationsAndBatch(t *testing.T) {
	for _, tc := range []struct{ toml, lua string }{
		{"", `
assert(config.deploy.health_check.interval == "2s", config.deploy.health_check.interval)
assert(config.deploy.health_check.timeout == "1m0s", config.deploy.health_check.timeout)
assert(config.deploy.health_check.probe_timeout == "5s")
assert(config.deploy.health_check.unhealthy_after == 3)
assert(config.deploy.health_check.port == 8080 and config.deploy.health_check.path == "/health")
assert(config.deploy.drain_timeout == "0s", config.deploy.drain_timeout)
assert(config.deploy.stop_timeout == "30s")
assert(config.deploy.rollout.batch == "100%", tostring(config.deploy.rollout.batch))
assert(config.deploy.rollout.wait == "0s")
assert(config.deploy.rollout.atomic == false)
assert(config.stages.prod.os == "")
`},
		{"[deploy.health_check]\ninterval = 3\ntimeout = 90\n[deploy.rollout]\nbatch = 2\nwait = \"1m30s\"\n[stages.prod]\nos = \"alpine\"\n", `
assert(config.deploy.health_check.interval == "3s")
assert(config.deploy.health_check.timeout == "1m30s")
assert(type(config.deploy.rollout.batch) == "number" and config.deploy.rollout.batch == 2)
assert(config.deploy.rollout.wait == "1m30s")
assert(config.stages.prod.os == "alpine")
`},
		{"[deploy.rollout]\nbatch = \"25%\"\n", `
assert(config.deploy.rollout.batch == "25%")
`},
	} {
		doc := "[app]\nname = \"demo\"\n" + tc.toml
		if !strings.Contains(doc, "[stages.prod]") {
			doc += "[stages.prod]\n"
		}
		doc += "hosts = [{ address = \"h1\" }]\n"
		cfg, err := config.Parse([]byte(doc), "shipit.toml")
		if err != nil {
			t.Fatal(err)
		}
		s, err := runtime.NewState(&runtime.Env{Config: cfg, Stage: "prod", Sink: runtime.Discard}, nil, compile(t, "check.lua", tc.lua))
		if err != nil {
			t.Errorf("%s:\n%v", tc.toml, err)
			continue
		}
		s.Close()
	}
}
