package peerstore

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/pkg/log"
	"github.com/chihaya/chihaya/pkg/stop"
	"github.com/chihaya/chihaya/storage"
)

// Name is the store's name in log fields.
const Name = "seedpay-peerstore"

var (
	// ErrStopped is returned by every call made after Stop.
	ErrStopped = errors.New("peerstore: stopped")
	// ErrBadAddress is returned for a peer whose IP does not fit its
	// address family (IPv4 must be 4 bytes or IPv4-in-IPv6, IPv6 16 bytes).
	ErrBadAddress = errors.New("peerstore: peer IP does not match its address family")

	// errDNE is storage.ErrResourceDoesNotExist converted to error once:
	// converting the string-typed ClientError allocates on every return.
	errDNE error = storage.ErrResourceDoesNotExist
)

// shardState is one lock's worth of swarms of one address family.
type shardState struct {
	mu       sync.RWMutex
	index    map[bittorrent.InfoHash]int32 // info hash -> position in swarms
	swarms   []swarm
	seeders  int
	leechers int
	live     int // swarms with at least one peer
	peak     int // largest len(index) since the map was last rebuilt
	stopped  bool
}

// shard pads shardState to a multiple of two cache lines so neighbouring
// locks do not share a line.
type shard struct {
	shardState
	_ [128 - unsafe.Sizeof(shardState{})%128]byte
}

type family struct {
	famOps
	shards []shard
}

// Store is a sharded in-memory peer store. It implements
// storage.PeerStore; all methods are safe for concurrent use, and after
// Stop they return ErrStopped (ScrapeSwarm an empty scrape) instead of
// panicking.
type Store struct {
	cfg       Config
	fams      [2]family // by bittorrent.AddressFamily
	shardMask uint64
	shardSeed uint64
	seed      hashSeed
	start     time.Time
	lifetime  uint32 // seconds

	now    atomic.Uint32 // seconds since start, advanced by tick
	closed atomic.Bool
	done   chan struct{}
	wg     sync.WaitGroup

	gcRuns    atomic.Uint64
	gcRemoved atomic.Uint64
	gcNanos   atomic.Int64 // duration of the last sweep
	gcMaxHold atomic.Int64 // longest lock hold of the last sweep (ns)
}

var _ storage.PeerStore = (*Store)(nil)

// New validates cfg and starts a Store with its clock and garbage
// collector. Call Stop to release it.
func New(cfg Config) (*Store, error) {
	s, err := newStore(cfg)
	if err != nil {
		return nil, err
	}
	s.wg.Add(2)
	go s.runClock()
	go s.runGC()
	return s, nil
}

// newStore builds a Store without its goroutines (tests drive the clock
// and the collector by hand).
func newStore(cfg Config) (*Store, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg:       cfg,
		shardMask: uint64(cfg.ShardCount - 1),
		shardSeed: rand.Uint64() | 1,
		start:     cfg.Now(),
		lifetime:  uint32((cfg.PeerLifetime + time.Second - 1) / time.Second),
		done:      make(chan struct{}),
	}
	for i := range s.seed {
		s.seed[i] = rand.Uint64()
	}
	for af, ipLen := range [2]int{4, 16} {
		f := &s.fams[af]
		f.famOps = famOps{ipLen: ipLen, af: bittorrent.AddressFamily(af), seed: &s.seed}
		f.shards = make([]shard, cfg.ShardCount)
		for i := range f.shards {
			f.shards[i].index = make(map[bittorrent.InfoHash]int32)
		}
	}
	return s, nil
}

// key picks the family of p and builds its key.
func (s *Store) key(p *bittorrent.Peer) (*family, peerKey, error) {
	k := peerKey{id: p.ID, port: p.Port}
	switch p.IP.AddressFamily {
	case bittorrent.IPv4:
		ip := p.IP.IP.To4()
		if ip == nil {
			return nil, k, ErrBadAddress
		}
		copy(k.ip[:4], ip)
	case bittorrent.IPv6:
		if len(p.IP.IP) != 16 {
			return nil, k, ErrBadAddress
		}
		copy(k.ip[:], p.IP.IP)
	default:
		return nil, k, ErrBadAddress
	}
	return &s.fams[p.IP.AddressFamily], k, nil
}

