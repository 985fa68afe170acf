package main

import (
	"fmt"
	"net"
	"syscall"
	"time"
	"unsafe"
)

// The kernel stamps each datagram as it is queued to the socket
// (SO_TIMESTAMPNS). On loopback that happens inside the tracker's send
// call, so latency up to that stamp is the tracker's alone: it leaves out
// the generator's own delay in waking its reader, which on a busy core
// can be most of a sub-millisecond tail.

// enableRxStamps asks the kernel to stamp every datagram conn receives.
func enableRxStamps(conn *net.UDPConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_TIMESTAMPNS: %w", serr)
	}
	return nil
}

// rxStampSpace is the control-message room one stamp needs.
var rxStampSpace = syscall.CmsgSpace(int(unsafe.Sizeof(syscall.Timespec{})))

// rxStamp is the kernel's receive stamp in oob (a datagram's control
// messages), if there is one.
func rxStamp(oob []byte) (time.Time, bool) {
	for len(oob) >= syscall.CmsgLen(0) {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < syscall.SizeofCmsghdr || int(h.Len) > len(oob) {
			return time.Time{}, false
		}
		data := oob[syscall.CmsgLen(0):h.Len]
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(syscall.Timespec{})) {
			ts := (*syscall.Timespec)(unsafe.Pointer(&data[0]))
			return time.Unix(ts.Unix()), true
		}
		next := syscall.CmsgSpace(int(h.Len) - syscall.CmsgLen(0))
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return time.Time{}, false
}
