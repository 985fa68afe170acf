// Package tracker serves the BitTorrent tracker protocols (HTTP, BEP 3/23/7/48,
// and UDP, BEP 15/41) on top of chihaya's middleware logic and peer store.
package tracker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/chihaya/chihaya/frontend"
	"go.uber.org/zap"
)

// Server runs the HTTP and UDP frontends. Listening and serving errors are
// returned to the caller: nothing here exits the process.
type Server struct {
	cfg      Config
	http     *httpFrontend
	udp      *udpFrontend
	httpLn   net.Listener
	udpConns []*net.UDPConn
	log      *zap.Logger
}

// New builds a server; call Listen, then Serve.
func New(cfg Config, logic frontend.TrackerLogic, m *Metrics, log *zap.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log}
	if cfg.HTTPAddr != "" {
		s.http = newHTTPFrontend(cfg, logic, m, log.Named("http"))
	}
	if cfg.UDPAddr != "" {
		u, err := newUDPFrontend(cfg, logic, m, log.Named("udp"))
		if err != nil {
			return nil, err
		}
		s.udp = u
	}
	return s, nil
}

// HandleHTTP adds a route to the HTTP tracker's port (e.g. receipt intake),
// before Serve. It does nothing when HTTP is disabled.
func (s *Server) HandleHTTP(pattern string, h http.Handler) {
	if s.http != nil {
		s.http.mux.Handle(pattern, h)
	}
}

// Listen binds the configured sockets.
func (s *Server) Listen() error {
	if s.http != nil {
		ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("http tracker: listen on %s: %w", s.cfg.HTTPAddr, err)
		}
		s.httpLn = ln
	}
	if s.udp != nil {
		n := s.cfg.UDPSockets
		if n == 0 {
			n = defaultUDPSockets()
		}
		conns, err := listenUDP(s.cfg.UDPAddr, n)
		if err != nil {
			if s.httpLn != nil {
				_ = s.httpLn.Close()
			}
			return fmt.Errorf("udp tracker: listen on %s: %w", s.cfg.UDPAddr, err)
		}
		s.udpConns = conns
	}
	return nil
}

// udpReadBuffer is the receive buffer each UDP socket asks for; the kernel
// caps it at net.core.rmem_max and doubles it.
const udpReadBuffer = 8 << 20

// listenUDP binds n sockets to addr, with SO_REUSEPORT when n > 1.
//
// SO_REUSEPORT would also let a second tracker started by mistake on the
// same port share the traffic silently, so a plain bind first claims the
// address (and fixes the port when addr asks for any): it fails while any
// other socket holds the address, ours included, so the second instance
// refuses to start like any tracker with one socket.
func listenUDP(addr string, n int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{}
	if n > 1 {
		probe, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, err
		}
		addr = probe.LocalAddr().String()
		if err := probe.Close(); err != nil {
			return nil, err
		}
		lc.Control = reusePort
	}
	conns := make([]*net.UDPConn, 0, n)
	for i := range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, c := range conns {
				_ = c.Close()
			}
			return nil, err
		}
		c := pc.(*net.UDPConn)
		// Queue a burst rather than drop it (docs/DESIGN.md, "UDP receive buffer").
		_ = c.SetReadBuffer(udpReadBuffer)
		conns = append(conns, c)
		if i == 0 {
			addr = c.LocalAddr().String()
		}
	}
	return conns, nil
}

// HTTPAddr is the bound HTTP address (nil when disabled or not listening).
func (s *Server) HTTPAddr() net.Addr {
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}

// UDPAddr is the bound UDP address (nil when disabled or not listening).
func (s *Server) UDPAddr() net.Addr {
	if len(s.udpConns) == 0 {
		return nil
	}
	return s.udpConns[0].LocalAddr()
}

// Serve serves until ctx is cancelled (then shuts down gracefully and returns
// nil) or a frontend fails (then stops the other and returns the error).
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 2)
	running := 0
	if s.httpLn != nil {
		running++
		go func() {
			err := s.http.serve(s.httpLn)
			if err != nil {
				err = fmt.Errorf("http tracker: %w", err)
			}
			errc <- err
		}()
	}
	if len(s.udpConns) > 0 {
		running++
		go func() {
			err := s.udp.serve(s.udpConns)
			if err != nil {
				err = fmt.Errorf("udp tracker: %w", err)
			}
			errc <- err
		}()
	}
	if running == 0 {
		return errors.New("tracker: Serve called before Listen")
	}

	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
		running--
	}
	s.shutdown()
	for ; running > 0; running-- {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Server) shutdown() {
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		if err := s.http.shutdown(ctx); err != nil {
			s.log.Warn("http tracker: shutdown", zap.Error(err))
		}
		cancel()
	}
	for _, c := range s.udpConns {
		_ = c.Close()
	}
}
