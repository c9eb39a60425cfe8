package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// Two apps whose names share a prefix, blog and blog-api, both built
// locally, deployed to one host in the same second: they get the same
// release name R1. When blog's cleanup (keep_releases = 1) removes its
// release R1, it must remove exactly blog's images of R1: blog-api still
// has R1 as its rollback target, and its images must survive (an image
// filter like blog-*:R1 also matched blog-api-web:R1).
func TestCleanupRemovesOnlyItsOwnAppImages(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartIsolatedHost(t, 28)
	apps := map[string]*app{}
	for _, name := range []string{"blog", "blog-api"} {
		a := newApp(t, env, name, "/var/deploy", []*harness.SSHD{host}, "", "build = \"local\"\n")
		toml, err := os.ReadFile(filepath.Join(a.dir, "shipit.toml"))
		if err != nil {
			t.Fatal(err)
		}
		a.commit(map[string]string{"shipit.toml": strings.Replace(string(toml), "keep_releases = 2", "keep_releases = 1", 1)})
		apps[name] = a
	}
	blog, api := apps["blog"], apps["blog-api"]
	// Each deploy ships new content, so each release has images of its own
	// (identical builds would share one image, in use by the current
	// release, which no cleanup could remove).
	deploy := func(a *app, version string, args ...string) string {
		a.commit(map[string]string{"www/index.html": a.name + " " + version + "\n"})
		return a.mustShipit(append(args, "deploy", "-s", "production")...)
	}
	// The local engine keeps what the local builds tagged.
	t.Cleanup(func() {
		for _, ref := range strings.Fields(env.Docker(t, nil, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}")) {
			repo, _, _ := strings.Cut(ref, ":")
			switch repo {
			case "blog-web", "blog_web", "blog-api-web", "blog-api_web", "blog/web", "blog-api/web":
				env.Docker(t, nil, "image", "rm", ref)
			}
		}
	})
	current := func(a *app) string {
		return filepath.Base(strings.TrimSpace(env.HostRun(t, host, "readlink /var/deploy/"+a.name+"/current")))
	}
	hasImage := func(ref string) bool {
		out := env.HostRun(t, host, "docker image ls -q "+ref)
		return strings.TrimSpace(out) != ""
	}

	// Both apps deployed in the same second: start them together right
	// after a second begins (the release name is taken as a deploy starts).
	var r1 string
	for attempt := 1; ; attempt++ {
		waitNextSecond(time.Now().UTC().Format("20060102-150405"))
		var wg sync.WaitGroup
		for _, a := range []*app{blog, api} {
			wg.Add(1)
			a.commit(map[string]string{"www/index.html": a.name + " r1\n"})
			go func() {
				defer wg.Done()
				a.mustShipit("deploy", "-s", "production")
			}()
		}
		wg.Wait()
		rb, ra := current(blog), current(api)
		if rb == ra {
			r1 = rb
			break
		}
		if attempt == 3 {
			t.Fatalf("3 attempts to deploy both apps in the same second failed (last: blog %s, blog-api %s)", rb, ra)
		}
		t.Logf("blog got %s, blog-api %s: again", rb, ra)
	}
	for _, ref := range []string{"blog/web:" + r1, "blog-api/web:" + r1} {
		if !hasImage(ref) {
			t.Fatalf("%s not on the host after the deploys", ref)
		}
	}

	// blog-api moves on: R1 is its previous release, stopped, images kept
	// for a rollback.
	waitNextSecond(r1)
	deploy(api, "r2")
	if cur := current(api); cur == r1 {
		t.Fatalf("blog-api still on %s", r1)
	}

	// blog deploys twice: the second cleanup removes blog's R1.
	deploy(blog, "r2")
	waitNextSecond(current(blog))
	out := deploy(blog, "r3", "-v")
	mustContain(t, "blog's cleanup", out, "removed release "+r1)
	if hasImage("blog/web:" + r1) {
		t.Fatalf("blog's cleanup left its own image blog-web:%s", r1)
	}
	if !hasImage("blog-api/web:" + r1) {
		t.Fatalf("blog's cleanup of release %s removed blog-api/web:%s, blog-api's rollback target", r1, r1)
	}

	// And blog-api can still roll back to it.
	api.mustShipit("rollback", "-s", "production")
	if cur := current(api); cur != r1 {
		t.Fatalf("blog-api rolled back to %s, want %s", cur, r1)
	}
	ids := strings.Fields(env.Docker(t, host, "ps", "-q", "--filter", "label=com.docker.compose.project=blog-api-"+r1,
		"--filter", "label=com.docker.compose.service=web"))
	if len(ids) != 1 || health(t, env, host, ids[0]) != "healthy" {
		t.Fatalf("blog-api's %s web not running healthy after the rollback: %v", r1, ids)
	}
	if got := serve(t, env, host, ids[0]); got != "blog-api r1" {
		t.Fatalf("blog-api's %s serves %q", r1, got)
	}
}
