package lockfile

import (
	"errors"
	"strings"
	"testing"
)

const spec = `{
  "current_release": "20250219-140000",
  "previous_release": "20250219-120000",
  "git_sha": "abc123",
  "secrets_hash": "def456",
  "deployed_at": "2025-02-19T14:00:00Z"
}
`

func TestMarshalMatchesSpec(t *testing.T) {
	l := Lock{CurrentRelease: "20250219-140000", PreviousRelease: "20250219-120000",
		GitSHA: "abc123", SecretsHash: "def456", DeployedAt: "2025-02-19T14:00:00Z"}
	if got := string(l.Marshal()); got != spec {
		t.Errorf("Marshal =\n%s\nwant\n%s", got, spec)
	}
}

func TestRoundTrip(t *testing.T) {
	l := Lock{CurrentRelease: "r2", PreviousRelease: "", GitSHA: "<&>", DeployedAt: "x"}
	out := l.Marshal()
	if !strings.Contains(string(out), `"git_sha": "<&>"`) || !strings.Contains(string(out), `"previous_release": ""`) {
		t.Errorf("Marshal = %s", out)
	}
	back, err := Parse(out)
	if err != nil || *back != l {
		t.Fatalf("Parse = %+v, %v", back, err)
	}
}

func TestParse(t *testing.T) {
	l, err := Parse([]byte(spec))
	if err != nil || l.CurrentRelease != "20250219-140000" || l.PreviousRelease != "20250219-120000" ||
		l.GitSHA != "abc123" || l.SecretsHash != "def456" || l.DeployedAt != "2025-02-19T14:00:00Z" {
		t.Fatalf("Parse = %+v, %v", l, err)
	}
	if l, err := Parse([]byte(`{"previous_release":"p"}`)); err != nil || l.CurrentRelease != "" || l.PreviousRelease != "p" {
		t.Errorf("partial lock = %+v, %v", l, err)
	}
	// Unknown fields are tolerated.
	if _, err := Parse([]byte(`{"current_release":"a","future":1}`)); err != nil {
		t.Errorf("unknown field: %v", err)
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{" \n\t", "empty"},
		{"{", "not valid JSON"},
		{"[]", "not a JSON object"},
		{`{"current_release": 5}`, "not valid JSON"},
		{"null", "not a JSON object"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", tc.in, err, tc.want)
		}
	}
	if _, err := Parse(nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("Parse(nil) = %v, want ErrEmpty", err)
	}
}
