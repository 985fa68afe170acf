package tracker

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/frontend/http/bencode"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/middleware/auth"
	"github.com/seedpay/seedpay/middleware/registry"
)

func TestParseFastHead(t *testing.T) {
	const ok, handoff = true, false
	tests := []struct {
		name, head string
		want       bool
		act        action
		passkey    string
		close      bool
		keepAlive  bool
		realIP     string
	}{
		{"announce", "GET /announce/pk?a=1 HTTP/1.1\r\nHost: x\r\n\r\n", ok, actionAnnounce, "pk", false, false, ""},
		{"scrape", "GET /scrape/pk?a=1 HTTP/1.1\r\n\r\n", ok, actionScrape, "pk", false, false, ""},
		{"no passkey", "GET /announce?a=1 HTTP/1.1\r\n\r\n", ok, actionAnnounce, "", false, false, ""},
		{"bare newlines", "GET /announce/pk HTTP/1.1\nHost: x\n\n", ok, actionAnnounce, "pk", false, false, ""},
		{"close", "GET /announce/pk HTTP/1.1\r\nConnection: Close\r\n\r\n", ok, actionAnnounce, "pk", true, false, ""},
		{"1.0 closes", "GET /announce/pk HTTP/1.0\r\n\r\n", ok, actionAnnounce, "pk", true, false, ""},
		{"1.0 keep-alive", "GET /announce/pk HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", ok, actionAnnounce, "pk", false, true, ""},
		{"close wins", "GET /announce/pk HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", ok, actionAnnounce, "pk", true, false, ""},
		{"real ip", "GET /announce/pk HTTP/1.1\r\nx-real-ip:  192.0.2.1 \r\nX-Real-IP: 192.0.2.2\r\n\r\n", ok, actionAnnounce, "pk", false, false, "192.0.2.1"},
		{"empty length", "GET /announce/pk HTTP/1.1\r\nContent-Length: 0\r\n\r\n", ok, actionAnnounce, "pk", false, false, ""},
		{"other route", "POST /receipts/pk HTTP/1.1\r\n\r\n", handoff, 0, "", false, false, ""},
		{"head", "HEAD /announce/pk HTTP/1.1\r\n\r\n", handoff, 0, "", false, false, ""},
		{"unknown path", "GET /metrics HTTP/1.1\r\n\r\n", handoff, 0, "", false, false, ""},
		{"prefix only", "GET /announcex/pk HTTP/1.1\r\n\r\n", handoff, 0, "", false, false, ""},
		{"two segments", "GET /announce/pk/x HTTP/1.1\r\n\r\n", handoff, 0, "", false, false, ""},
		{"trailing slash", "GET /announce/ HTTP/1.1\r\n\r\n", handoff, 0, "", false, false, ""},
		{"escaped passkey", "GET /announce/p%6B HTTP/1.1\r\n\r\n", handoff, 0, "", false, false, ""},
		{"dot segment", "GET /announce/.. HTTP/1.1\r\n\r\n", handoff, 0, "", false, false, ""},
		{"absolute form", "GET http://x/announce/pk HTTP/1.1\r\n\r\n", handoff, 0, "", false, false, ""},
		{"http/2", "GET /announce/pk HTTP/2.0\r\n\r\n", handoff, 0, "", false, false, ""},
		{"extra space", "GET /announce/pk  HTTP/1.1\r\n\r\n", handoff, 0, "", false, false, ""},
		{"body", "GET /announce/pk HTTP/1.1\r\nContent-Length: 3\r\n\r\n", handoff, 0, "", false, false, ""},
		{"chunked", "GET /announce/pk HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", handoff, 0, "", false, false, ""},
		{"expect", "GET /announce/pk HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", handoff, 0, "", false, false, ""},
		{"folded header", "GET /announce/pk HTTP/1.1\r\nA: b\r\n c\r\n\r\n", handoff, 0, "", false, false, ""},
		{"space before colon", "GET /announce/pk HTTP/1.1\r\nHost : x\r\n\r\n", handoff, 0, "", false, false, ""},
		{"no colon", "GET /announce/pk HTTP/1.1\r\nHost\r\n\r\n", handoff, 0, "", false, false, ""},
		{"bare CR in a value", "GET /announce/pk HTTP/1.1\r\nX: a\rTransfer-Encoding: chunked\r\n\r\n", handoff, 0, "", false, false, ""},
		{"control byte in a value", "GET /announce/pk HTTP/1.1\r\nX: a\x00b\r\n\r\n", handoff, 0, "", false, false, ""},
		{"control byte in the target", "GET /announce/pk?a=\x01 HTTP/1.1\r\n\r\n", handoff, 0, "", false, false, ""},
		{"bad name", "GET /announce/pk HTTP/1.1\r\nHo(st: x\r\n\r\n", handoff, 0, "", false, false, ""},
		{"tab in a value", "GET /announce/pk HTTP/1.1\r\nUser-Agent: a\tb\r\n\r\n", ok, actionAnnounce, "pk", false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, got := parseFastHead([]byte(tt.head), "X-Real-IP")
			if got != tt.want {
				t.Fatalf("fast path %v, want %v", got, tt.want)
			}
			if !got {
				return
			}
			if h.act != tt.act || h.passkey != tt.passkey || h.close != tt.close || h.keepAlive != tt.keepAlive || h.realIP != tt.realIP {
				t.Fatalf("got %+v", h)
			}
			if want := strings.Fields(tt.head)[1]; h.target != want {
				t.Fatalf("target %q, want %q", h.target, want)
			}
		})
	}
}

func TestHeadEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"GET / HTTP/1.1\r\n\r\n", 18},
		{"GET / HTTP/1.1\r\nA: b\r\n\r\nGET", 24},
		{"GET / HTTP/1.1\n\nrest", 16},
		{"GET / HTTP/1.1\r\n\n", 17},
		{"GET / HTTP/1.1\r\nA: b\r\n", 0},
		{"GET / HTTP/1.1\r\n\r", 0},
		{"", 0},
	}
	for _, tt := range tests {
		if got := headEnd([]byte(tt.in), 0); got != tt.want {
			t.Errorf("headEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// rawConn is a keep-alive client that writes requests as bytes and reads
// replies with net/http's parser.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, s *stack) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", s.srv.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// newHTTPStack is a stack with user alice and torrent ihX registered.
func newHTTPStack(t *testing.T, mutate func(*Config, *auth.Config)) (*stack, registry.User) {
	t.Helper()
	s := newStack(t, mutate)
	u := s.user(t, "alice")
	s.torrent(t, ihX)
	return s, u
}

// rawGet is a GET of target over HTTP/1.1 with the given header lines.
func rawGet(target string, headers ...string) string {
	return "GET " + target + " HTTP/1.1\r\n" + strings.Join(append(headers, ""), "\r\n") + "\r\n"
}

// seeder1 is the announce of a seeding peer 1 on ihX.
var seeder1 = announce{peerID: peerID(1), ih: ihX, port: 7001, numwant: 50, compact: true}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) read(method string) (*http.Response, []byte) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.br, &http.Request{Method: method})
	if err != nil {
		r.t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp, body
}

func gaugeValue(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
			return m.Counter.GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestHTTPFastPathKeepAlive: plain announces and scrapes, one after the
// other and pipelined, are answered on one connection by our own loop
// (nothing handed to net/http), with net/http-compatible replies.
func TestHTTPFastPathKeepAlive(t *testing.T) {
	s, u := newHTTPStack(t, nil)
	c := dialRaw(t, s)
	get := func(i int) string {
		a := announce{peerID: peerID(i), ih: ihX, port: uint16(7000 + i), left: uint64(i % 2), numwant: 50, compact: true}
		return rawGet("/announce/"+u.Passkey+"?"+a.query(), "Host: t")
	}
	for i := range 3 {
		c.send(get(i))
		resp, body := c.read(http.MethodGet)
		if resp.StatusCode != 200 || resp.Close || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || resp.ContentLength != int64(len(body)) {
			t.Fatalf("reply %d: %+v", i, resp)
		}
		d, err := bencode.Unmarshal(body)
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if got := d.(bencode.Dict)["complete"].(int64) + d.(bencode.Dict)["incomplete"].(int64); got != int64(i+1) {
			t.Fatalf("reply %d: %d peers in the swarm, want %d (%q)", i, got, i+1, body)
		}
	}
	// Pipelined: both requests in one write, the answers in order.
	c.send(get(3) + rawGet("/scrape/"+u.Passkey+"?info_hash="+ih20))
	if _, body := c.read(http.MethodGet); !strings.Contains(string(body), "8:intervali") {
		t.Fatalf("pipelined announce: %q", body)
	}
	_, body := c.read(http.MethodGet)
	if !strings.Contains(string(body), "5:filesd20:") || !strings.Contains(string(body), "8:completei2e") {
		t.Fatalf("pipelined scrape: %q", body)
	}
	// A request split over several writes.
	req := get(4)
	c.send(req[:10])
	time.Sleep(20 * time.Millisecond)
	c.send(req[10:])
	if _, body := c.read(http.MethodGet); !strings.Contains(string(body), "8:intervali") {
		t.Fatalf("split request: %q", body)
	}
	if got := gaugeValue(t, s.reg, "seedpay_tracker_http_connections"); got != 1 {
		t.Fatalf("http_connections = %v, want 1", got)
	}
	if got := gaugeValue(t, s.reg, "seedpay_tracker_http_handoffs_total"); got != 0 {
		t.Fatalf("%v connections handed to net/http, want 0", got)
	}
	if got := settledCounter(t, s.reg, "seedpay_tracker_requests_total", "action", "announce", 5); got != 5 {
		t.Fatalf("%v announces counted, want 5", got)
	}
}

// TestHTTPFastPathFailures: bad requests get a bencoded failure reason on
// the fast path and the connection stays usable.
func TestHTTPFastPathFailures(t *testing.T) {
	s, u := newHTTPStack(t, nil)
	c := dialRaw(t, s)
	for _, tt := range []struct{ target, want string }{
		{"/announce?" + goodQS, "missing passkey"},
		{"/announce/" + u.Passkey + "?" + goodQS + "&event=paused", "failed to provide valid client event"},
		{"/announce/" + u.Passkey + "?x=%zz", "invalid query escape"},
		{"/announce/nosuchpasskey?" + goodQS, "passkey"},
		{"/scrape/" + u.Passkey, "no info_hash parameter supplied"},
	} {
		c.send(rawGet(tt.target))
		resp, body := c.read(http.MethodGet)
		if resp.StatusCode != 200 || !strings.Contains(string(body), "14:failure reason") || !strings.Contains(string(body), tt.want) {
			t.Fatalf("%s: %d %q, want a failure reason with %q", tt.target, resp.StatusCode, body, tt.want)
		}
	}
	if got := gaugeValue(t, s.reg, "seedpay_tracker_http_handoffs_total"); got != 0 {
		t.Fatalf("%v handoffs, want 0", got)
	}
}

// TestHTTPHandoff: a request the fast path leaves alone (another route,
// HEAD, a body) goes to net/http with every byte already read, and
// net/http keeps serving the connection, announces included.
func TestHTTPHandoff(t *testing.T) {
	s, u := newHTTPStack(t, nil)
	s.srv.HandleHTTP("POST /echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, _ = w.Write(append([]byte("echo:"), body...))
	}))
	a := seeder1
	announceReq := rawGet("/announce/"+u.Passkey+"?"+a.query(), "Host: t")

	c := dialRaw(t, s)
	c.send(announceReq)
	if _, body := c.read(http.MethodGet); !strings.Contains(string(body), "8:intervali") {
		t.Fatalf("fast announce: %q", body)
	}
	// The echo route reads its body: the handed-over bytes must arrive whole.
	c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" + announceReq)
	resp, body := c.read(http.MethodPost)
	if resp.StatusCode != 200 || string(body) != "echo:hello" {
		t.Fatalf("handed-off POST: %d %q", resp.StatusCode, body)
	}
	// The pipelined announce behind it, now through net/http.
	resp, body = c.read(http.MethodGet)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "8:intervali") || resp.Header.Get("Date") == "" {
		t.Fatalf("announce after the handoff: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	// HEAD and an unknown route on fresh connections.
	h := dialRaw(t, s)
	h.send("HEAD /announce/" + u.Passkey + "?" + a.query() + " HTTP/1.1\r\nHost: t\r\n\r\n")
	if resp, _ := h.read(http.MethodHead); resp.StatusCode != 200 {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
	n := dialRaw(t, s)
	n.send(rawGet("/nothing", "Host: t"))
	if resp, _ := n.read(http.MethodGet); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown route: %d", resp.StatusCode)
	}
	if got := gaugeValue(t, s.reg, "seedpay_tracker_http_handoffs_total"); got != 3 {
		t.Fatalf("%v handoffs, want 3", got)
	}
}

// TestHTTPHeadLimits: a head over 16 KiB is refused with 431 and counted;
// an HTTP/1.0 request is answered and closed.
func TestHTTPHeadLimits(t *testing.T) {
	s, u := newHTTPStack(t, nil)
	c := dialRaw(t, s)
	c.send(rawGet("/announce/"+u.Passkey, "X-Pad: "+strings.Repeat("a", httpMaxHead)))
	if resp, _ := c.read(http.MethodGet); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !resp.Close {
		t.Fatalf("oversized head: %d close %v", resp.StatusCode, resp.Close)
	}
	if got := counterValue(t, s.reg, "seedpay_tracker_malformed_total", "protocol", "http"); got != 1 {
		t.Fatalf("malformed_total{http} = %v, want 1", got)
	}
	a := seeder1
	old := dialRaw(t, s)
	old.send("GET /announce/" + u.Passkey + "?" + a.query() + " HTTP/1.0\r\n\r\n")
	resp, body := old.read(http.MethodGet)
	if !resp.Close || !strings.Contains(string(body), "8:intervali") {
		t.Fatalf("HTTP/1.0: close %v body %q", resp.Close, body)
	}
	if _, err := old.br.ReadByte(); err != io.EOF {
		t.Fatalf("after an HTTP/1.0 reply: %v, want EOF", err)
	}
}

// TestHTTPRealIPHeader: behind a proxy the peer's address comes from the
// configured header, on the fast path as on net/http's.
func TestHTTPRealIPHeader(t *testing.T) {
	s, u := newHTTPStack(t, func(c *Config, _ *auth.Config) { c.RealIPHeader = "X-Forwarded-For" })
	c := dialRaw(t, s)
	seed := seeder1
	c.send(rawGet("/announce/"+u.Passkey+"?"+seed.query(), "X-Forwarded-For: 192.0.2.77"))
	c.read(http.MethodGet)
	leech := announce{peerID: peerID(2), ih: ihX, port: 7002, left: 9, numwant: 50, compact: true}
	c.send(rawGet("/announce/" + u.Passkey + "?" + leech.query()))
	_, body := c.read(http.MethodGet)
	d, err := bencode.Unmarshal(body)
	if err != nil {
		t.Fatal(err)
	}
	peers := compactPeers(t, d.(bencode.Dict), "peers", 6)
	if len(peers) != 1 || peers[0] != "192.0.2.77:7001" {
		t.Fatalf("peers %v, want the seeder at its forwarded address", peers)
	}
}

// TestHTTPShutdownClosesIdle: shutdown closes idle keep-alive connections
// at once and returns.
func TestHTTPShutdownClosesIdle(t *testing.T) {
	s, u := newHTTPStack(t, nil)
	c := dialRaw(t, s)
	a := seeder1
	c.send(rawGet("/announce/" + u.Passkey + "?" + a.query()))
	c.read(http.MethodGet)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.http.shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := c.br.ReadByte(); err == nil {
		t.Fatal("idle connection still open after shutdown")
	}
	if got := gaugeValue(t, s.reg, "seedpay_tracker_http_connections"); got != 0 {
		t.Fatalf("http_connections = %v after shutdown", got)
	}
}

// BenchmarkHTTPConn measures announces over loopback TCP, request written
// to reply read, client included: over one keep-alive connection
// ("keep-alive"), and one connection per announce as most clients announce
// ("close": dial, request with Connection: close, reply, EOF), through our
// loop ("fast") and through net/http ("net-http", every connection handed
// over), in one run.
func BenchmarkHTTPConn(b *testing.B) {
	for _, mode := range []string{"fast", "net-http"} {
		for _, conn := range []string{"keep-alive", "close"} {
			b.Run(mode+"/"+conn, func(b *testing.B) {
				s := newStack(b, nil)
				u := s.user(b, "alice")
				s.torrent(b, ihX)
				s.srv.http.forceHandoff = mode == "net-http"
				addr := s.srv.HTTPAddr().String()
				reqs := make([][]byte, 1000)
				for i := range reqs {
					a := announce{peerID: peerID(i), ih: ihX, port: uint16(1000 + i), left: uint64(i % 4), numwant: 30, compact: true}
					reqs[i] = []byte(rawGet("/announce/"+u.Passkey+"?"+a.query(), "Host: t", "User-Agent: bench", "Connection: "+conn))
				}
				var c net.Conn
				var br *bufio.Reader
				dial := func() {
					var err error
					if c, err = net.Dial("tcp", addr); err != nil {
						b.Fatal(err)
					}
					br = bufio.NewReader(c)
				}
				if conn == "keep-alive" {
					dial()
					defer func() { c.Close() }()
				}
				roundTrip := func(req []byte) {
					if conn == "close" {
						dial()
						defer c.Close()
					}
					if _, err := c.Write(req); err != nil {
						b.Fatal(err)
					}
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != 200 {
						b.Fatal(resp.StatusCode, err)
					}
					if conn == "close" {
						if _, err := br.ReadByte(); err != io.EOF {
							b.Fatal("no EOF after the last reply:", err)
						}
					}
				}
				for _, r := range reqs {
					roundTrip(r)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					roundTrip(reqs[i%len(reqs)])
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			})
		}
	}
}

// discardConn is a net.Conn that swallows writes.
type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error)      { return len(b), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
func (discardConn) SetReadDeadline(time.Time) error  { return nil }
func (discardConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5000} }
func (discardConn) Close() error                     { return nil }

// fastAnnounces are announce heads as clients send them, 1000 peers.
func fastAnnounces() [][]byte {
	heads := make([][]byte, 1000)
	for i := range heads {
		a := announce{peerID: peerID(i), ih: ihX, port: uint16(1000 + i), left: uint64(i % 4), numwant: 30, compact: true}
		heads[i] = []byte(rawGet("/announce/"+fuzzPasskey+"?"+a.query(), "Host: tracker", "User-Agent: qBittorrent/4.6.2", "Accept-Encoding: gzip", "Connection: close"))
	}
	return heads
}

// fastAnnounce runs one head through the fast path as the connection loop
// does: parse, hooks, reply written.
func fastAnnounce(tb testing.TB, c *httpConn, head []byte) {
	h, ok := parseFastHead(head, "")
	if !ok {
		tb.Fatalf("not on the fast path: %q", head)
	}
	c.answer(&h)
}

// TestHTTPFastPathNoAllocs: in the steady state an announce on our loop
// allocates nothing (parse, hooks, peer list, reply).
func TestHTTPFastPathNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector; the plain run checks them")
	}
	logic, m := newBareLogic(t)
	f := newHTTPFrontend(DefaultConfig(), logic, m, zap.NewNop())
	c := &httpConn{f: f, nc: discardConn{}, remote: netip.MustParseAddr("10.0.0.1")}
	heads := fastAnnounces()
	for _, h := range heads {
		fastAnnounce(t, c, h)
	}
	i := 0
	if n := testing.AllocsPerRun(500, func() { fastAnnounce(t, c, heads[i%len(heads)]); i++ }); n != 0 {
		t.Fatalf("%v allocations per announce", n)
	}
}

