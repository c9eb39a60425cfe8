package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// TestDoctorMeasuresTheLoginShell: `shipit doctor` reports the login
// shell's start-up, which every SSH session pays (two per deploy), and
// warns, with the fix, when the deploy user's ~/.bashrc makes it slow.
func TestDoctorMeasuresTheLoginShell(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartIsolatedHost(t, 19) // root's .bashrc: a fresh Debian's
	a := newApp(t, env, "doctorsh", "/var/deploy", []*harness.SSHD{host}, "", "")
	out, _ := a.shipit("doctor", "-s", "production")
	ok := regexp.MustCompile(`✓ login shell +\S+ starts in (\d+) ms per SSH session; a deploy starts 2`)
	if !ok.MatchString(out) {
		t.Fatalf("doctor with a fresh Debian .bashrc: no passing login shell item:\n%s", out)
	}

	// A .bashrc that takes 300 ms, in this host's mount namespace only.
	slow := filepath.Join(t.TempDir(), "bashrc")
	if err := os.WriteFile(slow, []byte("sleep 0.3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env.HostRun(t, host, "umount /root/.bashrc 2>/dev/null; [ -e /root/.bashrc ] || touch /root/.bashrc; mount --bind "+slow+" /root/.bashrc")
	out, _ = a.shipit("doctor", "-s", "production")
	warn := regexp.MustCompile(`! login shell +\S+ starts in (\d+) ms per SSH session; a deploy starts 2`)
	m := warn.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("doctor with a 300 ms .bashrc: no warning about the login shell:\n%s", out)
	}
	if len(m[1]) < 3 { // at least 300 ms
		t.Errorf("doctor measured %s ms for a .bashrc that sleeps 300 ms", m[1])
	}
	mustContain(t, "doctor's fix", out, "return early for non-interactive shells", "case $- in *i*) ;; *) return;; esac")
}
