package traefik

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/shipit-dev/shipit/internal/remote"
)

// labelRouter is a router as a container's Docker labels define it.
type labelRouter struct {
	project     string // the container's compose project
	rule        string
	priority    int64    // effective: the label, else the rule's length
	entrypoints []string // nil: every entrypoint
}

// labelRouters reads the routers of the host's running containers that
// Traefik's Docker provider serves: enabled, and healthy or without a
// health check.
func labelRouters(ctx context.Context, c remote.Conn) ([]labelRouter, error) {
	cs, err := routedContainers(ctx, c)
	if err != nil {
		return nil, err
	}
	var rs []labelRouter
	for _, ct := range cs {
		if !ct.State.Running || ct.State.Health != nil && ct.State.Health.Status != "healthy" {
			continue
		}
		rs = append(rs, routersOf(ct.Config.Labels)...)
	}
	return rs, nil
}

// routersOf parses the HTTP routers of one container's labels.
func routersOf(labels map[string]string) []labelRouter {
	var rs []labelRouter
	for k, rule := range labels {
		name, ok := strings.CutSuffix(strings.TrimPrefix(k, "traefik.http.routers."), ".rule")
		if !ok || !strings.HasPrefix(k, "traefik.http.routers.") {
			continue
		}
		r := labelRouter{project: labels["com.docker.compose.project"], rule: rule, priority: int64(len(rule))}
		if p, err := strconv.ParseInt(labels["traefik.http.routers."+name+".priority"], 10, 64); err == nil && p > 0 {
			r.priority = p
		}
		if eps := labels["traefik.http.routers."+name+".entrypoints"]; eps != "" {
			for _, ep := range strings.Split(eps, ",") {
				r.entrypoints = append(r.entrypoints, strings.TrimSpace(ep))
			}
		}
		rs = append(rs, r)
	}
	return rs
}

// outrankedByLabels reports whether every router of project is outranked,
// on each of its entrypoints, by a router of another project's serving
// container with the same rule and a higher priority.
func outrankedByLabels(rs []labelRouter, project string) bool {
	mine := 0
	for _, m := range rs {
		if m.project != project {
			continue
		}
		mine++
		if !slices.ContainsFunc(rs, func(o labelRouter) bool { return o.project != project && outranks(o, m) }) {
			return false
		}
	}
	return mine > 0
}

func outranks(o, m labelRouter) bool {
	if o.rule != m.rule || o.priority <= m.priority {
		return false
	}
	if o.entrypoints == nil {
		return true
	}
	if m.entrypoints == nil {
		return false
	}
	for _, ep := range m.entrypoints {
		if !slices.Contains(o.entrypoints, ep) {
			return false
		}
	}
	return true
}