// BenchmarkHTTPFastAnnounce is BenchmarkHTTPAnnounce on our own loop:
// head parse, every hook and the reply, without the socket.
func BenchmarkHTTPFastAnnounce(b *testing.B) {
	for _, bl := range benchLogics {
		b.Run(bl.name, func(b *testing.B) {
			logic, m := bl.make(b)
			f := newHTTPFrontend(DefaultConfig(), logic, m, zap.NewNop())
			c := &httpConn{f: f, nc: discardConn{}, remote: netip.MustParseAddr("10.0.0.1")}
			heads := fastAnnounces()
			for _, h := range heads {
				fastAnnounce(b, c, h)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				fastAnnounce(b, c, heads[i%len(heads)])
			}
		})
	}
}

// FuzzFastHead: any bytes from the network either stay incomplete, go to
// net/http, or give a well-formed fast request; nothing panics.
func FuzzFastHead(f *testing.F) {
	f.Add([]byte("GET /announce/pk?a=1 HTTP/1.1\r\nHost: x\r\nX-Real-IP: 192.0.2.1\r\n\r\n"))
	f.Add([]byte("GET /scrape HTTP/1.0\nConnection: keep-alive\n\n"))
	f.Add([]byte("POST /receipts/pk HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"))
	f.Add([]byte("GET /announce/pk HTTP/1.1\r\nA: b\r\n c\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := headEnd(b, 0)
		if n == 0 {
			return
		}
		if n > len(b) {
			t.Fatalf("head end %d past %d bytes", n, len(b))
		}
		h, ok := parseFastHead(b[:n], "X-Real-IP")
		if !ok {
			return
		}
		if !strings.HasPrefix(h.target, "/announce") && !strings.HasPrefix(h.target, "/scrape") || strings.ContainsAny(h.target, " \t#") {
			t.Fatalf("fast path took target %q", h.target)
		}
		if strings.ContainsAny(h.passkey, "/%") || h.close && h.keepAlive {
			t.Fatalf("bad head %+v", h)
		}
	})
}

