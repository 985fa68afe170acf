package tracker

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/frontend"
	udpfront "github.com/chihaya/chihaya/frontend/udp"
	"github.com/chihaya/chihaya/middleware"
	"github.com/chihaya/chihaya/pkg/timecache"
	"github.com/chihaya/chihaya/storage/memory"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/middleware/account"
	"github.com/seedpay/seedpay/middleware/auth"
	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/middleware/swarm"
	"github.com/seedpay/seedpay/rewards"
	"github.com/seedpay/seedpay/tracker/peerstore"
)

func TestUDPAnnounceAndScrape(t *testing.T) {
	s := newStack(t, nil)
	alice, bob := s.user(t, "alice"), s.user(t, "bob")
	s.torrent(t, ihX)

	c := s.udp(t)
	seed := announce{peerID: peerID(1), ih: ihX, port: 7001, left: 0, numwant: -1}
	r := c.announce(seed, "/"+alice.Passkey)
	if len(r.peers) != 0 {
		t.Fatalf("lone seeder got %v, want no peers (never itself)", r.peers)
	}
	if r.interval != 60 {
		t.Fatalf("interval %d, want 60", r.interval)
	}
	// The "/announce/<passkey>" form that users paste from HTTP URLs works too.
	leech := announce{peerID: peerID(2), ih: ihX, port: 7002, left: 100, event: "started", numwant: -1}
	r = c.announce(leech, "/announce/"+bob.Passkey)
	if len(r.peers) != 1 || r.peers[0] != "127.0.0.1:7001" || r.seeders != 1 || r.leechers != 1 {
		t.Fatalf("leecher got %+v, want the seeder 127.0.0.1:7001 and counts 1/1", r)
	}
	leech.left, leech.event = 0, "completed"
	r = c.announce(leech, "/"+bob.Passkey)
	for _, p := range r.peers {
		if p == "127.0.0.1:7002" {
			t.Fatalf("requester in its own peer list: %v", r.peers)
		}
	}

	// Scrape with the passkey in BEP 41 URL data after the hashes.
	other := bittorrent.InfoHashFromString("oooooooooooooooooooo")
	b := c.roundTrip(c.scrapePacket([]bittorrent.InfoHash{ihX, other}, "/"+alice.Passkey), udpScrape)
	if len(b) != 8+2*12 {
		t.Fatalf("scrape reply %d bytes, want %d", len(b), 8+2*12)
	}
	got := [6]uint32{}
	for i := range got {
		got[i] = binary.BigEndian.Uint32(b[8+4*i:])
	}
	if want := [6]uint32{2, 1, 0, 0, 0, 0}; got != want {
		t.Fatalf("scrape seeders/completed/leechers %v, want %v", got, want)
	}

	// Refusals answer with action 3 and the reason.
	for _, tc := range []struct{ name, path, want string }{
		{"unknown passkey", "/" + strings.Repeat("q", 32), auth.ErrUnknownPasskey.Error()},
		{"no URL data", "", auth.ErrMissingPasskey.Error()},
	} {
		if msg := c.announceError(leech, tc.path); msg != tc.want {
			t.Errorf("%s: error %q, want %q", tc.name, msg, tc.want)
		}
	}
	b = c.roundTrip(c.scrapePacket([]bittorrent.InfoHash{ihX}, ""), udpError)
	if msg := string(b[8:]); msg != auth.ErrMissingPasskey.Error() {
		t.Errorf("scrape without passkey: %q", msg)
	}
}