// shard maps an info hash to its shard of f. Info hashes are SHA-1
// outputs, but the seeded mix keeps anyone from aiming at one shard.
func (s *Store) shard(f *family, ih *bittorrent.InfoHash) *shard {
	x := uint64(ih[0]) | uint64(ih[1])<<8 | uint64(ih[2])<<16 | uint64(ih[3])<<24 |
		uint64(ih[4])<<32 | uint64(ih[5])<<40 | uint64(ih[6])<<48 | uint64(ih[7])<<56
	x = (x ^ s.shardSeed) * 0x9e3779b97f4a7c15
	return &f.shards[(x>>32)&s.shardMask]
}

// PutSeeder records p as a seeder of ih, refreshing it if present. A peer
// is either a seeder or a leecher: a leecher entry of p moves to the
// seeders, so PutSeeder and GraduateLeecher do the same thing.
func (s *Store) PutSeeder(ih bittorrent.InfoHash, p bittorrent.Peer) error {
	return s.put(&ih, &p, true)
}

// PutLeecher records p as a leecher of ih, refreshing it if present. A
// seeder entry of p moves to the leechers.
func (s *Store) PutLeecher(ih bittorrent.InfoHash, p bittorrent.Peer) error {
	return s.put(&ih, &p, false)
}

// GraduateLeecher makes p a seeder of ih, moving it from the leechers if it
// is one and adding it otherwise.
func (s *Store) GraduateLeecher(ih bittorrent.InfoHash, p bittorrent.Peer) error {
	return s.put(&ih, &p, true)
}

// lockShard returns p's address family, the write-locked shard of ih in it
// and p's key; the caller unlocks. It fails after Stop or for a bad address.
func (s *Store) lockShard(ih *bittorrent.InfoHash, p *bittorrent.Peer) (*family, *shard, peerKey, error) {
	if s.closed.Load() {
		return nil, nil, peerKey{}, ErrStopped
	}
	f, k, err := s.key(p)
	if err != nil {
		return nil, nil, peerKey{}, err
	}
	sh := s.shard(f, ih)
	sh.mu.Lock()
	if sh.stopped {
		sh.mu.Unlock()
		return nil, nil, peerKey{}, ErrStopped
	}
	return f, sh, k, nil
}

func (s *Store) put(ih *bittorrent.InfoHash, p *bittorrent.Peer, seeder bool) error {
	f, sh, k, err := s.lockShard(ih, p)
	if err != nil {
		return err
	}
	var sw *swarm
	if i, ok := sh.index[*ih]; ok {
		sw = &sh.swarms[i]
	} else {
		sw = sh.addSwarm(ih)
	}
	h := f.seed.hash(&k)
	now := s.now.Load()
	isSeeder, i, pos, found := f.lookup(sw, &k, h)
	switch {
	case found && isSeeder == seeder:
		(*sw.set(seeder))[i].seen = now
	case found:
		r := f.detach(sw, isSeeder, i, pos)
		r.seen = now
		f.attach(sw, seeder, r)
		sh.count(isSeeder, -1)
		sh.count(seeder, 1)
	default:
		if sw.size() == 0 {
			sh.live++
		}
		r := rec{id: k.id, port: k.port, tag: tagOf(h), seen: now}
		r.ip = f.allocIP(sw, k.ip[:f.ipLen])
		f.attach(sw, seeder, r)
		sh.count(seeder, 1)
	}
	sh.mu.Unlock()
	return nil
}

func (sh *shardState) count(seeder bool, d int) {
	if seeder {
		sh.seeders += d
	} else {
		sh.leechers += d
	}
}

func (sh *shardState) addSwarm(ih *bittorrent.InfoHash) *swarm {
	i := len(sh.swarms)
	sh.swarms = append(sh.swarms, swarm{ih: *ih})
	sh.index[*ih] = int32(i)
	sh.peak = max(sh.peak, len(sh.index))
	return &sh.swarms[i]
}

// dropSwarm removes swarm i (it must be empty), moving the last swarm into
// its place.
func (sh *shardState) dropSwarm(i int) {
	last := len(sh.swarms) - 1
	delete(sh.index, sh.swarms[i].ih)
	if i != last {
		sh.swarms[i] = sh.swarms[last]
		sh.index[sh.swarms[i].ih] = int32(i)
	}
	sh.swarms[last] = swarm{}
	sh.swarms = sh.swarms[:last]
}

