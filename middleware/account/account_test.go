package account

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/middleware/auth"
	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/rewards"
)

type torrents map[bittorrent.InfoHash]*registry.Entry

func (t torrents) Torrent(ih bittorrent.InfoHash) (*registry.Entry, bool) {
	e, ok := t[ih]
	return e, ok
}

type recordingSink struct {
	mu      sync.Mutex
	batches [][]rewards.Event
	err     error
}

func (s *recordingSink) Account(_ context.Context, ev []rewards.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, append([]rewards.Event(nil), ev...))
	return s.err
}

var (
	ih    = bittorrent.InfoHashFromString("aaaaaaaaaaaaaaaaaaaa")
	other = bittorrent.InfoHashFromString("bbbbbbbbbbbbbbbbbbbb")
)

// authed runs the auth hook so the context carries the user, as in the
// real chain.
func authed(t testing.TB, user *registry.User) context.Context {
	t.Helper()
	reg := prometheus.NewRegistry()
	h, err := auth.New(auth.Config{}, lookup{user}, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(context.Background(), bittorrent.RouteParamsKey, bittorrent.RouteParams{{Key: "passkey", Value: user.Passkey}})
	ctx, err = h.HandleAnnounce(ctx, &bittorrent.AnnounceRequest{InfoHash: ih}, &bittorrent.AnnounceResponse{})
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

type lookup struct{ u *registry.User }

func (l lookup) UserByPasskey(pk string) (*registry.User, bool)      { return l.u, pk == l.u.Passkey }
func (l lookup) Torrent(bittorrent.InfoHash) (*registry.Entry, bool) { return nil, false }

func newHook(t *testing.T, capacity int, sink Sink) (*Hook, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h, err := New(Config{Shards: 1, ShardCapacity: capacity, FlushInterval: 10 * time.Millisecond},
		torrents{ih: {Torrent: registry.Torrent{InfoHash: ih, Size: 12345}}}, sink, reg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	h.now = func() time.Time { return time.Unix(1_700_000_000, 0) }
	return h, reg
}

func req(peer byte, ev bittorrent.Event) *bittorrent.AnnounceRequest {
	r := &bittorrent.AnnounceRequest{InfoHash: ih, Event: ev, Uploaded: 10, Downloaded: 20, Left: 0}
	r.Peer.ID[0], r.Peer.ID[19] = peer, peer
	return r
}

func TestHookBuffersEventsAndFlushes(t *testing.T) {
	sink := &recordingSink{}
	h, _ := newHook(t, 16, sink)
	ctx := authed(t, &registry.User{ID: "u1", Passkey: "pk"})

	if _, err := h.HandleAnnounce(ctx, req(1, bittorrent.Started), &bittorrent.AnnounceResponse{Complete: 4}); err != nil {
		t.Fatal(err)
	}
	// No user (no auth) and unregistered torrents make no events.
	h.HandleAnnounce(context.Background(), req(2, bittorrent.None), &bittorrent.AnnounceResponse{})
	r := req(3, bittorrent.None)
	r.InfoHash = other
	h.HandleAnnounce(ctx, r, &bittorrent.AnnounceResponse{})
	h.HandleAnnounce(ctx, req(4, bittorrent.Stopped), &bittorrent.AnnounceResponse{Complete: 3})

	var spare, batch []rewards.Event
	h.Flush(context.Background(), &spare, &batch)
	if len(sink.batches) != 1 || len(sink.batches[0]) != 2 {
		t.Fatalf("batches %+v, want one of two events", sink.batches)
	}
	got := sink.batches[0][0]
	want := rewards.Event{User: "u1", InfoHash: ih, PeerID: req(1, 0).Peer.ID, Size: 12345, Seeders: 4,
		Uploaded: 10, Downloaded: 20, Left: 0, Time: 1_700_000_000}
	if got != want {
		t.Fatalf("event %+v\nwant  %+v", got, want)
	}
	if !sink.batches[0][1].Stopped {
		t.Fatal("stopped event not marked")
	}
	// Nothing buffered: no empty batch is sent.
	h.Flush(context.Background(), &spare, &batch)
	if len(sink.batches) != 1 {
		t.Fatalf("empty flush sent a batch")
	}
}

func TestHookDropsWhenFullAndNeverBlocks(t *testing.T) {
	sink := &recordingSink{}
	h, reg := newHook(t, 4, sink)
	ctx := authed(t, &registry.User{ID: "u1", Passkey: "pk"})
	for i := range 10 {
		h.HandleAnnounce(ctx, req(byte(i), bittorrent.None), &bittorrent.AnnounceResponse{})
	}
	if n := testutil.ToFloat64(h.dropped); n != 6 {
		t.Fatalf("dropped %v, want 6", n)
	}
	if n := testutil.ToFloat64(h.buffered); n != 4 {
		t.Fatalf("buffered %v, want 4", n)
	}
	var spare, batch []rewards.Event
	h.Flush(context.Background(), &spare, &batch)
	// After a flush there is room again.
	h.HandleAnnounce(ctx, req(99, bittorrent.None), &bittorrent.AnnounceResponse{})
	h.Flush(context.Background(), &spare, &batch)
	if len(sink.batches) != 2 || len(sink.batches[0]) != 4 || len(sink.batches[1]) != 1 {
		t.Fatalf("batches of %d and %d, want 4 and 1", len(sink.batches[0]), len(sink.batches[1]))
	}
	if n, _ := testutil.GatherAndCount(reg, "seedpay_accounting_events_flushed_total"); n != 1 {
		t.Fatal("flushed metric missing")
	}
	if testutil.ToFloat64(h.flushed) != 5 {
		t.Fatalf("flushed %v, want 5", testutil.ToFloat64(h.flushed))
	}
}

func TestFailedFlushIsCountedAndRunFlushesOnStop(t *testing.T) {
	sink := &recordingSink{err: errors.New("redis down")}
	h, _ := newHook(t, 8, sink)
	ctx := authed(t, &registry.User{ID: "u1", Passkey: "pk"})
	h.HandleAnnounce(ctx, req(1, bittorrent.None), &bittorrent.AnnounceResponse{})
	var spare, batch []rewards.Event
	h.Flush(context.Background(), &spare, &batch)
	if testutil.ToFloat64(h.failed) != 1 || testutil.ToFloat64(h.flushed) != 0 {
		t.Fatal("failure not counted")
	}

	sink.err = nil
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.Run(runCtx); close(done) }()
	h.HandleAnnounce(ctx, req(2, bittorrent.None), &bittorrent.AnnounceResponse{})
	cancel()
	<-done
	sink.mu.Lock()
	defer sink.mu.Unlock()
	last := sink.batches[len(sink.batches)-1]
	if len(last) != 1 || last[0].PeerID[0] != 2 {
		t.Fatalf("the event buffered before stop was not flushed: %+v", sink.batches)
	}
}

func BenchmarkHookEnqueue(b *testing.B) {
	h, err := New(Config{ShardCapacity: 8192, FlushInterval: time.Millisecond},
		torrents{ih: {Torrent: registry.Torrent{InfoHash: ih, Size: 1}}}, discardSink{}, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	ctxRun, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = h.Run(ctxRun) }() // keeps the buffers draining, as in production
	u := &registry.User{ID: "u1", Passkey: "pk"}
	hook, _ := auth.New(auth.Config{}, lookup{u}, prometheus.NewRegistry())
	ctx := context.WithValue(context.Background(), bittorrent.RouteParamsKey, bittorrent.RouteParams{{Key: "passkey", Value: "pk"}})
	ctx, _ = hook.HandleAnnounce(ctx, &bittorrent.AnnounceRequest{InfoHash: ih}, nil)
	resp := &bittorrent.AnnounceResponse{}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := req(0, bittorrent.None)
		i := 0
		for pb.Next() {
			i++
			r.Peer.ID[16], r.Peer.ID[17] = byte(i), byte(i>>8)
			h.HandleAnnounce(ctx, r, resp)
		}
	})
}

type discardSink struct{}

func (discardSink) Account(context.Context, []rewards.Event) error { return nil }

func TestShardsSpreadDecimalPeerIDs(t *testing.T) {
	const shards = 8
	counts := make([]int, shards)
	for i := range 8000 {
		var id bittorrent.PeerID
		copy(id[:], fmt.Sprintf("-qB4500-%012d", i)) // byte 16 is always '0'
		counts[shardOf(id)%shards]++
	}
	for s, n := range counts {
		if n < 700 || n > 1300 {
			t.Fatalf("shard %d holds %d of 8000 (counts %v): announces pile into few buffers and get dropped", s, n, counts)
		}
	}
}
