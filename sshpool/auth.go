package sshpool

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// authState holds the signers for one dial plus notes explaining keys that
// could not be used, appended to an authentication failure.
type authState struct {
	signers []ssh.Signer
	notes   []string
	closer  func()
}

type keyFile struct {
	path     string
	explicit bool // from ssh_config or Config.IdentityFiles: report problems
}

// buildAuth orders signers so the most likely key is offered first and
// servers with a low MaxAuthTries do not reject us before the right key:
// agent keys matching ssh_config IdentityFile, then those files, then the
// remaining agent keys, then default keys, then Config.IdentityFiles.
func buildAuth(agentSock string, configIDs, defaultIDs, extraIDs []string) *authState {
	st := &authState{closer: func() {}}
	var agentSigners []ssh.Signer
	if agentSock != "" {
		conn, err := net.Dial("unix", agentSock)
		if err != nil {
			st.notes = append(st.notes, fmt.Sprintf("ssh-agent at SSH_AUTH_SOCK=%s unreachable: %v", agentSock, err))
		} else {
			st.closer = func() { conn.Close() }
			agentSigners, err = agent.NewClient(conn).Signers()
			if err != nil {
				st.notes = append(st.notes, fmt.Sprintf("ssh-agent: %v", err))
			}
		}
	}
	inAgent := map[string]ssh.Signer{}
	for _, s := range agentSigners {
		inAgent[string(s.PublicKey().Marshal())] = s
	}
	seen := map[string]bool{}
	add := func(s ssh.Signer) {
		k := string(s.PublicKey().Marshal())
		if !seen[k] {
			seen[k] = true
			st.signers = append(st.signers, s)
		}
	}

	var files []ssh.Signer
	for _, p := range configIDs {
		s, pub := st.loadKey(keyFile{p, true}, inAgent)
		if pub != nil {
			if as, ok := inAgent[string(pub.Marshal())]; ok {
				add(as)
				continue
			}
		}
		if s != nil {
			files = append(files, s)
		}
	}
	for _, s := range files {
		add(s)
	}
	for _, s := range agentSigners {
		add(s)
	}
	for _, p := range defaultIDs {
		if s, _ := st.loadKey(keyFile{p, false}, inAgent); s != nil {
			add(s)
		}
	}
	for _, p := range extraIDs {
		if s, _ := st.loadKey(keyFile{p, true}, inAgent); s != nil {
			add(s)
		}
	}
	return st
}

// loadKey returns the signer for an unencrypted key file and the public key
// when it can be determined (to match against the agent).
func (st *authState) loadKey(kf keyFile, inAgent map[string]ssh.Signer) (ssh.Signer, ssh.PublicKey) {
	b, err := os.ReadFile(kf.path)
	if err != nil {
		if kf.explicit || !errors.Is(err, fs.ErrNotExist) {
			st.notes = append(st.notes, fmt.Sprintf("identity file %s: %v", kf.path, err))
		}
		return nil, nil
	}
	s, err := ssh.ParsePrivateKey(b)
	if err == nil {
		return s, s.PublicKey()
	}
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		pub := pm.PublicKey
		if pub == nil {
			pub = readPub(kf.path + ".pub")
		}
		if pub != nil && inAgent[string(pub.Marshal())] != nil {
			return nil, pub
		}
		st.notes = append(st.notes, fmt.Sprintf("identity file %s is passphrase-protected and not loaded in ssh-agent (run `ssh-add %s`)", kf.path, kf.path))
		return nil, pub
	}
	st.notes = append(st.notes, fmt.Sprintf("identity file %s: %v", kf.path, err))
	return nil, nil
}

func readPub(path string) ssh.PublicKey {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil
	}
	return pub
}

func (st *authState) wrap(err error) error {
	if err == nil || len(st.notes) == 0 {
		return err
	}
	if !strings.Contains(err.Error(), "unable to authenticate") {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(st.notes, "; "))
}
