package rewards

import (
	"context"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/seedpay/seedpay/internal/redistest"
)

// TestUnattributedApart: credit no torrent's points account for is kept
// apart from the per-torrent split (never stored or shown as an info hash
// named "other"), also for a record sealed with the old "other" key.
func TestUnattributedApart(t *testing.T) {
	ctx := context.Background()
	// attribute: alice's points are on a torrent no longer in the pool.
	hashes := []map[string]string{{"pts:@" + ih('9'): "5"}, {"pts:@" + ih('1'): "5"}}
	credits := []Credit{{User: "alice", Amount: big.NewInt(10)}, {User: "bob", Amount: big.NewInt(7)}}
	split, un, err := attribute(credits, hashes, []string{"alice", "bob"}, map[string]bool{ih('1'): true})
	if err != nil || un != "10" || len(split) != 1 || split[ih('1')] != "7" {
		t.Fatalf("attribute: %v %q %v", split, un, err)
	}

	rdb := redistest.Start(t).Client(t)
	pools := newTestPools(t, rdb)
	a := mustPool(t, pools, "100", ih('1'))
	fund(t, rdb, a.ID, "1000")
	s := newTestSettler(t, rdb, "0", 10)
	tok := lead(t, s)
	rec := &Record{Epoch: 5, Pools: []PoolRecord{{ID: a.ID, Credited: "17", Torrents: split, Unattributed: un}}}
	legacy := &Record{Epoch: 6, Pools: []PoolRecord{{ID: a.ID, Credited: "10", Torrents: map[string]string{ih('1'): "7", "other": "3"}}}}
	for _, r := range []*Record{rec, legacy} {
		if err := s.applyPoolSpend(ctx, r, tok); err != nil {
			t.Fatal(err)
		}
	}
	v, _ := pools.Get(ctx, a.ID)
	if v.Spent != "27" || v.Unattributed != "13" || len(v.TorrentSpend) != 1 || v.TorrentSpend[0].InfoHash != ih('1') || v.TorrentSpend[0].Amount != "14" {
		t.Fatalf("pool %+v", v)
	}
	if n, _ := rdb.HExists(ctx, keyPoolTorrentSpend(a.ID), "other").Result(); n {
		t.Fatal(`"other" stored as an info hash`)
	}
	// An old "other" field already stored (pools settled before the
	// unattributed field) is not shown as a torrent: it is unattributed.
	rdb.HSet(ctx, keyPoolTorrentSpend(a.ID), "other", "1")
	if v, _ := pools.Get(ctx, a.ID); len(v.TorrentSpend) != 1 || v.Unattributed != "14" {
		t.Fatalf("torrent spend %+v, unattributed %q (want 14)", v.TorrentSpend, v.Unattributed)
	}
}

// TestCorruptTorrentSpendFails: a stored per-torrent total that is not an
// integer fails the pool's spend (nothing written), not a silent skip.
func TestCorruptTorrentSpendFails(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	pools := newTestPools(t, rdb)
	a := mustPool(t, pools, "100", ih('1'), ih('2'))
	fund(t, rdb, a.ID, "1000")
	rdb.HSet(ctx, keyPoolTorrentSpend(a.ID), ih('1'), "garbage")
	s := newTestSettler(t, rdb, "0", 10)
	rec := &Record{Epoch: 5, Pools: []PoolRecord{{ID: a.ID, Credited: "10", Torrents: map[string]string{ih('1'): "4", ih('2'): "6"}}}}
	err := s.applyPoolSpend(ctx, rec, lead(t, s))
	if err == nil || !strings.Contains(err.Error(), "garbage") {
		t.Fatalf("apply over a corrupt total: %v", err)
	}
	v, _ := pools.Get(ctx, a.ID)
	if v.Spent != "0" || len(v.EpochSpend) != 0 {
		t.Fatalf("a failed spend wrote: %+v", v)
	}
	if got, _ := rdb.HGet(ctx, keyPoolTorrentSpend(a.ID), ih('2')).Result(); got != "" {
		t.Fatalf("torrent 2 total written: %q", got)
	}
}

// TestGlobalPoolHasNoRemaining: the operator-funded global pool shows no
// remaining (it has no balance), not "0" next to what it spent.
func TestGlobalPoolHasNoRemaining(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	pools := newTestPools(t, rdb)
	rdb.HSet(ctx, keyPool(GlobalPool), "spent", "500")
	g, err := pools.Get(ctx, GlobalPool)
	if err != nil || g.Spent != "500" || g.Remaining != "" {
		t.Fatalf("global %+v %v", g, err)
	}
	body, _ := json.Marshal(g)
	if strings.Contains(string(body), `"remaining"`) {
		t.Fatalf("global pool JSON shows remaining: %s", body)
	}
}
