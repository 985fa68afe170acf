package rewards

import (
	"context"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestAccountEmbeddedStore: the dev default's embedded store (miniredis)
// has no struct library, so account.lua decodes its packed argument itself
// there. The same edge-value batch, and a second batch on top, must give
// the same outcomes and the same ledger as on a real redis-server (which
// uses struct.unpack).
func TestAccountEmbeddedStore(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cfg := acctConfig()
	a, err := NewAccountant(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	embedded := &acctEnv{t: t, ctx: context.Background(), rdb: rdb, a: a, w: cfg.Scoring.Weight(acSize, acSeeders)}
	real := newAcctEnv(t)
	pools := func(ih [20]byte) []string {
		if ih[0] == 2 {
			return []string{GlobalPool, strings.Repeat("p", 300), "p7"}
		}
		return []string{GlobalPool}
	}
	evs := acctEdgeEvents()
	later := make([]Event, len(evs))
	for i, e := range evs {
		if e.Time < 1<<40 { // the latest allowed time stays as it is
			e.Time += 30
		}
		e.Uploaded = min(e.Uploaded+1<<20, 1<<53-1)
		later[i] = e
	}
	for round, batch := range [][]Event{evs, later} {
		want := real.account(acE, pools, batch...)
		got := embedded.account(acE, pools, batch...)
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("round %d event %d: embedded store %+v, redis-server %+v", round, i, got[i], want[i])
			}
		}
	}
	mr.FastForward(0)
	if a, b := dumpLedger(t, real), dumpLedger(t, embedded); a != b {
		t.Fatalf("ledgers differ:\nredis-server:\n%s\nembedded:\n%s", a, b)
	}
}

// TestLocalEmbeddedStore: local session mode on the dev default's embedded
// store (miniredis: its own Lua, no struct library): the lease, a grouped
// flush.lua call, a retry of an applied seq, and a restart that restores
// the sessions.
func TestLocalEmbeddedStore(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	e := newLocalEnv(t, rdb)
	seedTwice(e.a, "u1", 1, acT0+100)
	seedTwice(e.a, "u2", 2, acT0+100)
	e.flush()
	for _, u := range []string{"u1", "u2"} {
		if got := rdb.HGet(e.ctx, KeyUserEpoch(u, acE), "seed_s").Val(); got != "600" {
			t.Fatalf("%s seed_s %q, want 600", u, got)
		}
	}
	if err := e.f.Stop(e.ctx); err != nil {
		t.Fatal(err)
	}
	e2 := newLocalEnv(t, rdb)
	ev := acctEv("u1", 1, 1, acT0+1000, 0, 0, 0)
	if out := e2.a.Apply(&ev, acE, nil); out.Seconds != 300 {
		t.Fatalf("after a restart on the embedded store: %+v, want 300 s", out)
	}
	e2.flush()
	if got := rdb.HGet(e.ctx, KeyUserEpoch("u1", acE), "seed_s").Val(); got != "900" {
		t.Fatalf("u1 seed_s %q, want 900", got)
	}
}
