package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// removeIsolatedHost is the isolated host number TestRemove holds.
const removeIsolatedHost = 14

// TestRemove deploys an app twice behind the real Traefik, with an
// accessory, then removes it: without --yes (no terminal) nothing changes;
// with --yes every release's containers, the images built for them, their
// networks and the app's directory are gone, while the accessory, its
// volume and Traefik stay. Only --accessories --volumes removes those.
func TestRemove(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	const name = "rmapp"
	r := newRoutedApp(t, env, removeIsolatedHost, name, func(addr, domain string) string {
		return routedToml(name, addr, domain, "") + `
[accessories.db]
image = "` + harness.BaseImage + `"
volumes = ["rmapp_data:/data"]
cmd = ` + strconv.Quote(dbCmd) + `
`
	}, nil)
	host := r.host
	appPath := "/var/deploy/" + name
	r.mustShipit("accessory", "boot", "db", "-s", "production")
	r.commit(map[string]string{"version.txt": "2\n"})
	r.mustShipit("deploy", "-s", "production")
	harness.WaitAnswer(t, r.url, r.domain, "version 2", 30*time.Second)

	releaseContainers := func() []string {
		return strings.Fields(env.Docker(t, host, "ps", "-aq", "--filter", "label=shipit.app="+name, "--filter", "label=shipit.release"))
	}
	appImages := func() []string {
		var imgs []string
		for _, ref := range strings.Fields(env.Docker(t, host, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}")) {
			if strings.HasPrefix(ref, name+"-") && releaseImageRe.MatchString(strings.TrimPrefix(ref, name+"-")) {
				imgs = append(imgs, ref)
			}
		}
		return imgs
	}
	appNetworks := func() []string {
		var nets []string
		for _, n := range strings.Fields(env.Docker(t, host, "network", "ls", "--format", "{{.Name}}")) {
			if strings.HasPrefix(n, name+"-") {
				nets = append(nets, n)
			}
		}
		return nets
	}
	exists := func(path string) bool {
		return strings.TrimSpace(env.HostRun(t, host, "test -e "+path+" && echo yes || echo no")) == "yes"
	}
	running := func(container string) bool {
		return strings.TrimSpace(env.HostRun(t, host, "docker inspect -f '{{.State.Running}}' "+container+" 2>/dev/null || true")) == "true"
	}
	volumeExists := func(v string) bool {
		return strings.TrimSpace(env.HostRun(t, host, "docker volume inspect "+v+" >/dev/null 2>&1 && echo yes || true")) == "yes"
	}
	rels := strings.Fields(env.HostRun(t, host, "ls "+appPath+"/releases"))
	if len(rels) != 2 || len(releaseContainers()) == 0 || len(appImages()) < 2 || !running(name+"-db") || !volumeExists("rmapp_data") {
		t.Fatalf("before remove: releases %v, containers %v, images %v, db running %v", rels, releaseContainers(), appImages(), running(name+"-db"))
	}

	// 1. No terminal, no --yes: refused, nothing changed.
	out, code := r.shipit("remove", "-s", "production")
	if code != 1 || !strings.Contains(out, "no terminal to ask on: nothing was removed") || !strings.Contains(out, "pass --yes") {
		t.Fatalf("remove without --yes: exit %d\n%s", code, out)
	}
	if !exists(appPath+"/current") || len(releaseContainers()) == 0 {
		t.Fatal("remove without --yes changed the host")
	}
	harness.WaitAnswer(t, r.url, r.domain, "version 2", 5*time.Second)

	// 2. --yes: the app goes, the accessory, its volume and Traefik stay.
	out = r.mustShipit("remove", "-s", "production", "--yes")
	mustContain(t, "remove", out, "removed "+rels[0], "removed "+rels[1], "removed "+appPath,
		host.Addr+"  ok, 3 removed", "accessories kept: db (`shipit remove -s production --accessories` removes them)")
	if c := releaseContainers(); len(c) != 0 {
		t.Errorf("release containers left: %v", c)
	}
	if imgs := appImages(); len(imgs) != 0 {
		t.Errorf("images left: %v", imgs)
	}
	if nets := appNetworks(); len(nets) != 0 {
		t.Errorf("networks left: %v", nets)
	}
	if exists(appPath) {
		t.Errorf("%s still exists", appPath)
	}
	if !running(name+"-db") || !volumeExists("rmapp_data") {
		t.Errorf("the accessory or its volume went without --accessories")
	}
	if !running("traefik") {
		t.Errorf("Traefik was removed")
	}
	if code, body := harness.HTTPGet(r.url, r.domain); code != 404 {
		t.Errorf("the app still answers through Traefik: %d %q", code, body)
	}
	if s := lockFree(t, env, host, appPath); s != "" {
		t.Errorf("%s", s)
	}

	// 3. Again, with the accessories and their volumes: nothing of the app
	// is left to remove; the accessory and its volume go.
	out = r.mustShipit("remove", "-s", "production", "--yes", "--accessories", "--volumes")
	mustContain(t, "second remove", out, appPath+" does not exist: nothing deployed here", host.Addr+"  ok, 0 removed",
		"removed container rmapp-db", "removed volume rmapp_data")
	if exists(appPath) {
		t.Errorf("the second remove created %s", appPath)
	}
	if running(name+"-db") || volumeExists("rmapp_data") {
		t.Errorf("the accessory or its volume survived --accessories --volumes")
	}
}

// lockFree says what is wrong if a lock holder of the app is still alive
// on the host ("" when none is).
func lockFree(t *testing.T, env *harness.Env, host *harness.SSHD, appPath string) string {
	t.Helper()
	out := env.HostRun(t, host, "ps -eo args | grep '[s]hipit-host hold "+appPath+"' || true")
	if strings.TrimSpace(out) != "" {
		return "a lock holder is still running: " + out
	}
	return ""
}
