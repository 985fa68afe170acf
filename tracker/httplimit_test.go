package tracker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/middleware/auth"
)

func withMaxConns(n int) func(*Config, *auth.Config) {
	return func(c *Config, _ *auth.Config) { c.HTTPMaxConns = n }
}

// noReplyWithin checks that c has nothing to read for d (its request waits
// in the listen backlog or in a paused accept loop).
func (r *rawConn) noReplyWithin(d time.Duration) {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	_, err := r.br.Peek(1)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		r.t.Fatalf("read within %s: %v, want a timeout (no reply yet)", d, err)
	}
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
}

// readOK reads a reply and checks it is a 200.
func (r *rawConn) readOK() {
	r.t.Helper()
	if resp, _ := r.read(http.MethodGet); resp.StatusCode != http.StatusOK {
		r.t.Fatalf("status %d", resp.StatusCode)
	}
}

// waitCounter polls a counter until it reaches want (the accept loop runs
// on its own goroutine).
func waitCounter(t *testing.T, g prometheus.Gatherer, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for gaugeValue(t, g, name) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, gaugeValue(t, g, name), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitConns waits until the frontend's loop holds n connections in state,
// over three polls: one that has read nothing yet turns idle within
// microseconds (and may be closed to make room), and one just answered
// turns idle after its post hooks.
func waitConns(t *testing.T, f *httpFrontend, n int, state int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for stable := 0; stable < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("connections did not all reach state %d", state)
		}
		f.conns.mu.Lock()
		in := 0
		for c := range f.conns.set {
			if c.state.Load() == state {
				in++
			}
		}
		f.conns.mu.Unlock()
		if in == n {
			stable++
		} else {
			stable = 0
		}
	}
}

// TestHTTPMaxConnsEvictsIdle: at the limit, a new connection is served by
// closing an idle keep-alive connection.
func TestHTTPMaxConnsEvictsIdle(t *testing.T) {
	s, u := newHTTPStack(t, withMaxConns(2))
	var idle []*rawConn
	for i := 0; i < 2; i++ {
		c := dialRaw(t, s)
		a := seeder1
		a.peerID = peerID(10 + i)
		c.send(rawGet("/announce/" + u.Passkey + "?" + a.query()))
		c.read(http.MethodGet)
		idle = append(idle, c)
	}
	waitConns(t, s.srv.http, 2, connIdle)
	c := dialRaw(t, s)
	c.send(rawGet("/announce/" + u.Passkey + "?" + seeder1.query()))
	c.readOK()
	if got := gaugeValue(t, s.reg, "seedpay_tracker_http_connections_evicted_total"); got != 1 {
		t.Fatalf("evicted = %v, want 1", got)
	}
	closed := 0
	for _, ic := range idle {
		_ = ic.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := ic.br.ReadByte(); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			closed++
		}
	}
	if closed != 1 {
		t.Fatalf("%d of the 2 idle connections closed, want 1", closed)
	}
	if got := gaugeValue(t, s.reg, "seedpay_tracker_http_accept_paused_total"); got != 0 {
		t.Fatalf("paused = %v with an idle connection to close", got)
	}
}

// TestHTTPMaxConnsPausesWhenNoneIdle: with every connection mid-request,
// a new one waits until one closes, and is then served.
func TestHTTPMaxConnsPausesWhenNoneIdle(t *testing.T) {
	s, u := newHTTPStack(t, withMaxConns(2))
	var busy []*rawConn
	for i := 0; i < 2; i++ {
		c := dialRaw(t, s)
		c.send("GET /announce/" + u.Passkey + "?") // a head not yet finished
		busy = append(busy, c)
	}
	waitConns(t, s.srv.http, 2, connActive)
	c := dialRaw(t, s)
	c.send(rawGet("/announce/" + u.Passkey + "?" + seeder1.query()))
	waitCounter(t, s.reg, "seedpay_tracker_http_accept_paused_total", 1)
	c.noReplyWithin(200 * time.Millisecond)
	if got := gaugeValue(t, s.reg, "seedpay_tracker_http_connections_evicted_total"); got != 0 {
		t.Fatalf("evicted = %v: a connection mid-request was closed", got)
	}
	busy[0].c.Close()
	c.readOK()
	// The other one still gets its answer.
	busy[1].send(seeder1.query() + " HTTP/1.1\r\n\r\n")
	busy[1].readOK()
}

