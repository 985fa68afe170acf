//go:build !linux

package tracker

import (
	"errors"
	"net"
	"syscall"
)

// serveBatch falls back to one read and one write per packet where
// recvmmsg/sendmmsg are not available.
func (w *udpWorker) serveBatch(conn *net.UDPConn, _ int) error { return w.serveOne(conn) }

// defaultUDPSockets is one socket: SO_REUSEPORT spreading is Linux's.
func defaultUDPSockets() int { return 1 }

func reusePort(_, _ string, _ syscall.RawConn) error {
	return errors.New("udp_sockets > 1 needs SO_REUSEPORT (Linux)")
}
