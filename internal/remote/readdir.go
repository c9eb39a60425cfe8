package remote

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/shipit-dev/shipit/internal/shell"
)

// ReadDir lists the names in a directory on the host, sorted, without the
// hidden ones; a missing directory is fs.ErrNotExist. Connections that
// list directly (SFTP) do; others run ls.
func ReadDir(ctx context.Context, c Conn, p string) ([]string, error) {
	var names []string
	if r, ok := c.(interface {
		ReadDir(context.Context, string) ([]string, error)
	}); ok {
		all, err := r.ReadDir(ctx, p)
		if err != nil {
			return nil, err
		}
		names = all
	} else {
		var out, errb bytes.Buffer
		code, err := c.Run(ctx, "[ -d "+shell.Quote(p)+" ] || exit 3; ls -1 "+shell.Quote(p), nil, &out, &errb)
		switch {
		case err != nil:
			return nil, err
		case code == 3:
			return nil, fs.ErrNotExist
		case code != 0:
			return nil, fmt.Errorf("host %s: ls %s: exit %d: %s", c.Name(), p, code, strings.TrimSpace(errb.String()))
		}
		names = strings.Fields(out.String())
	}
	var out []string
	for _, n := range names {
		if !strings.HasPrefix(n, ".") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}
