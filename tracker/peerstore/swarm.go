package peerstore

import (
	"encoding/binary"
	"math/bits"

	"github.com/chihaya/chihaya/bittorrent"
)

// Tuning constants of a swarm's layout (see doc.go for the measurements).
const (
	// linearMax is the largest swarm searched by a linear scan; above it the
	// swarm builds its hash index. It drops the index again at linearMax/2
	// peers, so a peer going back and forth never rebuilds it each time.
	linearMax = 8
	// minTable is the smallest hash index (entries).
	minTable = 32
	// minIPSlots is the smallest IP arena (addresses).
	minIPSlots = 4
	// shrinkAbove: an IP arena of at least this many slots is compacted
	// when three quarters of it are dead slots.
	shrinkAbove = 64
	// keepRecs: a record slice with more capacity than this is reallocated
	// when at most half used. Without it a swarm would keep the capacity of
	// its largest size ever (measured in the soak test: a slow creep).
	keepRecs = 8
	// seedBit marks a seeder in an index entry's reference.
	seedBit = 1 << 31
)

// rec is one peer of a swarm: 32 bytes, no pointers, so record slices are
// never scanned by Go's garbage collector. The IP lives in the swarm's
// arena, at slot ip.
type rec struct {
	id   bittorrent.PeerID
	port uint16
	tag  uint16 // low bits of hash>>32: the peer's home in the index
	ip   uint32 // slot in swarm.ips (bytes ip*ipLen .. +ipLen)
	seen uint32 // seconds since the store started
}

// peerKey is what identifies a peer in a swarm: the same triple chihaya's
// stores use (peer id, port, IP). IPv4 addresses use ip[:4], the rest is 0.
type peerKey struct {
	id   bittorrent.PeerID
	port uint16
	ip   [16]byte
}

// swarm is one info hash in one address family.
//
// Seeders and leechers are separate dense slices (deletion swaps the last
// record into the hole), so handing out peers is a contiguous walk. Above
// linearMax peers an open-addressing index (linear probing, backward-shift
// deletion, so no tombstones) maps a peer to its record. An entry is the
// record's index+1, with seedBit set for seeders; 0 is empty. A peer's home
// position is its hash's bits 32.. masked; records keep the low 16 of those
// bits (tag), so probing compares tags before keys and the index can be
// resized without rehashing (above 2^16 entries homes are rehashed).
//
// IP addresses live in ips, an append-only arena: bytes handed out to a
// caller are never written again. A deleted peer leaves a dead slot; the
// arena is compacted into a fresh array (the old one stays valid for
// whoever still reads it and is freed by Go's GC) when it is full or mostly
// dead. This is what lets AnnouncePeers return IPs without allocating.
type swarm struct {
	ih       bittorrent.InfoHash
	dead     uint32 // dead slots in ips
	seeders  []rec
	leechers []rec
	table    []uint32
	ips      []byte
}

func (sw *swarm) size() int { return len(sw.seeders) + len(sw.leechers) }

func (sw *swarm) set(seeder bool) *[]rec {
	if seeder {
		return &sw.seeders
	}
	return &sw.leechers
}

func ref(seeder bool, i int) uint32 {
	r := uint32(i + 1)
	if seeder {
		r |= seedBit
	}
	return r
}

func unref(r uint32) (seeder bool, i int) { return r&seedBit != 0, int(r&^seedBit) - 1 }

func (sw *swarm) byRef(r uint32) *rec {
	seeder, i := unref(r)
	if seeder {
		return &sw.seeders[i]
	}
	return &sw.leechers[i]
}

// hashSeed keys the peer hash; it is random per Store so nobody can choose
// peer ids that collide in the index.
type hashSeed [4]uint64

func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hash mixes a peer key (wyhash-style multiply-fold).
func (s *hashSeed) hash(k *peerKey) uint64 {
	a := binary.LittleEndian.Uint64(k.id[0:8])
	b := binary.LittleEndian.Uint64(k.id[8:16])
	c := uint64(binary.LittleEndian.Uint32(k.id[16:20])) | uint64(k.port)<<32
	d := binary.LittleEndian.Uint64(k.ip[0:8])
	e := binary.LittleEndian.Uint64(k.ip[8:16])
	h := mum(a^s[0], b^s[1])
	h = mum(h^c^s[2], d^s[3])
	return mum(h^e^s[1], s[0]^0x9e3779b97f4a7c15)
}

