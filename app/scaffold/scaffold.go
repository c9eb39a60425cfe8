// Package scaffold is `shipit init`: what it detects in a project
// directory (name, branch, the compose file's web service and port), the
// questions it asks, and the shipit.toml, shipit.lua and editor files it
// writes.
package scaffold

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/shipit-dev/shipit/app/session"
	"github.com/shipit-dev/shipit/internal/compose"
	"github.com/shipit-dev/shipit/internal/hint"
	"github.com/shipit-dev/shipit/recipes"
)

// Options are init's flags.
type Options struct {
	Name, Repository, Branch, WebService string
	Port                                 int
	Host                                 []string
	User, Stage, Domain                  string
	Force                                bool // overwrite existing files
	Ask                                  bool // prompt for each value (a terminal)
}

// initAnswers is what goes into the scaffold.
type initAnswers struct {
	Name, Repository, Branch, WebService, ComposeFile string
	Port                                              int
	Hosts                                             []string
	User, Stage, Domain                               string
}

// ExistsError lists files init would overwrite.
type ExistsError struct{ Files []string }

func (e *ExistsError) Error() string {
	return "refusing to overwrite " + strings.Join(e.Files, ", ")
}
func (e *ExistsError) Hint() string { return "pass --force to overwrite them" }

var (
	reAppName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	reStage   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// Init writes the scaffold beside configPath (shipit.toml), from the
// options, what it detects, and, with o.Ask, the answers read from in.
func Init(o Options, configPath string, in io.Reader, out io.Writer) error {
	c := &o
	dir := filepath.Dir(configPath)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	files := map[string]string{
		"shipit.toml":  filepath.Base(configPath),
		"shipit.lua":   "shipit.lua",
		"shipit.d.lua": "shipit.d.lua",
		".luarc.json":  ".luarc.json",
	}
	order := []string{"shipit.toml", "shipit.lua", "shipit.d.lua", ".luarc.json"}
	if !c.Force {
		var exist []string
		for _, k := range order {
			if _, err := os.Lstat(filepath.Join(dir, files[k])); err == nil {
				exist = append(exist, files[k])
			}
		}
		if len(exist) > 0 {
			return &ExistsError{Files: exist}
		}
	}

	a := c.detect(abs)
	if c.Ask {
		if err := prompt(&a, bufio.NewReader(in), out); err != nil {
			return err
		}
	}
	if !reAppName.MatchString(a.Name) {
		return hint.New(fmt.Sprintf("app name %q is not valid", a.Name), "use lowercase letters, digits, '-' and '_', starting with a letter or digit (--name)")
	}
	if !reStage.MatchString(a.Stage) {
		return hint.New(fmt.Sprintf("stage name %q is not valid", a.Stage), "use letters, digits, '-' and '_' (--stage)")
	}

	contents := map[string][]byte{
		"shipit.toml":  []byte(renderToml(a)),
		"shipit.lua":   []byte(shipitLuaExample),
		"shipit.d.lua": recipes.Definitions,
		".luarc.json":  []byte(luarcJSON),
	}
	for _, k := range order {
		p := filepath.Join(dir, files[k])
		if err := os.WriteFile(p, contents[k], 0o644); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		fmt.Fprintf(out, "wrote %s\n", session.RelName(p))
	}
	fmt.Fprintf(out, "\nNext: check the hosts in shipit.toml, commit shipit.toml and shipit.lua, then\n  shipit setup -s %s\n  shipit deploy -s %s\n", a.Stage, a.Stage)
	return nil
}

// detect fills the answers from flags, then from the project directory.
func (c *Options) detect(dir string) initAnswers {
	a := initAnswers{Name: c.Name, Repository: c.Repository, Branch: c.Branch, WebService: c.WebService,
		Port: c.Port, Hosts: c.Host, User: c.User, Stage: c.Stage, Domain: c.Domain}
	if a.Name == "" {
		a.Name = sanitizeName(filepath.Base(dir))
	}
	if a.Repository == "" {
		a.Repository = gitOut(dir, "remote", "get-url", "origin")
	}
	if a.Branch == "" {
		a.Branch = gitOut(dir, "symbolic-ref", "--short", "HEAD")
		if a.Branch == "" {
			a.Branch = "main"
		}
	}
	a.ComposeFile = compose.FindFile(dir)
	svc, port := detectWeb(dir, a.ComposeFile)
	if a.WebService == "" {
		a.WebService = svc
	}
	if a.Port == 0 {
		a.Port = port
	}
	if a.WebService == "" {
		a.WebService = "web"
	}
	if a.Port == 0 {
		a.Port = 80
	}
	if a.Stage == "" {
		a.Stage = "production"
	}
	return a
}

// sanitizeName turns a directory name into an app name ([a-z0-9_-]).
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	out := strings.TrimLeft(b.String(), "-_")
	if out == "" {
		return "app"
	}
	return out
}

