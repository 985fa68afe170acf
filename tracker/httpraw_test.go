//go:build unix && !aix

package tracker

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// tcpPair is a loopback TCP connection: the client's end and the server's.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	return client, server
}

// hookConn runs armed the first time the loop sets a read or write
// deadline: the moment it falls back from the descriptor to net.Conn.
type hookConn struct {
	net.Conn
	once  sync.Once
	armed func()
	fired atomic.Bool
}

func (h *hookConn) fire() {
	h.once.Do(func() {
		h.fired.Store(true)
		if h.armed != nil {
			h.armed()
		}
	})
}

func (h *hookConn) SetReadDeadline(t time.Time) error  { h.fire(); return h.Conn.SetReadDeadline(t) }
func (h *hookConn) SetWriteDeadline(t time.Time) error { h.fire(); return h.Conn.SetWriteDeadline(t) }

// rawTestConn is the loop's connection over server (through a hookConn
// running armed), with the descriptor tries of a real accepted connection.
func rawTestConn(t *testing.T, server net.Conn, armed func()) (*httpConn, *hookConn) {
	t.Helper()
	f := &httpFrontend{readTimeout: 30 * time.Second, writeTimeout: 30 * time.Second, idleTimeout: time.Minute}
	f.readBufs.New = func() any { b := make([]byte, 0, httpReadBuf); return &b }
	h := &hookConn{Conn: server, armed: armed}
	c := f.newConn(h)
	if c.rc = rawOf(server); c.rc == nil {
		t.Fatal("no descriptor")
	}
	return c, h
}

// A request already in the socket is read, and its reply written, without
// a deadline: no timer for a one-announce connection.
func TestHTTPFirstRequestArmsNoDeadline(t *testing.T) {
	req := rawGet("/announce/pk?x=1", "Host: t")
	client, server := tcpPair(t)
	if _, err := io.WriteString(client, req); err != nil { // on loopback it is there once written
		t.Fatal(err)
	}
	c, h := rawTestConn(t, server, nil)
	head, err := c.readHead()
	if err != nil || string(head) != req {
		t.Fatalf("readHead = %q, %v", head, err)
	}
	b := append(make([]byte, httpHdrRoom), "d8:intervali1ee"...)
	if !c.writeReply(b, &fastHead{close: true}, time.Now()) {
		t.Fatal("writeReply failed")
	}
	if h.fired.Load() || !c.rdl.IsZero() || !c.wdl.IsZero() {
		t.Fatalf("deadlines set: read %v write %v", c.rdl, c.wdl)
	}
	server.Close()
	reply, err := io.ReadAll(client)
	if err != nil || !strings.HasPrefix(string(reply), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(reply), "\r\n\r\nd8:intervali1ee") {
		t.Fatalf("reply %q, %v", reply, err)
	}
}

// When the descriptor would block, the loop arms the deadline and waits
// through net.Conn: for a request not there yet (the idle timeout), for
// the rest of a head begun (the read timeout), and for a reply larger than
// the socket takes at once (the write timeout). The client sends or reads
// the rest only once the deadline is armed, so each case is deterministic.
func TestHTTPRawFallsBackWithDeadline(t *testing.T) {
	req := rawGet("/announce/pk?x=1", "Host: t")
	for _, tt := range []struct {
		name  string
		first string // in the socket before the loop reads
	}{
		{"nothing there yet", ""},
		{"half a head there", req[:20]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client, server := tcpPair(t)
			if _, err := io.WriteString(client, tt.first); err != nil {
				t.Fatal(err)
			}
			c, h := rawTestConn(t, server, func() { _, _ = io.WriteString(client, req[len(tt.first):]) })
			head, err := c.readHead()
			if err != nil || string(head) != req {
				t.Fatalf("readHead = %q, %v", head, err)
			}
			if !h.fired.Load() || c.rdl.IsZero() {
				t.Fatal("the read waited with no deadline")
			}
		})
	}
	t.Run("reply larger than the socket takes", func(t *testing.T) {
		client, server := tcpPair(t)
		body := bytes.Repeat([]byte("0123456789abcdef"), 2<<20) // 32 MiB
		got := make(chan []byte, 1)
		c, h := rawTestConn(t, server, func() {
			go func() {
				b, _ := io.ReadAll(client)
				got <- b
			}()
		})
		if !c.writeReply(append(make([]byte, httpHdrRoom), body...), &fastHead{close: true}, time.Now()) {
			t.Fatal("writeReply failed")
		}
		if !h.fired.Load() || c.wdl.IsZero() {
			t.Fatal("the write waited with no deadline")
		}
		server.Close()
		reply := <-got
		if !bytes.HasSuffix(reply, body) || !bytes.HasPrefix(reply, []byte("HTTP/1.1 200 OK\r\n")) {
			t.Fatalf("reply of %d bytes, want the header and %d bytes of body", len(reply), len(body))
		}
	})
}

