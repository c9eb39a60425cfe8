package session

import (
	"bytes"
	"testing"
	"time"

	"github.com/shipit-dev/shipit/internal/audit"
)

func TestPrintAudit(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	var b bytes.Buffer
	PrintAudit(&b, []audit.Entry{
		{Time: t0, Host: "10.0.0.1", Command: "deploy", Result: audit.OK, Release: "20250102-030405", GitSHA: "0123456789abcdef0123",
			User: "ann@laptop", Author: "Ann Lee <ann@example.com>", Duration: 83250 * time.Millisecond},
		{Time: t0.Add(time.Minute), Host: "10.0.0.2", Command: "rollback", Result: audit.Failed, User: "bob@ci", Error: "health check failed"},
	})
	want := `TIME (UTC)           HOST      COMMAND   RESULT  RELEASE          SHA           WHO                   DURATION  ERROR
2025-01-02 03:04:05  10.0.0.1  deploy    ok      20250102-030405  0123456789ab  Ann Lee (ann@laptop)  1m23.3s
2025-01-02 03:05:05  10.0.0.2  rollback  failed  -                -             bob@ci                0s        health check failed
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
