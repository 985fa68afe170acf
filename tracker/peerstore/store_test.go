package peerstore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestStore returns a store without background goroutines, driven by
// clock (tick and collectGarbage are called by the test).
func newTestStore(t testing.TB, cfg Config, clock *fakeClock) *Store {
	t.Helper()
	if clock != nil {
		cfg.Now = clock.Now
	}
	s, err := newStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { <-s.Stop() })
	return s
}

func ih(n int) bittorrent.InfoHash {
	var h bittorrent.InfoHash
	copy(h[:], fmt.Sprintf("ih-%017d", n))
	return h
}

func v4(n int) bittorrent.Peer {
	var id bittorrent.PeerID
	copy(id[:], fmt.Sprintf("-v4-%016d", n))
	return bittorrent.Peer{
		ID:   id,
		IP:   bittorrent.IP{IP: net.IPv4(10, byte(n>>16), byte(n>>8), byte(n)).To4(), AddressFamily: bittorrent.IPv4},
		Port: uint16(1000 + n%50000),
	}
}

func v6(n int) bittorrent.Peer {
	var id bittorrent.PeerID
	copy(id[:], fmt.Sprintf("-v6-%016d", n))
	ip := net.ParseIP("2001:db8::")
	ip[13], ip[14], ip[15] = byte(n>>16), byte(n>>8), byte(n)
	return bittorrent.Peer{ID: id, IP: bittorrent.IP{IP: ip, AddressFamily: bittorrent.IPv6}, Port: uint16(1000 + n%50000)}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func isDNE(err error) bool { return errors.Is(err, storage.ErrResourceDoesNotExist) }

// checkInvariants verifies every swarm's internal consistency: counters,
// the index, the IP arena.
func checkInvariants(t testing.TB, s *Store) {
	t.Helper()
	var swarms, seeders, leechers int
	for af := range s.fams {
		f := &s.fams[af]
		for si := range f.shards {
			sh := &f.shards[si]
			sh.mu.RLock()
			// Release the lock even when t.Fatal exits the goroutine, or
			// the cleanup's Stop would wait for it forever.
			defer sh.mu.RUnlock()
			var shSeed, shLeech, shLive int
			if len(sh.index) != len(sh.swarms) {
				t.Fatalf("shard index has %d entries, %d swarms", len(sh.index), len(sh.swarms))
			}
			for i := range sh.swarms {
				sw := &sh.swarms[i]
				if j, ok := sh.index[sw.ih]; !ok || int(j) != i {
					t.Fatalf("swarm %x at %d indexed at %d (%v)", sw.ih, i, j, ok)
				}
				shSeed += len(sw.seeders)
				shLeech += len(sw.leechers)
				if sw.size() > 0 {
					shLive++
				}
				if sw.size() > linearMax && sw.table == nil {
					t.Fatalf("swarm of %d peers without index", sw.size())
				}
				if len(sw.ips)%f.ipLen != 0 {
					t.Fatalf("arena length %d", len(sw.ips))
				}
				slots := len(sw.ips) / f.ipLen
				if slots != sw.size()+int(sw.dead) {
					t.Fatalf("arena has %d slots, %d live + %d dead", slots, sw.size(), sw.dead)
				}
				used := make(map[uint32]bool)
				seen := make(map[peerKey]bool)
				for _, seeder := range []bool{true, false} {
					for i, r := range *sw.set(seeder) {
						if int(r.ip) >= slots || used[r.ip] {
							t.Fatalf("bad or shared ip slot %d", r.ip)
						}
						used[r.ip] = true
						k := peerKey{id: r.id, port: r.port}
						copy(k.ip[:], f.ipOf(sw, &r))
						if seen[k] {
							t.Fatalf("peer twice in swarm")
						}
						seen[k] = true
						if h := f.seed.hash(&k); r.tag != tagOf(h) {
							t.Fatalf("record tag %x, hash %x", r.tag, h)
						}
						gotSeeder, gi, _, ok := f.lookup(sw, &k, f.seed.hash(&k))
						if !ok || gotSeeder != seeder || gi != i {
							t.Fatalf("lookup of record %d (seeder %v) gave %v %d %v", i, seeder, gotSeeder, gi, ok)
						}
					}
				}
				if sw.table != nil {
					n := 0
					for _, e := range sw.table {
						if e != 0 {
							n++
						}
					}
					if n != sw.size() || 4*n > 3*len(sw.table) {
						t.Fatalf("index has %d entries of %d for %d peers", n, len(sw.table), sw.size())
					}
				}
			}
			if shSeed != sh.seeders || shLeech != sh.leechers || shLive != sh.live {
				t.Fatalf("shard counters %d/%d/%d, actual %d/%d/%d", sh.seeders, sh.leechers, sh.live, shSeed, shLeech, shLive)
			}
			swarms += shLive
			seeders += shSeed
			leechers += shLeech
		}
	}
	gs, gse, gl := s.Counts()
	if gs != swarms || gse != seeders || gl != leechers {
		t.Fatalf("Counts %d/%d/%d, actual %d/%d/%d", gs, gse, gl, swarms, seeders, leechers)
	}
}

func TestConformance(t *testing.T) {
	for _, shards := range []int{1, 1024} {
		t.Run(fmt.Sprint(shards), func(t *testing.T) {
			s, err := New(Config{ShardCount: shards})
			must(t, err)
			storage.TestPeerStore(t, s) // stops s
		})
	}
}

func TestConfigValidate(t *testing.T) {
	c, err := Config{}.Validate()
	must(t, err)
	if c.ShardCount != DefaultShardCount || c.PeerLifetime != DefaultPeerLifetime || c.GCInterval != DefaultGCInterval || c.Now == nil {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = Config{ShardCount: 1000}.Validate()
	must(t, err)
	if c.ShardCount != 1024 {
		t.Fatalf("ShardCount 1000 -> %d, want 1024", c.ShardCount)
	}
	for _, bad := range []Config{
		{ShardCount: -1},
		{ShardCount: MaxShardCount + 1},
		{PeerLifetime: -time.Second},
		{PeerLifetime: time.Millisecond},
		{GCInterval: -time.Second},
	} {
		if _, err := bad.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: err %v", bad, err)
		}
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) succeeded", bad)
		}
	}
}

