package tracker

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedpay/seedpay/middleware/auth"
)

// The kernel's count for a socket that is not read: what fits is queued,
// the rest dropped, and every datagram sent is one or the other.
func TestSocketMemInfoQueueAndDrops(t *testing.T) {
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := rx.SetReadBuffer(8192); err != nil {
		t.Fatal(err)
	}
	tx, err := net.DialUDP("udp", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	empty, err := socketMemInfo(rx)
	if err != nil {
		t.Fatal(err)
	}
	if empty.queued != 0 || empty.drops != 0 || empty.buffer < 8192 {
		t.Fatalf("a new socket: %+v, want nothing queued or dropped and a buffer >= 8192", empty)
	}
	const sent = 300 // of 200 bytes: far more than 8 KiB holds
	for range sent {
		if _, err := tx.Write(make([]byte, 200)); err != nil {
			t.Fatal(err)
		}
	}
	// Loopback delivers in softirq, which a busy kernel may defer: read the
	// snapshot's queue, but count drops only once everything is read.
	full, err := socketMemInfo(rx)
	if err != nil {
		t.Fatal(err)
	}
	var got uint64
	buf := make([]byte, 512)
	for {
		_ = rx.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := rx.Read(buf); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			break
		}
		got++
	}
	read, err := socketMemInfo(rx)
	if err != nil {
		t.Fatal(err)
	}
	if got == 0 || got == sent || full.queued == 0 || full.drops > read.drops {
		t.Fatalf("sent %d, read %d; while unread %+v, after %+v", sent, got, full, read)
	}
	if read.queued != 0 || read.drops != sent-got {
		t.Fatalf("sent %d, read %d; after reading %+v: want an empty queue and the %d not read counted as drops", sent, got, read, sent-got)
	}
	rx.Close()
	if _, err := socketMemInfo(rx); err == nil {
		t.Fatal("a closed socket: no error")
	}
}

// The server registers one collector over all its sockets (udp_sockets: 2
// here), summed.
func TestUDPSocketCollectorOnServer(t *testing.T) {
	st := newStack(t, func(c *Config, _ *auth.Config) { c.UDPSockets = 2 })
	if n := testutil.CollectAndCount(st.srv.UDPSocketCollector()); n != 3 {
		t.Fatalf("%d metrics, want 3 (queue, buffer, drops)", n)
	}
	var sum uint64
	for _, conn := range st.srv.udpConns {
		m, err := socketMemInfo(conn)
		if err != nil {
			t.Fatal(err)
		}
		sum += m.buffer
	}
	if len(st.srv.udpConns) != 2 || sum == 0 {
		t.Fatalf("%d sockets, buffers %d", len(st.srv.udpConns), sum)
	}
	if got := gaugeValue(t, st.reg, "seedpay_tracker_udp_receive_buffer_bytes"); got != float64(sum) {
		t.Fatalf("receive buffer %v, want the sum of both sockets' %d", got, sum)
	}
}

// A socket that cannot be read (closed at shutdown) empties the scrape: a
// partial sum would show the drops counter falling.
func TestUDPSocketCollectorSkipsClosed(t *testing.T) {
	var conns []*net.UDPConn
	for range 2 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	c := newUDPSocketCollector(conns)
	if n := testutil.CollectAndCount(c); n != 3 {
		t.Fatalf("two open sockets: %d metrics, want 3", n)
	}
	conns[0].Close()
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Fatalf("one socket closed: %d metrics, want none (not a partial sum)", n)
	}
}
