package gitpush

import "github.com/shipit-dev/shipit/internal/remote/localconn"

// localConn runs "remote" commands on this machine: the unit-test seam; the
// real sshd end to end is tested in e2e.
type localConn = localconn.Conn