// famOps is what swarm operations need from their shard's address family.
type famOps struct {
	ipLen int
	af    bittorrent.AddressFamily
	seed  *hashSeed
}

func (f *famOps) ipOf(sw *swarm, r *rec) []byte {
	o := int(r.ip) * f.ipLen
	return sw.ips[o : o+f.ipLen : o+f.ipLen]
}

func (f *famOps) matches(sw *swarm, r *rec, k *peerKey, tag uint16) bool {
	return r.tag == tag && r.id == k.id && r.port == k.port && string(f.ipOf(sw, r)) == string(k.ip[:f.ipLen])
}

// recHash recomputes the hash of a stored record.
func (f *famOps) recHash(sw *swarm, r *rec) uint64 {
	k := peerKey{id: r.id, port: r.port}
	copy(k.ip[:], f.ipOf(sw, r))
	return f.seed.hash(&k)
}

// home is r's position in an index of mask+1 entries.
func (f *famOps) home(sw *swarm, r *rec, mask int) int {
	if mask <= 0xffff {
		return int(r.tag) & mask
	}
	return int(f.recHash(sw, r)>>32) & mask
}

func tagOf(h uint64) uint16 { return uint16(h >> 32) }

// lookup finds k, whose hash is h. pos is the index entry's position, or
// -1 without an index.
func (f *famOps) lookup(sw *swarm, k *peerKey, h uint64) (seeder bool, i, pos int, ok bool) {
	tag := tagOf(h)
	if sw.table == nil {
		for i := range sw.seeders {
			if f.matches(sw, &sw.seeders[i], k, tag) {
				return true, i, -1, true
			}
		}
		for i := range sw.leechers {
			if f.matches(sw, &sw.leechers[i], k, tag) {
				return false, i, -1, true
			}
		}
		return false, 0, -1, false
	}
	t := sw.table
	mask := len(t) - 1
	for p := int(h>>32) & mask; ; p = (p + 1) & mask {
		e := t[p]
		if e == 0 {
			return false, 0, -1, false
		}
		if f.matches(sw, sw.byRef(e), k, tag) {
			seeder, i := unref(e)
			return seeder, i, p, true
		}
	}
}

// findPos returns the index position of entry r, whose home is home. The
// entry must exist.
func findPos(t []uint32, home int, r uint32) int {
	mask := len(t) - 1
	for p := home; ; p = (p + 1) & mask {
		if t[p] == r {
			return p
		}
	}
}

func tableInsert(t []uint32, home int, r uint32) {
	mask := len(t) - 1
	p := home
	for t[p] != 0 {
		p = (p + 1) & mask
	}
	t[p] = r
}

// tableDelete empties position p and shifts the following entries of its
// probe run back.
func (f *famOps) tableDelete(sw *swarm, p int) {
	t := sw.table
	mask := len(t) - 1
	hole := p
	for j := (p + 1) & mask; ; j = (j + 1) & mask {
		e := t[j]
		if e == 0 {
			break
		}
		home := f.home(sw, sw.byRef(e), mask)
		// e may move into the hole unless its home lies cyclically in
		// (hole, j].
		var stays bool
		if hole <= j {
			stays = hole < home && home <= j
		} else {
			stays = hole < home || home <= j
		}
		if !stays {
			t[hole] = e
			hole = j
		}
	}
	t[hole] = 0
}

// tableSize is the index size for a number of peers: load at most 1/2
// after a rebuild. It grows (doubles) above 3/4 and shrinks below 1/4
// (1/8 above 2^16 entries).
func tableSize(peers int) int {
	n := minTable
	for n < 2*peers {
		n <<= 1
	}
	return n
}

// grown returns the capacity to grow a slice of n elements to: 1.25x, not
// append's 2x, because the slack of every swarm's slices is most of the
// store's memory beyond the records themselves.
func grown(n int) int { return n + n/4 + 2 }

