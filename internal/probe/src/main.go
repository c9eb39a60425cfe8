//go:build linux

// Command shipit-probe is the health check shipit injects into a release's
// web service. It runs inside the container as an exec-form Docker health
// check, so the image needs no shell, no curl and no wget: a static binary
// mounted read-only from the host (see package probe).
//
//	shipit-probe [-drain FILE] [-timeout MS] http URL
//	shipit-probe [-drain FILE] exec COMMAND [ARG...]
//
// -drain fails the check while FILE exists: that is how shipit takes a
// release out of Traefik's rotation (Traefik's Docker provider drops
// containers that are not healthy). `http` sends one GET to an
// http://IPv4[:port]/path URL and passes on a 2xx or 3xx status; `exec`
// replaces itself with COMMAND (looked up in PATH), for images that bring
// their own probe.
//
// Only package syscall and os: net and fmt would double the binary's size,
// and it is embedded in shipit twice (linux/amd64, linux/arm64).
package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	timeout := 5 * time.Second
	drain := ""
	for len(args) >= 2 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-drain":
			drain = args[1]
		case "-timeout":
			ms, err := strconv.Atoi(args[1])
			if err != nil || ms <= 0 {
				fail("bad -timeout " + args[1])
			}
			timeout = time.Duration(ms) * time.Millisecond
		default:
			fail("unknown flag " + args[0])
		}
		args = args[2:]
	}
	if drain != "" {
		var st syscall.Stat_t
		if syscall.Stat(drain, &st) == nil {
			fail("draining: " + drain + " exists (shipit is taking this release out of rotation)")
		}
	}
	if len(args) < 2 {
		fail("usage: shipit-probe [-drain FILE] [-timeout MS] http URL | exec COMMAND [ARG...]")
	}
	switch args[0] {
	case "http":
		probe(args[1], timeout)
	case "exec":
		execute(args[1:])
	default:
		fail("unknown mode " + args[0])
	}
}

// fail prints why on stdout (Docker keeps it in the health log, which shipit
// shows when a deploy fails) and exits 1, which Docker counts as unhealthy.
func fail(msg string) {
	os.Stdout.WriteString(msg + "\n")
	os.Exit(1)
}

func probe(url string, timeout time.Duration) {
	addr, port, path, ok := parseURL(url)
	if !ok {
		fail("unsupported URL " + url + " (want http://IPv4[:port]/path)")
	}
	time.AfterFunc(timeout, func() { fail("GET " + url + ": no answer within " + timeout.String()) })
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		fail("GET " + url + ": socket: " + err.Error())
	}
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: port, Addr: addr}); err != nil {
		fail("GET " + url + ": connect: " + err.Error())
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + hostPort(addr, port) +
		"\r\nUser-Agent: shipit-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
	for b := []byte(req); len(b) > 0; {
		n, err := syscall.Write(fd, b)
		if err != nil {
			fail("GET " + url + ": write: " + err.Error())
		}
		b = b[n:]
	}
	// The status line is all we need: read until its end.
	var resp []byte
	buf := make([]byte, 512)
	for !strings.Contains(string(resp), "\r\n") && len(resp) < 4096 {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			fail("GET " + url + ": read: " + err.Error())
		}
		if n == 0 {
			break
		}
		resp = append(resp, buf[:n]...)
	}
	syscall.Close(fd)
	line, _, _ := strings.Cut(string(resp), "\r\n")
	proto, rest, _ := strings.Cut(line, " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/") || err != nil {
		fail("GET " + url + ": not an HTTP response: " + strconv.Quote(line))
	}
	if status < 200 || status >= 400 {
		fail("GET " + url + ": " + rest)
	}
	os.Stdout.WriteString("GET " + url + ": " + rest + "\n")
	os.Exit(0)
}

// parseURL reads http://a.b.c.d[:port][/path]; "localhost" is 127.0.0.1.
func parseURL(u string) (addr [4]byte, port int, path string, ok bool) {
	rest, found := strings.CutPrefix(u, "http://")
	if !found {
		return addr, 0, "", false
	}
	hostport, p, hasPath := strings.Cut(rest, "/")
	path = "/"
	if hasPath {
		path = "/" + p
	}
	host, ps, hasPort := strings.Cut(hostport, ":")
	port = 80
	if hasPort {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			return addr, 0, "", false
		}
		port = n
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	parts := strings.Split(host, ".")
	if len(parts) != 4 {
		return addr, 0, "", false
	}
	for i, s := range parts {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 255 {
			return addr, 0, "", false
		}
		addr[i] = byte(n)
	}
	return addr, port, path, true
}

func hostPort(a [4]byte, port int) string {
	return strconv.Itoa(int(a[0])) + "." + strconv.Itoa(int(a[1])) + "." + strconv.Itoa(int(a[2])) + "." +
		strconv.Itoa(int(a[3])) + ":" + strconv.Itoa(port)
}

// execute replaces the probe with the user's command: Docker then records
// that command's exit code and output as the check's.
func execute(argv []string) {
	bin := argv[0]
	if !strings.Contains(bin, "/") {
		bin = lookPath(bin)
	}
	err := syscall.Exec(bin, argv, os.Environ())
	fail("exec " + argv[0] + ": " + err.Error())
}

func lookPath(name string) string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG && syscall.Access(p, 1) == nil {
			return p
		}
	}
	fail("exec " + name + ": not found in PATH " + path)
	return ""
}
