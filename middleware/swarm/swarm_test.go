package swarm

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/middleware"
	"github.com/chihaya/chihaya/storage"
	"github.com/chihaya/chihaya/storage/memory"

	"github.com/seedpay/seedpay/tracker/peerstore"
)

type counts map[bittorrent.InfoHash]int64

func (c counts) CountCompleted(ih bittorrent.InfoHash) { c[ih]++ }
func (c counts) Completed(ih bittorrent.InfoHash) (int64, bool) {
	n, ok := c[ih]
	return n, ok
}

var ih = bittorrent.InfoHashFromString("ssssssssssssssssssss")

// stores are the peer stores the Responder runs on: chihaya's (which lists
// the announcer itself) and ours (which fills the response's buffer).
var stores = []struct {
	name string
	make func(t *testing.T) storage.PeerStore
}{
	{"chihaya-memory", func(t *testing.T) storage.PeerStore {
		ps, err := memory.New(memory.Config{GarbageCollectionInterval: time.Minute, PrometheusReportingInterval: time.Minute, PeerLifetime: time.Minute, ShardCount: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { <-ps.Stop() })
		return ps
	}},
	{"peerstore", func(t *testing.T) storage.PeerStore {
		ps, err := peerstore.New(peerstore.Config{ShardCount: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { <-ps.Stop() })
		return ps
	}},
}

// eachStore runs f on every store.
func eachStore(t *testing.T, f func(t *testing.T, store storage.PeerStore)) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) { f(t, s.make(t)) })
	}
}

func req(i int, left uint64, ev bittorrent.Event, numwant uint32) *bittorrent.AnnounceRequest {
	p := bittorrent.Peer{ID: bittorrent.PeerIDFromString(fmt.Sprintf("-SP0001-%012d", i)), Port: uint16(1000 + i)}
	p.IP = bittorrent.IP{IP: net.IPv4(10, 0, 0, byte(i)).To4(), AddressFamily: bittorrent.IPv4}
	return &bittorrent.AnnounceRequest{InfoHash: ih, Peer: p, Left: left, Event: ev, NumWant: numwant}
}

func announce(t *testing.T, h *Responder, r *bittorrent.AnnounceRequest) *bittorrent.AnnounceResponse {
	t.Helper()
	resp := &bittorrent.AnnounceResponse{}
	ctx, err := h.HandleAnnounce(context.Background(), r, resp)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Value(middleware.SkipResponseHookKey) == nil || ctx.Value(middleware.SkipSwarmInteractionKey) == nil {
		t.Fatal("chihaya's own response/swarm hooks not skipped: they would add the requester back")
	}
	return resp
}

func TestResponder(t *testing.T) { eachStore(t, testResponder) }

func testResponder(t *testing.T, store storage.PeerStore) {
	h := NewResponder(store, counts{})

	// Alone: counted, but not in its own list.
	resp := announce(t, h, req(1, 0, bittorrent.Started, 50))
	if resp.Complete != 1 || resp.Incomplete != 0 || len(resp.IPv4Peers) != 0 {
		t.Fatalf("lone seeder: %d/%d, peers %v; want 1/0 and no peers", resp.Complete, resp.Incomplete, resp.IPv4Peers)
	}

	resp = announce(t, h, req(2, 10, bittorrent.Started, 50))
	if resp.Complete != 1 || resp.Incomplete != 1 || len(resp.IPv4Peers) != 1 || resp.IPv4Peers[0].Port != 1001 {
		t.Fatalf("leecher: %d/%d, peers %v; want 1/1 and the seeder", resp.Complete, resp.Incomplete, resp.IPv4Peers)
	}

	// Finishing without a "completed" event still moves it to the seeders.
	resp = announce(t, h, req(2, 0, bittorrent.None, 50))
	if resp.Complete != 2 || resp.Incomplete != 0 {
		t.Fatalf("after finishing: %d/%d, want 2/0", resp.Complete, resp.Incomplete)
	}

	// Stopping removes it and sends no peers.
	resp = announce(t, h, req(2, 0, bittorrent.Stopped, 50))
	if resp.Complete != 1 || len(resp.IPv4Peers) != 0 {
		t.Fatalf("stopped: %d seeders, peers %v; want 1 and none", resp.Complete, resp.IPv4Peers)
	}
}

func TestResponderNumwantWithRequesterInStore(t *testing.T) {
	eachStore(t, testResponderNumwantWithRequesterInStore)
}

