package main

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// Limits of the peer model: a peer's port is 1024+j and its peer id carries
// the torrent and peer numbers in six decimal digits each.
const (
	maxTorrents        = 1_000_000
	maxPeersPerTorrent = 64_000
)

// InfoHash is the benchmark's torrent number i: SHA-1 of
// "seedpay-bench-<i>". compare.sh registers/whitelists exactly these (see
// -print-hashes) and bench/wrk/announce.lua reads the same list.
func InfoHash(i int) [20]byte {
	return sha1.Sum([]byte("seedpay-bench-" + strconv.Itoa(i)))
}

// InfoHashHex is InfoHash in lower-case hex.
func InfoHashHex(i int) string {
	h := InfoHash(i)
	return hex.EncodeToString(h[:])
}

// PeerID is peer j of torrent i: the 8-byte client prefix, then 12 hex
// digits of peerTail(i, j). Like a real client's random tail, every byte
// varies from peer to peer (trackers may hash or shard on any of them), and
// distinct peers keep distinct ids. bench/wrk/announce.lua computes the same.
func PeerID(prefix string, i, j int) [20]byte {
	var id [20]byte
	copy(id[:8], prefix)
	l, r := peerTail(i, j)
	putHex(id[8:14], l)
	putHex(id[14:20], r)
	return id
}

// feistelKeys are the round constants of peerTail (also in announce.lua).
var feistelKeys = [4]uint32{1234567, 7654321, 3141592, 2718281}

// peerTail mixes (i, j) with a 4-round Feistel network on 24-bit halves: a
// bijection on 48 bits, so distinct (i, j) give distinct tails. The round
// function only needs 40-bit products, which Lua's doubles hold exactly.
func peerTail(i, j int) (l, r uint32) {
	l, r = uint32(i)&0xffffff, uint32(j)&0xffffff
	for _, k := range feistelKeys {
		l, r = r, l^((r*40503+k)&0xffffff)
	}
	return l, r
}

func putHex(b []byte, v uint32) {
	const digits = "0123456789abcdef"
	for k := len(b) - 1; k >= 0; k-- {
		b[k] = digits[v&0xf]
		v >>= 4
	}
}

// PeerPort is the announced port of peer j: distinct within a torrent, since
// trackers that key peers by address and port (opentracker) would otherwise
// merge peers that share the loopback address.
func PeerPort(j int) uint16 { return uint16(1024 + j) }

// IsSeeder makes three peers in four seeders (75 %), fixed per peer.
func IsSeeder(i, j int) bool { return (i+j)%4 != 0 }

// Model is the swarm population and how requests spread over it.
type Model struct {
	Torrents int     // torrents 0..Torrents-1
	Peers    int     // peers per torrent 0..Peers-1
	Head     float64 // mean of the exponential head as a fraction of Torrents
	Uniform  float64 // share of requests spread uniformly over all torrents
}

// Validate checks the model's bounds.
func (m Model) Validate() error {
	switch {
	case m.Torrents < 1 || m.Torrents > maxTorrents:
		return fmt.Errorf("torrents must be 1..%d", maxTorrents)
	case m.Peers < 1 || m.Peers > maxPeersPerTorrent:
		return fmt.Errorf("peers per torrent must be 1..%d", maxPeersPerTorrent)
	case !(m.Head > 0) || m.Head > 1:
		return fmt.Errorf("head must be in (0,1]")
	case m.Uniform < 0 || m.Uniform > 1:
		return fmt.Errorf("uniform must be in [0,1]")
	}
	return nil
}

// PickTorrent draws a torrent number: with probability Uniform any torrent,
// otherwise an exponential with mean Head x Torrents (torrent 0 is the most
// popular); a draw past the last torrent falls back to uniform.
func (m Model) PickTorrent(r *rand.Rand) int {
	if r.Float64() >= m.Uniform {
		i := int(r.ExpFloat64() * m.Head * float64(m.Torrents))
		if i < m.Torrents {
			return i
		}
	}
	return r.IntN(m.Torrents)
}

// HeadShare is the expected share of requests that go to the first k
// torrents (for the report and tests).
func (m Model) HeadShare(k int) float64 {
	k = min(k, m.Torrents)
	mean := m.Head * float64(m.Torrents)
	exp := 1 - math.Exp(-float64(k)/mean)
	tail := math.Exp(-float64(m.Torrents) / mean) // exponential draws past the end
	uni := float64(k) / float64(m.Torrents)
	return m.Uniform*uni + (1-m.Uniform)*(exp+tail*uni)
}
