package imagexfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/shipit-dev/shipit/internal/compose"
)

// localComposeV1 is the standalone compose v1 binary, used when the
// `docker compose` plugin (v2) is not available.
var localComposeV1 = "docker-compose"

// BuildOptions say what to build on this machine.
type BuildOptions struct {
	// RepoDir is a directory inside the project's git repository.
	RepoDir string
	// Commit is the commit to build: the one being deployed. Uncommitted
	// changes in the working tree never reach an image.
	Commit string
	// ComposeFile is relative to the repository root, as on the hosts;
	// "" for compose's default.
	ComposeFile string
	// Project is the compose project name (the app name); it is normalised
	// as compose does.
	Project string
	// CacheDir holds the build tree (default: the user's cache dir).
	CacheDir string
	// Plan, when set, is what PlanBuild returned for the same commit and
	// compose file: Build then skips reading the compose config again.
	Plan map[string]string
}

// composeCLI is the local compose command, resolved once per call.
type composeCLI struct {
	base []string // command and leading args
	v2   bool
	proj string
}

func (c composeCLI) args(args ...string) []string {
	return append(append([]string{}, c.base[1:]...), args...)
}

// PlanBuild lists the services of the commit's compose file that have a
// `build:` section, as service -> the image name compose gives them: the
// service's `image:` if set, else <project>-<service> (compose v2) or
// <project>_<service> (compose v1). Nothing is built.
func PlanBuild(ctx context.Context, o BuildOptions) (map[string]string, error) {
	images := map[string]string{}
	err := withTree(ctx, o, func(dir string) error {
		c, err := findCompose(ctx, dir, o)
		if err != nil {
			return err
		}
		images, _, err = buildServices(ctx, dir, c)
		return err
	})
	return images, err
}

// Build builds, on this machine, every service with a `build:` section of
// the compose project at o.Commit, and returns service -> image name (see
// PlanBuild). It builds in a checkout of the commit kept between runs (so
// BuildKit's context transfer and cache stay incremental), never in the
// working tree.
func Build(ctx context.Context, o BuildOptions) (map[string]string, error) {
	images := map[string]string{}
	err := withTree(ctx, o, func(dir string) error {
		c, err := findCompose(ctx, dir, o)
		if err != nil {
			return err
		}
		var services []string
		if o.Plan != nil {
			images = o.Plan
			for svc := range images {
				services = append(services, svc)
			}
			sort.Strings(services)
		} else if images, services, err = buildServices(ctx, dir, c); err != nil {
			return err
		}
		if len(services) == 0 {
			return nil
		}
		// The IDs before the build, asked while it starts (it tags only at
		// its end): an image whose ID is new is saved ahead (Sender.prestart).
		before := make([]string, len(services))
		var wg sync.WaitGroup
		for i, s := range services {
			wg.Add(1)
			go func() { defer wg.Done(); before[i], _ = LocalImageID(ctx, images[s]) }()
		}
		env := c.env()
		// BuildKit's default provenance attestation makes every build, even
		// one wholly from cache, a new image index (Engine 28 with the
		// containerd store: a new ID for the same config and layers), and
		// hosts would load it again. shipit takes images to hosts, not to a
		// registry: no default attestations, unless the user says otherwise.
		if _, set := os.LookupEnv("BUILDX_NO_DEFAULT_ATTESTATIONS"); !set {
			env = append(env, "BUILDX_NO_DEFAULT_ATTESTATIONS=1")
		}
		_, err = local(ctx, dir, env, c.base[0], c.args(append([]string{"build"}, services...)...)...)
		wg.Wait()
		if err != nil {
			return err
		}
		for i, s := range services {
			id, err := LocalImageID(ctx, images[s])
			if err != nil {
				return fmt.Errorf("local: compose built service %s but image %s is not there: %w", s, images[s], err)
			}
			if id != before[i] {
				built.Store(id, struct{}{})
			}
		}
		return nil
	})
	return images, err
}

func (c composeCLI) env() []string { return []string{"COMPOSE_PROJECT_NAME=" + c.proj} }

// composeFlavour remembers, per docker CLI, whether it has the compose v2
// plugin: asked once per process, not once per plan and build.
var composeFlavour sync.Map // localDocker -> bool

func findCompose(ctx context.Context, dir string, o BuildOptions) (composeCLI, error) {
	// compose v2 refuses names it would not produce itself; normalise the
	// same way for both versions so image names only differ by separator.
	c := composeCLI{proj: normalizeV2(o.Project)}
	if c.proj == "" {
		return c, fmt.Errorf("imagexfer: project name %q has no usable characters (a-z, 0-9, _ and -)", o.Project)
	}
	v2, known := composeFlavour.Load(localDocker)
	if !known {
		_, err := local(ctx, dir, c.env(), localDocker, "compose", "version")
		if err != nil && ctx.Err() != nil {
			return c, ctx.Err()
		}
		v2 = err == nil
		composeFlavour.Store(localDocker, v2)
	}
	if v2.(bool) {
		c.base, c.v2 = []string{localDocker, "compose"}, true
	} else if _, lerr := exec.LookPath(localComposeV1); lerr == nil {
		c.base = []string{localComposeV1}
	} else {
		return c, fmt.Errorf("local: neither `docker compose` (v2) nor %s (v1) is available", localComposeV1)
	}
	if o.ComposeFile != "" {
		c.base = append(c.base, "-f", o.ComposeFile)
	}
	return c, nil
}