func TestFamiliesIsolated(t *testing.T) {
	s := newTestStore(t, Config{ShardCount: 1}, newFakeClock())
	h := ih(1)
	must(t, s.PutSeeder(h, v4(1)))
	must(t, s.PutLeecher(h, v4(2)))
	must(t, s.PutLeecher(h, v6(1)))

	if sc := s.ScrapeSwarm(h, bittorrent.IPv4); sc.Complete != 1 || sc.Incomplete != 1 || sc.InfoHash != h {
		t.Fatalf("v4 scrape %+v", sc)
	}
	if sc := s.ScrapeSwarm(h, bittorrent.IPv6); sc.Complete != 0 || sc.Incomplete != 1 {
		t.Fatalf("v6 scrape %+v", sc)
	}
	peers, err := s.AnnouncePeers(h, false, 50, v4(3))
	must(t, err)
	if len(peers) != 2 {
		t.Fatalf("v4 announce got %d peers", len(peers))
	}
	for _, p := range peers {
		if p.IP.AddressFamily != bittorrent.IPv4 || len(p.IP.IP) != 4 {
			t.Fatalf("v4 announce returned %v", p)
		}
	}
	peers, err = s.AnnouncePeers(h, false, 50, v6(2))
	must(t, err)
	if len(peers) != 1 || !peers[0].Equal(v6(1)) || peers[0].IP.AddressFamily != bittorrent.IPv6 {
		t.Fatalf("v6 announce got %v", peers)
	}
	// A v6 swarm of another hash does not exist in v4.
	must(t, s.PutLeecher(ih(2), v6(1)))
	if _, err := s.AnnouncePeers(ih(2), false, 50, v4(1)); !isDNE(err) {
		t.Fatalf("v4 announce on v6-only swarm: %v", err)
	}
	if err := s.DeleteLeecher(ih(2), v4(1)); !isDNE(err) {
		t.Fatalf("v4 delete on v6-only swarm: %v", err)
	}
	if sw, se, le := s.Counts(); sw != 3 || se != 1 || le != 3 {
		t.Fatalf("Counts %d %d %d", sw, se, le)
	}
	checkInvariants(t, s)
}

