package peerstore

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/storage"
	"github.com/chihaya/chihaya/storage/memory"
)

// Both stores with the same settings (chihaya's tests use these).
func newSeedpay() storage.PeerStore {
	s, err := New(Config{ShardCount: 1024, GCInterval: 10 * time.Minute, PeerLifetime: 30 * time.Minute})
	if err != nil {
		panic(err)
	}
	return s
}

func newChihaya() storage.PeerStore {
	s, err := memory.New(memory.Config{
		ShardCount:                  1024,
		GarbageCollectionInterval:   10 * time.Minute,
		PrometheusReportingInterval: 10 * time.Minute,
		PeerLifetime:                30 * time.Minute,
	})
	if err != nil {
		panic(err)
	}
	return s
}

var stores = []struct {
	name string
	new  func() storage.PeerStore
}{{"seedpay", newSeedpay}, {"chihaya", newChihaya}}

// BenchmarkStorage runs chihaya's storage benchmarks against both stores:
//
//	go test ./tracker/peerstore -run '^$' -bench Storage -benchmem
func BenchmarkStorage(b *testing.B) {
	for _, bm := range []struct {
		name string
		fn   func(*testing.B, storage.PeerStore)
	}{
		{"Nop", storage.Nop},
		{"Put", storage.Put},
		{"Put1k", storage.Put1k},
		{"Put1kInfohash", storage.Put1kInfohash},
		{"Put1kInfohash1k", storage.Put1kInfohash1k},
		{"PutDelete", storage.PutDelete},
		{"PutDelete1k", storage.PutDelete1k},
		{"PutDelete1kInfohash", storage.PutDelete1kInfohash},
		{"PutDelete1kInfohash1k", storage.PutDelete1kInfohash1k},
		{"DeleteNonexist", storage.DeleteNonexist},
		{"DeleteNonexist1k", storage.DeleteNonexist1k},
		{"DeleteNonexist1kInfohash", storage.DeleteNonexist1kInfohash},
		{"DeleteNonexist1kInfohash1k", storage.DeleteNonexist1kInfohash1k},
		{"PutGradDelete", storage.PutGradDelete},
		{"PutGradDelete1k", storage.PutGradDelete1k},
		{"PutGradDelete1kInfohash", storage.PutGradDelete1kInfohash},
		{"PutGradDelete1kInfohash1k", storage.PutGradDelete1kInfohash1k},
		{"GradNonexist", storage.GradNonexist},
		{"GradNonexist1k", storage.GradNonexist1k},
		{"GradNonexist1kInfohash", storage.GradNonexist1kInfohash},
		{"GradNonexist1kInfohash1k", storage.GradNonexist1kInfohash1k},
		{"AnnounceLeecher", storage.AnnounceLeecher},
		{"AnnounceLeecher1kInfohash", storage.AnnounceLeecher1kInfohash},
		{"AnnounceSeeder", storage.AnnounceSeeder},
		{"AnnounceSeeder1kInfohash", storage.AnnounceSeeder1kInfohash},
		{"ScrapeSwarm", storage.ScrapeSwarm},
		{"ScrapeSwarm1kInfohash", storage.ScrapeSwarm1kInfohash},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for _, st := range stores {
				b.Run(st.name, func(b *testing.B) { bm.fn(b, st.new()) })
			}
		})
	}
}

func benchPeer(r *rand.Rand, v6 bool) bittorrent.Peer {
	var id bittorrent.PeerID
	binary.LittleEndian.PutUint64(id[0:], r.Uint64())
	binary.LittleEndian.PutUint64(id[8:], r.Uint64())
	binary.LittleEndian.PutUint32(id[16:], r.Uint32())
	p := bittorrent.Peer{ID: id, Port: uint16(r.Uint32())}
	if v6 {
		ip := make(net.IP, 16)
		binary.LittleEndian.PutUint64(ip[0:], r.Uint64())
		binary.LittleEndian.PutUint64(ip[8:], r.Uint64())
		p.IP = bittorrent.IP{IP: ip, AddressFamily: bittorrent.IPv6}
	} else {
		ip := make(net.IP, 4)
		binary.LittleEndian.PutUint32(ip, r.Uint32())
		p.IP = bittorrent.IP{IP: ip, AddressFamily: bittorrent.IPv4}
	}
	return p
}

func benchHash(r *rand.Rand) bittorrent.InfoHash {
	var h bittorrent.InfoHash
	binary.LittleEndian.PutUint64(h[0:], r.Uint64())
	binary.LittleEndian.PutUint64(h[8:], r.Uint64())
	binary.LittleEndian.PutUint32(h[16:], r.Uint32())
	return h
}

