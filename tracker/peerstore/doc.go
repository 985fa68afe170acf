// Package peerstore is seedpay's in-memory peer store: a
// storage.PeerStore for chihaya (a drop-in for chihaya's storage/memory)
// built for a low cost per announce, few pointers for Go's garbage
// collector to chase, and bounded memory under churn.
//
// # API
//
//	s, err := peerstore.New(peerstore.Config{ShardCount: 1024, PeerLifetime: 31 * time.Minute, GCInterval: 3 * time.Minute})
//	var _ storage.PeerStore = s
//	buf, err = s.AppendPeers(buf[:0], ih, seeder, numWant, announcer) // 0 allocations
//	swarms, seeders, leechers := s.Counts()
//	reg.MustRegister(s.Collector()) // seedpay_peers{kind}, seedpay_swarms, seedpay_peerstore_gc_*
//
// # Layout
//
// Two families (IPv4, IPv6) of ShardCount shards each (a power of two), so
// the two address families are isolated by construction: a swarm is an
// (info hash, family) pair. An info hash picks its shard by a seeded
// multiply-mix of its first 8 bytes. Each shard is an RWMutex, a Go map
// from info hash to a position in a dense []swarm (swarm structs inline: no
// allocation per swarm), and counters of seeders, leechers and non-empty
// swarms kept as peers come and go (Counts sums them).
//
// A swarm holds:
//
//   - seeders and leechers: two dense slices of 32-byte records
//     {peer id, port, 16-bit hash tag, IP slot, last seen}. A record holds
//     no pointer, so Go's GC never scans peers. Deletion moves the last
//     record into the hole.
//   - an index (above 8 peers; smaller swarms are scanned linearly): open
//     addressing with linear probing and backward-shift deletion, 4 bytes
//     per entry (record index+1 and a seeder bit), load 1/4..3/4. The
//     record's hash tag gives both the home position (tables up to 2^16
//     entries; above that the home is rehashed) and a cheap pre-compare.
//   - ips: an append-only arena of 4- or 16-byte addresses. Bytes handed
//     out are never written again: a deleted peer's slot just dies, and the
//     arena is compacted into a new array when full or three quarters dead.
//     The old array stays valid for any response still reading it and is
//     freed by Go's GC when the last one is done.
//
// Peers are identified like chihaya's stores do: (peer id, IP, port),
// hashed with a per-store random seed (wyhash-style multiply-fold), so
// nobody can pick peer ids that collide in an index.
//
// Time is a uint32 of seconds since the store started, read from an atomic
// that a goroutine advances every second (no clock call per announce);
// Config.Now makes the clock injectable.
//
// # Why this shape (measured, see Measurements)
//
//   - AnnouncePeers is a contiguous walk of the wanted set from a random
//     offset (O(numWant), cache-friendly, every peer equally likely to be
//     handed out), with no map iteration and no per-peer decoding. Seeders
//     and leechers are separate slices, so "leecher wants seeders first" and
//     "seeder wants leechers" need no filtering.
//   - The IP arena is what makes the returned bittorrent.Peer values free:
//     their IP slices point into immutable arena bytes, so AnnouncePeers
//     allocates only the result slice and AppendPeers, given a buffer,
//     nothing. (Returning slices into the records would be a data race:
//     deletion rewrites records while a response is still being encoded.)
//   - Pointer-free records and tables: chihaya's store keeps each peer as a
//     string map key, a heap object the GC marks on every cycle. Here a
//     full GC cycle with 1M peers live takes ~7 ms instead of ~38 ms.
//   - Memory: records 32 B, index ~4-8 B, arena 4 (v4) or 16 (v6) B per
//     peer plus slack. Slices grow by 1.25x (not append's 2x) and shrink at
//     half use, the index grows at 3/4 and shrinks at 1/4 load: the slack of
//     every small swarm is most of the memory beyond the records, and a
//     shrink rule at 1/4 let capacities creep up to each swarm's historical
//     peak in the soak test. Go maps never shrink, so the sweep rebuilds a
//     shard's map that has fallen to a quarter of its peak.
//   - A peer is a seeder or a leecher, never both: PutLeecher of a seeder
//     (or PutSeeder of a leecher) moves it, so PutSeeder and GraduateLeecher
//     are the same operation and counts never double a peer.
//   - A swarm emptied by deletions stays (empty, invisible: AnnouncePeers
//     says ErrResourceDoesNotExist, ScrapeSwarm zeros) until the next sweep,
//     so a lone peer that stops and restarts reuses it without allocating.
//   - Shards use RWMutex so concurrent announces to one hot swarm read in
//     parallel; against sync.Mutex the difference was within this machine's
//     noise.
//
// # Garbage collection
//
// Every GCInterval a goroutine sweeps each shard for peers not seen for
// more than PeerLifetime (one-second resolution) and drops empty swarms.
// It holds a shard's lock for at most 2048 units of work (a record looked
// at is 1, a record removed 17), then yields: swarms and records are visited
// from the last to the first, so swap-removal (ours or a concurrent
// writer's) never makes the sweep skip an old record. A removal can
// trigger one resize of that swarm's slices, index or arena, which is
// O(swarm size) (about a millisecond for a 100k-peer swarm, rare and
// amortised O(1)). BenchmarkSweep reports the longest hold; the metric
// seedpay_peerstore_gc_last_max_hold_seconds exports it in production.
//
// # Semantics (differences from chihaya's memory store)
//
//   - The announcer is never returned: neither a peer with its peer id nor
//     one with its IP and port (a client restarted with a new id). Callers
//     need not ask for numWant+1 and filter.
//   - A seeder gets leechers only (as chihaya's store); a leecher gets
//     seeders first, then leechers.
//   - numWant <= 0 returns no peers and no error; the result never exceeds
//     numWant, and AnnouncePeers sizes its result to min(numWant, peers).
//   - Returned IPs are 4 bytes (IPv4) or 16 (IPv6), shared and read-only.
//     An IPv4 peer given as an IPv4-in-IPv6 16-byte address is stored as 4
//     bytes (the same peer as its 4-byte form). A peer whose IP does not
//     fit its family gets ErrBadAddress.
//   - After Stop every call returns ErrStopped (ScrapeSwarm an empty
//     scrape, Counts zeros) instead of panicking. Stop is idempotent.
//   - Counts and the seedpay_swarms gauge count swarms per family: an info
//     hash with IPv4 and IPv6 peers counts twice.
//   - Snatches are not tracked (ScrapeSwarm leaves Snatches 0).
//
// # Measurements
//
// 2 shared cores (AMD EPYC), load average 4-5 from other work during the
// runs, Go 1.26; medians of 5 runs, seedpay and chihaya interleaved in
// the same process. Absolute numbers are noisy; read the ratios.
//
//	go test ./tracker/peerstore -run '^$' -bench 'Storage|AnnounceFlow' -benchmem -count 5
//	go test ./tracker/peerstore -run '^$' -bench 'Memory|Sweep' -benchtime 1x -count 3
//
// chihaya's storage benchmarks (parallel ones on 2 goroutines; 1000 swarms
// of 1000 peers for Announce* and ScrapeSwarm*), ns/op and B/op, allocs/op:
//
//	benchmark                    seedpay            chihaya memory        speed-up
//	Put1kInfohash1k               140   0 B  0      346   32 B  1          2.5x
//	PutDelete1kInfohash1k         354   4 B  0      965  336 B  4          2.7x
//	PutGradDelete1kInfohash1k     435   4 B  0     1634  576 B  6          3.8x
//	DeleteNonexist1kInfohash1k    117   0 B  0      240   16 B  1          2.1x
//	GradNonexist1kInfohash1k      196   0 B  0      409   32 B  1          2.1x
//	AnnounceLeecher              1825 3456 B  1    13035 9680 B 57          7.1x
//	AnnounceLeecher1kInfohash    2544 3456 B  1    21828 9680 B 57          8.6x
//	AnnounceSeeder               1685 3456 B  1    10685 9680 B 57          6.3x
//	AnnounceSeeder1kInfohash     3248 3456 B  1    36395 9680 B 57         11.2x
//	ScrapeSwarm                    79   0 B  0      105    0 B  0          1.3x
//	ScrapeSwarm1kInfohash         156   0 B  0      112    0 B  0    parity (*)
//
// (*) noisy: 123-361 vs 72-247 ns in the 5 runs; a single-threaded rerun
// gave 79 ns. A scrape is a map lookup plus one dependent cache miss in
// both stores.
//
// BenchmarkAnnounceFlow, what middleware/swarm.Responder does per announce
// of a known peer (refresh, scrape, 30 peers), one goroutine:
//
//	swarm of   seedpay AppendPeers   seedpay AnnouncePeers   chihaya            speed-up
//	10 peers      636 ns  0 allocs     1740 ns  1 alloc       6477 ns 14 allocs  10x / 3.7x
//	1000 peers    622 ns  0 allocs     5062 ns  1 alloc      18652 ns 37 allocs  30x / 3.7x
//
// (The one allocation costs far more than its size here: with a ~1 MB
// live heap the benchmark runs a GC every ~2 ms and refaults the freed
// pages; it is still the reason to use AppendPeers.)
//
// BenchmarkMemory, 1M distinct peers over 10k swarms, medians of 3:
//
//	                live heap   RSS (after FreeOSMemory)   one full Go GC cycle
//	v4 seedpay      58.2 B/peer   59.3 B/peer                 2.5 ms
//	v4 chihaya      68.8 B/peer   70.4 B/peer                40.1 ms
//	v6 seedpay      71.6 B/peer   72.7 B/peer                18.3 ms
//	v6 chihaya      84.8 B/peer  107.5 B/peer                95.4 ms
//
// A sweep finding nothing stale in those 1M peers takes 15-38 ms (all
// shards, in short lock holds). BenchmarkSweep expires 1M peers held in 10
// swarms of 100k: ~0.4 s in total; lock holds p50 19 µs, p99 160 µs of
// wall time; the longest holds measured by thread CPU time were 1-1.9 ms
// (the O(n) resizes of a 100k-peer swarm), while the wall-clock maximum
// (8-38 ms) was the holder being descheduled on this oversubscribed VM.
//
// TestSoakHeapBounded (~100k live peers, 2000 swarms, 2M operations:
// arrivals, stops, peers vanishing and expiring, completions, announces)
// keeps the live heap at 18.4-18.7 MB from 40% of the run to the end (a
// 10M-operation run: 18.8-18.9 MB from 3M on), and releases all but
// 0.2 MB once every peer has expired.
//
// # Wiring
//
// In cmd/seedpay/serve.go, replace memory.New with
//
//	peers, err := peerstore.New(peerstore.Config{
//		ShardCount:   cfg.PeerStore.ShardCount,
//		PeerLifetime: cfg.PeerStore.PeerLifetime,
//		GCInterval:   cfg.PeerStore.GCInterval,
//	})
//	reg.MustRegister(peers.Collector())
//
// and pass peers where the memory store went (middleware.NewLogic,
// swarm.NewResponder, api.Deps.Swarms). The chihaya_storage_* gauges that
// the memory store fed are replaced by seedpay_peers and seedpay_swarms.
//
// In middleware/swarm.Responder, when the store has AppendPeers, append
// into a pooled buffer instead of calling AnnouncePeers, asking for exactly
// req.NumWant (the store already leaves the requester out). The frontends
// encode the response after the PreHooks return and then run the PostHooks
// (go logic.AfterAnnounce), so a last PostHook can put the buffer back; on
// an error path the buffer is simply left to Go's GC.
package peerstore
