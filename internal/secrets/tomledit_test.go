package secrets

import (
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/internal/config"
)

const tomlBase = `# shipit config — keep this comment
[app]
name = "demo" # inline comment

[stages.production]
hosts = [{ address = "203.0.113.10" }]
`

func TestAddRecipientTOML(t *testing.T) {
	const rec = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"
	const old = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"
	cases := []struct {
		name, in, want string
	}{
		{"no table", tomlBase, tomlBase + "\n[secrets]\nrecipients = [\"" + rec + "\"]\n"},
		{"no trailing newline", strings.TrimSuffix(tomlBase, "\n"), tomlBase + "\n[secrets]\nrecipients = [\"" + rec + "\"]\n"},
		{"table without key",
			tomlBase + "\n[secrets] # who can decrypt\n\n[accessories.db]\nimage = \"postgres\"\n",
			tomlBase + "\n[secrets] # who can decrypt\nrecipients = [\"" + rec + "\"]\n\n[accessories.db]\nimage = \"postgres\"\n"},
		{"empty array",
			tomlBase + "[secrets]\nrecipients = [] # none yet\n",
			tomlBase + "[secrets]\nrecipients = [\"" + rec + "\"] # none yet\n"},
		{"single line",
			tomlBase + "[secrets]\nrecipients = [\"" + old + "\"] # alice\n",
			tomlBase + "[secrets]\nrecipients = [\"" + old + "\", \"" + rec + "\"] # alice\n"},
		{"multi-line with trailing comma",
			tomlBase + "[secrets]\nrecipients = [\n    \"" + old + "\", # alice\n    # bob left\n]\n",
			tomlBase + "[secrets]\nrecipients = [\n    \"" + old + "\", # alice\n    # bob left\n    \"" + rec + "\",\n]\n"},
		{"multi-line without trailing comma",
			tomlBase + "[secrets]\nrecipients = [\n  \"" + old + "\" # alice\n]\n",
			tomlBase + "[secrets]\nrecipients = [\n  \"" + old + "\", # alice\n  \"" + rec + "\",\n]\n"},
		{"close on element line",
			tomlBase + "[secrets]\nrecipients = [\n  \"" + old + "\"]\n",
			tomlBase + "[secrets]\nrecipients = [\n  \"" + old + "\", \"" + rec + "\"]\n"},
		{"secrets before stages",
			"[app]\nname = \"demo\"\n[secrets]\nrecipients = ['" + old + "']\n[stages.p]\nhosts = [{ address = \"h\" }]\n",
			"[app]\nname = \"demo\"\n[secrets]\nrecipients = ['" + old + "', \"" + rec + "\"]\n[stages.p]\nhosts = [{ address = \"h\" }]\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, changed, err := AddRecipientTOML([]byte(c.in), rec)
			if err != nil || !changed {
				t.Fatalf("changed=%v err=%v", changed, err)
			}
			if string(out) != c.want {
				t.Fatalf("got\n%s\nwant\n%s", out, c.want)
			}
			cfg, err := config.Parse(out, "shipit.toml")
			if err != nil {
				t.Fatalf("result does not load: %v", err)
			}
			if r := cfg.Secrets.Recipients; len(r) == 0 || r[len(r)-1] != rec {
				t.Fatalf("recipients %v", r)
			}
			// Idempotent.
			again, changed, err := AddRecipientTOML(out, rec)
			if err != nil || changed || string(again) != string(out) {
				t.Fatalf("second add: changed=%v err=%v", changed, err)
			}
		})
	}
	// Unparseable array: refused, not mangled.
	if _, _, err := AddRecipientTOML([]byte(tomlBase+"[secrets]\nrecipients = [\"a\" \"b\"]\n"), rec); err == nil {
		t.Fatal("want an error for a malformed array")
	}
}

// Whatever the layout, an edit that succeeds yields a file that loads and
// lists exactly the old recipients plus the new one.
func FuzzAddRecipientTOML(f *testing.F) {
	const rec = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"
	const stage = "\n[stages.p]\nhosts = [{ address = \"h\" }]\n"
	for _, seed := range []string{
		"[app]\nname = \"a\"\n" + stage,
		"[app]\nname = \"a\"\n[secrets]\nrecipients = []\n" + stage,
		"[app]\nname = \"a\"\n[secrets]\nrecipients = [\"x\", # c\n 'y',\n]\n" + stage,
		"[app]\nname = \"a\"\n[secrets] # s\n# c\n" + stage,
		"[app]\nname = \"a\"\n[secrets]\nrecipients = [\"]\", \"#\"] # ]\n" + stage,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		before, err := config.Parse([]byte(in), "f.toml")
		if err != nil {
			return
		}
		out, changed, err := AddRecipientTOML([]byte(in), rec)
		if err != nil || !changed {
			return
		}
		after, err := config.Parse(out, "f.toml")
		if err != nil {
			t.Fatalf("edited file does not load: %v\n--- in\n%s\n--- out\n%s", err, in, out)
		}
		want := append(append([]string{}, before.Secrets.Recipients...), rec)
		if strings.Join(after.Secrets.Recipients, "\n") != strings.Join(want, "\n") {
			t.Fatalf("recipients %q, want %q\n--- in\n%s\n--- out\n%s", after.Secrets.Recipients, want, in, out)
		}
	})
}
