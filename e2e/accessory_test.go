package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// accessoryTOML is the [accessories] part of shipit.toml for the test: db
// pinned to one host with a named volume and a published port, cache on
// every host of the stage.
func accessoryTOML(dbHost, greeting, extraEnv, cmd string) string {
	return fmt.Sprintf(`
[accessories.db]
image = %q
host = %q
port = "39109:80"
volumes = ["data:/data"]
cmd = %q

[accessories.db.env]
GREETING = %q
%s
[accessories.cache]
image = %q
cmd = "sleep 1d"
`, harness.BaseImage, dbHost, cmd, greeting, extraEnv, harness.BaseImage)
}

// dbCmd logs two lines and stops at once on SIGTERM (sleep as PID 1 would
// make every stop wait for Docker's 10 s timeout).
const dbCmd = `sh -c 'trap "exit 0" TERM; echo started; echo "greeting=$GREETING"; sleep 1d & wait'`

func writeAccessories(t *testing.T, a *app, base, extra string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(a.dir, "shipit.toml"), []byte(base+extra), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The whole accessory life cycle on isolated hosts: boot is idempotent,
// recreates on a config change and says what changed (never env values),
// the named volume's data survives recreate, stop/boot and remove, and only
// remove --volumes deletes it.
func TestAccessoryLifecycle(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	hosts := env.StartIsolatedHosts(t, 9, 10)
	h9, h10 := hosts[0], hosts[1]
	a := newApp(t, env, "accapp", "/var/deploy", hosts, "", "")
	baseTOML, err := os.ReadFile(filepath.Join(a.dir, "shipit.toml"))
	if err != nil {
		t.Fatal(err)
	}
	base := string(baseTOML)
	// A value full of shell syntax must arrive literally and never be printed.
	secret := `it's $HOME "quoted" ; $(reboot) \n`
	writeAccessories(t, a, base, accessoryTOML(h9.Addr, secret, "", dbCmd))

	inspect := func(h *harness.SSHD, format string) string {
		t.Helper()
		return strings.TrimSpace(env.Docker(t, h, "container", "inspect", "-f", format, "accapp-db"))
	}
	dockerExec := func(h *harness.SSHD, cmd string) string {
		t.Helper()
		return strings.TrimSpace(env.Docker(t, h, "exec", "accapp-db", "sh", "-c", cmd))
	}
	noSecret := func(what, out string) {
		t.Helper()
		if strings.Contains(out, "quoted") || strings.Contains(out, "s3cond") {
			t.Fatalf("%s shows an env value:\n%s", what, out)
		}
	}

	// Unknown name: error listing the defined ones.
	out, code := a.shipit("accessory", "boot", "dbb", "-s", "production")
	if code == 0 {
		t.Fatal("boot of an unknown accessory succeeded")
	}
	mustContain(t, "unknown accessory error", out, `no accessory "dbb"`, "defined accessories: cache, db")

	// Boot all (sorted): cache on both hosts, db only on its host.
	out = a.mustShipit("accessory", "boot", "-s", "production")
	noSecret("boot output", out)
	mustContain(t, "first boot", out,
		h9.Addr+" | cache: booted", h10.Addr+" | cache: booted", h9.Addr+" | db: booted "+harness.BaseImage+" as accapp-db")
	if strings.Index(out, "cache: booted") > strings.Index(out, "db: booted") {
		t.Fatalf("accessories not booted in name order:\n%s", out)
	}
	if strings.Contains(out, h10.Addr+" | db") {
		t.Fatalf("db booted on the host it is not pinned to:\n%s", out)
	}
	if ids := strings.TrimSpace(env.Docker(t, h10, "ps", "-aq", "--filter", "name=^accapp-db$")); ids != "" {
		t.Fatalf("db container on %s: %s", h10.Addr, ids)
	}
	if got := inspect(h9, "{{.State.Status}} {{.HostConfig.RestartPolicy.Name}}"); got != "running always" {
		t.Fatalf("db state/restart = %q", got)
	}
	if got := inspect(h9, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}"); got != "traefik" {
		t.Fatalf("db networks = %q, want traefik", got)
	}
	mustContain(t, "db labels", inspect(h9, "{{json .Config.Labels}}"),
		`"shipit.app":"accapp"`, `"shipit.accessory":"db"`, `"shipit.config-hash":"`, `"shipit.stage":"production"`)
	if got := inspect(h9, `{{json .HostConfig.PortBindings}}`); !strings.Contains(got, `"HostIp":"127.0.0.1","HostPort":"39109"`) {
		t.Fatalf("db port bindings = %s", got)
	}
	if got := dockerExec(h9, `printf %s "$GREETING"`); got != strings.TrimSpace(secret) {
		t.Fatalf("GREETING in the container = %q, want %q", got, secret)
	}

	// Same config: nothing to do.
	id1 := inspect(h9, "{{.Id}}")
	out = a.mustShipit("accessory", "boot", "db", "-s", "production")
	mustContain(t, "second boot", out, h9.Addr+" | db: up to date, nothing to do")
	if id := inspect(h9, "{{.Id}}"); id != id1 {
		t.Fatal("an up-to-date boot recreated the container")
	}

	// Data in the named volume.
	dockerExec(h9, "echo keep-me > /data/file")

	// Changed env: recreate, say which keys changed, keep the data.
	changed := accessoryTOML(h9.Addr, "hello again", `NEW_KEY = "s3cond"`+"\n", dbCmd)
	writeAccessories(t, a, base, changed)
	out = a.mustShipit("accessory", "boot", "db", "-s", "production")
	noSecret("recreate output", out)
	mustContain(t, "recreate", out, "db: config changed: env: changed GREETING; added NEW_KEY", "db: recreated accapp-db")
	if id := inspect(h9, "{{.Id}}"); id == id1 {
		t.Fatal("changed config did not recreate the container")
	}
	if got := dockerExec(h9, "cat /data/file"); got != "keep-me" {
		t.Fatalf("data after recreate = %q", got)
	}
	if got := dockerExec(h9, `echo "$GREETING/$NEW_KEY"`); got != "hello again/s3cond" {
		t.Fatalf("env after recreate = %q", got)
	}
	if ids := strings.TrimSpace(env.Docker(t, h9, "ps", "-aq", "--filter", "name=accapp-db-shipit-old")); ids != "" {
		t.Fatal("the old container was left behind")
	}

	// A new config whose container does not stay up: boot fails with its
	// logs and puts the running container back.
	id2 := inspect(h9, "{{.Id}}")
	writeAccessories(t, a, base, accessoryTOML(h9.Addr, "hello again", `NEW_KEY = "s3cond"`+"\n", "sh -c 'echo boom; exit 3'"))
	out, code = a.shipit("accessory", "boot", "db", "-s", "production")
	if code == 0 {
		t.Fatal("boot of a crashing accessory succeeded")
	}
	mustContain(t, "failed recreate", out, "db: config changed: cmd changed", "accapp-db is not running", "boom", "the previous container was put back")
	if got := inspect(h9, "{{.Id}} {{.State.Status}}"); got != id2+" running" {
		t.Fatalf("after a failed recreate: %q, want the previous container (%s) running", got, id2)
	}
	if got := dockerExec(h9, "cat /data/file"); got != "keep-me" {
		t.Fatalf("data after failed recreate = %q", got)
	}
	writeAccessories(t, a, base, changed)

	// Details say the config is up to date; restart, stop, boot.
	out = a.mustShipit("accessory", "details", "db", "-s", "production")
	mustContain(t, "details", out, "db: accapp-db", "state     running since", "image     "+harness.BaseImage,
		"127.0.0.1:39109->80/tcp", "volume data:/data", "network   traefik, restart always", "config    up to date")
	started := inspect(h9, "{{.State.StartedAt}}")
	out = a.mustShipit("accessory", "restart", "db", "-s", "production")
	mustContain(t, "restart", out, h9.Addr+" | db: restarted")
	if got := inspect(h9, "{{.State.StartedAt}}"); got == started {
		t.Fatal("restart did not restart the container")
	}
	out = a.mustShipit("accessory", "stop", "db", "-s", "production")
	mustContain(t, "stop", out, "db: stopped")
	if got := inspect(h9, "{{.State.Status}}"); got != "exited" {
		t.Fatalf("state after stop = %q", got)
	}
	out = a.mustShipit("accessory", "details", "db", "-s", "production")
	mustContain(t, "details of a stopped accessory", out, "state     exited")
	out = a.mustShipit("accessory", "boot", "db", "-s", "production")
	mustContain(t, "boot after stop", out, "db: started (was exited; config unchanged)")
	if got := inspect(h9, "{{.State.Status}}"); got != "running" {
		t.Fatalf("state after boot = %q", got)
	}

	// Logs, prefixed per host (and per accessory when showing all).
	out = a.mustShipit("accessory", "logs", "db", "-s", "production", "--tail", "50")
	mustContain(t, "logs", out, h9.Addr+" | started", h9.Addr+" | greeting=hello again")
	out = a.mustShipit("accessory", "logs", "-s", "production")
	mustContain(t, "logs of all", out, h9.Addr+" | db | started")

	followLogs(t, a, env, h9)

	// Remove keeps the named volume and its data.
	out = a.mustShipit("accessory", "remove", "db", "-s", "production")
	mustContain(t, "remove", out, "db: removed container accapp-db", "db: kept volume data (`shipit accessory remove db --volumes` deletes it)")
	if ids := strings.TrimSpace(env.Docker(t, h9, "ps", "-aq", "--filter", "name=^accapp-db$")); ids != "" {
		t.Fatal("remove left the container")
	}
	mustContain(t, "volume after remove", env.Docker(t, h9, "run", "--rm", "-v", "data:/data", harness.BaseImage, "cat", "/data/file"), "keep-me")
	a.mustShipit("accessory", "boot", "db", "-s", "production")
	if got := dockerExec(h9, "cat /data/file"); got != "keep-me" {
		t.Fatalf("data after remove + boot = %q", got)
	}

	// Remove all with --volumes: containers and volumes gone, on every host.
	out = a.mustShipit("accessory", "remove", "--volumes", "-s", "production")
	mustContain(t, "remove --volumes", out, "db: removed volume data", h10.Addr+" | cache: removed container accapp-cache")
	for _, h := range hosts {
		if ids := strings.TrimSpace(env.Docker(t, h, "ps", "-aq", "--filter", "label=shipit.app=accapp")); ids != "" {
			t.Fatalf("%s still has accessory containers: %s", h.Addr, ids)
		}
	}
	if vols := strings.TrimSpace(env.Docker(t, h9, "volume", "ls", "-q")); vols != "" {
		t.Fatalf("remove --volumes left %s", vols)
	}
}