// BenchmarkAnnounceFlow is what middleware/swarm.Responder does for one
// announce of an already known peer: refresh it, scrape, get 30 peers. The
// swarm has `size` peers (a quarter seeders); the announcers are its
// members, cycled. "seedpay-append" gets its peers with AppendPeers into a
// reused buffer, the others with AnnouncePeers.
func BenchmarkAnnounceFlow(b *testing.B) {
	for _, size := range []int{10, 1000} {
		r := rand.New(rand.NewPCG(1, 2))
		h := benchHash(r)
		peers := make([]bittorrent.Peer, size)
		for i := range peers {
			peers[i] = benchPeer(r, false)
		}
		for _, st := range []struct {
			name   string
			new    func() storage.PeerStore
			append bool
		}{{"seedpay-append", newSeedpay, true}, {"seedpay", newSeedpay, false}, {"chihaya", newChihaya, false}} {
			b.Run(st.name+"/swarm"+itoa(size), func(b *testing.B) {
				ps := st.new()
				defer func() { <-ps.Stop() }()
				for i, p := range peers {
					if i%4 == 0 {
						_ = ps.PutSeeder(h, p)
					} else {
						_ = ps.PutLeecher(h, p)
					}
				}
				s, _ := ps.(*Store)
				buf := make([]bittorrent.Peer, 0, 31)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					p := peers[i%size]
					seeder := i%size%4 == 0
					var err error
					if seeder {
						err = ps.GraduateLeecher(h, p)
					} else {
						err = ps.PutLeecher(h, p)
					}
					if err != nil {
						b.Fatal(err)
					}
					_ = ps.ScrapeSwarm(h, bittorrent.IPv4)
					if st.append {
						buf, err = s.AppendPeers(buf[:0], h, seeder, 30, p)
					} else {
						_, err = ps.AnnouncePeers(h, seeder, 30, p)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}

func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// rss returns the resident set size after returning free memory to the OS,
// or 0 where /proc is missing.
func rss() uint64 {
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// BenchmarkMemory inserts 1M distinct peers over 10k swarms (a quarter
// seeders) and reports, per peer, the live heap after a GC (B/peer) and
// the resident set after returning free memory to the OS (rss-B/peer);
// plus the time of one full Go GC cycle with the store live (gc-ms: the
// store's pointers are what the GC marks) and, for seedpay, of one sweep
// for stale peers finding none (sweep-ms):
//
//	go test ./tracker/peerstore -run '^$' -bench Memory -benchtime 1x
func BenchmarkMemory(b *testing.B) {
	const peers, swarms = 1_000_000, 10_000
	for _, fam := range []string{"v4", "v6"} {
		for _, st := range stores {
			b.Run(fam+"/"+st.name, func(b *testing.B) {
				for range b.N {
					r := rand.New(rand.NewPCG(3, 4))
					hashes := make([]bittorrent.InfoHash, swarms)
					for i := range hashes {
						hashes[i] = benchHash(r)
					}
					// One reused peer value; only its bytes change, so the
					// generator adds nothing to the heap.
					p := benchPeer(r, fam == "v6")
					before, rssBefore := heapAlloc(), rss()
					t0 := time.Now()
					runtime.GC()
					gcEmpty := time.Since(t0)
					ps := st.new()
					for i := range peers {
						binary.LittleEndian.PutUint64(p.ID[:], r.Uint64())
						if fam == "v6" {
							binary.LittleEndian.PutUint64(p.IP.IP[8:], r.Uint64())
						} else {
							binary.LittleEndian.PutUint32(p.IP.IP, r.Uint32())
						}
						var err error
						if i%4 == 0 {
							err = ps.PutSeeder(hashes[i%swarms], p)
						} else {
							err = ps.PutLeecher(hashes[i%swarms], p)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					after, rssAfter := heapAlloc(), rss()
					b.ReportMetric(float64(after-before)/peers, "B/peer")
					if rssBefore > 0 {
						b.ReportMetric(float64(rssAfter-rssBefore)/peers, "rss-B/peer")
					}
					var gc time.Duration
					for range 3 {
						t0 := time.Now()
						runtime.GC()
						gc += time.Since(t0)
					}
					b.ReportMetric(float64(gc/3-gcEmpty)/1e6, "gc-ms")
					if s, ok := ps.(*Store); ok {
						t0 := time.Now()
						if n := s.collectGarbage(); n != 0 {
							b.Fatalf("sweep removed %d fresh peers", n)
						}
						b.ReportMetric(float64(time.Since(t0))/1e6, "sweep-ms")
					}
					runtime.KeepAlive(hashes)
					<-ps.Stop()
				}
			})
		}
	}
}

// BenchmarkSweep expires 1M peers in swarms of 100k (the worst case for a
// pause: one swarm is far more than one lock hold's work) and reports the
// sweep time and the longest time one shard's lock was held (max-hold-µs).
func BenchmarkSweep(b *testing.B) {
	const peers, swarms = 1_000_000, 10
	for range b.N {
		b.StopTimer()
		clock := newFakeClock()
		s, err := newStore(Config{ShardCount: 1024, PeerLifetime: time.Minute, Now: clock.Now})
		if err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(5, 6))
		hashes := make([]bittorrent.InfoHash, swarms)
		for i := range hashes {
			hashes[i] = benchHash(r)
		}
		p := benchPeer(r, false)
		for i := range peers {
			binary.LittleEndian.PutUint64(p.ID[:], r.Uint64())
			binary.LittleEndian.PutUint32(p.IP.IP, r.Uint32())
			if i%2 == 0 { // half of them refresh later and stay
				clock.Advance(0)
			}
			if err := s.PutLeecher(hashes[i%swarms], p); err != nil {
				b.Fatal(err)
			}
		}
		clock.Advance(2 * time.Minute)
		s.tick()
		b.StartTimer()
		t0 := time.Now()
		if n := s.collectGarbage(); n != peers {
			b.Fatalf("removed %d", n)
		}
		b.ReportMetric(float64(time.Since(t0))/1e6, "sweep-ms")
		b.ReportMetric(float64(s.gcMaxHold.Load())/1e3, "max-hold-µs")
		<-s.Stop()
	}
}
