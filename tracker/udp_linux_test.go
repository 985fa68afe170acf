package tracker

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// newDropFrontend is newBareFrontend with metrics in a registry of its own.
func newDropFrontend(t *testing.T) (*udpWorker, *prometheus.Registry, *net.UDPConn) {
	t.Helper()
	f, w, conn, _ := newBareFrontend(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	f.metrics, f.log = m, zap.NewNop()
	return w, reg, conn
}

// TestUDPBatchDropsBadSource: a datagram whose source address is neither
// IPv4 nor IPv6 gets no answer and is counted.
func TestUDPBatchDropsBadSource(t *testing.T) {
	w, reg, _ := newDropFrontend(t)
	b := newMMsgBatch(2, w.f.replyCap)
	pkt := append(udpProtocolID[:], 0, 0, 0, udpConnect, 1, 2, 3, 4)
	for i := range 2 {
		b.rx[i].len = uint32(copy(b.in[i], pkt))
	}
	b.names[0].Family = 0            // no address
	b.names[1].Family = unix.AF_INET // 0.0.0.0:0, answered
	b.n = 2
	w.answerBatch(b)
	if b.m != 1 {
		t.Fatalf("%d replies, want 1 (the datagram with an address)", b.m)
	}
	if got := counterValue(t, reg, udpDroppedMetric, "reason", "bad_source"); got != 1 {
		t.Fatalf("bad_source drops %v, want 1", got)
	}
}

// TestUDPBatchCountsSendErrors: a reply the kernel refuses is skipped
// and counted, and the replies after it still go out.
func TestUDPBatchCountsSendErrors(t *testing.T) {
	w, reg, conn := newDropFrontend(t)
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// Reply 0 has no address (EDESTADDRREQ on an unconnected socket);
	// reply 1 goes to sink.
	b := newMMsgBatch(2, w.f.replyCap)
	to := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&b.names[1]))
	sa4.Family, sa4.Addr = unix.AF_INET, to.Addr().As4()
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], to.Port())
	if got := sockaddrAddrPort(&b.names[1]); got != to {
		t.Fatalf("sockaddr reads as %s, want %s", got, to)
	}
	for i := range 2 {
		out := append(b.out[i][:0], "reply"...)
		b.txIov[i].Base = &out[0]
		b.txIov[i].SetLen(len(out))
		b.tx[i].hdr.Iov = &b.txIov[i]
		b.tx[i].hdr.SetIovlen(1)
	}
	b.tx[1].hdr.Name, b.tx[1].hdr.Namelen = (*byte)(unsafe.Pointer(&b.names[1])), unix.SizeofSockaddrInet4
	b.m = 2
	if err := w.sendBatch(rc, b); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, reg, udpDroppedMetric, "reason", "send_error"); got != 1 {
		t.Fatalf("send_error drops %v, want 1", got)
	}
	buf := make([]byte, 16)
	_ = sink.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := sink.Read(buf); err != nil || string(buf[:n]) != "reply" {
		t.Fatalf("the reply after the refused one: %q, %v", buf[:n], err)
	}
}

// TestUDPBatchReadsSeveral: datagrams queued before the reader runs come
// in one recvmmsg, and each gets its answer.
func TestUDPBatchReadsSeveral(t *testing.T) {
	f, w, _, _ := newBareFrontend(t)
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	const sent = 4
	for i := range sent {
		pkt := append(udpProtocolID[:], 0, 0, 0, udpConnect, 0, 0, 0, byte(i))
		if _, err := client.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
	batches := make(chan int, sent)
	f.onBatch = func(n int) { batches <- n }
	done := make(chan error, 1)
	go func() { done <- w.serveBatch(srv, 8) }()
	seen := map[byte]bool{}
	buf := make([]byte, 64)
	_ = client.SetReadDeadline(time.Now().Add(3 * time.Second))
	for range sent {
		n, err := client.Read(buf)
		if err != nil {
			t.Fatalf("after %d replies: %v", len(seen), err)
		}
		if n != 16 || binary.BigEndian.Uint32(buf) != udpConnect {
			t.Fatalf("reply %x, want a connect reply", buf[:n])
		}
		seen[buf[7]] = true
	}
	srv.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(seen) != sent {
		t.Fatalf("replies to %d distinct requests, want %d", len(seen), sent)
	}
	if first := <-batches; first < 2 {
		t.Fatalf("first recvmmsg got %d datagram(s) of the %d queued, want several", first, sent)
	}
}

// TestRecvOutcome: what the batch loop does with each recvmmsg errno:
// read the batch, read again (queued ICMP errors; a kernel memory shortage,
// counted and paused), or stop.
func TestRecvOutcome(t *testing.T) {
	w, reg, _ := newDropFrontend(t)
	tests := []struct {
		errno   unix.Errno
		read    bool
		stops   bool
		counted float64 // read_error drops after this errno
	}{
		{0, true, false, 0},
		{unix.ECONNREFUSED, false, false, 0},
		{unix.EHOSTUNREACH, false, false, 0},
		{unix.ENOBUFS, false, false, 1},
		{unix.ENOMEM, false, false, 2},
		{unix.EBADF, false, true, 2},
	}
	for _, tt := range tests {
		read, err := w.recvOutcome(tt.errno)
		if read != tt.read || (err != nil) != tt.stops {
			t.Errorf("%v: read %v err %v, want read %v stop %v", tt.errno, read, err, tt.read, tt.stops)
		}
		if got := counterValue(t, reg, "seedpay_tracker_udp_dropped_total", "reason", "read_error"); got != tt.counted {
			t.Errorf("%v: read_error = %v, want %v", tt.errno, got, tt.counted)
		}
	}
}