// buildTable (re)indexes every record of sw in an index of n entries.
func (f *famOps) buildTable(sw *swarm, n int) {
	t := make([]uint32, n)
	mask := n - 1
	for i := range sw.seeders {
		tableInsert(t, f.home(sw, &sw.seeders[i], mask), ref(true, i))
	}
	for i := range sw.leechers {
		tableInsert(t, f.home(sw, &sw.leechers[i], mask), ref(false, i))
	}
	sw.table = t
}

// attach appends r (its tag set) to a set and indexes it.
func (f *famOps) attach(sw *swarm, seeder bool, r rec) {
	set := sw.set(seeder)
	if len(*set) == cap(*set) {
		*set = append(make([]rec, 0, grown(len(*set))), *set...)
	}
	*set = append(*set, r)
	i := len(*set) - 1
	n := sw.size()
	switch {
	case sw.table != nil && 4*n > 3*len(sw.table):
		f.buildTable(sw, 2*len(sw.table))
	case sw.table != nil:
		tableInsert(sw.table, f.home(sw, &(*set)[i], len(sw.table)-1), ref(seeder, i))
	case n > linearMax:
		f.buildTable(sw, tableSize(n))
	}
}

// detach removes record i of a set (index position pos, or -1 to find it)
// and returns it. Its IP slot stays allocated: the caller either moves the
// record to the other set or calls freeIP.
func (f *famOps) detach(sw *swarm, seeder bool, i, pos int) rec {
	set := sw.set(seeder)
	s := *set
	r := s[i]
	last := len(s) - 1
	if t := sw.table; t != nil {
		mask := len(t) - 1
		if pos < 0 {
			pos = findPos(t, f.home(sw, &r, mask), ref(seeder, i))
		}
		f.tableDelete(sw, pos)
		if i != last {
			t[findPos(t, f.home(sw, &s[last], mask), ref(seeder, last))] = ref(seeder, i)
		}
	}
	s[i] = s[last]
	s = s[:last]
	if cap(s) > keepRecs && 2*len(s) <= cap(s) {
		s = append(make([]rec, 0, grown(len(s))), s...)
	}
	*set = s
	if t := sw.table; t != nil {
		n := sw.size()
		switch {
		case n <= linearMax/2:
			sw.table = nil
		case len(t) > minTable && 4*n < len(t) && (len(t) <= 1<<16 || 8*n < len(t)):
			// Above 2^16 entries rebuilding rehashes every record, so
			// big indexes wait for 1/8 load: the rebuild then usually
			// lands at 2^16 entries or fewer, where tags suffice.
			f.buildTable(sw, tableSize(n))
		}
	}
	return r
}

// allocIP stores ip in the arena and returns its slot. A full arena is
// compacted into a new one; bytes already handed out are never rewritten.
func (f *famOps) allocIP(sw *swarm, ip []byte) uint32 {
	if len(sw.ips)+f.ipLen > cap(sw.ips) {
		f.compactIPs(sw, grown(sw.size()+1))
	}
	o := len(sw.ips)
	sw.ips = append(sw.ips, ip...)
	return uint32(o / f.ipLen)
}

// compactIPs copies the live addresses into a new arena with room for
// slots addresses and renumbers the records' slots.
func (f *famOps) compactIPs(sw *swarm, slots int) {
	ips := make([]byte, 0, max(slots, minIPSlots)*f.ipLen)
	for _, set := range [2][]rec{sw.seeders, sw.leechers} {
		for i := range set {
			r := &set[i]
			o := int(r.ip) * f.ipLen
			r.ip = uint32(len(ips) / f.ipLen)
			ips = append(ips, sw.ips[o:o+f.ipLen]...)
		}
	}
	sw.ips = ips
	sw.dead = 0
}

// freeIP accounts for a deleted peer's arena slot.
func (f *famOps) freeIP(sw *swarm) {
	sw.dead++
	live := sw.size()
	switch {
	case live == 0 && cap(sw.ips) > shrinkAbove*f.ipLen:
		sw.ips, sw.dead = nil, 0
	case live == 0:
		// Keep the small array but start after the bytes handed out.
		sw.ips, sw.dead = sw.ips[len(sw.ips):], 0
	case len(sw.ips) >= shrinkAbove*f.ipLen && int(sw.dead) > 3*live:
		f.compactIPs(sw, grown(live))
	}
}
