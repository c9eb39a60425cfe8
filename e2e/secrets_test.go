package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// containerEnv returns the web container's environment exactly (JSON keeps
// newlines and quotes intact).
func containerEnv(t *testing.T, env *harness.Env, s *harness.SSHD, app, release string) map[string]string {
	t.Helper()
	ids := webContainers(t, env, s, app, release)
	if len(ids) != 1 {
		t.Fatalf("want 1 web container for %s, got %v", release, ids)
	}
	var list []string
	if err := json.Unmarshal([]byte(env.Docker(t, s, "inspect", "-f", "{{json .Config.Env}}", ids[0])), &list); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func modeOf(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// Secrets, `shipit config` and [stages.x.env] reach the container exactly,
// coexist through changes, are rewritten only when they change, are never
// printed, and a rollback brings back the env the release was deployed with.
func TestSecretsAndConfigReachContainers(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartSSHD(t, harness.SSHDOpts{})
	deployTo := t.TempDir()
	keyFile := filepath.Join(env.Dir, "age.key")
	if out, err := exec.Command("age-keygen", "-o", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v %s", err, out)
	}
	key, _ := os.ReadFile(keyFile)
	recipient := ""
	for _, l := range strings.Split(string(key), "\n") {
		if strings.HasPrefix(l, "# public key: ") {
			recipient = strings.TrimPrefix(l, "# public key: ")
		}
	}
	a := newApp(t, env, "sec", deployTo, []*harness.SSHD{host}, `env = { FROM_TOML = "toml", FEATURE = "from-toml" }`+"\n", "")
	a.env2 = []string{"SHIPIT_AGE_KEY=" + string(key)}
	toml, _ := os.ReadFile(filepath.Join(a.dir, "shipit.toml"))
	a.commit(map[string]string{"shipit.toml": string(toml) + "\n[secrets]\nrecipients = [\"" + recipient + "\"]\n"})
	cleanupApp(t, env, host, "sec")
	appPath := filepath.Join(deployTo, "sec")

	hard := map[string]string{
		"DB_PASSWORD": `p@ss=w0rd "q" 'sq' #notacomment $HOME \back\slash`,
		"MULTI_LINE":  "line one\nline two\n  indented",
		"UNICODE":     "ünïcødé 🚀 ✓",
		"SPACES":      "  padded value  ",
	}
	args := []string{"secrets", "set", "-s", "production"}
	for k, v := range hard {
		args = append(args, k+"="+v)
	}
	a.mustShipit(args...)
	a.mustShipit("config", "set", "-s", "production", "PLAIN=hello world", "FEATURE=from-config")

	out := a.mustShipit("-v", "deploy", "-s", "production")
	mustContain(t, "first deploy", out, "env written")
	for k, v := range hard {
		for _, part := range append([]string{v}, strings.Split(v, "\n")...) {
			if len(strings.TrimSpace(part)) >= 3 && strings.Contains(out, part) {
				t.Fatalf("secret %s (%q) appears in -v output", k, part)
			}
		}
	}
	lock, _ := readLock(t, appPath)
	r1 := lock.CurrentRelease
	got := containerEnv(t, env, host, "sec", r1)
	for k, v := range hard {
		if got[k] != v {
			t.Errorf("container %s = %q, want %q", k, got[k], v)
		}
	}
	if got["PLAIN"] != "hello world" || got["FEATURE"] != "from-config" || got["FROM_TOML"] != "toml" {
		t.Fatalf("plain env wrong: PLAIN=%q FEATURE=%q FROM_TOML=%q", got["PLAIN"], got["FEATURE"], got["FROM_TOML"])
	}
	age, err := os.ReadFile(filepath.Join(a.dir, ".shipit", "secrets", "production.age"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(age)
	if lock.SecretsHash != hex.EncodeToString(sum[:]) {
		t.Fatalf("lock secrets_hash %q is not the SHA-256 of production.age", lock.SecretsHash)
	}
	for _, p := range []string{filepath.Join(appPath, "shared", ".env"), filepath.Join(appPath, "shared", "config.env"), filepath.Join(appPath, "releases", r1, ".env.snapshot")} {
		if m := modeOf(t, p); m != 0o600 {
			t.Errorf("%s has mode %o, want 600", p, m)
		}
	}
	lockText, _ := os.ReadFile(filepath.Join(appPath, "shipit.lock"))
	for _, v := range hard {
		if strings.Contains(string(lockText), v) {
			t.Fatal("a secret value is in shipit.lock")
		}
	}
	out = a.mustShipit("config", "list", "-s", "production")
	mustContain(t, "config list", out, "FEATURE", "config", "(overrides shipit.toml)", "DB_PASSWORD", "***", "FROM_TOML")
	if strings.Contains(out, "p@ss") {
		t.Fatal("config list printed a secret without --reveal")
	}

	// Nothing changed: the env is not rewritten.
	waitNextSecond(r1)
	out = a.mustShipit("deploy", "-s", "production")
	mustContain(t, "unchanged deploy", out, "env unchanged, not rewritten")

	// A changed secret is written; config values survive it.
	lock, _ = readLock(t, appPath)
	r2 := lock.CurrentRelease
	waitNextSecond(r2)
	a.mustShipit("secrets", "set", "-s", "production", "DB_PASSWORD=second password")
	out = a.mustShipit("deploy", "-s", "production")
	mustContain(t, "changed secret", out, "env written")
	lock, _ = readLock(t, appPath)
	r3 := lock.CurrentRelease
	got = containerEnv(t, env, host, "sec", r3)
	if got["DB_PASSWORD"] != "second password" || got["PLAIN"] != "hello world" || got["MULTI_LINE"] != hard["MULTI_LINE"] {
		t.Fatalf("after secret change: DB_PASSWORD=%q PLAIN=%q", got["DB_PASSWORD"], got["PLAIN"])
	}

	// A config change keeps the secrets; unset drops only that key.
	waitNextSecond(r3)
	a.mustShipit("config", "set", "-s", "production", "PLAIN=changed")
	a.mustShipit("config", "unset", "-s", "production", "FEATURE")
	a.mustShipit("deploy", "-s", "production")
	lock, _ = readLock(t, appPath)
	r4 := lock.CurrentRelease
	got = containerEnv(t, env, host, "sec", r4)
	if got["PLAIN"] != "changed" || got["DB_PASSWORD"] != "second password" || got["FEATURE"] != "from-toml" {
		t.Fatalf("after config change: PLAIN=%q DB_PASSWORD=%q FEATURE=%q", got["PLAIN"], got["DB_PASSWORD"], got["FEATURE"])
	}

	// Rollback runs the old code with the env it was deployed with.
	// (keep_releases = 2 leaves r3 and r4.)
	a.mustShipit("rollback", "-s", "production")
	got = containerEnv(t, env, host, "sec", r3)
	if got["PLAIN"] != "hello world" || got["FEATURE"] != "from-config" || got["DB_PASSWORD"] != "second password" {
		t.Fatalf("rollback did not restore the env: PLAIN=%q FEATURE=%q DB_PASSWORD=%q", got["PLAIN"], got["FEATURE"], got["DB_PASSWORD"])
	}
	shared, _ := os.ReadFile(filepath.Join(appPath, "shared", ".env"))
	snap, _ := os.ReadFile(filepath.Join(appPath, "releases", r3, ".env.snapshot"))
	if string(shared) != string(snap) {
		t.Fatal("shared/.env is not the rolled-back release's snapshot")
	}
	lock, _ = readLock(t, appPath)
	if lock.CurrentRelease != r3 || lock.SecretsHash == "" {
		t.Fatalf("lock after rollback: %+v", lock)
	}
}

// A project and key left by the original shipit deploy as they are: the
// armored .shipit/secrets/production.age (sorted KEY=VALUE lines, no
// trailing newline, encrypted to every recipient) and the key file
// ~/.config/shipit/keys/<app>.key (one AGE-SECRET-KEY line, no newline).
func TestSecretsFromOriginalShipit(t *testing.T) {
	t.Parallel()
	env, host, a, deployTo := newLocalApp(t, "secorig")

	keygen := filepath.Join(env.Dir, "secorig-keygen.key")
	if out, err := exec.Command("age-keygen", "-o", keygen).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v %s", err, out)
	}
	b, _ := os.ReadFile(keygen)
	var secretKey, recipient string
	for _, l := range strings.Split(string(b), "\n") {
		if r, ok := strings.CutPrefix(l, "# public key: "); ok {
			recipient = r
		}
		if strings.HasPrefix(l, "AGE-SECRET-KEY-") {
			secretKey = l
		}
	}
	keyPath := filepath.Join(a.home, ".config", "shipit", "keys", "secorig.key")
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, []byte(secretKey), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(keyPath) })

	want := map[string]string{
		"DATABASE_URL":    "postgres://app:p@ss@db:5432/app?sslmode=disable",
		"GREETING":        "hello world",
		"SECRET_KEY_BASE": "a1b2c3==d4e5=",
	}
	plain := "DATABASE_URL=" + want["DATABASE_URL"] + "\nGREETING=" + want["GREETING"] + "\nSECRET_KEY_BASE=" + want["SECRET_KEY_BASE"]
	secretsDir := filepath.Join(a.dir, ".shipit", "secrets")
	if err := os.MkdirAll(secretsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("age", "-a", "-r", recipient, "-o", filepath.Join(secretsDir, "production.age"))
	cmd.Stdin = strings.NewReader(plain)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("age: %v %s", err, out)
	}
	toml, _ := os.ReadFile(filepath.Join(a.dir, "shipit.toml"))
	a.commit(map[string]string{"shipit.toml": string(toml) + "\n[secrets]\nrecipients = [\"" + recipient + "\"]\n"})

	out := a.mustShipit("secrets", "list", "--reveal", "-s", "production")
	mustContain(t, "secrets list --reveal", out, want["DATABASE_URL"], want["GREETING"], want["SECRET_KEY_BASE"])
	a.mustShipit("deploy", "-s", "production")
	lock, _ := readLock(t, filepath.Join(deployTo, "secorig"))
	got := containerEnv(t, env, host, "secorig", lock.CurrentRelease)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("container %s = %q, want %q", k, got[k], v)
		}
	}
}
