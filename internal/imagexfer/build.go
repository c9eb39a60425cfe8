package imagexfer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// localComposeV1 is the standalone compose v1 binary, used when the
// `docker compose` plugin (v2) is not available.
var localComposeV1 = "docker-compose"

type composeService struct {
	Build any    `json:"build" yaml:"build"`
	Image string `json:"image" yaml:"image"`
}

type composeProject struct {
	Name     string                    `json:"name" yaml:"name"`
	Services map[string]composeService `json:"services" yaml:"services"`
}

// BuildServices builds, on this machine, every service of the compose
// project in dir that has a `build:` section, with COMPOSE_PROJECT_NAME=project
// (lower-cased, characters outside [a-z0-9_-] dropped, as compose does),
// and returns service -> image name as compose tagged it: the service's
// `image:` if set, else <project>-<service> (compose v2) or
// <project>_<service> (compose v1). composeFile may be "" for compose's default.
func BuildServices(ctx context.Context, dir, composeFile, project string) (map[string]string, error) {
	// compose v2 refuses names it would not produce itself; normalise the
	// same way for both versions so image names only differ by separator.
	proj := normalizeV2(project)
	if proj == "" {
		return nil, fmt.Errorf("imagexfer: project name %q has no usable characters (a-z, 0-9, _ and -)", project)
	}
	env := append(os.Environ(), "COMPOSE_PROJECT_NAME="+proj)
	var base []string // command and leading args
	v2 := false
	if _, err := local(ctx, dir, env, localDocker, "compose", "version"); err == nil {
		base, v2 = []string{localDocker, "compose"}, true
	} else if ctx.Err() != nil {
		return nil, ctx.Err()
	} else if _, lerr := exec.LookPath(localComposeV1); lerr == nil {
		base = []string{localComposeV1}
	} else {
		return nil, fmt.Errorf("local: neither `docker compose` (v2) nor %s (v1) is available: %v", localComposeV1, err)
	}
	if composeFile != "" {
		base = append(base, "-f", composeFile)
	}
	cmdArgs := func(args ...string) []string { return append(append([]string{}, base[1:]...), args...) }

	var p composeProject
	if v2 {
		out, err := local(ctx, dir, env, base[0], cmdArgs("config", "--format", "json")...)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			return nil, fmt.Errorf("local: parsing `docker compose config --format json`: %w", err)
		}
	} else {
		out, err := local(ctx, dir, env, base[0], cmdArgs("config")...)
		if err != nil {
			return nil, err
		}
		if err := yaml.Unmarshal([]byte(out), &p); err != nil {
			return nil, fmt.Errorf("local: parsing `%s config`: %w", localComposeV1, err)
		}
	}

	images := map[string]string{}
	var services []string
	for name, s := range p.Services {
		if s.Build == nil {
			continue
		}
		services = append(services, name)
		switch {
		case s.Image != "":
			images[name] = s.Image
		case v2:
			if p.Name != "" {
				images[name] = p.Name + "-" + name
			} else {
				images[name] = proj + "-" + name
			}
		default:
			images[name] = proj + "_" + name
		}
	}
	if len(services) == 0 {
		return images, nil
	}
	sort.Strings(services)
	if _, err := local(ctx, dir, env, base[0], cmdArgs(append([]string{"build"}, services...)...)...); err != nil {
		return nil, err
	}
	for _, s := range services {
		if _, err := LocalImageID(ctx, images[s]); err != nil {
			return nil, fmt.Errorf("local: compose built service %s but image %s is not there: %w", s, images[s], err)
		}
	}
	return images, nil
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
