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
)

type counts map[bittorrent.InfoHash]int64

func (c counts) CountCompleted(ih bittorrent.InfoHash) { c[ih]++ }
func (c counts) Completed(ih bittorrent.InfoHash) (int64, bool) {
	n, ok := c[ih]
	return n, ok
}

var ih = bittorrent.InfoHashFromString("ssssssssssssssssssss")

func newStore(t *testing.T) storage.PeerStore {
	t.Helper()
	ps, err := memory.New(memory.Config{GarbageCollectionInterval: time.Minute, PrometheusReportingInterval: time.Minute, PeerLifetime: time.Minute, ShardCount: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { <-ps.Stop() })
	return ps
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

func TestResponder(t *testing.T) {
	h := NewResponder(newStore(t), counts{})

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
	h := NewResponder(newStore(t), counts{})
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

func TestScrapeAndCompletions(t *testing.T) {
	c := counts{}
	store := newStore(t)
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
