// Command gracefulapp is the web app of shipit's zero-downtime tests: a tiny
// HTTP server that shuts down the way a well-behaved app does.
//
//	GET /            "version <V>\n"
//	GET /health      200 "ok\n"
//	GET /slow?ms=N   sleeps N ms (default 2000, at most 60000), then "version <V>\n"
//
// V is $APP_VERSION, else the first line of /version (baked into the image),
// else "unknown". Every answer carries the headers X-Version and X-Hostname.
// It listens on :$PORT (default 8080).
//
// On SIGTERM or SIGINT it stops accepting at once (its listener is closed:
// new connections are refused) and lets in-flight requests finish
// (http.Server.Shutdown, at most $SHUTDOWN_TIMEOUT, default 10s), then exits 0.
// It logs each step on stdout (docker logs).
//
// A bad release, for the checks after a deploy: $FAIL_PERCENT of the
// answers to / are 500 (every Nth request, deterministic), and $DELAY_MS
// delays every answer to /. /health is never affected.
//
// `gracefulapp -probe URL` is its own health probe, as many images bring
// one (exit 0 on a 2xx answer, else 1), for health_check.cmd's exec form in
// images without a shell.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-probe" {
		probe(os.Args[2])
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds | log.LUTC)
	log.SetOutput(os.Stdout)
	version := appVersion()
	host, _ := os.Hostname()
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	shutdownTimeout := 10 * time.Second
	if s := os.Getenv("SHUTDOWN_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			log.Fatalf("SHUTDOWN_TIMEOUT=%q: %v", s, err)
		}
		shutdownTimeout = d
	}

	var inflight atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms := 2000
		if s := r.URL.Query().Get("ms"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > 60000 {
				http.Error(w, "ms must be 0..60000", http.StatusBadRequest)
				return
			}
			ms = n
		}
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "version %s\n", version)
	})
	failPercent, _ := strconv.Atoi(os.Getenv("FAIL_PERCENT"))
	delayMS, _ := strconv.Atoi(os.Getenv("DELAY_MS"))
	var answered atomic.Int64
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if delayMS > 0 {
			time.Sleep(time.Duration(delayMS) * time.Millisecond)
		}
		if n := answered.Add(1); failPercent > 0 && n*int64(failPercent)/100 != (n-1)*int64(failPercent)/100 {
			http.Error(w, "bad release", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "version %s\n", version)
	})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Add(-1)
		w.Header().Set("X-Version", version)
		w.Header().Set("X-Hostname", host)
		mux.ServeHTTP(w, r)
	})

	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		log.Fatalf("listen :%s: %v", port, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("gracefulapp version %s listening on :%s (pid %d)", version, port, os.Getpid())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		log.Fatalf("serve: %v", err)
	case sig := <-sigs:
		start := time.Now()
		log.Printf("%v: closing the listener, draining %d in-flight request(s) (at most %v)", sig, inflight.Load(), shutdownTimeout)
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		// Shutdown closes the listener first: new connections are refused
		// from here on.
		err := srv.Shutdown(ctx)
		if se := <-served; se != nil && !errors.Is(se, http.ErrServerClosed) {
			log.Printf("serve: %v", se)
		}
		if err != nil {
			log.Printf("drain incomplete after %v: %v (%d request(s) cut)", time.Since(start).Round(time.Millisecond), err, inflight.Load())
			os.Exit(1)
		}
		log.Printf("drained in %v; exiting", time.Since(start).Round(time.Millisecond))
	}
}

func appVersion() string {
	if v := os.Getenv("APP_VERSION"); v != "" {
		return v
	}
	if b, err := os.ReadFile("/version"); err == nil {
		if v := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]); v != "" {
			return v
		}
	}
	return "unknown"
}

func probe(url string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Println("gracefulapp -probe:", err)
		os.Exit(1)
	}
	resp.Body.Close()
	fmt.Println("gracefulapp -probe:", url, resp.Status)
	if resp.StatusCode/100 != 2 {
		os.Exit(1)
	}
	os.Exit(0)
}
