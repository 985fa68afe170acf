package tracker

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of recvmmsg(2)/sendmmsg(2). Go lays it out as C
// does on every Linux architecture (the header's alignment pads len).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// mmsgBatch is one worker's batch: request buffers, reply buffers and the
// headers of both directions. A reply goes to the address its request came
// from: the receive header's name is reused as is.
type mmsgBatch struct {
	rx    []mmsghdr
	tx    []mmsghdr
	rxIov []unix.Iovec
	txIov []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for AF_INET and AF_INET6
	in    [][]byte
	out   [][]byte
	n     int // messages received
	m     int // replies to send
	sent  int
	errno syscall.Errno
	// Replies the kernel refused in the last send, and the last reason.
	sendErrs  int
	sendErrno syscall.Errno
	// The raw-conn callbacks, built once so a call allocates nothing.
	recvFn func(fd uintptr) bool
	sendFn func(fd uintptr) bool
}

func newMMsgBatch(size, replyCap int) *mmsgBatch {
	b := &mmsgBatch{
		rx:    make([]mmsghdr, size),
		tx:    make([]mmsghdr, size),
		rxIov: make([]unix.Iovec, size),
		txIov: make([]unix.Iovec, size),
		names: make([]unix.RawSockaddrInet6, size),
		in:    make([][]byte, size),
		out:   make([][]byte, size),
	}
	for i := range size {
		b.in[i] = make([]byte, udpMaxPacket)
		b.out[i] = make([]byte, 0, replyCap)
	}
	b.recvFn = b.recv
	b.sendFn = b.send
	return b
}

// recv is the raw read: false (wait for readability) on EAGAIN.
func (b *mmsgBatch) recv(fd uintptr) bool {
	for i := range b.rx {
		b.rxIov[i].Base = &b.in[i][0]
		b.rxIov[i].SetLen(len(b.in[i]))
		h := &b.rx[i].hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&b.names[i])), Namelen: uint32(unsafe.Sizeof(b.names[i])), Iov: &b.rxIov[i]}
		h.SetIovlen(1)
	}
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rx[0])), uintptr(len(b.rx)), unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0:
		b.n, b.errno = int(r), 0
		return true
	case unix.EAGAIN, unix.EINTR:
		return false
	default:
		b.n, b.errno = 0, e
		return true
	}
}

// send is the raw write of replies sent..m: false (wait for writability) on
// EAGAIN. A reply the kernel refuses outright is skipped.
func (b *mmsgBatch) send(fd uintptr) bool {
	for b.sent < b.m {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.tx[b.sent])), uintptr(b.m-b.sent), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			b.sent += int(r)
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		default:
			b.sent++ // this reply failed (e.g. an unreachable address): drop it
			b.sendErrs++
			b.sendErrno = e
		}
	}
	return true
}

func sockaddrAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
	}
	return netip.AddrPort{}
}

// recvOutcome sorts a recvmmsg errno: read true when datagrams arrived,
// false to read again, or the error that stops the worker.
func (w *udpWorker) recvOutcome(errno syscall.Errno) (read bool, err error) {
	switch errno {
	case 0:
		return true, nil
	case unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EHOSTDOWN:
		// Errors queued on the socket (ICMP after a reply to a vanished
		// client): nothing to answer, read on.
		return false, nil
	case unix.ENOBUFS, unix.ENOMEM:
		w.f.pauseLowMemory(errno)
		return false, nil
	default:
		// Anything else would repeat on every read: fail like the
		// portable loop does instead of spinning.
		return false, fmt.Errorf("udp: recvmmsg: %w", errno)
	}
}

// serveBatch reads up to size datagrams per recvmmsg, answers them all, then
// sends the replies with one sendmmsg.
func (w *udpWorker) serveBatch(conn *net.UDPConn, size int) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	b := newMMsgBatch(size, w.f.replyCap)
	for {
		if err := rc.Read(b.recvFn); err != nil {
			// Deadlines and a closed socket only: the read's own errno
			// is in b.errno.
			if err = readErr(err); err == errStop {
				return nil
			} else if err != nil {
				return err
			}
			continue
		}
		if read, err := w.recvOutcome(b.errno); err != nil {
			return err
		} else if !read {
			continue
		}
		if w.f.onBatch != nil {
			w.f.onBatch(b.n)
		}
		w.answerBatch(b)
		if err := w.sendBatch(rc, b); err != nil {
			return err
		}
	}
}

// answerBatch answers the b.n datagrams received into replies 0..b.m.
func (w *udpWorker) answerBatch(b *mmsgBatch) {
	b.m = 0
	for i := range b.n {
		rx := &b.rx[i]
		if rx.hdr.Flags&unix.MSG_TRUNC != 0 {
			w.f.drop(dropTruncated, 1, nil)
			continue
		}
		addr := sockaddrAddrPort(&b.names[i])
		if !addr.IsValid() {
			w.f.drop(dropBadSource, 1, nil)
			continue
		}
		out := w.handle(b.in[i][:rx.len], addr, b.out[i][:0])
		if len(out) == 0 {
			continue
		}
		if cap(out) > cap(b.out[i]) {
			b.out[i] = out[:0] // grown once (an unusually long error): keep it
		}
		j := b.m
		b.txIov[j].Base = &out[0]
		b.txIov[j].SetLen(len(out))
		h := &b.tx[j].hdr
		*h = unix.Msghdr{Name: rx.hdr.Name, Namelen: rx.hdr.Namelen, Iov: &b.txIov[j]}
		h.SetIovlen(1)
		b.m++
	}
}

// sendBatch sends replies 0..b.m with as few sendmmsg as the kernel
// allows, counting the ones it refuses. A closed socket is left for the
// next read to report.
func (w *udpWorker) sendBatch(rc syscall.RawConn, b *mmsgBatch) error {
	if b.m == 0 {
		return nil
	}
	b.sent, b.sendErrs = 0, 0
	err := rc.Write(b.sendFn)
	if b.sendErrs > 0 {
		w.f.drop(dropSendError, b.sendErrs, b.sendErrno)
	}
	if err != nil {
		if err = readErr(err); err != errStop {
			return err
		}
	}
	return nil
}

// defaultUDPSockets is one socket per CPU the Go scheduler uses.
func defaultUDPSockets() int { return runtime.GOMAXPROCS(0) }

// reusePort sets SO_REUSEPORT, so several sockets share one address and
// the kernel spreads datagrams over them by flow.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
