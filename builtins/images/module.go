// Package images is require("shipit.images"): local builds and image
// transfer to hosts over the pooled SSH connection (no registry). The logic
// is internal/imagexfer; this is the Lua binding only.
package images

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/shipit-dev/shipit/internal/imagexfer"
	"github.com/shipit-dev/shipit/internal/text"
	"github.com/shipit-dev/shipit/runtime"
)

func init() {
	runtime.RegisterModule(runtime.Module{Name: "shipit.images", Open: open,
		Doc: "Local image builds from the deployed commit, and their transfer to hosts over SSH: only the layers a host lacks (no registry).",
		Funcs: []runtime.Func{
			{Name: "plan_local", Args: "h: shipit.Host, opts: {compose_file: string, commit: string}", Returns: "table<string, string>",
				Doc: "The image each service with a build: section gets for this release (service -> ref)."},
			{Name: "build_local", Args: "h: shipit.Host, opts: {compose_file: string, commit: string}",
				Doc: "Builds the commit's services on this machine, once per command run, and tags them for the release."},
			{Name: "transfer", Args: "h: shipit.Host, refs: table<string, string>",
				Returns: "{sent: string[], skipped: string[], bytes: integer, layers_sent: integer, layers_reused: integer, layers_skipped: integer}",
				Doc:     "Sends what the host's engine lacks, layer by layer (compressed once, shared by every host); images it has are only tagged."},
		}})
}

// stagingDir is where layers wait on a host until they are loaded: inside the
// app's directory, so the app's deploy lock keeps other transfers out of it.
func stagingDir(h *runtime.Host) string { return path.Join(h.AppPath, ".image-layers") }

