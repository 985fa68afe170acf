package account

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/internal/redistest"
	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/rewards"
)

func newLocalHook(t testing.TB, rdb redis.UniversalClient, pools func([20]byte) []string) (*Hook, *prometheus.Registry) {
	t.Helper()
	cfg := rewards.DefaultConfig()
	acct, err := rewards.NewLocalAccountant(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	fl, err := rewards.NewLocalFlusher(rdb, acct, cfg, rewards.LocalFlusherConfig{FlushInterval: 10 * time.Millisecond}, reg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, err := NewLocal(torrents{ih: {Torrent: registry.Torrent{InfoHash: ih, Size: 1 << 30}}}, acct, fl, cfg.Epoch, pools, reg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return h, reg
}

// outcomes reads seedpay_accounting_events_total by outcome.
func outcomes(t testing.TB, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "seedpay_accounting_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestLocalHookAccountsAndSavesOnStop: in local session mode each announce
// is accounted at once (outcome metrics), and stopping Run writes the
// credit with the torrent's pools and saves the sessions. The pools are
// asked only for the announce that earns points.
func TestLocalHookAccountsAndSavesOnStop(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	poolList := []string{rewards.GlobalPool, "p9"}
	var poolCalls atomic.Int64
	pools := func(h [20]byte) []string { poolCalls.Add(1); return poolList }
	h, reg := newLocalHook(t, rdb, pools)
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	clock := start
	h.now = func() time.Time { return clock }
	ctx := authed(t, &registry.User{ID: "u1", Passkey: "pk"})

	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx) }()
	r := req(1, bittorrent.Started)
	h.HandleAnnounce(ctx, r, &bittorrent.AnnounceResponse{Complete: 1})
	clock = start.Add(300 * time.Second)
	r.Event = bittorrent.None
	h.HandleAnnounce(ctx, r, &bittorrent.AnnounceResponse{Complete: 1})
	// Unauthenticated and unregistered announces are not accounted.
	h.HandleAnnounce(context.Background(), req(2, bittorrent.None), &bittorrent.AnnounceResponse{})
	o := req(3, bittorrent.None)
	o.InfoHash = other
	h.HandleAnnounce(ctx, o, &bittorrent.AnnounceResponse{})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := outcomes(t, reg); n["new"] != 1 || n["accounted"] != 1 || len(n) != 6 {
		t.Fatalf("outcomes %v, want new 1, accounted 1 (and every outcome listed)", n)
	}
	if n := poolCalls.Load(); n != 1 {
		t.Fatalf("pools asked %d times, want once (for the announce that earned)", n)
	}
	var seed, pts, ptsGlobal int64
	keys, err := rdb.Keys(context.Background(), "sp:{u:u1}:e:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no epoch hash written: %v %v", keys, err)
	}
	for _, k := range keys {
		m := rdb.HGetAll(context.Background(), k).Val()
		s, _ := strconv.ParseInt(m["seed_s"], 10, 64)
		p, _ := strconv.ParseInt(m["pts:p9"], 10, 64)
		g, _ := strconv.ParseInt(m["pts:global"], 10, 64)
		seed, pts, ptsGlobal = seed+s, pts+p, ptsGlobal+g
	}
	w := rewards.DefaultConfig().Scoring.Weight(1<<30, 1)
	if seed != 300 || pts != 300*w || ptsGlobal != 300*w {
		t.Fatalf("seed_s %d, pts:p9 %d, pts:global %d; want 300, %d, %d", seed, pts, ptsGlobal, 300*w, 300*w)
	}
	if n := rdb.Exists(context.Background(), rewards.KeyLocalSnapshot).Val(); n != 1 {
		t.Fatal("stopping did not save the sessions")
	}
	if n := rdb.Exists(context.Background(), rewards.KeyLocalLease).Val(); n != 0 {
		t.Fatal("stopping did not release the lease")
	}
}

// BenchmarkLocalHook is the announce-path cost of local session mode:
// 1000 sessions of one user on 100 torrents re-announcing (steady state).
func BenchmarkLocalHook(b *testing.B) {
	rdb := redistest.Start(b).Client(b)
	cfg := rewards.DefaultConfig()
	acct, err := rewards.NewLocalAccountant(cfg)
	if err != nil {
		b.Fatal(err)
	}
	tors := torrents{}
	var hashes []bittorrent.InfoHash
	for i := range 100 {
		var h bittorrent.InfoHash
		h[0], h[1] = byte(i), byte(i>>8)
		tors[h] = &registry.Entry{Torrent: registry.Torrent{InfoHash: h, Size: 1 << 30}}
		hashes = append(hashes, h)
	}
	fl, err := rewards.NewLocalFlusher(rdb, acct, cfg, rewards.LocalFlusherConfig{FlushInterval: time.Second}, nil, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	if err := fl.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	h, err := NewLocal(tors, acct, fl, cfg.Epoch, nil, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	runHook(b, h)
	ctx := authed(b, &registry.User{ID: "u1", Passkey: "pk"})
	resp := &bittorrent.AnnounceResponse{Complete: 5}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := req(0, bittorrent.None)
		i := 0
		for pb.Next() {
			i++
			nextAnnounce(r, hashes, i)
			h.HandleAnnounce(ctx, r, resp)
		}
	})
}

// runHook runs h.Run (the clock and the flusher) until the test ends.
func runHook(tb testing.TB, h *Hook) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
}

// nextAnnounce makes r the benchmarks' i-th announce: torrent i mod 100,
// one of ten peers, 100 bytes more uploaded than the last.
func nextAnnounce(r *bittorrent.AnnounceRequest, hashes []bittorrent.InfoHash, i int) {
	r.InfoHash = hashes[i%100]
	r.Peer.ID[0] = byte(i / 100 % 10)
	r.Uploaded += 100
}