// DeleteSeeder removes the seeder p from ih. It returns
// storage.ErrResourceDoesNotExist if p is not a seeder of ih.
func (s *Store) DeleteSeeder(ih bittorrent.InfoHash, p bittorrent.Peer) error {
	return s.delete(&ih, &p, true)
}

// DeleteLeecher removes the leecher p from ih. It returns
// storage.ErrResourceDoesNotExist if p is not a leecher of ih.
func (s *Store) DeleteLeecher(ih bittorrent.InfoHash, p bittorrent.Peer) error {
	return s.delete(&ih, &p, false)
}

func (s *Store) delete(ih *bittorrent.InfoHash, p *bittorrent.Peer, seeder bool) error {
	f, sh, k, err := s.lockShard(ih, p)
	if err != nil {
		return err
	}
	si, ok := sh.index[*ih]
	if !ok {
		sh.mu.Unlock()
		return errDNE
	}
	sw := &sh.swarms[si]
	isSeeder, i, pos, found := f.lookup(sw, &k, f.seed.hash(&k))
	if !found || isSeeder != seeder {
		sh.mu.Unlock()
		return errDNE
	}
	f.detach(sw, seeder, i, pos)
	f.freeIP(sw)
	sh.count(seeder, -1)
	if sw.size() == 0 {
		// The empty swarm stays until the next sweep, so a peer that
		// stops and restarts reuses it without allocating.
		sh.live--
	}
	sh.mu.Unlock()
	return nil
}

// AnnouncePeers returns up to numWant peers of ih from the announcer's
// address family, never the announcer itself (neither its peer id nor its
// IP and port). A seeder gets leechers only; a leecher gets seeders first,
// then leechers. Each list is walked from a random offset, so every peer
// has the same chance to be handed out. It allocates the returned slice
// only: the peers' IPs point into the store's immutable address arenas and
// must not be modified.
//
// It returns storage.ErrResourceDoesNotExist if the swarm has no peers.
func (s *Store) AnnouncePeers(ih bittorrent.InfoHash, seeder bool, numWant int, announcer bittorrent.Peer) ([]bittorrent.Peer, error) {
	return s.appendPeers(nil, true, &ih, seeder, numWant, &announcer)
}

// AppendPeers is AnnouncePeers appending to dst instead of allocating: with
// a dst of enough capacity it does not allocate at all. The appended peers'
// IPs point into the store's immutable address arenas (never into dst), so
// dst may be reused as soon as the caller is done with its contents, and
// the IPs must not be modified. On error dst is returned unchanged.
func (s *Store) AppendPeers(dst []bittorrent.Peer, ih bittorrent.InfoHash, seeder bool, numWant int, announcer bittorrent.Peer) ([]bittorrent.Peer, error) {
	return s.appendPeers(dst, false, &ih, seeder, numWant, &announcer)
}

func (s *Store) appendPeers(dst []bittorrent.Peer, alloc bool, ih *bittorrent.InfoHash, seeder bool, numWant int, a *bittorrent.Peer) ([]bittorrent.Peer, error) {
	if s.closed.Load() {
		return dst, ErrStopped
	}
	f, k, err := s.key(a)
	if err != nil {
		return dst, err
	}
	sh := s.shard(f, ih)
	sh.mu.RLock()
	if sh.stopped {
		sh.mu.RUnlock()
		return dst, ErrStopped
	}
	si, ok := sh.index[*ih]
	if !ok || sh.swarms[si].size() == 0 {
		sh.mu.RUnlock()
		return dst, errDNE
	}
	sw := &sh.swarms[si]
	avail := len(sw.leechers)
	if !seeder {
		avail += len(sw.seeders)
	}
	want := min(numWant, avail)
	if want > 0 {
		if alloc {
			dst = make([]bittorrent.Peer, 0, want)
		}
		if !seeder {
			dst, want = f.walk(dst, sw, sw.seeders, want, &k)
		}
		if want > 0 {
			dst, _ = f.walk(dst, sw, sw.leechers, want, &k)
		}
	}
	sh.mu.RUnlock()
	return dst, nil
}