// A last reply ("Connection: close") to a client that sent nothing more
// closes the connection at once, as net/http does: a client writing after
// the reply is reset (its next write fails). With more input unread the close lingers (half-close
// and drain), so the reset cannot destroy the reply in flight: whether the
// extra bytes sit in the loop's buffer or still in the socket.
func TestHTTPCloseAfterLastReply(t *testing.T) {
	s, u := newHTTPStack(t, nil)
	a := seeder1
	req := rawGet("/announce/"+u.Passkey+"?"+a.query(), "Host: t", "Connection: close")
	// A head of exactly httpReadBuf bytes: the first read takes all of it
	// and nothing more, so the bytes after it stay in the socket.
	pad := "X-Pad: "
	full := rawGet("/announce/"+u.Passkey+"?"+a.query(), "Host: t", "Connection: close", pad)
	padded := rawGet("/announce/"+u.Passkey+"?"+a.query(), "Host: t", "Connection: close", pad+strings.Repeat("p", httpReadBuf-len(full)))
	if len(padded) != httpReadBuf {
		t.Fatalf("padded head is %d bytes", len(padded))
	}
	for _, tt := range []struct {
		name, send string
		linger     bool
	}{
		{"nothing more", req, false},
		{"more in the buffer", req + "GET / HTTP/1.1\r\n", true},
		{"more in the socket", padded + "GET / HTTP/1.1\r\n", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, s)
			c.send(tt.send)
			if resp, body := c.read(http.MethodGet); !resp.Close || !strings.Contains(string(body), "8:intervali") {
				t.Fatalf("close %v body %q", resp.Close, body)
			}
			if _, err := c.br.ReadByte(); err != io.EOF {
				t.Fatalf("after the last reply: %v, want EOF", err)
			}
			// The server's socket is closed (a write is reset) or still
			// draining (a write is read and dropped).
			_, _ = io.WriteString(c.c, "more")
			time.Sleep(50 * time.Millisecond)
			_, err := io.WriteString(c.c, "more")
			reset := errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
			if reset == tt.linger || (!reset && err != nil) {
				t.Fatalf("two writes after the reply: %v; want the close to linger: %v", err, tt.linger)
			}
		})
	}
}

// TestInputWaiting: the peek sees bytes waiting in the socket, sees none once
// they are read, and answers while another goroutine is blocked reading the
// same connection (it must not wait for that read's lock).
func TestInputWaiting(t *testing.T) {
	client, server := tcpPair(t)
	rc := rawOf(server)
	if inputWaiting(rc) {
		t.Fatal("input waiting on a fresh connection")
	}
	if _, err := client.Write([]byte("GET")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !inputWaiting(rc) {
		if time.Now().After(deadline) {
			t.Fatal("written bytes never seen waiting")
		}
		time.Sleep(time.Millisecond)
	}
	b := make([]byte, 16)
	if n, err := server.Read(b); err != nil || n != 3 {
		t.Fatalf("read %d, %v", n, err)
	}
	if inputWaiting(rc) {
		t.Fatal("input waiting after it was read")
	}
	read := make(chan error, 1)
	go func() { _, err := server.Read(b); read <- err }()
	time.Sleep(50 * time.Millisecond) // the reader is parked in Read
	done := make(chan bool, 1)
	go func() { done <- inputWaiting(rc) }()
	select {
	case w := <-done:
		if w {
			t.Fatal("input waiting with none sent")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("inputWaiting blocked behind a pending Read")
	}
	client.Close()
	<-read
}

// TestEvictSkipsWaitingInput: an idle connection whose next request is
// already in its socket is not closed to make room, on either path; once
// that input is read, it is.
func TestEvictSkipsWaitingInput(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	f := newHTTPFrontend(DefaultConfig(), nil, m, zap.NewNop())
	cs := &f.conns
	client, server := tcpPair(t)
	c := f.newConn(server)
	c.state.Store(connIdle)
	client2, server2 := tcpPair(t)
	pc := &prefixConn{Conn: server2, rc: rawOf(server2)}
	pc.state.Store(connIdle)
	cs.set[c] = struct{}{}
	cs.handed[pc] = struct{}{}
	for _, w := range []net.Conn{client, client2} {
		if _, err := w.Write([]byte("GET /")); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); !inputWaiting(c.rc) || !inputWaiting(rawOf(server2)); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("written bytes never seen waiting")
		}
	}
	cs.mu.Lock()
	if cs.evict(c) || cs.evictNet(pc) || cs.evictIdle() != nil {
		t.Fatal("a connection with a request waiting was taken to close")
	}
	cs.mu.Unlock()
	b := make([]byte, 16)
	if _, err := server.Read(b); err != nil {
		t.Fatal(err)
	}
	if _, err := server2.Read(b); err != nil {
		t.Fatal(err)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if !cs.evict(c) || !cs.evictNet(pc) {
		t.Fatal("idle connections with nothing waiting were not taken")
	}
	if len(cs.set)+len(cs.handed) != 0 || c.state.Load() != connClosed || pc.state.Load() != connClosed {
		t.Fatalf("after eviction: %d in the count, states %d and %d", len(cs.set)+len(cs.handed), c.state.Load(), pc.state.Load())
	}
}

// TestPrefixConnReadGate: a read on a connection net/http holds marks it
// active; one that returns bytes after the limit closed the connection
// reports the close, so net/http does not serve a request it cannot answer.
func TestPrefixConnReadGate(t *testing.T) {
	client, server := tcpPair(t)
	pc := &prefixConn{Conn: server}
	pc.state.Store(connIdle)
	if _, err := client.Write([]byte("GET")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	if n, err := pc.Read(b); n != 3 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	if pc.state.Load() != connActive {
		t.Fatalf("state %d after a read, want active", pc.state.Load())
	}
	pc.state.Store(connClosed) // as evictNet does before closing
	if _, err := client.Write([]byte("GET")); err != nil {
		t.Fatal(err)
	}
	if n, err := pc.Read(b); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read %d, %v after the limit closed it; want 0, net.ErrClosed", n, err)
	}
}