// refsFor names the images of a release: <app>/<service>:<release>. The
// slash keeps apps apart (blog's "api-web" and blog-api's "web" would both
// be blog-api-web with a dash); image names are lower case.
func refsFor(app, release string, services []string) map[string]string {
	refs := map[string]string{}
	for _, s := range services {
		refs[s] = strings.ToLower(app + "/" + s + ":" + release)
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

func list(L *lua.LState, xs []string) *lua.LTable {
	t := L.NewTable()
	for _, x := range xs {
		t.Append(lua.LString(x))
	}
	return t
}

func buildOpts(L *lua.LState, h *runtime.Host) imagexfer.BuildOptions {
	o := L.CheckTable(2)
	commit := lua.LVAsString(o.RawGetString("commit"))
	if commit == "" {
		L.ArgError(2, "commit is required: local builds use the commit being deployed (h.vars.git_sha)")
	}
	return imagexfer.BuildOptions{
		RepoDir:     runtime.StateOf(L).Env.ProjectDir,
		Commit:      commit,
		ComposeFile: lua.LVAsString(o.RawGetString("compose_file")),
		Project:     h.App,
	}
}

// One plan and one local build per commit for the whole run, and one
// sender, whatever the number of hosts.
var (
	planSlot   = runtime.NewRunSlot[map[string]string]("images.plan")
	buildSlot  = runtime.NewRunSlot[map[string]string]("images.build")
	senderSlot = runtime.NewRunSlot[*imagexfer.Sender]("images.sender")
)

// sender is the run's one sender: a layer several hosts need is read and
// compressed once. Its spool files go with the process.
func sender(st *runtime.State) *imagexfer.Sender {
	s, _ := senderSlot.Get(st.Env, "", func() (*imagexfer.Sender, error) { return imagexfer.NewSender(imagexfer.Options{}), nil })
	return s
}

// xferHost is h as a destination of the run's transfers.
func xferHost(h *runtime.Host) imagexfer.Host {
	return imagexfer.Host{Conn: h.Conn, Docker: "docker", StagingDir: stagingDir(h)}
}

func open(L *lua.LState) *lua.LTable {
	return L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"plan_local": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			o := buildOpts(L, h)
			st := runtime.StateOf(L)
			v, err := planSlot.Get(st.Env, o.ComposeFile+":"+o.Commit, func() (map[string]string, error) {
				return imagexfer.PlanBuild(h.Context(), o)
			})
			if err != nil {
				return runtime.Raise(L, err)
			}
			L.Push(table(L, refsFor(h.App, h.Release, keys(v))))
			return 1
		},
		"build_local": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			o := buildOpts(L, h)
			st := runtime.StateOf(L)
			// The host is asked what its engine has while the images build.
			sender(st).Prefetch(h.Context(), xferHost(h))
			// One local build per command run, whatever the number of hosts.
			built, err := buildSlot.Get(st.Env, o.ComposeFile+":"+o.Commit, func() (map[string]string, error) {
				// The plan of this commit (plan_local made it in deploy:override):
				// no second compose config.
				plan, err := planSlot.Get(st.Env, o.ComposeFile+":"+o.Commit, func() (map[string]string, error) {
					return imagexfer.PlanBuild(h.Context(), o)
				})
				if err != nil {
					return nil, err
				}
				o.Plan = plan
				h.Emit(runtime.Event{Kind: runtime.Info, Text: "building images locally from " + text.Short(o.Commit)})
				start := time.Now()
				images, err := imagexfer.Build(h.Context(), o)
				if err == nil {
					h.Emit(runtime.Event{Kind: runtime.Info, Text: fmt.Sprintf("built in %s", time.Since(start).Round(10*time.Millisecond))})
				}
				return images, err
			})
			if err != nil {
				return runtime.Raise(L, err)
			}
			for svc, ref := range refsFor(h.App, h.Release, keys(built)) {
				if err := imagexfer.TagForRelease(h.Context(), built[svc], ref); err != nil {
					return runtime.Raise(L, err)
				}
			}
			return 0
		},
		"transfer": func(L *lua.LState) int {
			h := runtime.CheckHost(L, 1)
			var refs []string
			L.CheckTable(2).ForEach(func(_, ref lua.LValue) { refs = append(refs, ref.String()) })
			sort.Strings(refs)
			xh := xferHost(h)
			xh.Progress = func(p imagexfer.Progress) {
				h.Emit(runtime.Event{Kind: runtime.Progress, Progress: &runtime.TransferProgress{
					What: "images", Phase: string(p.Phase), Done: p.BytesSent, Total: p.Bytes,
					Items: p.Layers, ItemsDone: p.LayersDone, Rate: p.Rate, ETA: p.ETA,
				}})
			}
			res, err := sender(runtime.StateOf(L)).Transfer(h.Context(), xh, refs)
			if err != nil {
				return runtime.Raise(L, err)
			}
			// One line per image, whatever the terminal.
			for _, im := range res.Images {
				what := "already on host, tagged"
				if im.Loaded {
					what = fmt.Sprintf("loaded: %d layer(s) sent (%s)", im.LayersSent, text.Bytes(im.Bytes))
					if im.LayersReused > 0 {
						what += fmt.Sprintf(", %d staged earlier", im.LayersReused)
					}
					what += fmt.Sprintf(", %d already on host", im.LayersSkipped)
				}
				h.Emit(runtime.Event{Kind: runtime.Info, Text: "image " + im.Ref + ": " + what})
			}
			h.Emit(runtime.Event{Kind: runtime.Note, Text: summary(res)})
			t := L.NewTable()
			t.RawSetString("sent", list(L, res.Sent))
			t.RawSetString("skipped", list(L, res.Skipped))
			t.RawSetString("bytes", lua.LNumber(res.Bytes))
			t.RawSetString("layers_sent", lua.LNumber(res.LayersSent))
			t.RawSetString("layers_reused", lua.LNumber(res.LayersReused))
			t.RawSetString("layers_skipped", lua.LNumber(res.LayersSkipped))
			L.Push(t)
			return 1
		},
	})
}

// summary is the host's line in the deploy summary.
func summary(r imagexfer.Result) string {
	s := fmt.Sprintf("images: %d loaded, %d already there; layers: %d sent", len(r.Sent), len(r.Skipped), r.LayersSent)
	if r.LayersReused > 0 {
		s += fmt.Sprintf(", %d already staged", r.LayersReused)
	}
	s += fmt.Sprintf(", %d skipped (on host); %s", r.LayersSkipped, text.Bytes(r.Bytes))
	if len(r.Sent) > 0 {
		ms := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
		s += fmt.Sprintf(" (check %s, send %s, load %s)", ms(r.Check), ms(r.Send), ms(r.Load))
	}
	return s
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
