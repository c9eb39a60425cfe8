package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/shipit-dev/shipit/e2e/harness"
)

// An unknown host key is refused with a hint; accepting it is an opt-in
// that records it, and a changed key is always refused.
func TestUnknownHostKeyRefused(t *testing.T) {
	t.Parallel()
	env := harness.New(t)
	host := env.StartSSHD(t, harness.SSHDOpts{NoKnownHost: true})
	a := newApp(t, env, "hk", t.TempDir(), []*harness.SSHD{host}, "", "")

	out, code := a.shipit("exec", "-s", "production", "--", "echo reached")
	if code == 0 || strings.Contains(out, "reached") {
		t.Fatalf("unknown host key was accepted:\n%s", out)
	}
	mustContain(t, "refusal", out, "host key", "shipit: hint:", "--accept-new-host-keys")

	out = a.mustShipit("--accept-new-host-keys", "exec", "-s", "production", "--", "echo reached")
	mustContain(t, "accept-new", out, "reached")
	kh, _ := os.ReadFile(env.KnownHosts)
	if !strings.Contains(string(kh), strings.Fields(host.HostKeyPub)[1]) {
		t.Fatalf("accepted key not recorded in known_hosts:\n%s", kh)
	}
	out = a.mustShipit("exec", "-s", "production", "--", "echo again")
	mustContain(t, "second run", out, "again")

	// Swap the recorded key for another: now it is a changed key.
	other := env.StartSSHD(t, harness.SSHDOpts{NoKnownHost: true})
	bad := strings.ReplaceAll(string(kh), strings.Fields(host.HostKeyPub)[1], strings.Fields(other.HostKeyPub)[1])
	if err := os.WriteFile(env.KnownHosts, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = a.shipit("--accept-new-host-keys", "exec", "-s", "production", "--", "echo reached")
	if code == 0 || strings.Contains(out, "reached") {
		t.Fatalf("changed host key was accepted:\n%s", out)
	}
	mustContain(t, "changed key", out, "shipit: hint:", "ssh-keygen -R")
}
