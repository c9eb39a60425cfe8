// Package images is require("shipit.images"): local builds and image
// transfer to hosts over the pooled SSH connection (no registry).
package images

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/imagexfer"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.images", Open: open,
		Doc: "Local image builds and their transfer to hosts over SSH (no registry).",
		Funcs: []runtime.Func{
			{Name: "plan_local", Args: "h: shipit.Host, opts: {compose_file: string}", Returns: "table<string, string>",
				Doc: "The image each service with a build: section gets for this release (service -> ref)."},
			{Name: "build_local", Args: "h: shipit.Host, opts: {compose_file: string}",
				Doc: "Builds the services on this machine, once per command run, and tags them for the release."},
			{Name: "transfer", Args: "h: shipit.Host, refs: table<string, string>", Returns: "{sent: string[], skipped: string[], bytes: integer}",
				Doc: "Sends the images the host lacks; images it has are only tagged."},
		}})
}

// BuildServices lists the services of the local compose file that have a
// build: section, sorted.
func BuildServices(ctx context.Context, dir, file string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "docker", "compose", "-f", file, "config", "--format", "json")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = strings.TrimSpace(string(ee.Stderr))
		}
		return nil, fmt.Errorf("local `docker compose config` in %s failed: %v %s", dir, err, stderr)
	}
	var cfg struct {
		Services map[string]struct {
			Build json.RawMessage `json:"build"`
		} `json:"services"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		return nil, fmt.Errorf("parse docker compose config: %w", err)
	}
	var names []string
	for name, s := range cfg.Services {
		if len(s.Build) > 0 && string(s.Build) != "null" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

func refsFor(app, release string, services []string) map[string]string {
	refs := map[string]string{}
	for _, s := range services {
		refs[s] = app + "-" + s + ":" + release
	}
	return refs
}

func table(L *lua.LState, m map[string]string) *lua.LTable {
	t := L.NewTable()
	for k, v := range m {
		t.RawSetString(k, lua.LString(v))
	}
	return t
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"plan_local": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			file := lua.LVAsString(L.CheckTable(2).RawGetString("compose_file"))
			st := runtime.StateOf(L)
			v, err := st.Env.Once("images.services:"+file, func() (any, error) {
				return BuildServices(h.Context(), st.Env.ProjectDir, file)
			})
			if err != nil {
				return runtime.Raise(L, err)
			}
			L.Push(table(L, refsFor(h.App, h.Release, v.([]string))))
			return 1
		},
		"build_local": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			file := lua.LVAsString(L.CheckTable(2).RawGetString("compose_file"))
			st := runtime.StateOf(L)
			// One local build per command run, whatever the number of hosts.
			v, err := st.Env.Once("images.build:"+file, func() (any, error) {
				h.Emit(runtime.Event{Kind: runtime.Info, Text: "building images locally"})
				return imagexfer.BuildServices(h.Context(), st.Env.ProjectDir, file, h.App)
			})
			if err != nil {
				return runtime.Raise(L, err)
			}
			built := v.(map[string]string)
			for svc, ref := range refsFor(h.App, h.Release, keys(built)) {
				if err := imagexfer.TagForRelease(h.Context(), built[svc], ref); err != nil {
					return runtime.Raise(L, err)
				}
			}
			return 0
		},
		"transfer": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			var imgs []imagexfer.Image
			var err error
			L.CheckTable(2).ForEach(func(_, ref lua.LValue) {
				if err != nil {
					return
				}
				var id string
				id, err = imagexfer.LocalImageID(h.Context(), ref.String())
				imgs = append(imgs, imagexfer.Image{Ref: ref.String(), ID: id})
			})
			if err != nil {
				return runtime.Raise(L, err)
			}
			sort.Slice(imgs, func(i, j int) bool { return imgs[i].Ref < imgs[j].Ref })
			res, err := imagexfer.Transfer(h.Context(), h.Conn, imgs, "docker", func(f string, a ...any) {
				h.Emit(runtime.Event{Kind: runtime.Debug, Text: fmt.Sprintf(f, a...)})
			})
			if err != nil {
				return runtime.Raise(L, err)
			}
			t := L.NewTable()
			sent, skipped := L.NewTable(), L.NewTable()
			for _, s := range res.Sent {
				sent.Append(lua.LString(s))
			}
			for _, s := range res.Skipped {
				skipped.Append(lua.LString(s))
			}
			t.RawSetString("sent", sent)
			t.RawSetString("skipped", skipped)
			t.RawSetString("bytes", lua.LNumber(res.Bytes))
			L.Push(t)
			return 1
		},
	})
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