// TestHTTPTimeouts: a connection that sends half a request head is closed
// after the read timeout, an idle keep-alive one after the idle timeout.
func TestHTTPTimeouts(t *testing.T) {
	s, u := newHTTPStack(t, func(c *Config, _ *auth.Config) {
		c.HTTPReadTimeout, c.HTTPIdleTimeout = 200*time.Millisecond, 300*time.Millisecond
	})
	slow := dialRaw(t, s)
	slow.send("GET /announce/" + u.Passkey + " HTTP/1.1\r\nHost:")
	if _, err := slow.br.ReadByte(); err != io.EOF {
		t.Fatalf("half a head: %v, want the server to close (EOF)", err)
	}
	idle := dialRaw(t, s)
	a := seeder1
	idle.send(rawGet("/announce/" + u.Passkey + "?" + a.query()))
	idle.read(http.MethodGet)
	if _, err := idle.br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want the server to close (EOF)", err)
	}
}

// TestHTTPHeadAfterIdle: a head that needs more than one read (sent in two
// parts, or longer than the first buffer) after the connection sat idle for
// longer than the read timeout still gets its answer: the read timeout
// counts from the head's first byte, not from the start of the idle wait.
func TestHTTPHeadAfterIdle(t *testing.T) {
	s, u := newHTTPStack(t, func(c *Config, _ *auth.Config) {
		c.HTTPReadTimeout, c.HTTPIdleTimeout = 200*time.Millisecond, 10*time.Second
	})
	c := dialRaw(t, s)
	a := seeder1
	req := rawGet("/announce/"+u.Passkey+"?"+a.query(), "Host: t")
	c.send(req)
	c.read(http.MethodGet)
	time.Sleep(300 * time.Millisecond)
	c.send(req[:20])
	time.Sleep(50 * time.Millisecond)
	c.send(req[20:])
	if _, body := c.read(http.MethodGet); !strings.Contains(string(body), "8:intervali") {
		t.Fatalf("split head after idle: %q", body)
	}
	time.Sleep(300 * time.Millisecond)
	c.send(rawGet("/announce/"+u.Passkey+"?"+a.query(), "Host: t", "X-Pad: "+strings.Repeat("p", 6000)))
	if _, body := c.read(http.MethodGet); !strings.Contains(string(body), "8:intervali") {
		t.Fatalf("6 KB head after idle: %q", body)
	}
}
