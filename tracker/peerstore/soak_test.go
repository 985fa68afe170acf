package peerstore

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
)

// TestSoakHeapBounded churns a store of ~100k peers for 2M operations
// (fresh peers arriving, peers stopping, peers vanishing without a word and
// expiring, refreshes, completions) and checks the live heap stays flat
// after warm-up (40% of the run, once the first vanished peers expired),
// then that everything expires and the memory goes back.
//
//	go test ./tracker/peerstore -run Soak -v
func TestSoakHeapBounded(t *testing.T) {
	cycles := 2_000_000
	if n := soakCycles; n > 0 {
		cycles = n
	}
	if testing.Short() || raceEnabled {
		cycles = 200_000
	}
	const (
		population = 100_000
		swarms     = 2000
		lifetime   = 30 * time.Second
	)
	// The run lasts 100 simulated seconds, one sweep per second, so peers
	// left to expire are collected from 30% of the run on.
	sweepEvery := cycles / 100
	type live struct {
		ih     uint16
		id     uint32
		seeder bool
	}
	rng := rand.New(rand.NewPCG(7, 7))
	hashes := make([]bittorrent.InfoHash, swarms)
	for i := range hashes {
		binary.LittleEndian.PutUint64(hashes[i][:], rng.Uint64())
		binary.LittleEndian.PutUint64(hashes[i][8:], rng.Uint64())
	}
	// Swarm sizes are skewed: a few large swarms, many small ones.
	pickSwarm := func() uint16 { return uint16(min(int(rng.ExpFloat64()*swarms/8), swarms-1)) }
	// One reused peer value: the store copies what it keeps.
	peer := bittorrent.Peer{IP: bittorrent.IP{IP: make(net.IP, 16)}}
	v4ip, v6ip := peer.IP.IP[:4:4], peer.IP.IP
	setPeer := func(l live) *bittorrent.Peer {
		binary.LittleEndian.PutUint32(peer.ID[:], l.id)
		binary.LittleEndian.PutUint32(peer.ID[16:], l.id*2654435761)
		peer.Port = uint16(l.id)
		if l.id%5 == 0 {
			peer.IP.IP, peer.IP.AddressFamily = v6ip, bittorrent.IPv6
			binary.LittleEndian.PutUint32(v6ip[12:], l.id)
		} else {
			peer.IP.IP, peer.IP.AddressFamily = v4ip, bittorrent.IPv4
			binary.LittleEndian.PutUint32(v4ip, l.id)
		}
		return &peer
	}

	baseline := heapAlloc()
	clock := newFakeClock()
	s := newTestStore(t, Config{ShardCount: 64, PeerLifetime: lifetime}, clock)
	peers := make([]live, 0, population)
	next := uint32(1)
	put := func(l live) {
		p := setPeer(l)
		var err error
		if l.seeder {
			err = s.PutSeeder(hashes[l.ih], *p)
		} else {
			err = s.PutLeecher(hashes[l.ih], *p)
		}
		must(t, err)
	}
	arrive := func() live {
		l := live{ih: pickSwarm(), id: next, seeder: rng.IntN(4) == 0}
		next++
		put(l)
		return l
	}
	for range population {
		peers = append(peers, arrive())
	}

	var warm, peak uint64
	var buf []bittorrent.Peer
	for c := 1; c <= cycles; c++ {
		i := rng.IntN(len(peers))
		l := peers[i]
		switch op := rng.IntN(20); {
		case op < 8: // stopped: delete, a newcomer takes the place
			p := setPeer(l)
			var err error
			if l.seeder {
				err = s.DeleteSeeder(hashes[l.ih], *p)
			} else {
				err = s.DeleteLeecher(hashes[l.ih], *p)
			}
			if err != nil && !isDNE(err) { // DNE: it had expired
				t.Fatal(err)
			}
			peers[i] = arrive()
		case op < 10: // vanished: left to expire
			peers[i] = arrive()
		case op < 11: // completed
			l.seeder = true
			peers[i] = l
			must(t, s.GraduateLeecher(hashes[l.ih], *setPeer(l)))
		default: // regular announce
			put(l)
			var err error
			buf, err = s.AppendPeers(buf[:0], hashes[l.ih], l.seeder, 30, *setPeer(l))
			if err != nil && !isDNE(err) {
				t.Fatal(err)
			}
		}
		if c%sweepEvery == 0 {
			clock.Advance(time.Second)
			s.tick()
			s.collectGarbage()
		}
		if c%(cycles/10) == 0 {
			h := heapAlloc()
			sw, se, le := s.Counts()
			t.Log(footprint(s))
			t.Logf("cycle %7d: heap %6.1f MB above baseline, %d swarms, %d seeders, %d leechers", c, float64(h-baseline)/1e6, sw, se, le)
			if c == cycles*4/10 {
				warm = h
			}
			if c > cycles*4/10 {
				peak = max(peak, h)
			}
		}
	}
	checkInvariants(t, s)
	// Allow 5% plus 1 MB for GC timing and map/slice resizes.
	if limit := baseline + (warm-baseline)*105/100 + 1<<20; peak > limit {
		t.Errorf("heap grew: %.1f MB after warm-up, peak %.1f MB later (limit %.1f)", float64(warm-baseline)/1e6, float64(peak-baseline)/1e6, float64(limit-baseline)/1e6)
	}

	// Everyone goes silent: after a lifetime everything is collected and
	// the memory is released.
	clock.Advance(lifetime + 2*time.Second)
	s.tick()
	s.collectGarbage()
	if sw, se, le := s.Counts(); sw+se+le != 0 {
		t.Fatalf("after expiry: %d swarms, %d seeders, %d leechers", sw, se, le)
	}
	peers = nil
	after := heapAlloc()
	t.Logf("after expiry: heap %.1f MB above baseline", float64(after-baseline)/1e6)
	if after > baseline+2<<20 {
		t.Errorf("%.1f MB still held after every peer expired", float64(after-baseline)/1e6)
	}
}

// soakCycles overrides the soak length (for the longer runs in doc.go).
var soakCycles int

// footprint sums the swarms' record, index and arena sizes (len/cap).
func footprint(s *Store) string {
	var recLen, recCap, tab, ipLen, ipCap, swCap, swLen int
	for af := range s.fams {
		for i := range s.fams[af].shards {
			sh := &s.fams[af].shards[i]
			sh.mu.RLock()
			swCap += cap(sh.swarms)
			swLen += len(sh.swarms)
			for j := range sh.swarms {
				sw := &sh.swarms[j]
				recLen += 32 * sw.size()
				recCap += 32 * (cap(sw.seeders) + cap(sw.leechers))
				tab += 4 * len(sw.table)
				ipLen += len(sw.ips)
				ipCap += cap(sw.ips)
			}
			sh.mu.RUnlock()
		}
	}
	return fmt.Sprintf("rec %.2f/%.2f MB, table %.2f MB, ips %.2f/%.2f MB, swarms %d/%d", float64(recLen)/1e6, float64(recCap)/1e6, float64(tab)/1e6, float64(ipLen)/1e6, float64(ipCap)/1e6, swLen, swCap)
}