func testResponderNumwantWithRequesterInStore(t *testing.T, store storage.PeerStore) {
	h := NewResponder(store, counts{})
	for i := 1; i <= 5; i++ {
		announce(t, h, req(i, 10, bittorrent.Started, 0))
	}
	// Leecher 1 asks for 4 of the 4 others; it is itself in the leecher set.
	for range 20 { // map order varies: the requester must be skipped every time
		resp := announce(t, h, req(1, 10, bittorrent.None, 4))
		if len(resp.IPv4Peers) != 4 {
			t.Fatalf("got %d peers, want 4", len(resp.IPv4Peers))
		}
		for _, p := range resp.IPv4Peers {
			if p.Port == 1001 {
				t.Fatal("requester in its own list")
			}
		}
	}
}

func TestWithoutRequester(t *testing.T) {
	self := req(1, 0, bittorrent.None, 0).Peer
	sameAddrNewID := self
	sameAddrNewID.ID = bittorrent.PeerIDFromString("-SP0001-999999999999")
	sameIDOtherAddr := req(2, 0, bittorrent.None, 0).Peer
	sameIDOtherAddr.ID = self.ID
	other := req(3, 0, bittorrent.None, 0).Peer
	got := withoutRequester([]bittorrent.Peer{self, other, sameAddrNewID, sameIDOtherAddr}, self)
	if len(got) != 1 || !got[0].Equal(other) {
		t.Fatalf("got %v, want only the other peer", got)
	}
}

func TestScrapeAndCompletions(t *testing.T) { eachStore(t, testScrapeAndCompletions) }

func testScrapeAndCompletions(t *testing.T, store storage.PeerStore) {
	c := counts{}
	h := NewResponder(store, c)
	cc := NewCompletionCounter(c)
	for _, r := range []*bittorrent.AnnounceRequest{req(1, 0, bittorrent.Completed, 0), req(2, 0, bittorrent.Completed, 0), req(3, 5, bittorrent.Started, 0)} {
		announce(t, h, r)
		if _, err := cc.HandleAnnounce(context.Background(), r, nil); err != nil {
			t.Fatal(err)
		}
	}
	unknown := bittorrent.InfoHashFromString("uuuuuuuuuuuuuuuuuuuu")
	resp := &bittorrent.ScrapeResponse{}
	if _, err := h.HandleScrape(context.Background(), &bittorrent.ScrapeRequest{InfoHashes: []bittorrent.InfoHash{ih, unknown}, AddressFamily: bittorrent.IPv4}, resp); err != nil {
		t.Fatal(err)
	}
	want := []bittorrent.Scrape{
		{InfoHash: ih, Complete: 2, Incomplete: 1, Snatches: 2},
		{InfoHash: unknown},
	}
	if len(resp.Files) != 2 || resp.Files[0] != want[0] || resp.Files[1] != want[1] {
		t.Fatalf("scrape %+v, want %+v", resp.Files, want)
	}
}

// TestResponderFillsBuffer checks that with our store the peers go into the
// response's spare capacity, allocating nothing.
func TestResponderFillsBuffer(t *testing.T) {
	ps, err := peerstore.New(peerstore.Config{ShardCount: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Stop()
	h := NewResponder(ps, counts{})
	for i := 1; i <= 40; i++ {
		announce(t, h, req(i, uint64(i%2), bittorrent.Started, 0))
	}
	buf := make([]bittorrent.Peer, 0, 31)
	r := req(1, 0, bittorrent.None, 30)
	resp := &bittorrent.AnnounceResponse{}
	allocs := testing.AllocsPerRun(100, func() {
		*resp = bittorrent.AnnounceResponse{IPv4Peers: buf[:0]}
		if _, err := h.HandleAnnounce(context.Background(), r, resp); err != nil {
			t.Fatal(err)
		}
	})
	if len(resp.IPv4Peers) != 19 || &resp.IPv4Peers[0] != &buf[:1][0] {
		t.Fatalf("%d peers, in the buffer: %v; want the 19 other leechers there (1 became a seeder)", len(resp.IPv4Peers), &resp.IPv4Peers[0] == &buf[:1][0])
	}
	// context.Background is not a reusable request context: the two skip
	// flags cost one context.WithValue each. Nothing else may allocate.
	if allocs > 2 {
		t.Fatalf("%v allocations per announce, want at most the 2 context values", allocs)
	}
}
