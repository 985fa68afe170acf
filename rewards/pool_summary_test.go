package rewards

import (
	"context"
	"math/big"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/seedpay/seedpay/internal/redistest"
)

// roundTrips counts the commands and pipelines a client sends.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

// TestSummariesRoundTrips lists 30 pools with deposits in a constant number
// of round trips (pipelines and one MGET), not a few per pool, and lists
// each pool's newest deposits and epoch spends within the bounds.
func TestSummariesRoundTrips(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	pools := newTestPools(t, rdb)
	w := newTestWatcher(t, rdb, &fakeTransfers{})
	var ids []string
	for i := range 30 {
		v := mustPool(t, pools, "5", ih('a'), ih('b'))
		ids = append(ids, v.ID)
		for j := range 4 {
			tr := TokenTransfer{TxID: strconv.Itoa(i*10 + j), Block: int64(j + 1), From: "TFrom", To: v.DepositAddress, Amount: big.NewInt(int64(j + 1))}
			if ok, err := w.Credit(ctx, tr); err != nil || !ok {
				t.Fatalf("credit: %v %v", ok, err)
			}
		}
		for e := range 5 {
			rdb.HSet(ctx, keyPoolEpochs(v.ID), strconv.Itoa(100+e), "1")
		}
	}
	var rt roundTrips
	rdb.AddHook(&rt)
	list, deps, err := pools.Summaries(ctx, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n := rt.n.Load(); n > 5 {
		t.Errorf("Summaries of 30 pools took %d round trips, want at most 5", n)
	}
	if len(list) != 31 || len(deps) != 31 || list[0].ID != GlobalPool || list[1].ID != ids[0] {
		t.Fatalf("list of %d: %+v", len(list), list[:2])
	}
	p := list[1]
	if p.TorrentCount != 2 || p.Torrents != nil || p.TorrentSpend != nil || p.Funded != "10" || p.Remaining != "10" ||
		len(p.EpochSpend) != 3 || p.EpochSpend[0].Epoch != 104 {
		t.Errorf("summary %+v", p)
	}
	if d := deps[1]; len(d) != 2 || d[0].Amount != "4" || d[1].Amount != "3" || d[0].Pool != ids[0] {
		t.Errorf("deposits %+v", d)
	}
	// Deposits of one pool: LRANGE and one MGET.
	rt.n.Store(0)
	ds, err := Deposits(ctx, rdb, ids[0], 100)
	if err != nil || len(ds) != 4 || ds[3].Amount != "1" {
		t.Fatalf("deposits %+v %v", ds, err)
	}
	if n := rt.n.Load(); n != 2 {
		t.Errorf("Deposits took %d round trips, want 2", n)
	}
}