// walk appends up to want peers of set, starting at a random offset and
// skipping the announcer k. It fills the peers in place (no temporaries):
// this loop is most of an announce's time in the store.
func (f *famOps) walk(dst []bittorrent.Peer, sw *swarm, set []rec, want int, k *peerKey) ([]bittorrent.Peer, int) {
	n := len(set)
	if n == 0 {
		return dst, want
	}
	base := len(dst)
	dst = slices.Grow(dst, want)
	out := dst[base : base+want]
	j := 0
	start := int(uint64(rand.Uint32()) * uint64(n) >> 32)
	self := string(k.ip[:f.ipLen])
	// The announcer's id as words: r.id == k.id would call memequal.
	id0 := binary.LittleEndian.Uint64(k.id[0:8])
	id1 := binary.LittleEndian.Uint64(k.id[8:16])
	id2 := binary.LittleEndian.Uint32(k.id[16:20])
	L, af, ips := f.ipLen, f.af, sw.ips
	for _, part := range [2][]rec{set[start:], set[:start]} {
		for i := range part {
			r := &part[i]
			o := int(r.ip) * L
			ip := ips[o : o+L : o+L]
			sameID := binary.LittleEndian.Uint64(r.id[0:8]) == id0 &&
				binary.LittleEndian.Uint64(r.id[8:16]) == id1 &&
				binary.LittleEndian.Uint32(r.id[16:20]) == id2
			if sameID || (r.port == k.port && string(ip) == self) {
				continue
			}
			p := &out[j]
			p.ID = r.id
			p.Port = r.port
			p.IP.IP = ip
			p.IP.AddressFamily = af
			if j++; j == want {
				return dst[:base+j], 0
			}
		}
	}
	return dst[:base+j], want - j
}

// ScrapeSwarm returns the seeder (Complete) and leecher (Incomplete) counts
// of ih in the address family af. Snatches is left 0. A swarm that does not
// exist, or a stopped store, gives zero counts.
func (s *Store) ScrapeSwarm(ih bittorrent.InfoHash, af bittorrent.AddressFamily) bittorrent.Scrape {
	resp := bittorrent.Scrape{InfoHash: ih}
	if s.closed.Load() || af > bittorrent.IPv6 {
		return resp
	}
	sh := s.shard(&s.fams[af], &ih)
	sh.mu.RLock()
	if si, ok := sh.index[ih]; ok {
		sw := &sh.swarms[si]
		resp.Complete = uint32(len(sw.seeders))
		resp.Incomplete = uint32(len(sw.leechers))
	}
	sh.mu.RUnlock()
	return resp
}

// Counts returns the number of swarms with at least one peer (an info hash
// with both IPv4 and IPv6 peers counts twice), seeders and leechers. It
// sums per-shard counters, taking each shard's lock briefly.
func (s *Store) Counts() (swarms, seeders, leechers int) {
	for af := range s.fams {
		for i := range s.fams[af].shards {
			sh := &s.fams[af].shards[i]
			sh.mu.RLock()
			swarms += sh.live
			seeders += sh.seeders
			leechers += sh.leechers
			sh.mu.RUnlock()
		}
	}
	return swarms, seeders, leechers
}

// Stop stops the clock and the garbage collector and frees the peers.
// Calls made after Stop return ErrStopped. Stopping twice is harmless.
func (s *Store) Stop() stop.Result {
	if !s.closed.CompareAndSwap(false, true) {
		return stop.AlreadyStopped
	}
	c := make(stop.Channel)
	go func() {
		close(s.done)
		s.wg.Wait()
		for af := range s.fams {
			for i := range s.fams[af].shards {
				sh := &s.fams[af].shards[i]
				sh.mu.Lock()
				sh.stopped = true
				sh.index, sh.swarms = nil, nil
				sh.seeders, sh.leechers, sh.live, sh.peak = 0, 0, 0, 0
				sh.mu.Unlock()
			}
		}
		c.Done()
	}()
	return c.Result()
}

// LogFields describes the store's configuration.
func (s *Store) LogFields() log.Fields {
	return log.Fields{
		"name":         Name,
		"shardCount":   s.cfg.ShardCount,
		"peerLifetime": s.cfg.PeerLifetime,
		"gcInterval":   s.cfg.GCInterval,
	}
}