func TestAddressNormalisation(t *testing.T) {
	s := newTestStore(t, Config{ShardCount: 4}, newFakeClock())
	h := ih(1)
	p := v4(7)
	mapped := p
	mapped.IP.IP = p.IP.IP.To16() // IPv4-in-IPv6 form of the same address
	must(t, s.PutLeecher(h, mapped))
	must(t, s.PutLeecher(h, p)) // the same peer
	if sc := s.ScrapeSwarm(h, bittorrent.IPv4); sc.Incomplete != 1 {
		t.Fatalf("mapped and plain v4 counted as %d peers", sc.Incomplete)
	}
	peers, err := s.AnnouncePeers(h, true, 10, v4(8))
	must(t, err)
	if len(peers) != 1 || len(peers[0].IP.IP) != 4 || !peers[0].Equal(p) {
		t.Fatalf("got %v", peers)
	}
	for _, bad := range []bittorrent.Peer{
		{IP: bittorrent.IP{IP: net.ParseIP("2001:db8::1"), AddressFamily: bittorrent.IPv4}},
		{IP: bittorrent.IP{IP: net.IPv4(1, 2, 3, 4).To4(), AddressFamily: bittorrent.IPv6}},
		{IP: bittorrent.IP{IP: nil, AddressFamily: bittorrent.IPv4}},
		{IP: bittorrent.IP{IP: net.IPv4(1, 2, 3, 4).To4(), AddressFamily: 7}},
	} {
		if err := s.PutLeecher(h, bad); !errors.Is(err, ErrBadAddress) {
			t.Errorf("put %v: %v", bad, err)
		}
		if _, err := s.AnnouncePeers(h, false, 5, bad); !errors.Is(err, ErrBadAddress) {
			t.Errorf("announce %v: %v", bad, err)
		}
		if err := s.DeleteLeecher(h, bad); !errors.Is(err, ErrBadAddress) {
			t.Errorf("delete %v: %v", bad, err)
		}
	}
	if sc := s.ScrapeSwarm(h, 7); sc.Complete != 0 || sc.Incomplete != 0 {
		t.Fatalf("scrape of unknown family: %+v", sc)
	}
}

func TestRequesterNeverReturned(t *testing.T) {
	for _, size := range []int{1, 5, linearMax + 1, 100} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			s := newTestStore(t, Config{ShardCount: 2}, newFakeClock())
			h := ih(1)
			for i := range size {
				must(t, s.PutSeeder(h, v4(i)))
				must(t, s.PutLeecher(h, v4(1000+i)))
			}
			self := v4(1000)  // a leecher
			moved := v4(3)    // a seeder's endpoint under a new peer id
			moved.ID[0] = 'X' // (a client restarted with a new id)
			renamed := v4(2000)
			renamed.ID = v4(0).ID // a seeder's id from a new endpoint
			for _, a := range []bittorrent.Peer{self, moved, renamed} {
				for range 20 {
					for _, seeder := range []bool{false, true} {
						peers, err := s.AnnouncePeers(h, seeder, 2*size+5, a)
						must(t, err)
						for _, p := range peers {
							if p.ID == a.ID || (p.Port == a.Port && p.IP.Equal(a.IP.IP)) {
								t.Fatalf("requester %v got itself (%v)", a, p)
							}
						}
					}
				}
			}
			// Only the requester in the swarm: nothing, and no error.
			must(t, s.PutLeecher(ih(2), self))
			peers, err := s.AnnouncePeers(ih(2), false, 50, self)
			if err != nil || len(peers) != 0 {
				t.Fatalf("alone in swarm: %v, %v", peers, err)
			}
		})
	}
}

func TestNumWantAndOrder(t *testing.T) {
	s := newTestStore(t, Config{ShardCount: 1}, newFakeClock())
	h := ih(1)
	const nSeed, nLeech = 30, 20
	for i := range nSeed {
		must(t, s.PutSeeder(h, v4(i)))
	}
	for i := range nLeech {
		must(t, s.PutLeecher(h, v4(100+i)))
	}
	seedIDs := map[bittorrent.PeerID]bool{}
	for i := range nSeed {
		seedIDs[v4(i).ID] = true
	}
	stranger := v4(999)
	cases := []struct {
		seeder          bool
		numWant         int
		want, wantSeeds int
	}{
		{false, -1, 0, 0},
		{false, 0, 0, 0},
		{false, 1, 1, 1},
		{false, 10, 10, 10},
		{false, nSeed, nSeed, nSeed},
		{false, nSeed + 5, nSeed + 5, nSeed},
		{false, 1000, nSeed + nLeech, nSeed},
		{true, 1, 1, 0},
		{true, 10, 10, 0},
		{true, 1000, nLeech, 0},
	}
	for _, c := range cases {
		peers, err := s.AnnouncePeers(h, c.seeder, c.numWant, stranger)
		must(t, err)
		if len(peers) != c.want {
			t.Fatalf("%+v: got %d peers", c, len(peers))
		}
		if c.numWant > 0 && cap(peers) != c.want {
			t.Errorf("%+v: result capacity %d, want exactly %d", c, cap(peers), c.want)
		}
		seeds := 0
		ids := map[bittorrent.PeerID]bool{}
		for i, p := range peers {
			if ids[p.ID] {
				t.Fatalf("%+v: %v twice", c, p)
			}
			ids[p.ID] = true
			if seedIDs[p.ID] {
				seeds++
				if i >= c.wantSeeds {
					t.Fatalf("%+v: seeder after leechers", c)
				}
			}
		}
		if seeds != c.wantSeeds {
			t.Fatalf("%+v: %d seeders, want %d", c, seeds, c.wantSeeds)
		}
	}
	// AppendPeers appends after what dst holds and respects numWant.
	dst := make([]bittorrent.Peer, 1, 64)
	dst, err := s.AppendPeers(dst, h, true, 5, stranger)
	must(t, err)
	if len(dst) != 6 {
		t.Fatalf("AppendPeers: len %d", len(dst))
	}
	// Every peer is handed out sometimes (random start offset).
	counts := map[bittorrent.PeerID]int{}
	for range 2000 {
		peers, err := s.AnnouncePeers(h, false, 5, stranger)
		must(t, err)
		for _, p := range peers {
			counts[p.ID]++
		}
	}
	if len(counts) != nSeed {
		t.Fatalf("5-peer answers covered %d of %d seeders", len(counts), nSeed)
	}
	for id, n := range counts {
		if n < 2000*5/nSeed/3 {
			t.Errorf("seeder %q handed out %d times only", id, n)
		}
	}
}

