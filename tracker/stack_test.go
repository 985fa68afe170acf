package tracker

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/frontend/http/bencode"
	"github.com/chihaya/chihaya/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/internal/redistest"
	"github.com/seedpay/seedpay/middleware/account"
	"github.com/seedpay/seedpay/middleware/auth"
	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/middleware/swarm"
	"github.com/seedpay/seedpay/rewards"
	"github.com/seedpay/seedpay/tracker/peerstore"
)

// stack is the whole tracker as `seedpay serve` wires it, on a real
// redis-server and real sockets.
type stack struct {
	srv   *Server
	store *registry.Store
	cache *registry.Cache
	reg   *prometheus.Registry
	// stopFlusher stops the accounting flusher after its last flush
	// (a no-op without accounting).
	stopFlusher func()
}

func newStack(t testing.TB, mutate func(*Config, *auth.Config)) *stack {
	t.Helper()
	return newStackWith(t, mutate, "")
}

// newStackWith is newStack, with rewards accounting (the PostHook, its
// flusher and the accountant on the same redis-server, as `seedpay serve`
// builds them) when accounting names a session mode (rewards.Sessions*).
func newStackWith(t testing.TB, mutate func(*Config, *auth.Config), accounting string) *stack {
	t.Helper()
	rdb := redistest.Start(t).Client(t)
	log := zap.NewNop()
	store := registry.NewStore(rdb)
	cache, err := registry.NewCache(store, registry.CacheConfig{}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := cache.Open(ctx); err != nil {
		t.Fatal(err)
	}
	followed := make(chan struct{})
	go func() { _ = cache.Follow(ctx); close(followed) }()

	cfg := DefaultConfig()
	cfg.HTTPAddr, cfg.UDPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.AnnounceInterval, cfg.MinAnnounceInterval = time.Minute, 30*time.Second
	cfg.MaxNumWant, cfg.DefaultNumWant = 20, 10
	acfg := auth.Config{Private: true}
	if mutate != nil {
		mutate(&cfg, &acfg)
	}
	peers, err := peerstore.New(peerstore.Config{ShardCount: 16, PeerLifetime: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	hook, err := auth.New(acfg, cache, reg)
	if err != nil {
		t.Fatal(err)
	}
	post := []middleware.Hook{swarm.NewCompletionCounter(cache)}
	var acct *account.Hook
	if accounting != "" {
		rcfg := rewards.DefaultConfig()
		rcfg.Sessions = accounting
		var err error
		acct, err = account.FromConfig(ctx, rcfg, rdb, cache, nil, reg, log)
		if err != nil {
			t.Fatal(err)
		}
		post = append(post, acct)
	}
	logic := NewLogic(middleware.ResponseConfig{AnnounceInterval: cfg.AnnounceInterval, MinAnnounceInterval: cfg.MinAnnounceInterval},
		[]middleware.Hook{hook, swarm.NewResponder(peers, cache)}, post)
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, logic, m, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(srv.UDPSocketCollector())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	st := &stack{srv: srv, store: store, cache: cache, reg: reg, stopFlusher: func() {}}
	if acct != nil {
		fctx, fcancel := context.WithCancel(context.Background())
		flushed := make(chan struct{})
		go func() { _ = acct.Run(fctx); close(flushed) }()
		st.stopFlusher = sync.OnceFunc(func() { fcancel(); <-flushed })
	}
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		st.stopFlusher()
		<-followed
		<-logic.Stop()
		<-peers.Stop()
	})
	return st
}

func (s *stack) user(t testing.TB, name string) registry.User {
	t.Helper()
	u, err := s.store.CreateUser(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	return u
}

func (s *stack) torrent(t testing.TB, ih bittorrent.InfoHash) {
	t.Helper()
	if _, err := s.store.PutTorrent(context.Background(), registry.Torrent{InfoHash: ih, Size: 1 << 20, Name: "t"}); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
}

// sync waits until the cache reflects Redis (pub/sub is asynchronous); a
// reload is the deterministic way to get there.
func (s *stack) sync(t testing.TB) {
	t.Helper()
	if err := s.cache.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type announce struct {
	passkey, peerID string
	ih              bittorrent.InfoHash
	port            uint16
	left            uint64
	event           string
	numwant         int // -1: not sent
	compact         bool
}

func (a announce) query() string {
	q := url.Values{}
	q.Set("info_hash", string(a.ih[:]))
	q.Set("peer_id", a.peerID)
	q.Set("port", fmt.Sprint(a.port))
	q.Set("uploaded", "0")
	q.Set("downloaded", "0")
	q.Set("left", fmt.Sprint(a.left))
	if a.event != "" {
		q.Set("event", a.event)
	}
	if a.numwant >= 0 {
		q.Set("numwant", fmt.Sprint(a.numwant))
	}
	if a.compact {
		q.Set("compact", "1")
	}
	return q.Encode()
}

func httpGet(t testing.TB, rawURL string) []byte {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d body %q", rawURL, resp.StatusCode, body)
	}
	return body
}

// httpAnnounce announces from host (127.0.0.1 or ::1) and decodes the reply.
func (s *stack) httpAnnounce(t testing.TB, host string, a announce) bencode.Dict {
	t.Helper()
	_, port, _ := net.SplitHostPort(s.srv.HTTPAddr().String())
	base := "http://" + net.JoinHostPort(host, port)
	body := httpGet(t, base+"/announce/"+a.passkey+"?"+a.query())
	d, err := bencode.Unmarshal(body)
	if err != nil {
		t.Fatalf("bencode %q: %v", body, err)
	}
	return d.(bencode.Dict)
}

// udpClient speaks BEP 15 with BEP 41 URL data.
type udpClient struct {
	t      testing.TB
	conn   *net.UDPConn
	connID [8]byte
	tx     uint32
}

func (s *stack) udp(t testing.TB) *udpClient {
	t.Helper()
	conn, err := net.DialUDP("udp", nil, s.srv.UDPAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &udpClient{t: t, conn: conn}
	pkt := append(udpProtocolID[:0:0], udpProtocolID[:]...)
	pkt = binary.BigEndian.AppendUint32(pkt, udpConnect)
	pkt = c.appendTx(pkt)
	resp := c.roundTrip(pkt, udpConnect)
	if len(resp) != 16 {
		t.Fatalf("connect reply %d bytes, want 16", len(resp))
	}
	copy(c.connID[:], resp[8:16])
	return c
}

func (c *udpClient) appendTx(pkt []byte) []byte {
	c.tx++
	return binary.BigEndian.AppendUint32(pkt, c.tx)
}

// roundTrip sends pkt and returns the reply; it fails unless the reply has
// the expected action and this request's transaction id.
func (c *udpClient) roundTrip(pkt []byte, wantAction uint32) []byte {
	c.t.Helper()
	if _, err := c.conn.Write(pkt); err != nil {
		c.t.Fatal(err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.conn.Read(buf)
	if err != nil {
		c.t.Fatalf("udp read: %v", err)
	}
	buf = buf[:n]
	if n < 8 {
		c.t.Fatalf("udp reply too short: %x", buf)
	}
	if got := binary.BigEndian.Uint32(buf[4:8]); got != c.tx {
		c.t.Fatalf("reply tx %d, want %d", got, c.tx)
	}
	if got := binary.BigEndian.Uint32(buf[0:4]); got != wantAction {
		c.t.Fatalf("reply action %d (%q), want %d", got, buf[8:], wantAction)
	}
	return buf
}

func urlDataOption(path string) []byte {
	var b []byte
	for len(path) > 0 {
		n := min(len(path), 255)
		b = append(b, 2, byte(n))
		b = append(b, path[:n]...)
		path = path[n:]
	}
	return append(b, 0)
}

func (c *udpClient) announcePacket(a announce, urlPath string) []byte {
	pkt := append([]byte(nil), c.connID[:]...)
	pkt = binary.BigEndian.AppendUint32(pkt, udpAnnounce)
	pkt = c.appendTx(pkt)
	pkt = append(pkt, a.ih[:]...)
	pkt = append(pkt, a.peerID...)
	pkt = binary.BigEndian.AppendUint64(pkt, 0)      // downloaded
	pkt = binary.BigEndian.AppendUint64(pkt, a.left) // left
	pkt = binary.BigEndian.AppendUint64(pkt, 0)      // uploaded
	ev := map[string]uint32{"": 0, "completed": 1, "started": 2, "stopped": 3}[a.event]
	pkt = binary.BigEndian.AppendUint32(pkt, ev)
	pkt = binary.BigEndian.AppendUint32(pkt, 0) // ip: the sender's
	pkt = binary.BigEndian.AppendUint32(pkt, 7) // key
	nw := uint32(0xffffffff)
	if a.numwant >= 0 {
		nw = uint32(a.numwant)
	}
	pkt = binary.BigEndian.AppendUint32(pkt, nw)
	pkt = binary.BigEndian.AppendUint16(pkt, a.port)
	if urlPath != "" {
		pkt = append(pkt, urlDataOption(urlPath)...)
	}
	return pkt
}

type udpAnnounceReply struct {
	interval, leechers, seeders uint32
	peers                       []string // ip:port
}

func (c *udpClient) announce(a announce, urlPath string) udpAnnounceReply {
	c.t.Helper()
	b := c.roundTrip(c.announcePacket(a, urlPath), udpAnnounce)
	if len(b) < 20 || (len(b)-20)%6 != 0 {
		c.t.Fatalf("announce reply of %d bytes", len(b))
	}
	r := udpAnnounceReply{
		interval: binary.BigEndian.Uint32(b[8:]),
		leechers: binary.BigEndian.Uint32(b[12:]),
		seeders:  binary.BigEndian.Uint32(b[16:]),
	}
	for p := b[20:]; len(p) >= 6; p = p[6:] {
		r.peers = append(r.peers, fmt.Sprintf("%s:%d", net.IP(p[:4]), binary.BigEndian.Uint16(p[4:6])))
	}
	return r
}

// announceError sends an announce and returns the error text it gets.
func (c *udpClient) announceError(a announce, urlPath string) string {
	c.t.Helper()
	b := c.roundTrip(c.announcePacket(a, urlPath), udpError)
	return string(bytes.TrimRight(b[8:], "\x00"))
}

func (c *udpClient) scrapePacket(hashes []bittorrent.InfoHash, urlPath string) []byte {
	pkt := append([]byte(nil), c.connID[:]...)
	pkt = binary.BigEndian.AppendUint32(pkt, udpScrape)
	pkt = c.appendTx(pkt)
	for _, ih := range hashes {
		pkt = append(pkt, ih[:]...)
	}
	if urlPath != "" {
		pkt = append(pkt, urlDataOption(urlPath)...)
	}
	return pkt
}
