package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// opsLua gives the release a value in shared/.env, which `app exec --new`
// must see in a fresh container.
const opsLua = `after("deploy:env", function(h)
  h:put(h.shared_path .. "/.env", "SOMEVAR=from-shared-env\n", "0600")
end)
`

// shipitCmd is the binary with the harness's keys, in the app dir.
func (a *app) shipitCmd(args ...string) *exec.Cmd {
	full := append([]string{"--known-hosts", a.env.KnownHosts, "-i", a.env.ClientKey, "--ssh-config", a.env.SSHConfig}, args...)
	cmd := exec.Command(shipitBin, full...)
	cmd.Dir = a.dir
	cmd.Env = append(os.Environ(), "HOME="+a.home, "SSH_AUTH_SOCK=", "NO_COLOR=1")
	return cmd
}

// shipit logs (all services, one service, unknown service), logs -f until
// Ctrl-C, and app exec in the running container and in a fresh one.
func TestLogsAndAppExec(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartSSHD(t, harness.SSHDOpts{})
	a := newApp(t, env, "opsx", t.TempDir(), []*harness.SSHD{host}, "", "")
	a.commit(map[string]string{
		"Dockerfile": "FROM " + harness.BaseImage + "\nCOPY www /www\nCMD [\"sh\", \"-c\", \"echo booted-opsx; exec httpd -f -p 8080 -h /www\"]\n",
		"shipit.lua": opsLua,
	})
	cleanupApp(t, env, host, "opsx")
	prefix := host.Addr + " | "
	out, code := a.shipit("logs", "-s", "production")
	if code == 0 {
		t.Fatal("logs before any deploy exited 0")
	}
	mustContain(t, "logs before deploy", out, "no current release on this host: deploy first (shipit deploy -s production)")
	a.mustShipit("deploy", "-s", "production")

	out = a.mustShipit("logs", "-s", "production")
	mustContain(t, "shipit logs", out, prefix+"web-1  | booted-opsx")
	out = a.mustShipit("logs", "-s", "production", "web", "--tail", "5", "--since", "1h")
	mustContain(t, "shipit logs web", out, prefix+"web-1  | booted-opsx")
	out, code = a.shipit("logs", "-s", "production", "nosuch")
	if code == 0 {
		t.Fatal("logs of an unknown service exited 0")
	}
	mustContain(t, "logs nosuch", out, `no service "nosuch"`, "services: ", "web", "worker")

	// logs -f streams new lines until SIGINT, then exits 0 and leaves no
	// compose process behind on the host.
	cmd := a.shipitCmd("logs", "-s", "production", "-f", "web")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var seen []string
	waitLine := func(want string) {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("logs -f ended before %q:\n%s", want, strings.Join(seen, "\n"))
				}
				seen = append(seen, l)
				if strings.Contains(l, want) {
					return
				}
			case <-timeout:
				cmd.Process.Kill()
				t.Fatalf("no %q from logs -f:\n%s", want, strings.Join(seen, "\n"))
			}
		}
	}
	waitLine(prefix + "web-1  | booted-opsx")
	lock, _ := readLock(t, filepath.Join(a.dirDeployTo(t), "opsx"))
	web := webContainers(t, env, host, "opsx", lock.CurrentRelease)
	if len(web) != 1 {
		t.Fatalf("web containers: %v", web)
	}
	// A line written after logs -f started proves it follows.
	env.Docker(t, host, "exec", web[0], "sh", "-c", "echo live-line-opsx > /proc/1/fd/1")
	waitLine(prefix + "web-1  | live-line-opsx")
	project := "opsx-" + lock.CurrentRelease
	remoteLogs := func() string {
		ps, _ := exec.Command("pgrep", "-af", project+" .*logs").Output()
		return strings.TrimSpace(string(ps))
	}
	if remoteLogs() == "" {
		t.Fatal("no compose logs process on the host while following: the check below proves nothing")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("logs -f after SIGINT: %v\n%s", err, strings.Join(seen, "\n"))
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("logs -f did not exit after SIGINT")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ps := remoteLogs()
		if ps == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("compose logs still running on the host after Ctrl-C:\n%s", ps)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// app exec: in the running container, then in a fresh one with the
	// release's env; exit codes come back.
	out = a.mustShipit("app", "exec", "-s", "production", "--", "cat", "/www/index.html")
	mustContain(t, "app exec", out, prefix+"version 1")
	out = a.mustShipit("app", "exec", "-s", "production", "--new", "--", "sh", "-c", "echo var=$SOMEVAR")
	mustContain(t, "app exec --new", out, prefix+"var=from-shared-env")
	if ids := strings.Fields(env.Docker(t, host, "ps", "-aq", "--filter", "label=com.docker.compose.project="+project, "--filter", "label=com.docker.compose.oneoff=True")); len(ids) != 0 {
		t.Fatalf("--new left its container behind: %v", ids)
	}
	out = a.mustShipit("app", "exec", "-s", "production", "--hosts", host.Addr, "echo one shell line")
	mustContain(t, "app exec shell line", out, prefix+"one shell line")
	out, code = a.shipit("app", "exec", "-s", "production", "--", "sh", "-c", "exit 3")
	if code == 0 {
		t.Fatal("app exec of a failing command exited 0")
	}
	mustContain(t, "failing app exec", out, "exited with code 3")
	out, code = a.shipit("app", "exec", "-s", "production", "--hosts", "nope", "--", "true")
	if code == 0 {
		t.Fatal("app exec --host nope exited 0")
	}
	mustContain(t, "app exec --hosts nope", out, "--hosts nope matches no host of stage production", "shipit: hint:")

	// --interactive: a real PTY, driven through tmux.
	script := filepath.Join(env.Dir, "tty.sh")
	full := a.shipitCmd("app", "exec", "-s", "production", "-t", "--", "sh")
	var envs []string
	for _, e := range full.Env {
		if strings.HasPrefix(e, "HOME=") || strings.HasPrefix(e, "SSH_AUTH_SOCK=") || strings.HasPrefix(e, "NO_COLOR=") || strings.HasPrefix(e, "PATH=") {
			envs = append(envs, shq(e))
		}
	}
	var words []string
	for _, w := range full.Args {
		words = append(words, shq(w))
	}
	line := strings.Join(words, " ")
	newLine := strings.Replace(line, "'-t'", "'-t' '--new'", 1)
	if err := os.WriteFile(script, []byte(fmt.Sprintf("cd %s && env %s %s; echo SHIPIT-EXIT=$?; env %s %s; echo SHIPIT-NEW-EXIT=$?; sleep 600\n",
		shq(a.dir), strings.Join(envs, " "), line, strings.Join(envs, " "), newLine)), 0o755); err != nil {
		t.Fatal(err)
	}
	pane := tmuxStart(t, "sh "+shq(script))
	tmuxWait(t, pane, "/ #")
	tmuxSend(t, pane, "echo tty-$((6*7)); tty; exit 4", "Enter")
	got := tmuxWait(t, pane, "SHIPIT-EXIT=")
	mustContain(t, "interactive pane", got, "tty-42", "/dev/pts/", "exited with code 4", "SHIPIT-EXIT=1")
	// --new -t: a fresh container with the release's env, on a terminal.
	tmuxSend(t, pane, "clear", "Enter") // the pane still shows the first session's prompt
	tmuxWait(t, pane, "/ #")
	tmuxSend(t, pane, "echo new-$SOMEVAR; exit", "Enter")
	got = tmuxWait(t, pane, "SHIPIT-NEW-EXIT=")
	mustContain(t, "interactive --new pane", got, "new-from-shared-env", "SHIPIT-NEW-EXIT=0")
}