func TestGraduateAndMoves(t *testing.T) {
	s := newTestStore(t, Config{ShardCount: 1}, newFakeClock())
	h := ih(1)
	scrape := func() (int, int) {
		sc := s.ScrapeSwarm(h, bittorrent.IPv4)
		return int(sc.Complete), int(sc.Incomplete)
	}
	// Graduating an unknown peer adds a seeder (swarm created).
	must(t, s.GraduateLeecher(h, v4(1)))
	if c, i := scrape(); c != 1 || i != 0 {
		t.Fatalf("after graduate of unknown: %d/%d", c, i)
	}
	// Enough leechers to cross the index threshold, then graduate them all.
	for i := 2; i < 40; i++ {
		must(t, s.PutLeecher(h, v4(i)))
	}
	checkInvariants(t, s)
	for i := 2; i < 40; i++ {
		must(t, s.GraduateLeecher(h, v4(i)))
		checkInvariants(t, s)
	}
	if c, i := scrape(); c != 39 || i != 0 {
		t.Fatalf("after graduating: %d/%d", c, i)
	}
	if err := s.DeleteLeecher(h, v4(5)); !isDNE(err) {
		t.Fatalf("delete graduated as leecher: %v", err)
	}
	// A seeder announcing as leecher again is a leecher only.
	must(t, s.PutLeecher(h, v4(5)))
	if c, i := scrape(); c != 38 || i != 1 {
		t.Fatalf("after seeder->leecher: %d/%d", c, i)
	}
	if err := s.DeleteSeeder(h, v4(5)); !isDNE(err) {
		t.Fatalf("delete moved peer as seeder: %v", err)
	}
	must(t, s.DeleteLeecher(h, v4(5)))
	// Repeated puts refresh, never duplicate.
	for range 3 {
		must(t, s.PutSeeder(h, v4(1)))
	}
	if c, i := scrape(); c != 38 || i != 0 {
		t.Fatalf("after repeated put: %d/%d", c, i)
	}
	checkInvariants(t, s)
}

func TestDelete(t *testing.T) {
	s := newTestStore(t, Config{ShardCount: 1}, newFakeClock())
	h := ih(1)
	if err := s.DeleteSeeder(h, v4(1)); !isDNE(err) {
		t.Fatalf("delete from missing swarm: %v", err)
	}
	const n = 50
	for i := range n {
		must(t, s.PutLeecher(h, v4(i)))
	}
	// Same id, other port: another peer, not found.
	other := v4(3)
	other.Port++
	if err := s.DeleteLeecher(h, other); !isDNE(err) {
		t.Fatalf("delete by id with another port: %v", err)
	}
	for i := n - 1; i >= 0; i -= 2 {
		must(t, s.DeleteLeecher(h, v4(i)))
		if err := s.DeleteLeecher(h, v4(i)); !isDNE(err) {
			t.Fatalf("second delete: %v", err)
		}
		checkInvariants(t, s)
	}
	for i := 0; i < n; i += 2 {
		must(t, s.DeleteLeecher(h, v4(i)))
		checkInvariants(t, s)
	}
	if _, err := s.AnnouncePeers(h, false, 10, v4(1)); !isDNE(err) {
		t.Fatalf("announce on emptied swarm: %v", err)
	}
	if sw, se, le := s.Counts(); sw != 0 || se != 0 || le != 0 {
		t.Fatalf("Counts %d %d %d", sw, se, le)
	}
	// The empty swarm is kept until the next sweep, then dropped.
	s.collectGarbage()
	if len(s.fams[0].shards[0].swarms) != 0 {
		t.Fatal("empty swarm not dropped by the sweep")
	}
}

