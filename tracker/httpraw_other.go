//go:build !unix || aix

package tracker

import (
	"net"
	"syscall"
)

// Without a Unix descriptor every read and write goes through net.Conn,
// and a close after a last reply always lingers.

func rawOf(net.Conn) syscall.RawConn { return nil }

func tryRead(syscall.RawConn, []byte) (int, bool) { return 0, false }

func tryWrite(syscall.RawConn, []byte) int { return 0 }

func pendingInput(syscall.RawConn) bool { return true }

func inputWaiting(syscall.RawConn) bool { return false }
