package secrets

import "strings"

// SecretEnv lists the environment variables that hold secret material
// shipit reads: EnvKey, an age identity that decrypts every stage's
// secrets. (Other identities come from files or --identity.)
var SecretEnv = []string{EnvKey}

// ScrubEnv returns env ("KEY=VALUE" entries, as from os.Environ) without
// the SecretEnv variables, for the processes shipit starts on this machine
// (run_local, $EDITOR): they have no use for the key and must not leak it.
func ScrubEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		secret := false
		for _, s := range SecretEnv {
			if k == s {
				secret = true
				break
			}
		}
		if !secret {
			out = append(out, kv)
		}
	}
	return out
}