func TestGarbageCollection(t *testing.T) {
	clock := newFakeClock()
	s := newTestStore(t, Config{ShardCount: 4, PeerLifetime: time.Minute}, clock)
	// Swarm sizes that exercise linear, indexed and multi-hold sweeps.
	sizes := []int{1, 3, linearMax + 2, 200, 3 * gcBudget}
	n := 0
	for si, size := range sizes {
		for range size {
			p := v4(n)
			if n%2 == 0 {
				must(t, s.PutSeeder(ih(si), p))
			} else {
				must(t, s.PutLeecher(ih(si), p))
			}
			must(t, s.PutLeecher(ih(si), v6(n)))
			n++
		}
	}
	if got := s.collectGarbage(); got != 0 {
		t.Fatalf("fresh peers collected: %d", got)
	}
	clock.Advance(40 * time.Second)
	s.tick()
	// Refresh every third peer.
	n = 0
	for si, size := range sizes {
		for range size {
			if n%3 == 0 {
				if n%2 == 0 {
					must(t, s.PutSeeder(ih(si), v4(n)))
				} else {
					must(t, s.PutLeecher(ih(si), v4(n)))
				}
				must(t, s.PutLeecher(ih(si), v6(n)))
			}
			n++
		}
	}
	clock.Advance(21 * time.Second) // originals are 61s old, refreshed 21s
	s.tick()
	removed := s.collectGarbage()
	kept := (n + 2) / 3
	if removed != 2*(n-kept) {
		t.Fatalf("removed %d, want %d", removed, 2*(n-kept))
	}
	if _, se, le := s.Counts(); se+le != 2*kept {
		t.Fatalf("%d peers left, want %d", se+le, 2*kept)
	}
	checkInvariants(t, s)
	n = 0
	for si, size := range sizes {
		for range size {
			err := s.DeleteLeecher(ih(si), v6(n))
			if (n%3 == 0) != (err == nil) {
				t.Fatalf("peer %d: delete gave %v", n, err)
			}
			n++
		}
	}
	clock.Advance(time.Hour)
	s.tick()
	s.collectGarbage()
	if sw, se, le := s.Counts(); sw+se+le != 0 {
		t.Fatalf("after expiry: %d %d %d", sw, se, le)
	}
	for af := range s.fams {
		for i := range s.fams[af].shards {
			if sh := &s.fams[af].shards[i]; len(sh.swarms) != 0 || len(sh.index) != 0 {
				t.Fatalf("shard keeps %d swarms", len(sh.swarms))
			}
		}
	}
	if s.gcRuns.Load() != 3 {
		t.Fatalf("gc runs %d", s.gcRuns.Load())
	}
}

// TestGCConcurrentWithWriters sweeps a big swarm while writers churn it, so
// the sweep's cursor crosses lock releases with the swarm changing.
func TestGCConcurrentWithWriters(t *testing.T) {
	clock := newFakeClock()
	s := newTestStore(t, Config{ShardCount: 1, PeerLifetime: time.Second}, clock)
	const n = 4 * gcBudget
	for i := range n {
		must(t, s.PutLeecher(ih(i%3), v4(i)))
	}
	clock.Advance(5 * time.Second)
	s.tick()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			must(t, s.PutLeecher(ih(i%3), v4(n+i))) // fresh
			_ = s.DeleteLeecher(ih(i%3), v4(i))     // maybe already collected
		}
	}()
	for range 5 {
		s.collectGarbage()
	}
	wg.Wait()
	s.collectGarbage()
	if _, _, le := s.Counts(); le != n {
		t.Fatalf("%d leechers left, want the %d fresh ones", le, n)
	}
	checkInvariants(t, s)
}

