package shell

import (
	"os/exec"
	"testing"
)

// The quoted word must come back from a real sh byte for byte.
func TestQuoteRoundTripThroughSh(t *testing.T) {
	cases := []string{"", "plain", "a b", "it's", `"dq"`, "$(touch /tmp/pwned)", "`id`", "a;b|c&d", "new\nline", "ünï", "*?[x]", "-n", "back\\slash", "'", "''"}
	for _, c := range cases {
		out, err := exec.Command("sh", "-c", "printf %s "+Quote(c)).Output()
		if err != nil {
			t.Fatalf("%q: %v", c, err)
		}
		if string(out) != c {
			t.Errorf("Quote(%q) came back as %q", c, out)
		}
	}
}

func TestJoin(t *testing.T) {
	out, err := exec.Command("sh", "-c", "printf '<%s>' "+Join("a b", "c;d", "")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "<a b><c;d><>" {
		t.Fatalf("got %q", out)
	}
}