func gitOut(dir string, args ...string) string {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// detectWeb picks the web service (one named web, else the first that is
// built from the project) and its container port (expose, then the
// container side of ports, then EXPOSE in its Dockerfile).
func detectWeb(dir, composeFile string) (string, int) {
	data, err := os.ReadFile(filepath.Join(dir, composeFile))
	if err != nil {
		return "", 0
	}
	proj, err := compose.Parse(data)
	if err != nil {
		return "", 0
	}
	name := ""
	for _, n := range proj.Written {
		if n == "web" {
			name = n
			break
		}
		if name == "" && proj.Services[n].Builds() {
			name = n
		}
	}
	if name == "" {
		return "", 0
	}
	svc := proj.Services[name]
	if p := svc.ContainerPort(); p > 0 {
		return name, p
	}
	ctx, dockerfile := svc.BuildContext()
	if df, err := os.ReadFile(filepath.Join(dir, ctx, dockerfile)); err == nil {
		for _, line := range strings.Split(string(df), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && strings.EqualFold(f[0], "EXPOSE") {
				if p := compose.LeadingPort(f[1]); p > 0 {
					return name, p
				}
			}
		}
	}
	return name, 0
}

// prompt asks for each value on the terminal; Enter keeps the default.
func prompt(a *initAnswers, in *bufio.Reader, out io.Writer) error {
	ask := func(label, def string) (string, error) {
		if def != "" {
			fmt.Fprintf(out, "%s [%s]: ", label, def)
		} else {
			fmt.Fprintf(out, "%s: ", label)
		}
		line, err := in.ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("init: reading answer: %w", err)
		}
		if v := strings.TrimSpace(line); v != "" {
			return v, nil
		}
		return def, nil
	}
	var err error
	if a.Name, err = ask("App name", a.Name); err != nil {
		return err
	}
	if a.Branch, err = ask("Branch to deploy", a.Branch); err != nil {
		return err
	}
	if a.WebService, err = ask("Web service (compose)", a.WebService); err != nil {
		return err
	}
	for {
		p, err := ask("Container port of the web service", strconv.Itoa(a.Port))
		if err != nil {
			return err
		}
		if n := compose.LeadingPort(p); n > 0 {
			a.Port = n
			break
		}
		fmt.Fprintf(out, "  %q is not a port number (1-65535)\n", p)
	}
	if a.Stage, err = ask("Stage name", a.Stage); err != nil {
		return err
	}
	hosts, err := ask("Hosts (comma-separated)", strings.Join(a.Hosts, ","))
	if err != nil {
		return err
	}
	a.Hosts = nil
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			a.Hosts = append(a.Hosts, h)
		}
	}
	if a.User, err = ask("SSH user (empty: from ~/.ssh/config)", a.User); err != nil {
		return err
	}
	if a.Domain, err = ask("Domain (empty: none)", a.Domain); err != nil {
		return err
	}
	return nil
}