func TestStop(t *testing.T) {
	s, err := New(Config{ShardCount: 8, GCInterval: 10 * time.Millisecond})
	must(t, err)
	h := ih(1)
	must(t, s.PutLeecher(h, v4(1)))
	must(t, s.PutSeeder(h, v4(2)))
	peers, err := s.AnnouncePeers(h, false, 10, v4(3))
	must(t, err)
	if errs := <-s.Stop(); errs != nil {
		t.Fatal(errs)
	}
	if errs := <-s.Stop(); errs != nil {
		t.Fatal("second Stop:", errs)
	}
	for name, err := range map[string]error{
		"PutSeeder":       s.PutSeeder(h, v4(1)),
		"PutLeecher":      s.PutLeecher(h, v4(1)),
		"DeleteSeeder":    s.DeleteSeeder(h, v4(2)),
		"DeleteLeecher":   s.DeleteLeecher(h, v4(1)),
		"GraduateLeecher": s.GraduateLeecher(h, v4(1)),
	} {
		if !errors.Is(err, ErrStopped) {
			t.Errorf("%s after Stop: %v", name, err)
		}
	}
	if _, err := s.AnnouncePeers(h, false, 10, v4(3)); !errors.Is(err, ErrStopped) {
		t.Errorf("AnnouncePeers after Stop: %v", err)
	}
	dst := make([]bittorrent.Peer, 2, 8)
	got, err := s.AppendPeers(dst, h, false, 10, v4(3))
	if !errors.Is(err, ErrStopped) || len(got) != 2 {
		t.Errorf("AppendPeers after Stop: %d, %v", len(got), err)
	}
	if sc := s.ScrapeSwarm(h, bittorrent.IPv4); sc.Complete != 0 || sc.Incomplete != 0 || sc.InfoHash != h {
		t.Errorf("ScrapeSwarm after Stop: %+v", sc)
	}
	if sw, se, le := s.Counts(); sw+se+le != 0 {
		t.Errorf("Counts after Stop: %d %d %d", sw, se, le)
	}
	if s.LogFields()["name"] != Name {
		t.Error("LogFields")
	}
	// Peers handed out before Stop stay readable.
	for _, p := range peers {
		if p.IP.To4() == nil {
			t.Fatal("peer IP lost")
		}
	}
	s.collectGarbage() // no panic
}

// TestReturnedIPsImmutable checks that handed-out IPs keep their value while
// the swarm churns, compacts and is deleted.
func TestReturnedIPsImmutable(t *testing.T) {
	s := newTestStore(t, Config{ShardCount: 1}, newFakeClock())
	h := ih(1)
	for i := range 300 {
		must(t, s.PutSeeder(h, v4(i)))
	}
	peers, err := s.AnnouncePeers(h, false, 300, v4(9999))
	must(t, err)
	want := make([]bittorrent.Peer, len(peers))
	for i, p := range peers {
		want[i] = p
		want[i].IP.IP = append(net.IP(nil), p.IP.IP...)
		if cap(p.IP.IP) != 4 {
			t.Fatalf("IP capacity %d lets callers append into the arena", cap(p.IP.IP))
		}
	}
	for round := range 5 {
		for i := range 300 {
			must(t, s.DeleteSeeder(h, v4(round*300+i)))
			must(t, s.PutSeeder(h, v4((round+1)*300+i)))
		}
	}
	for i := range peers {
		if !peers[i].Equal(want[i]) {
			t.Fatalf("handed-out peer changed: %v -> %v", want[i], peers[i])
		}
	}
	checkInvariants(t, s)
}

// TestModel runs random operations against a map model, checking the
// answers and the store's invariants.
func TestModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			clock := newFakeClock()
			s := newTestStore(t, Config{ShardCount: 2, PeerLifetime: 30 * time.Second}, clock)
			type mkey struct {
				ih   int
				peer int
			}
			type mval struct {
				seeder bool
				seen   time.Time
			}
			model := map[mkey]mval{}
			peer := func(n int) bittorrent.Peer {
				if n%4 == 0 {
					return v6(n)
				}
				return v4(n)
			}
			steps := 60000
			if testing.Short() {
				steps = 10000
			}
			for step := range steps {
				k := mkey{rng.IntN(6), rng.IntN(120)}
				// Some hashes get many peers, others few.
				if k.ih >= 3 {
					k.peer %= 6
				}
				p := peer(k.peer)
				m, ok := model[k]
				switch op := rng.IntN(10); {
				case op < 3:
					must(t, s.PutLeecher(ih(k.ih), p))
					model[k] = mval{false, clock.Now()}
				case op < 5:
					must(t, s.PutSeeder(ih(k.ih), p))
					model[k] = mval{true, clock.Now()}
				case op < 6:
					must(t, s.GraduateLeecher(ih(k.ih), p))
					model[k] = mval{true, clock.Now()}
				case op < 8:
					err := s.DeleteLeecher(ih(k.ih), p)
					if ok && !m.seeder {
						must(t, err)
						delete(model, k)
					} else if !isDNE(err) {
						t.Fatalf("step %d: DeleteLeecher of absent: %v", step, err)
					}
				default:
					err := s.DeleteSeeder(ih(k.ih), p)
					if ok && m.seeder {
						must(t, err)
						delete(model, k)
					} else if !isDNE(err) {
						t.Fatalf("step %d: DeleteSeeder of absent: %v", step, err)
					}
				}
				if step%997 == 0 {
					clock.Advance(7 * time.Second)
					s.tick()
					s.collectGarbage()
					for k, v := range model {
						if clock.Now().Sub(v.seen) > 31*time.Second {
							delete(model, k)
						}
					}
				}
				if step%1999 == 0 {
					checkInvariants(t, s)
					var all []modelEntry
					for k, v := range model {
						all = append(all, modelEntry{k.ih, k.peer, v.seeder})
					}
					compareModel(t, s, all, peer)
				}
			}
		})
	}
}

