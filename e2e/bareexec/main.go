// Command bareexec is the baseline of BenchmarkExecFanOut: the least a Go
// program on golang.org/x/crypto/ssh does to run one command on many hosts
// (one known_hosts parse, one key load, one connection and session per
// host, all hosts at once). shipit exec is measured against it.
//
//	bareexec -i KEY -known-hosts FILE -user root -cmd true 127.0.0.1:2201 ...
package main

import (
	"flag"
	"fmt"
	"os"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func main() {
	key := flag.String("i", "", "private key file")
	known := flag.String("known-hosts", "", "known_hosts file")
	user := flag.String("user", "root", "ssh user")
	cmd := flag.String("cmd", "true", "remote command")
	flag.Parse()
	if err := run(*key, *known, *user, *cmd, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "bareexec:", err)
		os.Exit(1)
	}
}

func run(keyFile, knownFile, user, cmd string, addrs []string) error {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return fmt.Errorf("key %s: %w", keyFile, err)
	}
	hk, err := knownhosts.New(knownFile)
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	cfg := &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk}
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = runOn(a, cfg, cmd)
		}()
	}
	wg.Wait()
	for i, a := range addrs {
		if errs[i] != nil {
			return fmt.Errorf("%s: %w", a, errs[i])
		}
		fmt.Printf("%s: exit 0\n", a)
	}
	return nil
}

func runOn(addr string, cfg *ssh.ClientConfig, cmd string) error {
	c, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Run(cmd)
}
