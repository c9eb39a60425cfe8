package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/ssh"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"shipit": func() { os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// CLI behaviour that needs no host: help, tasks, config and script errors.
// Each script gets $SSHD_PORT, an SSH server that presents a host key no
// known_hosts has (for host-key messages; nobody can log in), and the
// command `subst FILE...`, which replaces @SSHD_PORT@ in the files.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			port, stop, err := fakeSSHD()
			if err != nil {
				return err
			}
			env.Defer(stop)
			env.Setenv("SSHD_PORT", strconv.Itoa(port))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"subst": func(ts *testscript.TestScript, neg bool, args []string) {
				for _, f := range args {
					data := ts.ReadFile(f)
					data = strings.ReplaceAll(data, "@SSHD_PORT@", ts.Getenv("SSHD_PORT"))
					ts.Check(os.WriteFile(ts.MkAbs(f), []byte(data), 0o644))
				}
			},
		},
	})
}

// fakeSSHD serves SSH handshakes on a loopback port with a fresh host key
// and accepts no login.
func fakeSSHD() (int, func(), error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return 0, nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return 0, nil, err
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
			return nil, errors.New("no login here")
		},
	}
	cfg.AddHostKey(signer)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _, _, _ = ssh.NewServerConn(c, cfg)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, func() { l.Close() }, nil
}
