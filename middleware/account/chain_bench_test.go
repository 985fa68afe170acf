package account

import (
	"context"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/internal/redistest"
	"github.com/seedpay/seedpay/internal/reqctx"
	"github.com/seedpay/seedpay/middleware/auth"
	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/rewards"
)

// BenchmarkLocalHookPrivate is BenchmarkLocalHook's load through the auth
// PreHook in private mode and the accounting PostHook, on the real
// registry cache and a reusable request context, as the UDP frontend runs
// them: what accounting adds to an announce, with the torrent lookups.
func BenchmarkLocalHookPrivate(b *testing.B) {
	rdb := redistest.Start(b).Client(b)
	ctx := context.Background()
	store := registry.NewStore(rdb)
	cache, err := registry.NewCache(store, registry.CacheConfig{}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	u, err := store.CreateUser(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	var hashes []bittorrent.InfoHash
	for i := range 100 {
		var h bittorrent.InfoHash
		h[0], h[1], h[19] = byte(i), byte(i>>8), 0xb5
		if _, err := store.PutTorrent(ctx, registry.Torrent{InfoHash: h, Size: 1 << 30, Name: "t"}); err != nil {
			b.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	if err := cache.Reload(ctx); err != nil {
		b.Fatal(err)
	}
	cfg := rewards.DefaultConfig()
	acct, err := rewards.NewLocalAccountant(cfg)
	if err != nil {
		b.Fatal(err)
	}
	fl, err := rewards.NewLocalFlusher(rdb, acct, cfg, rewards.LocalFlusherConfig{FlushInterval: time.Second}, nil, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	if err := fl.Start(ctx); err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ah, err := auth.New(auth.Config{Private: true}, cache, reg)
	if err != nil {
		b.Fatal(err)
	}
	h, err := NewLocal(cache, acct, fl, cfg.Epoch, nil, reg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	runHook(b, h)
	var rp any = bittorrent.RouteParams{{Key: "passkey", Value: u.Passkey}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var rc reqctx.Ctx
		r := req(0, bittorrent.None)
		resp := &bittorrent.AnnounceResponse{Complete: 5}
		i := 0
		for pb.Next() {
			i++
			nextAnnounce(r, hashes, i)
			rc.Reset(ctx)
			c, err := ah.HandleAnnounce(reqctx.With(&rc, bittorrent.RouteParamsKey, rp), r, resp)
			if err != nil {
				b.Error(err)
				return
			}
			h.HandleAnnounce(c, r, resp)
		}
	})
}
