//go:build !linux

package main

import (
	"errors"
	"net"
	"time"
)

func enableRxStamps(*net.UDPConn) error { return errors.New("kernel receive stamps need Linux") }

var rxStampSpace = 0

func rxStamp([]byte) (time.Time, bool) { return time.Time{}, false }