// buildServices reads the compose config in dir and returns the image name
// of each service with a build: section, and those services sorted.
func buildServices(ctx context.Context, dir string, c composeCLI) (map[string]string, []string, error) {
	args, what := c.args("config", "--format", "json"), "docker compose config --format json"
	if !c.v2 {
		args, what = c.args("config"), localComposeV1+" config"
	}
	out, err := local(ctx, dir, c.env(), c.base[0], args...)
	if err != nil {
		return nil, nil, err
	}
	p, err := compose.Parse([]byte(out)) // JSON is YAML
	if err != nil {
		return nil, nil, fmt.Errorf("local: parsing `%s`: %w", what, err)
	}
	images := map[string]string{}
	var services []string
	for name, s := range p.Services {
		if !s.Builds() {
			continue
		}
		services = append(services, name)
		switch {
		case s.Image != "":
			images[name] = s.Image
		case c.v2 && p.Name != "":
			images[name] = p.Name + "-" + name
		case c.v2:
			images[name] = c.proj + "-" + name
		default:
			images[name] = c.proj + "_" + name
		}
	}
	sort.Strings(services)
	return images, services, nil
}

// withTree checks o.Commit out into the project's build tree and runs fn in
// it, holding a lock so that two shipit runs of one project never share it.
//
// The tree and its own index live in the cache dir, not in the repository:
// git's one-way merge (read-tree --reset -u) rewrites only the files that
// differ from the previous build, so their mtimes, which BuildKit compares to
// decide what context to send again, stay put.
func withTree(ctx context.Context, o BuildOptions, fn func(dir string) error) error {
	if o.Commit == "" {
		return fmt.Errorf("imagexfer: no commit to build")
	}
	top, err := local(ctx, o.RepoDir, nil, "git", "rev-parse", "--show-toplevel")
	if err != nil {
		return fmt.Errorf("local: %s is not in a git repository: %w", o.RepoDir, err)
	}
	top = strings.TrimSpace(top)
	sha, err := local(ctx, top, nil, "git", "rev-parse", "--verify", "--quiet", o.Commit+"^{commit}")
	if err != nil {
		return fmt.Errorf("local: commit %s is not in %s: %w", o.Commit, top, err)
	}
	sha = strings.TrimSpace(sha)

	cache := o.CacheDir
	if cache == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("local: no cache directory for the build tree: %w", err)
		}
		cache = filepath.Join(c, "shipit")
	}
	key := sha256.Sum256([]byte(top + "\x00" + normalizeV2(o.Project)))
	root := filepath.Join(cache, "build", hex.EncodeToString(key[:8]))
	tree := filepath.Join(root, "tree")
	if err := os.MkdirAll(tree, 0o700); err != nil {
		return fmt.Errorf("local: build tree: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(root, "lock"))
	if err != nil {
		return fmt.Errorf("local: locking the build tree %s: %w", root, err)
	}
	defer unlock()

	if !checkedOut(root, sha) {
		if err := checkout(ctx, top, root, tree, sha); err != nil {
			return err
		}
	}
	return fn(tree)
}

// checkouts is, per build tree, the marker this process wrote after its
// last checkout there.
var checkouts sync.Map // root -> marker content

// checkedOut says whether the tree is still at sha as this process left it
// (the plan, then the build of one deploy): no other run has checked out
// anything there since. Checking out again would cost a rewrite of every
// file changed in the last second: git cannot tell such files from
// modified ones (its "racy" entries), and a 54 MB file took 0.3-1.9 s.
func checkedOut(root, sha string) bool {
	mine, ok := checkouts.Load(root)
	if !ok {
		return false
	}
	b, err := os.ReadFile(filepath.Join(root, "checkout"))
	return err == nil && string(b) == mine.(string) && strings.HasPrefix(mine.(string), sha+" ")
}

// checkout resets the tree and its own index to sha, removes what is not in
// it and records the marker; the caller holds the tree's lock.
func checkout(ctx context.Context, top, root, tree, sha string) error {
	marker := filepath.Join(root, "checkout")
	if err := os.Remove(marker); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("local: build tree: %w", err)
	}
	idx := "GIT_INDEX_FILE=" + filepath.Join(root, "index")
	git := func(args ...string) error {
		_, err := local(ctx, top, []string{idx}, "git", append([]string{"--work-tree=" + tree}, args...)...)
		return err
	}
	if err := git("read-tree", "--reset", "-u", sha); err != nil {
		return fmt.Errorf("local: checking out %s for the build: %w", short(sha), err)
	}
	if err := git("clean", "-ffdqx"); err != nil {
		return fmt.Errorf("local: cleaning the build tree: %w", err)
	}
	mark := sha + " " + strconv.Itoa(os.Getpid()) + " " + randHex()
	if err := os.WriteFile(marker, []byte(mark), 0o600); err != nil {
		return fmt.Errorf("local: build tree: %w", err)
	}
	checkouts.Store(root, mark)
	return nil
}

// normalizeV2 mirrors compose-go's project name normalisation.
func normalizeV2(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		}
	}
	return strings.TrimLeft(b.String(), "_-")
}
