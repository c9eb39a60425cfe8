package traefik

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/internal/lifecycle"
)

// fakeHost answers the docker commands the package sends, from a script.
type fakeHost struct {
	mu       sync.Mutex
	servers  string // the Traefik API's services JSON
	routers  string // and its routers JSON
	foreign  bool   // the release has no drain marker directory
	noAPI    bool
	health   string
	commands []string
}

func (f *fakeHost) Name() string { return "h1" }
func (f *fakeHost) WriteFile(context.Context, string, io.Reader, int64, os.FileMode) error {
	return errors.New("not used")
}
func (f *fakeHost) Exists(context.Context, string) (bool, error) { return !f.foreign, nil }

func (f *fakeHost) Run(_ context.Context, cmd string, _ io.Reader, stdout, stderr io.Writer) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commands = append(f.commands, cmd)
	switch {
	case strings.HasPrefix(cmd, "docker ps -q"):
		io.WriteString(stdout, "c0ffee000001\n")
	case strings.HasPrefix(cmd, "docker inspect"):
		io.WriteString(stdout, `[{"ID":"c0ffee000001abcd","Config":{"Labels":{"traefik.enable":"true",`+
			`"traefik.http.services.app-prod.loadbalancer.server.port":"8080"}},`+
			`"State":{"Running":true,"Health":{"Status":"`+f.health+`"}},`+
			`"NetworkSettings":{"Networks":{"traefik":{"IPAddress":"10.0.0.7"}}}}]`)
	case strings.Contains(cmd, "docker exec traefik wget"):
		if f.noAPI {
			io.WriteString(stderr, "wget: can't connect to remote host\n")
			return 1, nil
		}
		if strings.Contains(cmd, "/api/version") {
			io.WriteString(stdout, `{"Version":"3.6.12"}`)
		} else if strings.Contains(cmd, "/api/http/routers") {
			io.WriteString(stdout, f.routers)
		} else {
			io.WriteString(stdout, f.servers)
		}
	case strings.HasPrefix(cmd, ": > "):
	default:
		return 127, nil
	}
	return 0, nil
}

const routed = `[{"name":"app-prod@docker","loadBalancer":{"servers":[{"url":"http://10.0.0.7:8080"},{"url":"http://10.0.0.3:8080"}]},"serverStatus":{"http://10.0.0.7:8080":"UP"}}]`
const notRouted = `[{"name":"app-prod@docker","loadBalancer":{"servers":[{"url":"http://10.0.0.3:8080"}]}}]`

func TestLifecycleAsksTheAPIWhereSetupBindsIt(t *testing.T) {
	if lifecycle.TraefikAPI != APIAddr {
		t.Fatalf("internal/lifecycle asks Traefik's API at %s, setup binds it at %s", lifecycle.TraefikAPI, APIAddr)
	}
}

// The original's release (no drain marker) behind a router with Traefik's
// default priority, ours one more with a server: Traefik sends the old one
// nothing new, so the drain is done at once, without touching its probe.
func TestPrepareForeignOfAReleaseWhoseRouterIsOutranked(t *testing.T) {
	const services = `[{"name":"app-prod@docker","loadBalancer":{"servers":[{"url":"http://10.0.0.7:8080"}]}},` +
		`{"name":"app-new@docker","loadBalancer":{"servers":[{"url":"http://10.0.0.9:8080"}]}}]`
	routers := func(ours int) string {
		return fmt.Sprintf(`[{"name":"app@docker","provider":"docker","service":"app-prod","rule":"Host(`+"`a.example.com`"+`)","status":"enabled","priority":21,"using":["web"]},`+
			`{"name":"app-new-1a2b@docker","provider":"docker","service":"app-new","rule":"Host(`+"`a.example.com`"+`)","status":"enabled","priority":%d,"using":["web"]}]`, ours)
	}
	h := &fakeHost{servers: services, routers: routers(22), health: "healthy", foreign: true}
	mode, msg, err := PrepareForeign(context.Background(), h, "20250219-140000")
	if err != nil || mode != ForeignYields || msg != "" {
		t.Fatalf("outranked: %q %q, %v", mode, msg, err)
	}
	for _, c := range h.commands {
		if strings.HasPrefix(c, "docker cp") {
			t.Fatalf("the probe was touched: %s", c)
		}
	}
	// Same priority: Traefik may still pick the old router; its probe is
	// made to fail instead.
	h = &fakeHost{servers: services, routers: routers(21), health: "healthy", foreign: true}
	mode, msg, err = PrepareForeign(context.Background(), h, "20250219-140000")
	if err != nil || !strings.Contains(strings.Join(h.commands, "\n"), "docker cp - ") || !strings.Contains(msg, "stopping it without a drain") || mode != ForeignNone {
		t.Fatalf("tied: %q %q, %v; commands %q", mode, msg, err, h.commands)
	}
}

func TestParseThrottle(t *testing.T) {
	for _, c := range []struct {
		inspect string
		want    time.Duration
	}{
		{`["--providers.docker=true"] ["PATH=/usr/bin"]`, DefaultThrottle},
		{`["--providers.providersThrottleDuration=500ms"] null`, 500 * time.Millisecond},
		{`["--PROVIDERS.providersthrottleduration","5"] []`, 5 * time.Second},
		{`[] ["TRAEFIK_PROVIDERS_PROVIDERSTHROTTLEDURATION=1s"]`, time.Second},
		{`["--providers.providersThrottleDuration=soon"] []`, DefaultThrottle},
		{`not json`, DefaultThrottle},
	} {
		if got := parseThrottle(c.inspect); got != c.want {
			t.Errorf("%s: %v, want %v", c.inspect, got, c.want)
		}
	}
}
