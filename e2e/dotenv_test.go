package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/e2e/harness"
	"github.com/shipit-dev/shipit/internal/dotenv"
)

// dotenvHardValues are values an env file must carry unchanged: every
// character the quoting rules of compose-go or python-dotenv treat
// specially, in every position.
var dotenvHardValues = []string{
	"plain-value_1.2:3@x/y+z,%",
	"a=b=c",
	"==",
	"it's",
	`say "hi"`,
	`both ' and "`,
	`'`,
	`"`,
	`''`,
	`'single-quoted'`,
	`"double-quoted"`,
	"#hash",
	"a #not a comment",
	"a#b",
	"$HOME",
	"$",
	"$$",
	"price: $5 $$ $ {x}",
	"${HOME}",
	"${NOPE:-fallback}",
	"$HOME'quote",
	"  leading spaces",
	"trailing spaces  ",
	" both ",
	"\ttab\t",
	`back\slash`,
	`trailing\`,
	`\`,
	`\\double`,
	`\n is not a newline`,
	`\'`,
	`\"`,
	`\$HOME`,
	`C:\path\to\`,
	`\\`,
	`a\b c\`,
	` \ `,
	"multi\nline ending in backslash\\",
	"$HOME and \\ with\nnewline",
	"#\\",
	"cr and $HOME\r\n",
	"two \\\\ and $HOME\nnewline",
	`it\'`,
	`\\'`,
	"\\\t\\",
	"ünïcødé ✓ 日本語 🚀",
	"\u00a0nbsp\u00a0",
	"line1\nline2",
	"line1\nline2\n",
	"\nleading newline",
	"\n",
	"crlf\r\nline",
	"cr\ronly",
	"\r",
	"mixed $X \\ 'q' \"d\"\n# not a comment\nKEY=not a key\n end",
	"export X=1",
	"\x1b[31mred\x1b[0m",
	"\u0085next line\u2028sep\x1c\x1f\u0085",
	"\u00a0",
	`\0101 \x41 \u0041`,
	"",
}

func dotenvEntries() []dotenv.Entry {
	entries := make([]dotenv.Entry, len(dotenvHardValues))
	for i, v := range dotenvHardValues {
		entries[i] = dotenv.Entry{Key: fmt.Sprintf("V%02d", i), Value: v}
	}
	return entries
}

// dumpScript prints KEY=<hex of the value> (or KEY unset) for every key, so
// newlines and trailing spaces are compared exactly.
func dumpScript(entries []dotenv.Entry) string {
	var keys []string
	for _, e := range entries {
		keys = append(keys, e.Key)
	}
	return `for k in ` + strings.Join(keys, " ") + `; do
  if eval "[ -n \"\${$k+set}\" ]"; then
    eval "v=\"\${$k}\""
    printf '%s=%s\n' "$k" "$(printf '%s' "$v" | od -An -tx1 -v | tr -d ' \n')"
  else
    printf '%s unset\n' "$k"
  fi
done
`
}

// composeEnv runs a one-off service with env_file .env = Serialize(entries)
// through the given compose command and returns key -> value as the
// container saw it.
func composeEnv(t *testing.T, compose []string, entries []dotenv.Entry) map[string]string {
	t.Helper()
	dir := t.TempDir()
	envFile, err := dotenv.Serialize(entries)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		// .env, as in a release: compose also reads it as the project's
		// environment for interpolating the compose file.
		".env":    string(envFile),
		"dump.sh": dumpScript(entries),
		"compose.yml": "services:\n  dump:\n    image: " + harness.BaseImage + "\n    env_file: [.env]\n" +
			"    volumes: [\"./dump.sh:/dump.sh:ro\"]\n    command: [\"sh\", \"/dump.sh\"]\n" +
			// No network: the engine's address pools are shared with
			// the other e2e tests and nothing here needs one.
			"    network_mode: none\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	project := "shipitdotenv" + hex.EncodeToString(suffix)
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		full := append(append(append([]string{}, compose[1:]...), "-p", project, "-f", "compose.yml"), args...)
		cmd := exec.CommandContext(ctx, compose[0], full...)
		cmd.Dir = dir
		// Nothing from the test's environment may leak into interpolation.
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err != nil {
			return stdout.String(), fmt.Errorf("%s %s: %v\nstderr:\n%s", compose[0], strings.Join(full, " "), err, stderr.String())
		}
		return stdout.String(), nil
	}
	// Removed right away (not at test end): the refused-values loop runs
	// many projects.
	defer func() {
		if _, err := run("down", "--remove-orphans"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}()
	out, err := run("run", "--rm", "-T", "dump")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, h, ok := strings.Cut(line, "="); ok {
			b, err := hex.DecodeString(h)
			if err != nil {
				t.Fatalf("bad dump line %q: %v", line, err)
			}
			got[k] = string(b)
		}
	}
	return got
}

// TestDotenvComposeV2 checks that every hard value reaches the container
// unchanged through Docker Compose v2's env_file.
func TestDotenvComposeV2(t *testing.T) {
	t.Parallel()
	harness.New(t) // fails loudly when docker/compose/the base image are missing
	entries := dotenvEntries()
	got := composeEnv(t, []string{"docker", "compose"}, entries)
	for _, e := range entries {
		v, ok := got[e.Key]
		if !ok {
			t.Errorf("%s (%q): not set in the container", e.Key, e.Value)
		} else if v != e.Value {
			t.Errorf("%s: container has %q, want %q", e.Key, v, e.Value)
		}
	}
}

// TestDotenvComposeV1 checks docker-compose v1: values CompatV1 accepts
// arrive unchanged, and each value it refuses really would be altered (so
// the refusal is not over-cautious). Refused values get a file of their own:
// one of them can derail v1's parsing of the lines that follow it.
func TestDotenvComposeV1(t *testing.T) {
	t.Parallel()
	harness.New(t)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("docker-compose v1 not on PATH: this test needs it (see scripts/testenv.sh)")
	}
	var accepted, refused []dotenv.Entry
	for _, e := range dotenvEntries() {
		if dotenv.CompatV1([]dotenv.Entry{e}) == nil {
			accepted = append(accepted, e)
		} else {
			refused = append(refused, e)
		}
	}
	if len(refused) == 0 {
		t.Fatal("no hard value was refused by CompatV1: the test no longer covers the refusal")
	}
	if err := dotenv.CompatV1(accepted); err != nil {
		t.Fatalf("CompatV1 of the accepted values: %v", err)
	}
	got := composeEnv(t, []string{"docker-compose"}, accepted)
	for _, e := range accepted {
		if v, ok := got[e.Key]; !ok {
			t.Errorf("%s (%q): accepted by CompatV1 but not set in the container", e.Key, e.Value)
		} else if v != e.Value {
			t.Errorf("%s: accepted by CompatV1 but container has %q, want %q", e.Key, v, e.Value)
		}
	}
	// A value v1 misreads may only show when a later line has a quote (its
	// regex then runs on to that quote), so each refused value is followed
	// by one; refusing is right when either arrives altered.
	after := dotenv.Entry{Key: "AFTER", Value: `say "hi"`}
	for _, e := range refused {
		got := composeEnv(t, []string{"docker-compose"}, []dotenv.Entry{e, after})
		if v, ok := got[e.Key]; ok && v == e.Value && got[after.Key] == after.Value {
			t.Errorf("%s (%q): refused by CompatV1 (%v) but v1 delivered it unchanged", e.Key, e.Value, dotenv.CompatV1([]dotenv.Entry{e}))
		}
	}
}
