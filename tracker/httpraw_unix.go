//go:build unix && !aix

package tracker

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// A new connection's first request is usually in the socket by the time
// the connection is served, and its reply fits the empty send buffer. The
// descriptor is tried once without blocking for both, so such a request
// arms no deadline timer: with one announce per connection, as most
// clients send, the timers (set, then stopped at close) cost more than the
// read and the write. Only when the descriptor would block does the loop
// set a deadline and go through net.Conn.

// rawOf is nc's descriptor, or nil when it has none.
func rawOf(nc net.Conn) syscall.RawConn {
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			return rc
		}
	}
	return nil
}

// tryRead reads once into b without blocking; ok is false when it would
// block or failed (net.Conn.Read then waits, or reports the error).
func tryRead(rc syscall.RawConn, b []byte) (n int, ok bool) {
	var err error
	if cerr := rc.Read(func(fd uintptr) bool {
		n, err = unix.Read(int(fd), b)
		return true
	}); cerr != nil || err != nil || n < 0 {
		return 0, false
	}
	return n, true // 0: the client closed
}

// tryWrite writes what b's descriptor takes without blocking and returns
// how much that was.
func tryWrite(rc syscall.RawConn, b []byte) int {
	var n int
	var err error
	if cerr := rc.Write(func(fd uintptr) bool {
		n, err = unix.Write(int(fd), b)
		return true
	}); cerr != nil || err != nil || n < 0 {
		return 0
	}
	return n
}

// pendingInput reports whether the client sent bytes not yet read (or the
// descriptor cannot tell).
func pendingInput(rc syscall.RawConn) bool {
	pending := true
	var b [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		pending = n > 0 || (err != nil && err != unix.EAGAIN)
		return true
	})
	return pending
}

// inputWaiting reports whether bytes the client sent wait unread in the
// socket. It peeks through Control, which a Read blocked on the descriptor
// does not hold up.
func inputWaiting(rc syscall.RawConn) bool {
	waiting := false
	var b [1]byte
	_ = rc.Control(func(fd uintptr) {
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		waiting = err == nil && n > 0
	})
	return waiting
}
