package imagexfer

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
)

// inventoryConn counts the inventory commands run on it and fails the
// first ones when told to.
type inventoryConn struct {
	*localConn
	asked atomic.Int32
	fail  int32
}

func (c *inventoryConn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if strings.Contains(cmd, "image ls -aq") && c.asked.Add(1) <= c.fail {
		return 3, nil
	}
	return c.localConn.Run(ctx, cmd, stdin, stdout, stderr)
}

// A prefetched inventory is what the transfer uses: the host is asked
// once; a prefetch that failed is asked again by the transfer.
func TestTransferUsesPrefetchedInventory(t *testing.T) {
	requireDocker(t)
	for _, fail := range []int32{0, 1} {
		r := testRand()
		im := newImage("shipit-xfer-test-"+r+":x", newLayer(t, "x-"+r, 256<<10))
		rmiOnCleanup(t, im.Ref)
		fake := newFakeLocal(t)
		fake.add(legacySave(t, im), []string{im.configDigest()}, im)
		s := NewSender(Options{})
		c := &inventoryConn{localConn: newConn(t), fail: fail}
		h := testHost(t, c.localConn)
		h.Conn = c
		s.Prefetch(context.Background(), h)
		res, err := s.Transfer(context.Background(), h, []string{im.Ref})
		s.Close()
		if err != nil {
			t.Fatalf("failed prefetches %d: %v", fail, err)
		}
		if res.LayersSent != 1 || hostID(im.Ref) != im.configDigest() {
			t.Fatalf("failed prefetches %d: image not loaded: %+v", fail, res)
		}
		if got, want := c.asked.Load(), 1+fail; got != want {
			t.Errorf("failed prefetches %d: host asked %d times, want %d", fail, got, want)
		}
	}
}