func TestUDPConnectionChecks(t *testing.T) {
	s := newStack(t, nil)
	c := s.udp(t)
	// A forged connection id gets an error, not an answer.
	c.connID[7] ^= 0xff
	b := c.roundTrip(c.announcePacket(announce{peerID: peerID(1), ih: ihX, port: 1, numwant: -1}, "/x"), udpError)
	if msg := string(b[8:]); msg != errUDPConnID.Error() {
		t.Fatalf("forged connection id: %q", msg)
	}
	c.connID[7] ^= 0xff
	// An unknown action gets an error.
	pkt := append(c.connID[:0:0], c.connID[:]...)
	pkt = binary.BigEndian.AppendUint32(pkt, 9)
	pkt = c.appendTx(pkt)
	if b := c.roundTrip(pkt, udpError); string(b[8:]) != errUDPAction.Error() {
		t.Fatalf("unknown action: %q", b[8:])
	}
	// A packet too short for a transaction id gets nothing.
	if _, err := c.conn.Write([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.conn.Read(make([]byte, 64)); err == nil {
		t.Fatalf("short packet answered with %d bytes", n)
	}
}

const udpDroppedMetric = "seedpay_tracker_udp_dropped_total"

// TestUDPDropsTruncated: a datagram longer than the read buffer is dropped
// unanswered and counted, in both I/O modes.
func TestUDPDropsTruncated(t *testing.T) {
	for _, batch := range []int{1, 8} {
		t.Run(fmt.Sprint("batch", batch), func(t *testing.T) {
			// One worker: the datagrams are handled in the order sent.
			s := newStack(t, func(c *Config, _ *auth.Config) { c.UDPSockets, c.UDPWorkers, c.UDPBatch = 1, 1, batch })
			u := s.user(t, "alice")
			c := s.udp(t)
			// A scrape of 150 hashes: its first 2048 bytes would parse.
			hashes := make([]bittorrent.InfoHash, 150)
			for i := range hashes {
				hashes[i] = ihX
			}
			big := c.scrapePacket(hashes, "")
			if len(big) <= udpMaxPacket {
				t.Fatalf("test datagram of %d bytes fits the buffer", len(big))
			}
			if _, err := c.conn.Write(big); err != nil {
				t.Fatal(err)
			}
			// The next request's answer is the first: the long one got none.
			c.roundTrip(c.scrapePacket([]bittorrent.InfoHash{ihX}, "/"+u.Passkey), udpScrape)
			if got := counterValue(t, s.reg, udpDroppedMetric, "reason", "truncated"); got != 1 {
				t.Fatalf("truncated drops %v, want 1", got)
			}
		})
	}
}

// TestUDPAnnounceV6ActionFromIPv4: action 4 (opentracker's IPv6 announce,
// a 16-byte IP field) from an IPv4 client is answered with action 4 and
// 18-byte peer entries, the IPv4 peers IPv4-mapped; action 1 from the same
// client keeps 6-byte entries.
func TestUDPAnnounceV6ActionFromIPv4(t *testing.T) {
	_, w, _, _ := newBareFrontend(t)
	client := func(addr string) (*udpClient, netip.AddrPort) {
		ap := netip.MustParseAddrPort(addr)
		a4 := ap.Addr().As4()
		return &udpClient{t: t, connID: [8]byte(w.gen.appendID(nil, a4[:], timecache.Now()))}, ap
	}
	seeder, seederAddr := client("10.0.0.1:5000")
	out := w.handle(seeder.announcePacket(announce{peerID: peerID(1), ih: ihX, port: 7001, numwant: -1}, "/"+fuzzPasskey), seederAddr, nil)
	if got := binary.BigEndian.Uint32(out); got != udpAnnounce {
		t.Fatalf("seeder announce: action %d (%q)", got, out[8:])
	}

	leecher, leecherAddr := client("10.0.0.2:5000")
	a := announce{peerID: peerID(2), ih: ihX, port: 7002, left: 1, numwant: -1}
	v4 := leecher.announcePacket(a, "/"+fuzzPasskey)
	v6 := append(append(append([]byte(nil), v4[:88]...), make([]byte, 12)...), v4[88:]...) // 16-byte IP field
	binary.BigEndian.PutUint32(v6[8:], udpAnnounceV6)
	want6 := append(append(v4InV6Prefix[:], 10, 0, 0, 1), 0x1b, 0x59) // ::ffff:10.0.0.1 port 7001
	want4 := []byte{10, 0, 0, 1, 0x1b, 0x59}
	for _, tc := range []struct {
		name   string
		pkt    []byte
		action uint32
		peers  []byte
	}{
		{"action 4", v6, udpAnnounceV6, want6},
		{"action 1", v4, udpAnnounce, want4},
	} {
		out = w.handle(tc.pkt, leecherAddr, out[:0])
		if got := binary.BigEndian.Uint32(out); got != tc.action {
			t.Fatalf("%s: reply action %d (%q), want %d", tc.name, got, out[8:], tc.action)
		}
		if len(out) < 20 || !bytes.Equal(out[20:], tc.peers) {
			t.Fatalf("%s: peers %x, want %x", tc.name, out[min(len(out), 20):], tc.peers)
		}
	}
}

// TestUDPConnectionIDExpiry: a connection id is refused once older than
// BEP 15's 2 minutes, or when made further in the future than the allowed
// clock skew; within both it is accepted.
func TestUDPConnectionIDExpiry(t *testing.T) {
	_, w, _, _ := newBareFrontend(t)
	from := netip.MustParseAddrPort("10.0.0.1:5000")
	a4 := from.Addr().As4()
	now := timecache.Now()
	skew := w.f.skew
	for _, tc := range []struct {
		name string
		made time.Time
		ok   bool
	}{
		{"fresh", now, true},
		{"just within the TTL", now.Add(-udpConnIDTTL*time.Second + 10*time.Second), true},
		{"expired", now.Add(-udpConnIDTTL*time.Second - 10*time.Second), false},
		{"day old", now.Add(-24 * time.Hour), false},
		{"ahead within the skew", now.Add(skew - 10*time.Second), true},
		{"ahead beyond the skew", now.Add(skew + 10*time.Second), false},
	} {
		c := &udpClient{t: t, connID: [8]byte(w.gen.appendID(nil, a4[:], tc.made))}
		out := w.handle(c.scrapePacket([]bittorrent.InfoHash{ihX}, "/"+fuzzPasskey), from, nil)
		want := uint32(udpScrape)
		if !tc.ok {
			want = udpError
		}
		if got := binary.BigEndian.Uint32(out); got != want || !tc.ok && string(out[8:]) != errUDPConnID.Error() {
			t.Errorf("%s: reply action %d (%q), want %d", tc.name, got, out[8:], want)
		}
	}
	// The boundary, on the generator: valid at exactly the TTL, not a
	// second later.
	id := w.gen.appendID(nil, a4[:], now)
	if !w.gen.valid(id, a4[:], now.Add(udpConnIDTTL*time.Second), skew) || w.gen.valid(id, a4[:], now.Add((udpConnIDTTL+1)*time.Second), skew) {
		t.Error("connection id TTL boundary off")
	}
	// An id made for another address is refused.
	if w.gen.valid(id, []byte{10, 0, 0, 2}, now, skew) {
		t.Error("connection id valid for another address")
	}
}

func TestParseUDPScrape(t *testing.T) {
	h := func(c byte) []byte { return bytes.Repeat([]byte{c}, 20) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	pk := "/" + strings.Repeat("k", 32)
	// Hashes starting with 2 <len>: URL data ending in an end option, and
	// URL data filling the hash.
	optHash := cat([]byte{2, 17}, bytes.Repeat([]byte{'x'}, 17), []byte{0})
	fullOptHash := cat([]byte{2, 18}, bytes.Repeat([]byte{'x'}, 18))
	tests := []struct {
		name     string
		body     []byte
		hashes   int
		urlData  string
		wantErr  bool
		maxHashe uint32
	}{
		{name: "one hash", body: h('a'), hashes: 1},
		{name: "three hashes", body: cat(h('a'), h('b'), h('c')), hashes: 3},
		{name: "hash and passkey", body: cat(h('a'), urlDataOption(pk)), hashes: 1, urlData: pk},
		{name: "two hashes, passkey without end option", body: cat(h('a'), h('b'), []byte{2, byte(len(pk))}, []byte(pk)), hashes: 2, urlData: pk},
		{name: "passkey split over two options with padding", body: cat(h('a'), []byte{1, 2, 3}, []byte(pk[:3]), []byte{2, byte(len(pk) - 3)}, []byte(pk[3:]), []byte{0}), hashes: 1, urlData: pk},
		{name: "capped hash count", body: cat(h('a'), h('b'), h('c'), urlDataOption(pk)), hashes: 2, urlData: pk, maxHashe: 2},
		// A later hash that reads as a complete option list (its URL data
		// ends at a 0 or at the end of the packet) is still a hash: URL
		// data is a path.
		{name: "later hash like an option list", body: cat(h('a'), optHash, h('c')), hashes: 3},
		{name: "last hash like an option list", body: cat(h('a'), h('b'), fullOptHash), hashes: 3},
		{name: "hash like an option list, then passkey", body: cat(h('a'), optHash, h('c'), urlDataOption(pk)), hashes: 3, urlData: pk},
		{name: "URL data not a path", body: cat(h('a'), urlDataOption("kkkk")), wantErr: true},
		{name: "empty", body: nil, wantErr: true},
		{name: "longer than a datagram", body: bytes.Repeat(h('a'), 102), wantErr: true},
		{name: "options only", body: urlDataOption(pk), wantErr: true},
		{name: "truncated option", body: cat(h('a'), []byte{2, 40}, []byte("/short")), wantErr: true},
		{name: "unknown option", body: cat(h('a'), []byte{9, 1, 1}), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			max := tt.maxHashe
			if max == 0 {
				max = 50
			}
			var params urlParams
			hashes, err := parseUDPScrape(tt.body, max, nil, &params)
			if err == nil {
				err = params.parse()
			}
			data := params.RawPath()
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %d hashes, %q; want an error", len(hashes), data)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(hashes) != tt.hashes || data != tt.urlData {
				t.Fatalf("got %d hashes, %q; want %d, %q", len(hashes), data, tt.hashes, tt.urlData)
			}
			for i, ih := range hashes {
				if !bytes.Equal(ih[:], tt.body[20*i:20*i+20]) {
					t.Fatalf("hash %d = %x", i, ih)
				}
			}
		})
	}
}

// fixedLookup is an in-memory registry for tests that need no Redis.
type fixedLookup struct {
	users    map[string]*registry.User
	torrents map[bittorrent.InfoHash]*registry.Entry
}

func (f fixedLookup) UserByPasskey(pk string) (*registry.User, bool) {
	u, ok := f.users[pk]
	return u, ok
}
func (f fixedLookup) Torrent(ih bittorrent.InfoHash) (*registry.Entry, bool) {
	e, ok := f.torrents[ih]
	return e, ok
}
func (f fixedLookup) CountCompleted(bittorrent.InfoHash) {}
func (f fixedLookup) Completed(ih bittorrent.InfoHash) (int64, bool) {
	_, ok := f.torrents[ih]
	return 0, ok
}

const fuzzPasskey = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz"

// newBareLogic is the tracker logic with the real hooks and peer store but an
// in-memory registry, for fuzzing and benchmarks.
func newBareLogic(t testing.TB) (*Logic, *Metrics) {
	return newBareLogicWith(t, nil)
}

// newBareLogicWith is newBareLogic with extra PostHooks.
func newBareLogicWith(t testing.TB, post []middleware.Hook) (*Logic, *Metrics) {
	t.Helper()
	look := benchLookup()
	peers, err := peerstore.New(peerstore.Config{ShardCount: 16, PeerLifetime: time.Minute, GCInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	hook, err := auth.New(auth.Config{Private: true}, look, reg)
	if err != nil {
		t.Fatal(err)
	}
	logic := NewLogic(middleware.ResponseConfig{AnnounceInterval: time.Minute, MinAnnounceInterval: time.Minute},
		[]middleware.Hook{hook, swarm.NewResponder(peers, look)}, append([]middleware.Hook{swarm.NewCompletionCounter(look)}, post...))
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { <-logic.Stop(); <-peers.Stop() })
	return logic, m
}

func benchLookup() fixedLookup {
	return fixedLookup{
		users:    map[string]*registry.User{fuzzPasskey: {ID: "u1", Passkey: fuzzPasskey}},
		torrents: map[bittorrent.InfoHash]*registry.Entry{ihX: {Torrent: registry.Torrent{InfoHash: ihX, Size: 1}}},
	}
}

// newChihayaLogic is the same hooks and store under chihaya's
// middleware.Logic: the frontends' allocating fallback path.
func newChihayaLogic(t testing.TB) (*middleware.Logic, *Metrics) {
	t.Helper()
	look := benchLookup()
	peers, err := peerstore.New(peerstore.Config{ShardCount: 16, PeerLifetime: time.Minute, GCInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	hook, err := auth.New(auth.Config{Private: true}, look, reg)
	if err != nil {
		t.Fatal(err)
	}
	logic := middleware.NewLogic(middleware.ResponseConfig{AnnounceInterval: time.Minute, MinAnnounceInterval: time.Minute}, peers,
		[]middleware.Hook{hook, swarm.NewResponder(peers, look)}, []middleware.Hook{swarm.NewCompletionCounter(look)})
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { <-logic.Stop(); <-peers.Stop() })
	return logic, m
}

// newBareFrontend is the UDP frontend on newBareLogic, with a worker, a
// socket to send from and the address of a socket nobody reads.
func newBareFrontend(t testing.TB) (*udpFrontend, *udpWorker, *net.UDPConn, netip.AddrPort) {
	t.Helper()
	logic, m := newBareLogic(t)
	f, err := newUDPFrontend(DefaultConfig(), logic, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	// Replies go to a socket nobody reads: the kernel drops what overflows.
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); sink.Close() })
	return f, f.newWorker(), conn, sink.LocalAddr().(*net.UDPAddr).AddrPort()
}

// FuzzUDPRequest feeds arbitrary bytes after a valid connection id through
// the whole UDP path: parsing (including BEP 41 URL data on announce and
// scrape), hooks and reply encoding. It must never panic, and every answer
// must echo the transaction id.
func FuzzUDPRequest(f *testing.F) {
	c := &udpClient{}
	valid := c.announcePacket(announce{peerID: peerID(1), ih: ihX, port: 6881, numwant: -1}, "/"+fuzzPasskey)
	f.Add(valid[8:])
	f.Add((&udpClient{}).scrapePacket([]bittorrent.InfoHash{ihX}, "/"+fuzzPasskey)[8:])
	f.Add([]byte{0, 0, 0, 2, 1, 2, 3, 4})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0})

	_, w, _, to := newBareFrontend(f)
	ip := to.Addr().AsSlice()
	// The seeds get past the connection id: the valid announce is answered.
	pkt := append(w.gen.appendID(nil, ip, timecache.Now()), valid[8:]...)
	if out := w.handle(pkt, to, nil); len(out) < 8 || binary.BigEndian.Uint32(out) != udpAnnounce {
		f.Fatalf("the valid seed got %q, want an announce reply", out)
	}
	f.Fuzz(func(t *testing.T, rest []byte) {
		pkt := append(w.gen.appendID(nil, ip, timecache.Now()), rest...)
		out := w.handle(pkt, to, nil)
		if len(out) > 0 && len(pkt) >= 16 && !bytes.Equal(out[4:8], pkt[12:16]) {
			t.Fatalf("reply tx %x, want %x", out[4:8], pkt[12:16])
		}
	})
}