// tomlString is a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func renderToml(a initAnswers) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# shipit.toml: how and where to deploy. Written by `shipit init`;\n")
	w("# every key is described in docs/configuration.md.\n\n")
	w("[app]\n")
	w("name = %s          # compose projects are <name>-<release>\n", tomlString(a.Name))
	if a.Repository != "" {
		w("repository = %s\n", tomlString(a.Repository))
	} else {
		w("# repository = \"git@github.com:you/%s.git\"   # informational\n", a.Name)
	}
	w("branch = %s        # its committed HEAD is what gets deployed\n\n", tomlString(a.Branch))
	w("[deploy]\n")
	w("# deploy_to = \"/var/deploy\"      # releases live in <deploy_to>/<name>\n")
	w("# keep_releases = 5\n")
	w("# build = \"remote\"               # or \"local\": build here, stream images over SSH\n")
	w("web_service = %s\n", tomlString(a.WebService))
	if a.ComposeFile != "docker-compose.yml" {
		w("compose_file = %s\n", tomlString(a.ComposeFile))
	} else {
		w("# compose_file = \"docker-compose.yml\"\n")
	}
	w("\n# The web service's health check gates every deploy: the new release\n")
	w("# must be healthy before the previous one stops.\n")
	w("[deploy.health_check]\n")
	w("port = %d\n", a.Port)
	w("path = \"/\"                       # default /health\n")
	w("# interval = \"2s\"                # one probe every interval\n")
	w("# retries = 15                   # boot allowance: interval x retries\n")
	w("# timeout = \"60s\"                # how long a deploy waits for healthy\n")
	w("# unhealthy_after = 3            # failed probes that take a container out of rotation\n")
	w("# cmd = \"pg_isready\"            # replaces the HTTP probe\n\n")
	w("[stages.%s]\n", a.Stage)
	if a.User != "" {
		w("user = %s\n", tomlString(a.User))
	} else {
		w("# user = \"deploy\"                # default: ~/.ssh/config, else deploy\n")
	}
	w("# port = 22\n# proxy = \"jump@bastion.example.com\"\n")
	if len(a.Hosts) == 0 {
		w("# Replace with your servers:\n")
		w("hosts = [{ address = \"203.0.113.10\" }]\n")
	} else {
		var hs []string
		for _, h := range a.Hosts {
			hs = append(hs, "{ address = "+tomlString(h)+" }")
		}
		w("hosts = [%s]\n", strings.Join(hs, ", "))
	}
	w("\n[stages.%s.traefik]\n", a.Stage)
	if a.Domain != "" {
		w("domain = %s\n", tomlString(a.Domain))
		w("tls = true                        # Let's Encrypt via `shipit setup`\n")
		w("# acme_email = \"you@example.com\"\n")
	} else {
		w("# domain = \"app.example.com\"\n# tls = true\n# acme_email = \"you@example.com\"\n")
	}
	w("\n# [accessories.db]\n# image = \"postgres:16\"\n# host = \"203.0.113.10\"\n# volumes = [\"db:/var/lib/postgresql/data\"]\n")
	return b.String()
}

const shipitLuaExample = `-- shipit.lua: hooks and tasks for this project, run after shipit's
-- built-in recipe. See docs/lua-api.md; shipit.d.lua and .luarc.json give
-- your editor completion. ` + "`shipit tasks`" + ` lists every step and hook.

after("deploy:symlink", function(h)
  log.info("now serving %s", h.release)
end)

-- Run database migrations in the new release before it starts:
-- before("deploy:start", function(h)
--   h:run({"docker", "compose", "-p", h.app .. "-" .. h.release, "run", "--rm", "web", "migrate"},
--         {cwd = h.release_path})
-- end)

-- Tell someone when a deploy fails:
-- on_failure(function(h, err)
--   run_local("notify-team 'deploy failed on " .. h.host .. "'", {check = false})
-- end)

-- A task of your own: shipit run backup -s production
-- task("backup", function(h)
--   h:run("tar czf /var/backups/" .. h.app .. ".tgz -C " .. h.shared_path .. " .")
-- end, "Back up the shared files")
`

const luarcJSON = `{
  "$schema": "https://raw.githubusercontent.com/LuaLS/vscode-lua/master/setting/schema.json",
  "runtime.version": "Lua 5.1",
  "workspace.library": ["shipit.d.lua"],
  "workspace.checkThirdParty": false,
  "diagnostics.globals": ["task", "before", "after", "on_failure", "invoke", "run_local", "config", "params", "log", "fail"]
}
`
