package tracker

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestUDPReadErrors: a read that fails for want of kernel memory is
// retried (counted as read_error), a closed socket ends the loop quietly,
// anything else stops it.
func TestUDPReadErrors(t *testing.T) {
	op := func(errno syscall.Errno) error {
		return &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("recvmmsg", errno)}
	}
	tests := []struct {
		name string
		err  error
		want error // nil: the error itself
	}{
		{"ENOBUFS", op(syscall.ENOBUFS), errLowMemory},
		{"ENOMEM", op(syscall.ENOMEM), errLowMemory},
		{"closed", &net.OpError{Op: "read", Err: net.ErrClosed}, errStop},
		{"EBADF", op(syscall.EBADF), nil},
	}
	for _, tt := range tests {
		got := readErr(tt.err)
		want := tt.want
		if want == nil {
			want = tt.err
		}
		if !errors.Is(got, want) {
			t.Errorf("%s: readErr = %v, want %v", tt.name, got, want)
		}
	}
	f, _, _, _ := newBareFrontend(t)
	f.pauseLowMemory(syscall.ENOBUFS)
	f.pauseLowMemory(syscall.ENOMEM)
	if got := testutil.ToFloat64(f.metrics.udpDropped[dropReadError]); got != 2 {
		t.Fatalf("udp_dropped_total{read_error} = %v, want 2", got)
	}
}