// TestHTTPMaxConnsResumesWhenOneTurnsIdle: a pause ends as soon as a
// connection finishes its request and turns idle (it is closed to make
// room), not when one closes.
func TestHTTPMaxConnsResumesWhenOneTurnsIdle(t *testing.T) {
	s, u := newHTTPStack(t, withMaxConns(2))
	var busy []*rawConn
	for i := 0; i < 2; i++ {
		c := dialRaw(t, s)
		c.send("GET /announce/" + u.Passkey + "?")
		busy = append(busy, c)
	}
	waitConns(t, s.srv.http, 2, connActive)
	c := dialRaw(t, s)
	c.send(rawGet("/announce/" + u.Passkey + "?" + seeder1.query()))
	waitCounter(t, s.reg, "seedpay_tracker_http_accept_paused_total", 1)
	busy[0].send(seeder1.query() + " HTTP/1.1\r\n\r\n")
	busy[0].read(http.MethodGet) // answered, then idle: the one to close
	start := time.Now()
	c.readOK()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("served %s after a connection turned idle", d)
	}
	if got := gaugeValue(t, s.reg, "seedpay_tracker_http_connections_evicted_total"); got != 1 {
		t.Fatalf("evicted = %v, want 1", got)
	}
	_ = busy[0].c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := busy[0].br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the idle connection was not the one closed (read: %v)", err)
	}
}

// TestHTTPMaxConnsCountsHandedOff: a connection handed to net/http counts
// against the limit until net/http closes it; idle there, it is closed to
// make room like one on the announce loop.
func TestHTTPMaxConnsCountsHandedOff(t *testing.T) {
	s, u := newHTTPStack(t, withMaxConns(1))
	// A body not yet sent keeps net/http's connection active (it reads
	// the body before it replies).
	h := dialRaw(t, s)
	h.send("POST /announce/" + u.Passkey + " HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
	waitCounter(t, s.reg, "seedpay_tracker_http_handoffs_total", 1)
	c := dialRaw(t, s)
	c.send(rawGet("/announce/" + u.Passkey + "?" + seeder1.query()))
	waitCounter(t, s.reg, "seedpay_tracker_http_accept_paused_total", 1)
	c.noReplyWithin(200 * time.Millisecond)
	// The body arrives: net/http answers, its connection turns idle and,
	// accepting being paused, is closed to make room.
	h.send(strings.Repeat("x", 97))
	if resp, _ := h.read(http.MethodPost); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("status %d, want 405", resp.StatusCode)
	}
	c.readOK()
	if got := gaugeValue(t, s.reg, "seedpay_tracker_http_connections_evicted_total"); got != 1 {
		t.Fatalf("evicted = %v, want 1 (net/http's connection, once idle)", got)
	}
	if _, err := h.br.ReadByte(); err == nil {
		t.Fatal("net/http's connection still open after it made room")
	}

	// Idle in net/http (a HEAD answered, the connection kept): closed for
	// the next connection.
	c.c.Close()
	for deadline := time.Now().Add(5 * time.Second); gaugeValue(t, s.reg, "seedpay_tracker_http_connections") != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the closed connection is still counted")
		}
	}
	idle := dialRaw(t, s)
	idle.send("HEAD /announce/" + u.Passkey + "?" + seeder1.query() + " HTTP/1.1\r\nHost: t\r\n\r\n")
	idle.read(http.MethodHead)
	next := dialRaw(t, s)
	next.send(rawGet("/announce/" + u.Passkey + "?" + seeder1.query()))
	next.readOK()
	if got := gaugeValue(t, s.reg, "seedpay_tracker_http_connections_evicted_total"); got != 2 {
		t.Fatalf("evicted = %v, want 2 (net/http's idle connection)", got)
	}
	if _, err := idle.br.ReadByte(); err == nil {
		t.Fatal("net/http's idle connection still open")
	}
}

// TestHTTPShutdownWhilePaused: shutdown ends an accept loop waiting at the
// limit at once, before the connection it waits on ends.
func TestHTTPShutdownWhilePaused(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.HTTPMaxConns = 1
	f := newHTTPFrontend(cfg, nil, m, zap.NewNop())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- f.serve(l) }()
	busy, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, err := busy.Write([]byte("GET /annou")); err != nil {
		t.Fatal(err)
	}
	waitConns(t, f, 1, connActive)
	waiting, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(m.httpPaused) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the accept loop did not pause at the limit")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The busy connection keeps shutdown waiting for ctx; the accept loop
	// must not wait with it.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	shut := make(chan struct{})
	go func() { _ = f.shutdown(ctx); close(shut) }()
	defer func() { <-shut }()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("serve still waiting at the limit a second after shutdown began")
	}
}
