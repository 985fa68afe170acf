//go:build unix

package tracker

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
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

// A request already in the socket is read, and its reply written, without
// a deadline (no timer per one-announce connection); a read that has to
// wait sets one, so the timeouts still hold.
func TestHTTPFirstRequestArmsNoDeadline(t *testing.T) {
	f := &httpFrontend{readTimeout: time.Second, writeTimeout: time.Second, idleTimeout: time.Minute}
	newConn := func(nc net.Conn) *httpConn {
		return &httpConn{f: f, nc: nc, rc: rawOf(nc), buf: make([]byte, 0, httpReadBuf)}
	}
	req := rawGet("/announce/pk?x=1", "Host: t")

	client, server := tcpPair(t)
	if _, err := io.WriteString(client, req); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // on loopback it is there by now
	c := newConn(server)
	head, err := c.readHead()
	if err != nil || string(head) != req {
		t.Fatalf("readHead = %q, %v", head, err)
	}
	b := append(make([]byte, httpHdrRoom), "d8:intervali1ee"...)
	if !c.writeReply(b, &fastHead{close: true}, time.Now()) {
		t.Fatal("writeReply failed")
	}
	if !c.rdl.IsZero() || !c.wdl.IsZero() {
		t.Fatalf("deadlines set: read %v write %v", c.rdl, c.wdl)
	}
	server.Close()
	reply, err := io.ReadAll(client)
	if err != nil || !strings.HasPrefix(string(reply), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(reply), "\r\n\r\nd8:intervali1ee") {
		t.Fatalf("reply %q, %v", reply, err)
	}

	// Nothing there yet: the read waits, under the idle timeout.
	client, server = tcpPair(t)
	c = newConn(server)
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = io.WriteString(client, req)
	}()
	if head, err := c.readHead(); err != nil || string(head) != req {
		t.Fatalf("waited readHead = %q, %v", head, err)
	}
	if c.rdl.IsZero() {
		t.Fatal("a read that waited set no deadline")
	}
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
