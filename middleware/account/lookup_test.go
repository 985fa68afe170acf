package account

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/internal/reqctx"
	"github.com/seedpay/seedpay/middleware/auth"
	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/rewards"
)

// countingLookup is the registry cache of one user and one torrent,
// counting torrent lookups.
type countingLookup struct {
	u        *registry.User
	e        *registry.Entry
	torrents atomic.Int64
}

func (l *countingLookup) UserByPasskey(pk string) (*registry.User, bool) {
	return l.u, pk == l.u.Passkey
}

func (l *countingLookup) Torrent(ih bittorrent.InfoHash) (*registry.Entry, bool) {
	l.torrents.Add(1)
	if ih != l.e.InfoHash {
		return nil, false
	}
	return l.e, true
}

// chain is the auth PreHook and the local accounting PostHook as the
// tracker runs them: the context auth returns goes to the PostHook.
type chain struct {
	look *countingLookup
	auth *auth.Hook
	acct *Hook
	la   *rewards.LocalAccountant
	rp   any // the route parameters, boxed once (as tracker/http.go does)
}

func newChain(t testing.TB, private bool) *chain {
	t.Helper()
	look := &countingLookup{u: &registry.User{ID: "u1", Passkey: "pk"}, e: &registry.Entry{Torrent: registry.Torrent{InfoHash: ih, Size: 1 << 30}}}
	reg := prometheus.NewRegistry()
	ah, err := auth.New(auth.Config{Private: private}, look, reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rewards.DefaultConfig()
	la, err := rewards.NewLocalAccountant(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewLocal(look, la, nil, cfg.Epoch, nil, reg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return &chain{look: look, auth: ah, acct: h, la: la, rp: bittorrent.RouteParams{{Key: "passkey", Value: "pk"}}}
}

// wantCounts checks how many torrent lookups the hook made and how many
// new sessions it accounted.
func (c *chain) wantCounts(t testing.TB, lookups int64, news uint64) {
	t.Helper()
	if n := c.look.torrents.Load(); n != lookups {
		t.Fatalf("%d torrent lookups, want %d", n, lookups)
	}
	if n := c.la.Outcomes()[rewards.CodeNew]; n != news {
		t.Fatalf("%d new sessions accounted, want %d", n, news)
	}
}

func (c *chain) announce(t testing.TB, ctx context.Context, r *bittorrent.AnnounceRequest) {
	ctx, err := c.auth.HandleAnnounce(reqctx.With(ctx, bittorrent.RouteParamsKey, c.rp), r, &bittorrent.AnnounceResponse{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.acct.HandleAnnounce(ctx, r, &bittorrent.AnnounceResponse{Complete: 1}); err != nil {
		t.Fatal(err)
	}
}

// TestRegistryLookedUpOncePerAnnounce: in private mode auth looks the
// torrent up and the accounting hook reads it from the request context
// (the frontends' reusable one, or context.WithValue's); without private
// mode the accounting hook looks it up itself. Either way, once.
func TestRegistryLookedUpOncePerAnnounce(t *testing.T) {
	for _, c := range []struct {
		name    string
		private bool
		reuse   bool
	}{
		{"private, reqctx", true, true},
		{"private, context.WithValue", true, false},
		{"public, reqctx", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch := newChain(t, c.private)
			var rc reqctx.Ctx
			for i := range 3 {
				var ctx context.Context = context.Background()
				if c.reuse {
					rc.Reset(ctx)
					ctx = &rc
				}
				ch.announce(t, ctx, req(byte(i), bittorrent.Started))
			}
			ch.wantCounts(t, 3, 3)
		})
	}
}

// TestPrivateChainAllocatesNothing: carrying the torrent in the reusable
// context costs no allocation (the UDP announce path must stay at 0).
func TestPrivateChainAllocatesNothing(t *testing.T) {
	ch := newChain(t, true)
	var rc reqctx.Ctx
	r := req(1, bittorrent.None)
	r.Left = 1 // a leecher with constant counters: nothing to aggregate
	allocs := testing.AllocsPerRun(100, func() {
		rc.Reset(context.Background())
		ch.announce(t, &rc, r)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per announce, want 0", allocs)
	}
}

// TestEntryOfAnotherTorrentIgnored: an entry carried for another info hash
// is not used; the hook looks its own torrent up.
func TestEntryOfAnotherTorrentIgnored(t *testing.T) {
	ch := newChain(t, false)
	stale := &registry.Entry{Torrent: registry.Torrent{InfoHash: other, Size: 1}}
	ctx := registry.WithEntry(context.Background(), stale)
	ch.announce(t, ctx, req(1, bittorrent.Started))
	ch.wantCounts(t, 1, 1)
}

// TestLocalHookClock: Run's clock carries the oldest open epoch, computed
// when the second changes (not per announce), and the hook accounts with
// it.
func TestLocalHookClock(t *testing.T) {
	ch := newChain(t, false)
	h := ch.acct
	ep := rewards.DefaultConfig().Epoch
	// The last second of epoch n-1's grace, then the first past it.
	n := int64(1_000_000_000) / int64(ep.Length/time.Second)
	end := ep.Start(n) + int64(ep.Grace/time.Second)
	for _, sec := range []int64{end - 1, end} {
		h.setClock(sec)
		s, minOpen := h.localClock()
		if want := ep.MinOpenEpoch(time.Unix(sec, 0)); s != sec || minOpen != want {
			t.Fatalf("clock at %d: (%d, %d), want (%d, %d)", sec, s, minOpen, sec, want)
		}
	}
	if _, minOpen := h.localClock(); minOpen != n {
		t.Fatalf("min open %d past the grace, want %d", minOpen, n)
	}
	// The hook takes its second from the clock: an announce stamped 5 s
	// before the previous one is late (with time.Now it would be
	// accounted).
	h.clock.Store(&clockReading{sec: end, minOpen: n})
	r := req(1, bittorrent.Started)
	ch.announce(t, context.Background(), r)
	h.clock.Store(&clockReading{sec: end - 5, minOpen: n})
	r.Event = bittorrent.None
	ch.announce(t, context.Background(), r)
	if o := ch.la.Outcomes(); o[rewards.CodeNew] != 1 || o[rewards.CodeLate] != 1 {
		t.Fatalf("outcomes %v, want one new and one late", o)
	}
	// Stopping the clock falls back to time.Now.
	h.clock.Store(nil)
	if s, _ := h.localClock(); time.Since(time.Unix(s, 0)) > time.Minute {
		t.Fatalf("no clock: second %d, want now", s)
	}
}
