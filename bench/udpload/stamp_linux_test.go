package main

import (
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
)

// A datagram on a stamped socket carries the kernel's receive time: after
// the send began, before the reader saw it.
func TestRxStampOnLoopback(t *testing.T) {
	rx, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := enableRxStamps(rx); err != nil {
		t.Fatal(err)
	}
	tx, err := net.DialUDP("udp", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	before := time.Now()
	if _, err := tx.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the stamp is the arrival, not the read
	_ = rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	ms := []ipv4.Message{{Buffers: [][]byte{make([]byte, 16)}, OOB: make([]byte, rxStampSpace)}}
	if _, err := ipv4.NewPacketConn(rx).ReadBatch(ms, 0); err != nil {
		t.Fatal(err)
	}
	read := time.Now()
	at, ok := rxStamp(ms[0].OOB[:ms[0].NN])
	if !ok {
		t.Fatalf("no stamp in %d bytes of control data", ms[0].NN)
	}
	if at.Before(before.Add(-time.Millisecond)) || at.After(read.Add(-15*time.Millisecond)) {
		t.Fatalf("stamp %v: sent at %v, read at %v (20 ms later)", at, before, read)
	}
}

func TestRxStampMalformed(t *testing.T) {
	good := make([]byte, rxStampSpace)
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&good[0]))
	h.Level, h.Type = syscall.SOL_SOCKET, syscall.SCM_TIMESTAMPNS
	h.SetLen(syscall.CmsgLen(int(unsafe.Sizeof(syscall.Timespec{}))))
	*(*syscall.Timespec)(unsafe.Pointer(&good[syscall.CmsgLen(0)])) = syscall.NsecToTimespec(1_700_000_000_123_456_789)
	if at, ok := rxStamp(good); !ok || at.UnixNano() != 1_700_000_000_123_456_789 {
		t.Fatalf("good stamp: %v %v", at, ok)
	}
	other := append([]byte(nil), good...)
	(*syscall.Cmsghdr)(unsafe.Pointer(&other[0])).Type = syscall.SCM_RIGHTS
	for name, oob := range map[string][]byte{
		"empty":     nil,
		"short":     good[:syscall.CmsgLen(0)-1],
		"truncated": good[:len(good)-4],
		"other":     other,
		"zero len":  make([]byte, rxStampSpace),
	} {
		if _, ok := rxStamp(oob); ok {
			t.Errorf("%s: a stamp found", name)
		}
	}
}
