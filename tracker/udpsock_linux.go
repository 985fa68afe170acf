package tracker

import (
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

const socketMemInfoSupported = true

// Indices into getsockopt(SO_MEMINFO)'s array (SK_MEMINFO_* of
// linux/sock_diag.h). SO_MEMINFO is Linux 4.12 on; before, it fails.
const (
	skMemInfoRmemAlloc = 0
	skMemInfoRcvbuf    = 1
	skMemInfoDrops     = 8
	skMemInfoVars      = 9
)

// socketMemInfo reads conn's receive queue, buffer and drops.
func socketMemInfo(conn *net.UDPConn) (socketMem, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return socketMem{}, err
	}
	var info [skMemInfoVars]uint32
	n := uint32(unsafe.Sizeof(info))
	var serr error
	err = raw.Control(func(fd uintptr) {
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&n)), 0)
		if e != 0 {
			serr = e
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return socketMem{}, fmt.Errorf("getsockopt SO_MEMINFO: %w", err)
	}
	if n < skMemInfoVars*4 {
		return socketMem{}, fmt.Errorf("getsockopt SO_MEMINFO: %d bytes, want %d", n, skMemInfoVars*4)
	}
	return socketMem{
		queued: uint64(info[skMemInfoRmemAlloc]),
		buffer: uint64(info[skMemInfoRcvbuf]),
		drops:  uint64(info[skMemInfoDrops]),
	}, nil
}