// newUpstreamLogic is chihaya's logic and memory store with no hooks of
// ours: the baseline the benchmarks compare against in the same run.
func newUpstreamLogic(t testing.TB) (frontend.TrackerLogic, *Metrics) {
	t.Helper()
	peers, err := memory.New(memory.Config{GarbageCollectionInterval: time.Minute, PrometheusReportingInterval: time.Minute, PeerLifetime: time.Minute, ShardCount: 16})
	if err != nil {
		t.Fatal(err)
	}
	logic := middleware.NewLogic(middleware.ResponseConfig{AnnounceInterval: time.Minute, MinAnnounceInterval: time.Minute}, peers, nil, nil)
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { <-logic.Stop(); <-peers.Stop() })
	return logic, m
}

// nopSink is an accounting sink that drops its batches.
type nopSink struct{}

func (nopSink) Account(context.Context, []rewards.Event) error { return nil }

// newAccountingLogic is newBareLogic with the accounting PostHook, its
// flusher running into a sink that drops the batches.
func newAccountingLogic(t testing.TB) (frontend.TrackerLogic, *Metrics) {
	t.Helper()
	hook, err := account.New(account.Config{}, benchLookup(), nopSink{}, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = hook.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return newBareLogicWith(t, []middleware.Hook{hook})
}

var benchLogics = []struct {
	name string
	make func(testing.TB) (frontend.TrackerLogic, *Metrics)
}{
	{"seedpay", func(t testing.TB) (frontend.TrackerLogic, *Metrics) { return newBareLogic(t) }},
	{"seedpay+accounting", newAccountingLogic},
	{"seedpay-chihaya-logic", func(t testing.TB) (frontend.TrackerLogic, *Metrics) { return newChihayaLogic(t) }},
	{"chihaya-no-hooks", newUpstreamLogic},
}

// BenchmarkUDPAnnounce measures one announce through the UDP handler:
// parsing, every hook (auth, swarm update and peer list from the peer
// store, completion counter, and accounting where named), the reply
// encoding and its sendto, against the same hooks under chihaya's
// middleware.Logic and against chihaya's logic and store without our hooks,
// on the same frontend and inputs. Steady state: the 1000 peers are in the
// swarm before the timer starts.
func BenchmarkUDPAnnounce(b *testing.B) {
	for _, bl := range benchLogics {
		b.Run(bl.name, func(b *testing.B) {
			logic, m := bl.make(b)
			fr, w, conn, to := newBareFrontend(b)
			fr.metrics = m
			fr.into = intoOf(logic)
			gen := newConnIDGen(fr.key)
			a4 := to.Addr().As4()
			c := &udpClient{connID: [8]byte(gen.appendID(nil, a4[:], timecache.Now()))}
			pkts := make([][]byte, 1000)
			for i := range pkts {
				pkts[i] = c.announcePacket(announce{peerID: peerID(i), ih: ihX, port: uint16(1000 + i), left: uint64(i % 4), numwant: 30}, "/"+fuzzPasskey)
			}
			out := make([]byte, 0, fr.replyCap)
			for _, p := range pkts {
				if out = w.handle(p, to, out[:0]); binary.BigEndian.Uint32(out) != udpAnnounce {
					b.Fatalf("announce failed: %q", out[8:])
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				out = w.handle(pkts[i%len(pkts)], to, out[:0])
				_, _ = conn.WriteToUDPAddrPort(out, to)
			}
		})
	}
}

// BenchmarkUDPScrape measures one scrape of 5 info hashes through the
// handler, reply included.
func BenchmarkUDPScrape(b *testing.B) {
	_, w, conn, to := newBareFrontend(b)
	gen := newConnIDGen(w.f.key)
	a4 := to.Addr().As4()
	c := &udpClient{connID: [8]byte(gen.appendID(nil, a4[:], timecache.Now()))}
	pkt := c.scrapePacket([]bittorrent.InfoHash{ihX, ihX, ihX, ihX, ihX}, "/"+fuzzPasskey)
	out := make([]byte, 0, w.f.replyCap)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = w.handle(pkt, to, out[:0])
		_, _ = conn.WriteToUDPAddrPort(out, to)
	}
	if binary.BigEndian.Uint32(out) != udpScrape {
		b.Fatalf("scrape failed: %q", out[8:])
	}
}

// BenchmarkHTTPAnnounce measures one HTTP announce through the router,
// chihaya's parser, every hook and the bencoding, without the TCP socket.
func BenchmarkHTTPAnnounce(b *testing.B) {
	for _, bl := range benchLogics {
		b.Run(bl.name, func(b *testing.B) {
			logic, m := bl.make(b)
			h := newHTTPFrontend(DefaultConfig(), logic, m, zap.NewNop()).srv.Handler
			reqs := make([]*http.Request, 1000)
			for i := range reqs {
				a := announce{peerID: peerID(i), ih: ihX, port: uint16(1000 + i), left: uint64(i % 4), numwant: 30, compact: true}
				reqs[i] = httptest.NewRequest(http.MethodGet, "/announce/"+fuzzPasskey+"?"+a.query(), nil)
				reqs[i].RemoteAddr = fmt.Sprintf("10.0.%d.%d:5000", i/250, i%250+1)
			}
			w := &discardWriter{h: http.Header{}}
			for _, r := range reqs {
				h.ServeHTTP(w, r)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.ServeHTTP(w, reqs[i%len(reqs)])
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// TestUDPSocketsAndBatchModes runs announces and scrapes from several
// client sockets against each I/O mode: one read and write per packet,
// batches, and several SO_REUSEPORT sockets with batches.
func TestUDPSocketsAndBatchModes(t *testing.T) {
	modes := []struct {
		name           string
		sockets, batch int
	}{
		{"single", 1, 1},
		{"batch", 1, 8},
		{"reuseport", 3, 16},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			s := newStack(t, func(c *Config, _ *auth.Config) { c.UDPSockets, c.UDPBatch, c.UDPWorkers = mode.sockets, mode.batch, 4 })
			if got := len(s.srv.udpConns); got != mode.sockets {
				t.Fatalf("%d sockets, want %d", got, mode.sockets)
			}
			u := s.user(t, "alice")
			s.torrent(t, ihX)
			const clients = 8
			for i := range clients {
				c := s.udp(t)
				r := c.announce(announce{peerID: peerID(i), ih: ihX, port: uint16(7000 + i), left: 0, numwant: 50}, "/"+u.Passkey)
				if int(r.seeders) != i+1 || len(r.peers) != 0 {
					t.Fatalf("client %d: %+v, want %d seeders and no peers (seeders get leechers)", i, r, i+1)
				}
				b := c.roundTrip(c.scrapePacket([]bittorrent.InfoHash{ihX}, "/"+u.Passkey), udpScrape)
				if got := binary.BigEndian.Uint32(b[8:]); int(got) != i+1 {
					t.Fatalf("client %d: scrape says %d seeders", i, got)
				}
			}
			c := s.udp(t)
			r := c.announce(announce{peerID: peerID(99), ih: ihX, port: 7099, left: 5, numwant: 50}, "/"+u.Passkey)
			if len(r.peers) != clients {
				t.Fatalf("leecher got %d peers, want %d", len(r.peers), clients)
			}
		})
	}
}

// FuzzUDPAnnounceParse checks our allocation-free announce parser against
// chihaya's udp.ParseAnnounce: the same request or the same error.
func FuzzUDPAnnounceParse(f *testing.F) {
	c := &udpClient{}
	f.Add(c.announcePacket(announce{peerID: peerID(1), ih: ihX, port: 6881, numwant: -1}, "/"+fuzzPasskey), false)
	f.Add(c.announcePacket(announce{peerID: peerID(2), ih: ihX, port: 1, left: 9, event: "stopped", numwant: 3}, "/announce?passkey=x&a=%41"), false)
	f.Add(c.announcePacket(announce{peerID: peerID(3), ih: ihX, port: 0, numwant: 0}, ""), true)
	src := []byte{10, 1, 2, 3}
	f.Fuzz(func(t *testing.T, pkt []byte, v6 bool) {
		opts := udpfront.ParseOptions{MaxNumWant: 50, DefaultNumWant: 30, MaxScrapeInfoHashes: 50}
		want, wantErr := udpfront.ParseAnnounce(udpfront.Request{Packet: pkt, IP: net.IP(src)}, v6, opts)
		var got bittorrent.AnnounceRequest
		var ip [16]byte
		var params urlParams
		gotErr := parseUDPAnnounce(pkt, v6, src, 50, &got, &ip, &params)
		if (wantErr == nil) != (gotErr == nil) || wantErr != nil && wantErr.Error() != gotErr.Error() {
			t.Fatalf("error %v, chihaya's %v", gotErr, wantErr)
		}
		if wantErr != nil {
			return
		}
		if got.Params.RawPath() != want.Params.RawPath() || got.Params.RawQuery() != want.Params.RawQuery() {
			t.Fatalf("params %q %q, chihaya's %q %q", got.Params.RawPath(), got.Params.RawQuery(), want.Params.RawPath(), want.Params.RawQuery())
		}
		got.Params, want.Params = nil, nil
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", *want) {
			t.Fatalf("request\n%+v\nchihaya's\n%+v", got, *want)
		}
	})
}

// TestUDPReusePortRefusesASecondTracker: with several SO_REUSEPORT sockets
// bound, a second tracker on the same address fails to bind (instead of
// silently taking a share of the traffic), whatever its socket count.
func TestUDPReusePortRefusesASecondTracker(t *testing.T) {
	first, err := listenUDP("127.0.0.1:0", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range first {
			_ = c.Close()
		}
	}()
	if len(first) != 3 {
		t.Fatalf("%d sockets, want 3", len(first))
	}
	addr := first[0].LocalAddr().String()
	for _, c := range first[1:] {
		if c.LocalAddr().String() != addr {
			t.Fatalf("socket on %s, the first on %s", c.LocalAddr(), addr)
		}
	}
	for _, n := range []int{1, 2, 3} {
		second, err := listenUDP(addr, n)
		if err == nil {
			for _, c := range second {
				_ = c.Close()
			}
			t.Fatalf("a second tracker with %d socket(s) bound %s beside the first", n, addr)
		}
	}
}