// A config that cannot work is refused before any host is contacted, with
// the fix.
func TestAccessoryBadConfigIsRefusedEarly(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	a := newApp(t, env, "accbad", t.TempDir(), []*harness.SSHD{{Addr: "127.0.0.1:1"}}, "", "")
	baseTOML, err := os.ReadFile(filepath.Join(a.dir, "shipit.toml"))
	if err != nil {
		t.Fatal(err)
	}
	writeAccessories(t, a, string(baseTOML), "\n[accessories.db]\nimage = \"x\"\nvolumes = [\"./data:/data\"]\n")
	out, code := a.shipit("accessory", "boot", "-s", "production")
	if code == 0 {
		t.Fatal("boot with a relative volume path succeeded")
	}
	mustContain(t, "bad volume error", out, `accessories.db.volumes: "./data:/data"`, "shipit: hint: use \"NAME:/path/in/container\"")
	if strings.Contains(out, "127.0.0.1:1") {
		t.Fatalf("a host was contacted:\n%s", out)
	}
}

// followLogs runs `accessory logs -f`, sees a line written after it
// started, and checks that Ctrl-C ends it with exit status 0.
func followLogs(t *testing.T, a *app, env *harness.Env, h *harness.SSHD) {
	t.Helper()
	cmd := exec.Command(shipitBin, "--known-hosts", env.KnownHosts, "-i", env.ClientKey, "--ssh-config", env.SSHConfig,
		"accessory", "logs", "db", "-f", "--tail", "1", "-s", "production")
	cmd.Dir = a.dir
	cmd.Env = append(os.Environ(), "HOME="+a.home, "SSH_AUTH_SOCK=", "NO_COLOR=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	wait := func(want string) {
		t.Helper()
		deadline := time.After(90 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("logs -f ended before %q; stderr:\n%s", want, stderr.String())
				}
				if l == h.Addr+" | "+want {
					return
				}
			case <-deadline:
				t.Fatalf("logs -f: no %q line", want)
			}
		}
	}
	wait("greeting=hello again") // the --tail 1 line: the connection is up
	env.Docker(t, h, "exec", "accapp-db", "sh", "-c", "echo followed-line > /proc/1/fd/1")
	wait("followed-line")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("logs -f after Ctrl-C: %v; stderr:\n%s", err, stderr.String())
	}
}