// dirDeployTo reads deploy_to back from the app's shipit.toml.
func (a *app) dirDeployTo(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(a.dir, "shipit.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "deploy_to = "); ok {
			return strings.Trim(v, `"`)
		}
	}
	t.Fatal("no deploy_to in shipit.toml")
	return ""
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// tmuxStart runs cmd in a detached tmux session of its own and returns
// the session name; the session is killed at the end of the test.
func tmuxStart(t *testing.T, cmd string) string {
	t.Helper()
	name := fmt.Sprintf("shipit-ops-%d-%d", os.Getpid(), time.Now().UnixNano())
	c := exec.Command("tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "40", cmd)
	c.Env = append(os.Environ(), "TERM=xterm")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("tmux", "kill-session", "-t", name).Run() })
	return name
}

func tmuxSend(t *testing.T, pane string, keys ...string) {
	t.Helper()
	if out, err := exec.Command("tmux", append([]string{"send-keys", "-t", pane}, keys...)...).CombinedOutput(); err != nil {
		t.Fatalf("tmux send-keys: %v\n%s", err, out)
	}
}

// tmuxWait polls the pane until it shows want, and returns its text.
func tmuxWait(t *testing.T, pane, want string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command("tmux", "capture-pane", "-p", "-t", pane).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux capture-pane: %v\n%s", err, out)
		}
		if strings.Contains(string(out), want) {
			return string(out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("pane never showed %q:\n%s", want, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// shipit init answered interactively in a real terminal (tmux), then the
// scaffolded project deploys as is (deploy_to aside: the test's host shares
// this machine's /var/deploy).
func TestInitInteractiveThenDeploy(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartSSHD(t, harness.SSHDOpts{})
	a := &app{t: t, env: env, dir: filepath.Join(env.Dir, "Init Blog"), home: filepath.Join(env.Dir, "home"), name: "init-blog"}
	if err := os.MkdirAll(a.home, 0o700); err != nil {
		t.Fatal(err)
	}
	files := appFiles("1")
	files["docker-compose.yml"] = "services:\n  cache:\n    image: " + harness.BaseImage + "\n    command: [\"sleep\", \"1d\"]\n  web:\n    build: .\n    init: true\n    expose: [\"8080\"]\n"
	harness.GitRepo(t, a.dir, files)
	cleanupApp(t, env, host, "init-blog")

	script := filepath.Join(env.Dir, "init.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("cd %s && %s init; echo INIT-EXIT=$?; sleep 600\n", shq(a.dir), shq(shipitBin))), 0o755); err != nil {
		t.Fatal(err)
	}
	pane := tmuxStart(t, "sh "+shq(script))
	answer := func(prompt, keys string) {
		t.Helper()
		tmuxWait(t, pane, strings.TrimSpace(prompt)) // capture-pane drops trailing blanks
		if keys != "" {
			tmuxSend(t, pane, "-l", keys)
		}
		tmuxSend(t, pane, "Enter")
	}
	answer("App name [init-blog]: ", "")
	answer("Branch to deploy [main]: ", "")
	answer("Web service (compose) [web]: ", "")
	answer("Container port of the web service [8080]: ", "eighty")
	tmuxWait(t, pane, `"eighty" is not a port number`)
	answer("Container port of the web service [8080]: ", "")
	answer("Stage name [production]: ", "")
	answer("Hosts (comma-separated): ", host.Addr)
	answer("SSH user (empty: from ~/.ssh/config): ", "root")
	answer("Domain (empty: none): ", "blog.example.com")
	got := tmuxWait(t, pane, "INIT-EXIT=")
	mustContain(t, "init pane", got, "wrote shipit.toml", "wrote .luarc.json", "INIT-EXIT=0")

	toml, err := os.ReadFile(filepath.Join(a.dir, "shipit.toml"))
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "shipit.toml", string(toml), `name = "init-blog"`, `branch = "main"`, `web_service = "web"`,
		"port = 8080", `hosts = [{ address = "`+host.Addr+`" }]`, `user = "root"`, `domain = "blog.example.com"`)
	deployTo := t.TempDir()
	edited := strings.Replace(string(toml), "# deploy_to = \"/var/deploy\"", fmt.Sprintf("deploy_to = %q", deployTo), 1)
	if edited == string(toml) {
		t.Fatalf("no deploy_to line to edit in:\n%s", toml)
	}
	a.commit(map[string]string{"shipit.toml": edited})
	a.commit(map[string]string{}) // shipit.lua, shipit.d.lua, .luarc.json as written
	// No `shipit setup` here: the scaffold's domain is routed by no Traefik.
	out := a.mustShipit("deploy", "-s", "production", "--allow-unrouted")
	mustContain(t, "deploy of the scaffold", out, "[12/12] deploy:cleanup", "now serving") // shipit.lua's example hook
	out = a.mustShipit("app", "exec", "-s", "production", "--", "wget", "-qO-", "http://localhost:8080/")
	mustContain(t, "scaffolded app serves", out, host.Addr+" | version 1")

	// A second init refuses to touch the committed scaffold.
	out, code := a.shipit("init", "--yes")
	if code == 0 {
		t.Fatal("init over an existing scaffold exited 0")
	}
	mustContain(t, "second init", out, "refusing to overwrite shipit.toml, shipit.lua, shipit.d.lua, .luarc.json", "--force")
	if now, _ := os.ReadFile(filepath.Join(a.dir, "shipit.toml")); string(now) != edited {
		t.Fatal("refused init changed shipit.toml")
	}
}
