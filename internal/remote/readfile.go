package remote

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"strings"

	"github.com/shipit-dev/shipit/internal/shell"
)

// ReadFile reads a file on the host; a missing file is fs.ErrNotExist.
// Connections that read files directly (SFTP) do; others cat it.
func ReadFile(ctx context.Context, c Conn, p string) ([]byte, error) {
	if r, ok := c.(interface {
		ReadFile(context.Context, string) ([]byte, error)
	}); ok {
		return r.ReadFile(ctx, p)
	}
	ok, err := c.Exists(ctx, p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fs.ErrNotExist
	}
	var out, errb bytes.Buffer
	code, err := c.Run(ctx, "cat "+shell.Quote(p), nil, &out, &errb)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("host %s: cat %s: exit %d: %s", c.Name(), p, code, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}
