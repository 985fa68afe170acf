//go:build !linux

package tracker

import (
	"errors"
	"net"
)

const socketMemInfoSupported = false

func socketMemInfo(*net.UDPConn) (socketMem, error) {
	return socketMem{}, errors.New("socket memory is read on Linux only")
}
