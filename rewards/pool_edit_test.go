package rewards

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/seedpay/seedpay/internal/redistest"
)

// conflicter writes the pool's hash from another client just before each
// of the first n MULTI/EXEC blocks, as a deposit landing mid-edit would.
type conflicter struct {
	other *redis.Client
	key   string
	n     atomic.Int64
	execs atomic.Int64
}

func (c *conflicter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (c *conflicter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (c *conflicter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "multi" {
			c.execs.Add(1)
			if c.n.Add(-1) >= 0 {
				c.other.HIncrBy(ctx, c.key, "touched", 1)
			}
		}
		return next(ctx, cmds)
	}
}

// TestPoolEditsRetryOnConflict: Close and SetTorrents retry when a
// concurrent write to the pool aborts their transaction, and give up with
// ErrPoolBusy (the API's 409) after a bounded number of attempts, changing
// nothing.
func TestPoolEditsRetryOnConflict(t *testing.T) {
	ctx := context.Background()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	pools := newTestPools(t, rdb)
	a := mustPool(t, pools, "5", ih('1'))
	c := &conflicter{other: rs.Client(t), key: keyPool(a.ID)}
	rdb.AddHook(c)

	c.n.Store(1 << 30) // always
	if _, err := pools.SetTorrents(ctx, a.ID, []string{ih('2')}, true); !errors.Is(err, ErrPoolBusy) {
		t.Fatalf("add under constant conflict: %v, want ErrPoolBusy", err)
	}
	if n := c.execs.Load(); n != poolEditAttempts {
		t.Errorf("%d attempts, want %d", n, poolEditAttempts)
	}
	if _, err := pools.Close(ctx, a.ID); !errors.Is(err, ErrPoolBusy) {
		t.Fatalf("close under constant conflict: %v, want ErrPoolBusy", err)
	}
	c.n.Store(0)
	if v, _ := pools.Get(ctx, a.ID); v.State != PoolOpen || len(v.Torrents) != 1 {
		t.Fatalf("a failed edit changed the pool: %+v", v)
	}

	c.n.Store(2) // two conflicts, then through
	v, err := pools.SetTorrents(ctx, a.ID, []string{ih('2')}, true)
	if err != nil || len(v.Torrents) != 2 {
		t.Fatalf("add after two conflicts: %+v %v", v, err)
	}
	c.n.Store(2)
	if v, err := pools.Close(ctx, a.ID); err != nil || v.State != PoolClosing {
		t.Fatalf("close after two conflicts: %+v %v", v, err)
	}
}

// TestPoolTorrentCapCountsNewOnly: a full pool accepts torrents it already
// has, and refuses new ones.
func TestPoolTorrentCapCountsNewOnly(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	pools := newTestPools(t, rdb)
	ts := make([]string, MaxPoolTorrents)
	for i := range ts {
		ts[i] = fmt.Sprintf("%040x", i+1)
	}
	a := mustPool(t, pools, "5", ts...)
	if a.TorrentCount != MaxPoolTorrents {
		t.Fatalf("created with %d torrents", a.TorrentCount)
	}
	if _, err := pools.SetTorrents(ctx, a.ID, ts[:10], true); err != nil {
		t.Fatalf("re-adding members of a full pool: %v", err)
	}
	if _, err := pools.SetTorrents(ctx, a.ID, []string{ts[0], fmt.Sprintf("%040x", 5000)}, true); !errors.Is(err, ErrPoolInvalid) {
		t.Fatalf("a new torrent in a full pool: %v", err)
	}
}

// sameKey hands out one address every time.
type sameKey struct{}

func (sameKey) NewDepositAddress() (string, error) { return "TSameDepositAddress", nil }

// TestCreateRefusesMappedAddress: a deposit address already mapped (to a
// pool or reserved) is never given to a second pool.
func TestCreateRefusesMappedAddress(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	pools := NewPools(rdb, sameKey{}, nil, "60", nil)
	first := mustPool(t, pools, "5", ih('1'))
	_, err := pools.Create(ctx, PoolSpec{Name: "n", Owner: "o", RefundAddress: "T", BudgetPerEpoch: "1"})
	if !errors.Is(err, ErrAddressInUse) {
		t.Fatalf("second pool on the same address: %v", err)
	}
	if id, _ := rdb.Get(ctx, keyPoolAddr("TSameDepositAddress")).Result(); id != first.ID {
		t.Fatalf("address now maps to %q, want %s", id, first.ID)
	}
	if ids, _ := pools.IDs(ctx); len(ids) != 1 {
		t.Fatalf("pools %v", ids)
	}
}

// TestBountyTorrentsFixed: a bounty pool's one torrent cannot be changed.
func TestBountyTorrentsFixed(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	pools := newTestPools(t, rdb)
	b, created, err := pools.Bounty(ctx, ih('d'), PoolSpec{RefundAddress: "TR", BudgetPerEpoch: "7"})
	if err != nil || !created {
		t.Fatal(err)
	}
	for _, add := range []bool{true, false} {
		if _, err := pools.SetTorrents(ctx, b.ID, []string{ih('e')}, add); !errors.Is(err, ErrBountyTorrents) {
			t.Errorf("edit (add %v) of a bounty pool: %v", add, err)
		}
	}
	if _, err := pools.SetTorrents(ctx, b.ID, []string{ih('d')}, false); !errors.Is(err, ErrBountyTorrents) || !strings.Contains(err.Error(), ih('d')) {
		t.Errorf("removing the bounty's torrent: %v", err)
	}
}