// A host migrated from the original shipit has its accessory's data in the
// Docker volume named in shipit.toml (`docker run -v pgdata:...`): boot
// mounts that volume as it is, creates and labels only missing ones, and
// remove --volumes deletes only the volumes shipit created for that
// accessory and no longer in use.
func TestAccessoryMountsExistingNamedVolume(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	h := env.StartIsolatedHost(t, 22)
	a := newApp(t, env, "accvol", "/var/deploy", []*harness.SSHD{h}, "", "")
	baseTOML, err := os.ReadFile(filepath.Join(a.dir, "shipit.toml"))
	if err != nil {
		t.Fatal(err)
	}
	base := string(baseTOML)
	accessories := func(dbVolumes string) string {
		return fmt.Sprintf(`
[accessories.db]
image = %q
host = %q
volumes = [%s]
cmd = "sh -c 'trap \"exit 0\" TERM; cat /var/lib/postgresql/data/PG_VERSION; sleep 1d & wait'"

[accessories.cache]
image = %q
host = %q
volumes = ["shared:/shared"]
cmd = "sh -c 'trap \"exit 0\" TERM; sleep 1d & wait'"
`, harness.BaseImage, h.Addr, dbVolumes, harness.BaseImage, h.Addr)
	}
	const dbVolumes = `"pgdata:/var/lib/postgresql/data", "fresh:/fresh", "shared:/shared"`
	volumeLabels := func(v string) string {
		t.Helper()
		return strings.TrimSpace(env.Docker(t, h, "volume", "inspect", "-f", "{{json .Labels}}", v))
	}
	volumeExists := func(v string) bool {
		t.Helper()
		for _, name := range strings.Fields(env.Docker(t, h, "volume", "ls", "-q")) {
			if name == v {
				return true
			}
		}
		return false
	}

	// What the original shipit leaves: the volume pgdata, unlabelled, with
	// the database in it.
	env.Docker(t, h, "volume", "create", "pgdata")
	env.Docker(t, h, "run", "--rm", "-v", "pgdata:/data", harness.BaseImage, "sh", "-c", "echo 16 > /data/PG_VERSION")

	// An earlier shipit's <app>-<accessory>-NAME volume: boot refuses to
	// start on an empty NAME beside it, and changes nothing.
	env.Docker(t, h, "volume", "create", "--label", "shipit.app=accvol", "--label", "shipit.accessory=db", "accvol-db-old")
	writeAccessories(t, a, base, accessories(`"old:/old"`))
	out, code := a.shipit("accessory", "boot", "db", "-s", "production")
	if code == 0 {
		t.Fatal("boot beside an earlier shipit's volume succeeded")
	}
	mustContain(t, "legacy volume refusal", out, "volume old does not exist, but accvol-db-old does", `volumes = ["accvol-db-old:/path"]`)
	if volumeExists("old") {
		t.Fatal("the refused boot created the volume old")
	}
	if ids := strings.TrimSpace(env.Docker(t, h, "ps", "-aq", "--filter", "name=^accvol-db$")); ids != "" {
		t.Fatalf("the refused boot created a container: %s", ids)
	}
	env.Docker(t, h, "volume", "rm", "accvol-db-old")

	writeAccessories(t, a, base, accessories(dbVolumes))
	out = a.mustShipit("accessory", "boot", "-s", "production")
	mustContain(t, "boot", out, "cache: booted", "db: booted")
	if got := strings.TrimSpace(env.Docker(t, h, "exec", "accvol-db", "cat", "/var/lib/postgresql/data/PG_VERSION")); got != "16" {
		t.Fatalf("PG_VERSION in the accessory = %q: the existing volume pgdata was not mounted", got)
	}
	mustContain(t, "db logs", a.mustShipit("accessory", "logs", "db", "-s", "production"), h.Addr+" | 16")
	mounts := env.Docker(t, h, "container", "inspect", "-f", `{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}`, "accvol-db")
	mustContain(t, "db mounts", mounts, "pgdata:/var/lib/postgresql/data", "fresh:/fresh", "shared:/shared")
	mustContain(t, "details", a.mustShipit("accessory", "details", "db", "-s", "production"), "volume pgdata:/var/lib/postgresql/data")
	// pgdata is left as it was; shipit labels only what it created (cache
	// booted first and made shared).
	if got := volumeLabels("pgdata"); got != "null" && got != "{}" {
		t.Fatalf("pgdata got labels %s", got)
	}
	mustContain(t, "fresh labels", volumeLabels("fresh"), `"shipit.accessory":"db"`, `"shipit.app":"accvol"`)
	mustContain(t, "shared labels", volumeLabels("shared"), `"shipit.accessory":"cache"`)

	// Without --volumes nothing is deleted, and the output says what
	// --volumes would delete.
	out = a.mustShipit("accessory", "remove", "db", "-s", "production")
	mustContain(t, "remove", out, "db: removed container accvol-db",
		"db: kept volumes pgdata, shared: shipit did not create them for db", "db: kept volume fresh (`shipit accessory remove db --volumes` deletes it)")
	a.mustShipit("accessory", "boot", "db", "-s", "production")

	// cache --volumes while db still mounts shared: kept.
	out = a.mustShipit("accessory", "remove", "cache", "--volumes", "-s", "production")
	mustContain(t, "remove cache --volumes", out, "cache: removed container accvol-cache", "cache: kept volume shared: still used by container accvol-db")

	// db --volumes deletes only fresh.
	out = a.mustShipit("accessory", "remove", "db", "--volumes", "-s", "production")
	mustContain(t, "remove db --volumes", out, "db: removed volume fresh", "db: kept volumes pgdata, shared: shipit did not create them for db")
	if volumeExists("fresh") {
		t.Fatal("fresh survived remove --volumes")
	}
	if got := strings.TrimSpace(env.Docker(t, h, "run", "--rm", "-v", "pgdata:/data", harness.BaseImage, "cat", "/data/PG_VERSION")); got != "16" {
		t.Fatalf("pgdata after remove --volumes = %q", got)
	}

	// Nothing uses shared any more: cache --volumes deletes the volume it created.
	out = a.mustShipit("accessory", "remove", "cache", "--volumes", "-s", "production")
	mustContain(t, "remove cache --volumes again", out, "cache: removed volume shared")
	if !volumeExists("pgdata") || volumeExists("shared") {
		t.Fatalf("volumes left: %s", env.Docker(t, h, "volume", "ls", "-q"))
	}
}
