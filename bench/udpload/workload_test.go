package main

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestInfoHashIsStable(t *testing.T) {
	// compare.sh, the whitelist and the Lua script rely on these values.
	if got := InfoHashHex(0); got != "af04fdf38148e12e8ebf7e139764ff0827fde574" {
		t.Fatalf("InfoHashHex(0) = %s", got)
	}
	if InfoHash(1) == InfoHash(2) {
		t.Fatal("hashes collide")
	}
}

func TestPeerIdentity(t *testing.T) {
	id := PeerID("-BU0001-", 42, 7)
	// Pinned: bench/wrk/announce.lua computes the same tails.
	if got := string(id[:]); got != "-BU0001-b0eb0258e74f" {
		t.Fatalf("PeerID(42, 7) = %q", got)
	}
	seen := map[[20]byte]bool{}
	var spread [4]int
	for i := range 1000 {
		for j := range 100 {
			id := PeerID("-BU0001-", i, j)
			if seen[id] {
				t.Fatalf("peer id %q repeats", id)
			}
			seen[id] = true
			spread[id[16]%4]++ // as a shard index over the id's bytes 16..19 would fall
		}
	}
	// Hex digits mod 4 fall 4:5:4:3 (as alphanumeric tails of real clients
	// fall unevenly too): what matters is that no bucket is empty or takes all.
	for k, n := range spread {
		if n < 15_000 || n > 35_000 {
			t.Errorf("byte 16 mod 4 = %d for %d of 100000 ids: not spread", k, n)
		}
	}
	if id := PeerID("-BU0001-", maxTorrents-1, maxPeersPerTorrent-1); id == PeerID("-BU0001-", maxTorrents-2, maxPeersPerTorrent-1) {
		t.Fatal("largest ids collide")
	}
	if PeerPort(0) != 1024 || PeerPort(maxPeersPerTorrent-1) != 65023 {
		t.Fatal("ports out of range")
	}
	seeders := 0
	for i := range 40 {
		for j := range 100 {
			if IsSeeder(i, j) {
				seeders++
			}
		}
	}
	if seeders != 3000 {
		t.Fatalf("seeders = %d of 4000, want 75 %%", seeders)
	}
}

func TestPickTorrentHead(t *testing.T) {
	m := Model{Torrents: 1000, Peers: 10, Head: 0.05, Uniform: 0.2}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 200_000
	head := 0
	for range n {
		i := m.PickTorrent(r)
		if i < 0 || i >= m.Torrents {
			t.Fatalf("torrent %d out of range", i)
		}
		if i < 50 {
			head++
		}
	}
	got, want := float64(head)/n, m.HeadShare(50)
	if math.Abs(got-want) > 0.01 {
		t.Fatalf("share of the top 50 torrents = %.3f, want %.3f", got, want)
	}
	if want < 0.5 {
		t.Fatalf("head too flat: top 5%% gets %.2f", want)
	}
}

func TestModelValidate(t *testing.T) {
	bad := []Model{
		{Torrents: 0, Peers: 1, Head: 0.1},
		{Torrents: 1, Peers: 0, Head: 0.1},
		{Torrents: 1, Peers: maxPeersPerTorrent + 1, Head: 0.1},
		{Torrents: 1, Peers: 1, Head: 0},
		{Torrents: 1, Peers: 1, Head: 0.1, Uniform: 2},
	}
	for _, m := range bad {
		if m.Validate() == nil {
			t.Errorf("%+v accepted", m)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:6969", "127.3.2.1:1", "[::1]:6969", "localhost:6969"} {
		if _, err := loopbackTarget(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"10.0.0.1:6969", "192.168.1.1:6969", "8.8.8.8:53", "0.0.0.0:6969", "[::]:6969", "[2001:db8::1]:6969", "127.0.0.1", "127.0.0.1:0", ""} {
		if _, err := loopbackTarget(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestOptionBounds(t *testing.T) {
	base := func() options {
		return options{target: "127.0.0.1:6969", sockets: 4, window: 2, duration: time.Second, requests: 10,
			timeout: time.Second, model: Model{Torrents: 10, Peers: 10, Head: 0.1}, numWant: 30, scrapeHashes: 1, peerPrefix: "-BU0001-"}
	}
	o := base()
	if _, err := o.validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*options){
		"duration":  func(o *options) { o.duration = time.Hour },
		"requests":  func(o *options) { o.requests = maxRequests + 1 },
		"no budget": func(o *options) { o.requests = 0 },
		"sockets":   func(o *options) { o.sockets = 0 },
		"window":    func(o *options) { o.window = maxWindow + 1 },
		"prefix":    func(o *options) { o.peerPrefix = "short" },
		"passkey":   func(o *options) { o.passkey = "a/b" },
		"target":    func(o *options) { o.target = "10.1.2.3:6969" },
	} {
		o := base()
		mut(&o)
		if _, err := o.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	o = base()
	o.fill, o.requests, o.scrapeEvery = true, 1_000_000, 101
	if _, err := o.validate(); err != nil || o.requests != 100 || o.scrapeEvery != 0 {
		t.Fatalf("fill: requests %d scrape-every %d err %v", o.requests, o.scrapeEvery, err)
	}
	var out, errOut strings.Builder
	if code := run([]string{"-target", "192.168.0.1:6969"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "not loopback") {
		t.Fatalf("run with a LAN target: code %d, stderr %q", code, errOut.String())
	}
}
