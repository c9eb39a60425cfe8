package e2e

// Experiments against the real Traefik (shipit-traefik:v3.6.12) that the
// zero-downtime design rests on. They measure and log; they assert only
// what the design relies on. Results and discussion: the notes of the
// traefik branch (traefik-facts.md). Run them with
//
//	SHIPIT_TRAEFIK_FACTS=1 go test ./e2e -run TestTraefikFacts -v -count=1
//
// Without SHIPIT_TRAEFIK_FACTS=1 the test only logs how to run it: the
// experiments take several minutes and load the machine.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
	"golang.org/x/crypto/ssh"
)

const factsEnv = "SHIPIT_TRAEFIK_FACTS"

// factsApp is one container of the graceful app routed by a test Traefik.
type factsApp struct {
	name, ip string
}

type factsWorld struct {
	t     *testing.T
	env   *harness.Env
	tr    *harness.Traefik
	image string // the graceful app, version from APP_VERSION
	host  string // Host header of the routes
	drain string // an empty file to docker cp as the marker
}

func newFactsWorld(t *testing.T, args ...string) *factsWorld {
	env := harness.New(t)
	id := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	w := &factsWorld{t: t, env: env, image: "shipit-facts-app:" + id, host: "facts-" + id + ".test"}
	env.BuildGracefulImage(t, nil, w.image, "image")
	t.Cleanup(func() { _, _ = dockerNoFail(env, "rmi", w.image) })
	w.tr = env.StartTraefik(t, nil, harness.TraefikOpts{Name: "shipit-facts-" + id, API: true, Args: args})
	w.drain = filepath.Join(env.Dir, "shipit-drain")
	if err := os.WriteFile(w.drain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

func dockerNoFail(env *harness.Env, args ...string) (string, error) {
	out, err := execOut("docker", args...)
	return out, err
}

// run starts a container of the app answering "version <version>" with the
// drain-aware health check and the given labels.
func (w *factsWorld) run(name, version string, labels map[string]string, interval string, retries int) factsApp {
	w.t.Helper()
	args := []string{"run", "-d", "--name", name, "--network", w.tr.Network, "-e", "APP_VERSION=" + version,
		"--health-cmd", fmt.Sprintf("[ ! -e /tmp/shipit-drain ] && wget -q -O /dev/null http://127.0.0.1:%d/health", harness.GracefulAppPort),
		"--health-interval", interval, "--health-retries", fmt.Sprint(retries), "--health-timeout", "2s"}
	args = append(args, harness.LabelArgs(labels)...)
	args = append(args, w.image)
	w.env.Docker(w.t, nil, args...)
	w.t.Cleanup(func() { _, _ = dockerNoFail(w.env, "rm", "-f", name) })
	ip := strings.TrimSpace(w.env.Docker(w.t, nil, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+w.tr.Network+"\").IPAddress}}", name))
	return factsApp{name: name, ip: ip}
}

func (w *factsWorld) serverURL(a factsApp) string {
	return fmt.Sprintf("http://%s:%d", a.ip, harness.GracefulAppPort)
}

// waitServers waits until the API lists exactly the servers of apps for
// service and returns how long that took.
func (w *factsWorld) waitServers(service string, timeout time.Duration, apps ...factsApp) time.Duration {
	w.t.Helper()
	var want []string
	for _, a := range apps {
		want = append(want, w.serverURL(a))
	}
	sort.Strings(want)
	start := time.Now()
	var got []string
	for time.Since(start) < timeout {
		got = w.tr.Servers(w.t, service)
		sort.Strings(got)
		if strings.Join(got, " ") == strings.Join(want, " ") {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var states []string
	for _, a := range apps {
		out, _ := execOut("docker", "inspect", "-f", "{{.State.Status}} {{.State.Health.Status}}", a.name)
		states = append(states, a.name+": "+strings.TrimSpace(out))
	}
	_, all := w.tr.API(w.t, "/api/http/services", nil)
	w.t.Fatalf("service %s: servers %v, want %v after %v; containers: %s; services: %s", service, got, want, timeout,
		strings.Join(states, ", "), tailStr(oneLine(all), 3000))
	return 0
}

// markDrain copies the marker into the container: its health check fails
// from the next probe on.
func (w *factsWorld) markDrain(a factsApp) {
	w.t.Helper()
	w.env.Docker(w.t, nil, "cp", w.drain, a.name+":/tmp/shipit-drain")
}

// drainTiming places the marker in a and measures until Docker reports it
// unhealthy and until the API no longer lists it for service.
func (w *factsWorld) drainTiming(a factsApp, service string) (unhealthy, unrouted time.Duration) {
	w.t.Helper()
	w.markDrain(a)
	t0 := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for time.Since(t0) < 60*time.Second {
			out, err := execOut("docker", "inspect", "-f", "{{.State.Health.Status}}", a.name)
			if err == nil && strings.TrimSpace(out) == "unhealthy" {
				unhealthy = time.Since(t0)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	for time.Since(t0) < 60*time.Second {
		in := false
		for _, u := range w.tr.Servers(w.t, service) {
			in = in || u == w.serverURL(a)
		}
		if !in {
			unrouted = time.Since(t0)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	if unhealthy == 0 || unrouted == 0 {
		w.t.Fatalf("%s: unhealthy after %v, unrouted after %v (0: not within 60s)", a.name, unhealthy, unrouted)
	}
	return unhealthy, unrouted
}

func TestTraefikFacts(t *testing.T) {
	t.Parallel()
	if os.Getenv(factsEnv) != "1" {
		t.Logf("experiments off: run with %s=1 (several minutes; see the comment at the top of %s)", factsEnv, "e2e/traefikfacts_test.go")
		return
	}

	// a) Marker -> unhealthy -> out of Traefik's rotation, by health
	// check interval and retries, with the default provider throttle and
	// with --providers.providersThrottleDuration=500ms.
	t.Run("drain-timing", func(t *testing.T) {
		for _, throttle := range []string{"", "500ms"} {
			var args []string
			if throttle != "" {
				args = append(args, "--providers.providersThrottleDuration="+throttle)
			}
			w := newFactsWorld(t, args...)
			for _, hc := range []struct {
				interval string
				retries  int
			}{{"500ms", 1}, {"1s", 1}, {"1s", 3}, {"2s", 1}, {"500ms", 3}} {
				// hot: the marker is placed right after Traefik applied a
				// configuration (the new server routed), as in a deploy;
				// cold: after 3s without configuration changes.
				var ups, urs, cups, curs []time.Duration
				for rep := 0; rep < 6; rep++ {
					cold := rep%2 == 1
					svc := fmt.Sprintf("d%d%s", rep, strings.ReplaceAll(hc.interval, "ms", ""))
					n := fmt.Sprintf("%s-%s-%d-%d", w.tr.Name, strings.ReplaceAll(hc.interval, "ms", "m"), hc.retries, rep)
					labels := w.tr.Labels(svc, svc, svc+"."+w.host, harness.GracefulAppPort)
					a := w.run(n+"-a", "a", labels, hc.interval, hc.retries)
					b := w.run(n+"-b", "b", labels, hc.interval, hc.retries)
					w.waitServers(svc+"@docker", 60*time.Second, a, b)
					if cold {
						time.Sleep(3 * time.Second)
					}
					up, ur := w.drainTiming(a, svc+"@docker")
					if cold {
						cups, curs = append(cups, up), append(curs, ur)
					} else {
						ups, urs = append(ups, up), append(urs, ur)
					}
					// The other container takes every request.
					for i := 0; i < 10; i++ {
						if code, body := w.tr.Get(svc+"."+w.host, "/"); code != 200 || strings.TrimSpace(body) != "version b" {
							t.Errorf("after draining a: %d %q", code, body)
						}
					}
					w.env.Docker(t, nil, "rm", "-f", a.name, b.name)
				}
				t.Logf("FACT drain throttle=%s interval=%s retries=%d: hot: marker->unhealthy %v, marker->out of rotation %v; cold: marker->unhealthy %v, marker->out of rotation %v",
					orDefault(throttle, "default(2s)"), hc.interval, hc.retries, fmtDurs(ups), fmtDurs(urs), fmtDurs(cups), fmtDurs(curs))
			}
		}
	})

	// a') The last healthy container of a service turns unhealthy: the
	// route goes away (404) unless allowEmptyServices (503).
	t.Run("last-server", func(t *testing.T) {
		for _, allow := range []bool{false, true} {
			var args []string
			if allow {
				args = []string{"--providers.docker.allowEmptyServices=true"}
			}
			w := newFactsWorld(t, args...)
			labels := w.tr.Labels("only", "only", "only."+w.host, harness.GracefulAppPort)
			a := w.run(w.tr.Name+"-only", "a", labels, "500ms", 1)
			w.waitServers("only@docker", 60*time.Second, a)
			w.markDrain(a)
			var code int
			var body string
			start := time.Now()
			for time.Since(start) < 20*time.Second {
				code, body = w.tr.Get("only."+w.host, "/")
				if code != 200 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			var svc harness.TraefikService
			sc, raw := w.tr.API(t, "/api/http/services/only@docker", &svc)
			_, routers := w.tr.API(t, "/api/http/routers/only@docker", nil)
			t.Logf("FACT last server drained (allowEmptyServices=%v): requests get %d %q; GET /api/http/services/only@docker: %d %s; router: %s",
				allow, code, strings.TrimSpace(body), sc, oneLine(raw), oneLine(routers))
		}
	})

	// b) The API: JSON of a service with two servers (old and new release)
	// and of the routers; reached through an SSH direct-tcpip channel.
	t.Run("api", func(t *testing.T) {
		w := newFactsWorld(t)
		labels := w.tr.Labels("api", "api", "api."+w.host, harness.GracefulAppPort)
		old := w.run(w.tr.Name+"-old", "1", labels, "500ms", 1)
		nu := w.run(w.tr.Name+"-new", "2", labels, "500ms", 1)
		w.waitServers("api@docker", 60*time.Second, old, nu)
		_, svc := w.tr.API(t, "/api/http/services/api@docker", nil)
		_, rt := w.tr.API(t, "/api/http/routers/api@docker", nil)
		t.Logf("FACT old %s=%s new %s=%s\nGET /api/http/services/api@docker:\n%s\nGET /api/http/routers/api@docker:\n%s",
			old.name, old.ip, nu.name, nu.ip, svc, rt)
		w.markDrain(old)
		w.waitServers("api@docker", 60*time.Second, nu)
		_, svc = w.tr.API(t, "/api/http/services/api@docker", nil)
		t.Logf("FACT after draining old:\n%s", svc)

		// Through sshd (the harness config: AllowTcpForwarding default).
		host := w.env.StartSSHD(t, harness.SSHDOpts{})
		key, err := os.ReadFile(w.env.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := ssh.ParsePrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ssh.Dial("tcp", host.Addr, &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		apiAddr := strings.TrimPrefix(w.tr.APIURL, "http://")
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return c.Dial("tcp", apiAddr)
		}}}
		start := time.Now()
		resp, err := hc.Get("http://" + apiAddr + "/api/http/services/api@docker")
		if err != nil {
			t.Fatalf("API through an SSH direct-tcpip channel: %v", err)
		}
		b := make([]byte, 200)
		n, _ := resp.Body.Read(b)
		resp.Body.Close()
		first := time.Since(start)
		start = time.Now()
		for i := 0; i < 20; i++ {
			resp, err := hc.Get("http://" + apiAddr + "/api/http/services/api@docker")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		t.Logf("FACT API through ssh client.Dial(\"tcp\", %q): %s, first %v, then %v per request (keep-alive over the channel): %s",
			apiAddr, resp.Status, first.Round(time.Millisecond), (time.Since(start) / 20).Round(time.Microsecond), b[:n])

		// A hardened sshd refuses the channel.
		noFwd := w.env.StartSSHD(t, harness.SSHDOpts{ExtraConfig: "AllowTcpForwarding no"})
		c2, err := ssh.Dial("tcp", noFwd.Addr, &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		_, err = c2.Dial("tcp", apiAddr)
		t.Logf("FACT with AllowTcpForwarding no: client.Dial: %v", err)
	})

	// c) Two containers with the same router and service labels (two
	// compose projects of one app): one service, both servers. Same router
	// name, different rules: the router is disabled. Distinct router names
	// per routing config: routing through the overlap and after.
	t.Run("labels", func(t *testing.T) {
		w := newFactsWorld(t)
		// Same router name, different Host rule.
		l1 := w.tr.Labels("conf", "conf", "one."+w.host, harness.GracefulAppPort)
		l2 := w.tr.Labels("conf", "conf", "two."+w.host, harness.GracefulAppPort)
		a := w.run(w.tr.Name+"-conf1", "1", l1, "500ms", 1)
		w.waitServers("conf@docker", 60*time.Second, a)
		b := w.run(w.tr.Name+"-conf2", "2", l2, "500ms", 1)
		w.waitServers("conf@docker", 60*time.Second, a, b)
		time.Sleep(3 * time.Second)
		c1, b1 := w.tr.Get("one."+w.host, "/")
		c2, b2 := w.tr.Get("two."+w.host, "/")
		rc, rt := w.tr.API(t, "/api/http/routers/conf@docker", nil)
		_, svc := w.tr.API(t, "/api/http/services/conf@docker", nil)
		logs := grepLines(w.tr.Logs(t), "conf")
		t.Logf("FACT same router name, different rules: Host one -> %d %q, Host two -> %d %q\nrouter API: %d %s\nservice API: %s\nTraefik log lines:\n%s",
			c1, strings.TrimSpace(b1), c2, strings.TrimSpace(b2), rc, oneLine(rt), oneLine(svc), logs)
		w.env.Docker(t, nil, "rm", "-f", b.name)
		w.waitServers("conf@docker", 60*time.Second, a)
		time.Sleep(3 * time.Second)
		c1, b1 = w.tr.Get("one."+w.host, "/")
		t.Logf("FACT after the second container left: Host one -> %d %q", c1, strings.TrimSpace(b1))

		// Distinct router names (suffixed with a hash of the routing
		// config), one shared service name; then distinct service names.
		for _, sharedService := range []bool{true, false} {
			h := fmt.Sprintf("r%v", sharedService)
			svc1, svc2 := h+"svc", h+"svc"
			if !sharedService {
				svc1, svc2 = h+"svc-aaaa", h+"svc-bbbb"
			}
			lo := w.tr.Labels(h+"-aaaa", svc1, h+"."+w.host, harness.GracefulAppPort)
			ln := w.tr.Labels(h+"-bbbb", svc2, h+"."+w.host, harness.GracefulAppPort)
			old := w.run(w.tr.Name+"-"+h+"-old", "1", lo, "500ms", 1)
			w.waitServers(svc1+"@docker", 60*time.Second, old)
			load := harness.StartLoad(t, harness.LoadOpts{URL: w.tr.URL, Host: h + "." + w.host, SlowEvery: -1})
			time.Sleep(time.Second)
			nu := w.run(w.tr.Name+"-"+h+"-new", "2", ln, "500ms", 1)
			if sharedService {
				w.waitServers(svc1+"@docker", 60*time.Second, old, nu)
			} else {
				w.waitServers(svc2+"@docker", 60*time.Second, nu)
			}
			time.Sleep(2 * time.Second)
			overlap := time.Now()
			time.Sleep(3 * time.Second)
			_, routers := w.tr.API(t, "/api/http/routers?search="+h, nil)
			w.markDrain(old)
			if sharedService {
				w.waitServers(svc1+"@docker", 60*time.Second, nu)
			} else {
				w.waitServers(svc1+"@docker", 60*time.Second)
			}
			drained := time.Now()
			w.env.Docker(t, nil, "stop", "-t", "30", old.name)
			time.Sleep(3 * time.Second)
			rep := load.Stop()
			t.Logf("FACT distinct router names, shared service=%v: routers during the overlap: %s\nwhole run: %v\noverlap window (3s): %v\nafter the old one drained and stopped: %v",
				sharedService, oneLine(routers), rep, rep.Window(overlap, overlap.Add(3*time.Second)), rep.Window(drained, rep.To))
		}
	})

	// d) Stopping a routed container under load: plain `docker stop`
	// against marker -> out of rotation -> `docker stop -t 30`; with the
	// default throttle and with 500ms.
	t.Run("stop-under-load", func(t *testing.T) {
		for _, throttle := range []string{"", "500ms"} {
			var args []string
			if throttle != "" {
				args = append(args, "--providers.providersThrottleDuration="+throttle)
			}
			w := newFactsWorld(t, args...)
			for _, mode := range []string{"plain", "marker", "plain", "marker"} {
				svc := fmt.Sprintf("s%s%d", mode, time.Now().UnixNano()%1e6)
				labels := w.tr.Labels(svc, svc, svc+"."+w.host, harness.GracefulAppPort)
				old := w.run(w.tr.Name+"-"+svc+"-old", "1", labels, "500ms", 1)
				w.waitServers(svc+"@docker", 60*time.Second, old)
				load := harness.StartLoad(t, harness.LoadOpts{URL: w.tr.URL, Host: svc + "." + w.host})
				time.Sleep(2 * time.Second)
				nu := w.run(w.tr.Name+"-"+svc+"-new", "2", labels, "500ms", 1)
				w.waitServers(svc+"@docker", 60*time.Second, old, nu)
				time.Sleep(2 * time.Second)
				switchAt := time.Now()
				var drainTook time.Duration
				if mode == "marker" {
					w.markDrain(old)
					drainTook = w.waitServers(svc+"@docker", 60*time.Second, nu)
				}
				stopStart := time.Now()
				w.env.Docker(t, nil, "stop", "-t", "30", old.name)
				stopTook := time.Since(stopStart)
				time.Sleep(4 * time.Second)
				rep := load.Stop()
				t.Logf("FACT stop %s (throttle %s): drain %v, docker stop %v\n  before: %v\n  from the switch on: %v",
					mode, orDefault(throttle, "default(2s)"), drainTook.Round(time.Millisecond), stopTook.Round(time.Millisecond),
					rep.Window(rep.From, switchAt), rep.Window(switchAt, rep.To))
				w.env.Docker(t, nil, "rm", "-f", old.name, nu.name)
			}
		}
	})

	// e) The throttle flag: the Docker provider has no throttle of its
	// own in v3.6; the global providers.providersThrottleDuration applies.
	t.Run("throttle-flag", func(t *testing.T) {
		env := harness.New(t)
		out, err := execOut("docker", "run", "--rm", harness.TraefikImage, "--providers.docker=true", "--providers.docker.throttleDuration=500ms")
		t.Logf("FACT --providers.docker.throttleDuration: err %v: %s", err, tailStr(out, 600))
		for _, f := range []string{"--providers.providersThrottleDuration=500ms"} {
			tr := env.StartTraefik(t, nil, harness.TraefikOpts{API: true, Args: []string{f}})
			_, raw := tr.API(t, "/api/rawdata", nil)
			_, ov := tr.API(t, "/api/overview", nil)
			t.Logf("FACT %s accepted; overview: %s (raw %d bytes)", f, oneLine(ov), len(raw))
		}
	})
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func fmtDurs(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Round(10*time.Millisecond).String())
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func oneLine(b []byte) string {
	return strings.Join(strings.Fields(string(b)), " ")
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.Contains(l, "DBG") {
			out = append(out, tailStr(l, 400))
		}
	}
	if len(out) > 10 {
		out = out[len(out)-10:]
	}
	return strings.Join(out, "\n")
}

func tailStr(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// execOut runs a command and returns its combined output.
func execOut(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