type modelEntry struct {
	ih, peer int
	seeder   bool
}

func compareModel(t *testing.T, s *Store, all []modelEntry, peer func(int) bittorrent.Peer) {
	t.Helper()
	type swarmKey struct {
		ih int
		af bittorrent.AddressFamily
	}
	want := map[swarmKey]map[bittorrent.PeerID]bool{}
	for _, e := range all {
		p := peer(e.peer)
		sk := swarmKey{e.ih, p.IP.AddressFamily}
		if want[sk] == nil {
			want[sk] = map[bittorrent.PeerID]bool{}
		}
		want[sk][p.ID] = e.seeder
	}
	for ihn := range 6 {
		for _, af := range []bittorrent.AddressFamily{bittorrent.IPv4, bittorrent.IPv6} {
			w := want[swarmKey{ihn, af}]
			var nSeed, nLeech uint32
			for _, seeder := range w {
				if seeder {
					nSeed++
				} else {
					nLeech++
				}
			}
			sc := s.ScrapeSwarm(ih(ihn), af)
			if sc.Complete != nSeed || sc.Incomplete != nLeech {
				t.Fatalf("swarm %d/%v: scrape %d/%d, model %d/%d", ihn, af, sc.Complete, sc.Incomplete, nSeed, nLeech)
			}
			stranger := v4(1 << 20)
			if af == bittorrent.IPv6 {
				stranger = v6(1 << 20)
			}
			peers, err := s.AnnouncePeers(ih(ihn), false, 1000, stranger)
			if len(w) == 0 {
				if !isDNE(err) {
					t.Fatalf("swarm %d/%v empty in model: %v, %v", ihn, af, peers, err)
				}
				continue
			}
			must(t, err)
			if len(peers) != len(w) {
				t.Fatalf("swarm %d/%v: %d peers, model %d", ihn, af, len(peers), len(w))
			}
			for i, p := range peers {
				seeder, ok := w[p.ID]
				if !ok || seeder != (uint32(i) < nSeed) {
					t.Fatalf("swarm %d/%v: unexpected %v at %d", ihn, af, p, i)
				}
			}
		}
	}
}

func TestCollector(t *testing.T) {
	s := newTestStore(t, Config{ShardCount: 4}, newFakeClock())
	must(t, s.PutSeeder(ih(1), v4(1)))
	must(t, s.PutLeecher(ih(1), v4(2)))
	must(t, s.PutLeecher(ih(1), v6(2)))
	must(t, s.PutLeecher(ih(2), v4(3)))
	s.collectGarbage()
	reg := prometheus.NewPedanticRegistry()
	must(t, reg.Register(s.Collector()))
	mfs, err := reg.Gather()
	must(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			if m.GetGauge() != nil {
				got[name] = m.GetGauge().GetValue()
			} else {
				got[name] = m.GetCounter().GetValue()
			}
		}
	}
	for name, v := range map[string]float64{
		"seedpay_peers/seeder":                     1,
		"seedpay_peers/leecher":                    3,
		"seedpay_swarms":                           3,
		"seedpay_peerstore_gc_runs_total":          1,
		"seedpay_peerstore_gc_removed_peers_total": 0,
	} {
		if got[name] != v {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], v, got)
		}
	}
}

