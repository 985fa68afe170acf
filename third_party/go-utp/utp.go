// Package utp stands in for github.com/anacrolix/go-utp, which the Go module
// proxy does not serve. It has the API github.com/anacrolix/torrent uses and
// no implementation: every socket constructor fails, so a torrent client
// must run with uTP disabled (torrent.ClientConfig.DisableUTP).
package utp

import (
	"context"
	"errors"
	"log/slog"
	"net"
)

// ErrUnavailable is returned by every constructor.
var ErrUnavailable = errors.New("uTP is not available in this build (github.com/anacrolix/go-utp is replaced by a stub)")

// Default names the implementation in messages.
const Default = "go-utp stub"

// FirewallCallback reports whether a connection from an address is refused.
type FirewallCallback = func(net.Addr) bool

// Socket is a uTP socket.
type Socket interface {
	net.PacketConn
	Accept() (net.Conn, error)
	Addr() net.Addr
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	SetFirewallCallback(FirewallCallback)
}

// Option configures a socket.
type Option func(*options)

type options struct{ logger *slog.Logger }

// WithLogger sets the socket's logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// NewSocket always fails with ErrUnavailable.
func NewSocket(network, addr string, opts ...Option) (Socket, error) { return nil, ErrUnavailable }

// NewSocketFromPacketConn always fails with ErrUnavailable.
func NewSocketFromPacketConn(pc net.PacketConn, opts ...Option) (Socket, error) {
	return nil, ErrUnavailable
}
