package session

import (
	"os/exec"
	"testing"
)

// Several arguments reach the host's shell as one word each (no re-split,
// no glob, no expansion); a single one is the user's shell line.
func TestExecLine(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"printf", "<%s>", "a b", "*", "$HOME", "it's"}, "<a b><*><$HOME><it's>"},
		{[]string{"printf '<%s>' a b | cat"}, "<a><b>"},
	}
	for _, c := range cases {
		out, err := exec.Command("sh", "-c", execLine(c.args)).Output()
		if err != nil || string(out) != c.want {
			t.Errorf("%q: got %q (%v), want %q", c.args, out, err, c.want)
		}
	}
}