// TestZeroAllocs checks the steady-state announce (refresh, scrape, peers
// into a reused buffer) does not allocate, and AnnouncePeers allocates the
// result only.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := newTestStore(t, Config{}, newFakeClock())
	for _, size := range []int{3, 1000} {
		h := ih(size)
		for i := range size {
			must(t, s.PutSeeder(h, v4(i)))
			must(t, s.PutLeecher(h, v4(size+i)))
			must(t, s.PutLeecher(h, v6(i)))
		}
		me, me6 := v4(size), v6(0)
		buf := make([]bittorrent.Peer, 0, 50)
		allocs := testing.AllocsPerRun(1000, func() {
			_ = s.PutLeecher(h, me)
			_ = s.GraduateLeecher(h, me6)
			_ = s.PutLeecher(h, me6)
			_ = s.ScrapeSwarm(h, bittorrent.IPv4)
			buf, _ = s.AppendPeers(buf[:0], h, false, 50, me)
			buf, _ = s.AppendPeers(buf[:0], h, true, 50, me6)
		})
		if allocs != 0 {
			t.Errorf("swarm of %d: steady-state announce allocates %v times", size, allocs)
		}
		allocs = testing.AllocsPerRun(1000, func() {
			_, _ = s.AnnouncePeers(h, false, 50, me)
		})
		if allocs != 1 {
			t.Errorf("swarm of %d: AnnouncePeers allocates %v times, want 1", size, allocs)
		}
	}
	// Put/delete cycles of a swarm's only peer reuse the kept empty swarm.
	h7, p1 := ih(7), v4(1)
	allocs := testing.AllocsPerRun(1000, func() {
		_ = s.PutLeecher(h7, p1)
		_ = s.DeleteLeecher(h7, p1)
	})
	if allocs > 0.5 {
		t.Errorf("put/delete cycle allocates %v times", allocs)
	}
}

// TestConcurrent hammers one store from several goroutines (run with
// -race), including readers of handed-out IPs and a Stop in the middle.
func TestConcurrent(t *testing.T) {
	clock := newFakeClock()
	cfg := Config{ShardCount: 4, PeerLifetime: 2 * time.Second, GCInterval: 10 * time.Millisecond, Now: clock.Now}
	s, err := New(cfg)
	must(t, err)
	ops := 20000
	if testing.Short() || raceEnabled {
		ops = 5000
	}
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	check := func(err error) {
		if err != nil && !isDNE(err) && !errors.Is(err, ErrStopped) {
			select {
			case errc <- err:
			default:
			}
		}
	}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 0))
			var buf []bittorrent.Peer
			for range ops {
				h := ih(rng.IntN(8))
				n := rng.IntN(200)
				p := v4(n)
				if n%5 == 0 {
					p = v6(n)
				}
				switch rng.IntN(8) {
				case 0, 1:
					check(s.PutLeecher(h, p))
				case 2:
					check(s.PutSeeder(h, p))
				case 3:
					check(s.GraduateLeecher(h, p))
				case 4:
					check(s.DeleteLeecher(h, p))
				case 5:
					check(s.DeleteSeeder(h, p))
				case 6:
					s.ScrapeSwarm(h, p.IP.AddressFamily)
					s.Counts()
				default:
					var err error
					buf, err = s.AppendPeers(buf[:0], h, rng.IntN(2) == 0, 30, p)
					check(err)
					for _, q := range buf {
						if len(q.IP.IP) != 4 && len(q.IP.IP) != 16 {
							check(fmt.Errorf("bad IP %v", q.IP.IP))
						}
						_ = q.IP.String() // read the arena bytes after unlock
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			clock.Advance(time.Second)
			time.Sleep(time.Millisecond)
		}
	}()
	go func() {
		time.Sleep(20 * time.Millisecond)
		<-s.Stop()
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	<-s.Stop()
}

// TestHugeSwarm grows one swarm past an index of 2^16 entries (where homes
// are rehashed rather than read from the records' tags) and back.
func TestHugeSwarm(t *testing.T) {
	s := newTestStore(t, Config{ShardCount: 1}, newFakeClock())
	h := ih(1)
	const n = 70000
	for i := range n {
		if i%3 == 0 {
			must(t, s.PutSeeder(h, v4(i)))
		} else {
			must(t, s.PutLeecher(h, v4(i)))
		}
	}
	sw := &s.fams[0].shards[0].swarms[0]
	if len(sw.table) <= 1<<16 {
		t.Fatalf("index of %d entries, want > 2^16", len(sw.table))
	}
	checkInvariants(t, s)
	for i := 0; i < n; i += 2 {
		must(t, s.GraduateLeecher(h, v4(i)))
	}
	checkInvariants(t, s)
	for i := 1; i < n; i += 2 {
		if i%3 == 0 {
			must(t, s.DeleteSeeder(h, v4(i)))
		} else {
			must(t, s.DeleteLeecher(h, v4(i)))
		}
	}
	checkInvariants(t, s)
	for i := 0; i < n-100; i += 2 {
		must(t, s.DeleteSeeder(h, v4(i)))
	}
	checkInvariants(t, s)
	if len(sw.table) > 1024 || cap(sw.seeders) > 1024 || cap(sw.ips) > 4096 {
		t.Fatalf("did not shrink: index %d, records %d, arena %d", len(sw.table), cap(sw.seeders), cap(sw.ips))
	}
}
