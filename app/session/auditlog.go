package session

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shipit-dev/shipit/app/orchestrator"
	"github.com/shipit-dev/shipit/internal/audit"
	"github.com/shipit-dev/shipit/internal/remote"
)

// Audit prints the last n entries (0: all) of the selected hosts' audit
// logs merged by time, as a table or as JSON lines; secrets redacted.
func (s *Session) Audit(ctx context.Context, w io.Writer, n int, asJSON bool) error {
	appPath := s.Env.Config.AppPath()
	lists := make([][]audit.Entry, len(s.Fleet.Hosts))
	index := map[string]int{}
	for i, h := range s.Fleet.Hosts {
		index[h.Name] = i
	}
	results := s.Fleet.Each(ctx, func(ctx context.Context, h orchestrator.Host, conn remote.Conn) orchestrator.Result {
		// The last N of every host: the last N of all are among them.
		es, err := audit.Read(ctx, conn, appPath, n)
		for i := range es {
			if es[i].Host == "" {
				es[i].Host = h.Name
			}
		}
		lists[index[h.Name]] = es
		return orchestrator.Result{Err: err}
	})
	entries := audit.Last(audit.Merge(lists...), n)
	out := w
	if s.Out.Redact != nil {
		out = &redactWriter{w: w, redact: s.Out.Redact}
	}
	if asJSON {
		for _, e := range entries {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s\n", b)
		}
	} else {
		PrintAudit(out, entries)
		if len(entries) == 0 && orchestrator.Failed(results) == nil {
			fmt.Fprintf(w, "no audit entries on the %d selected host(s) of %s yet\n", len(results), s.Env.Stage)
		}
	}
	return orchestrator.Failed(results)
}

// PrintAudit renders entries as a table, oldest first.
func PrintAudit(w io.Writer, entries []audit.Entry) {
	if len(entries) == 0 {
		return
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME (UTC)\tHOST\tCOMMAND\tRESULT\tRELEASE\tSHA\tWHO\tDURATION\tERROR")
	for _, e := range entries {
		sha := e.GitSHA
		if len(sha) > 12 {
			sha = sha[:12]
		}
		last := e.Error
		if e.Verify != "" && !strings.Contains(e.Error, e.Verify) {
			last = strings.TrimPrefix(last+"; verify "+e.Verify, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			e.Time.UTC().Format("2006-01-02 15:04:05"), dash(e.Host), dash(e.Command), dash(string(e.Result)),
			dash(e.Release), dash(sha), dash(who(e)), e.Duration.Round(100*time.Millisecond), last)
	}
	tw.Flush()
	for _, l := range strings.SplitAfter(buf.String(), "\n") {
		if l != "" {
			io.WriteString(w, strings.TrimRight(l, " \n")+"\n")
		}
	}
}

// who is the git author's name and the local user@machine.
func who(e audit.Entry) string {
	name, _, _ := strings.Cut(e.Author, " <")
	switch {
	case name != "" && e.User != "":
		return name + " (" + e.User + ")"
	case name != "":
		return name
	}
	return e.User
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// redactWriter hides secret values in what it writes (whole writes only:
// printAudit and the JSON lines write complete lines).
type redactWriter struct {
	w      io.Writer
	redact func(string) string
}

func (r *redactWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, r.redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
