package tracker

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config is the tracker's network-facing configuration.
type Config struct {
	// HTTPAddr is where the HTTP tracker listens ("" disables it).
	HTTPAddr string `yaml:"http_addr"`
	// UDPAddr is where the UDP tracker listens ("" disables it).
	UDPAddr string `yaml:"udp_addr"`
	// AnnounceInterval is the "interval" sent to clients.
	AnnounceInterval time.Duration `yaml:"announce_interval"`
	// MinAnnounceInterval is the "min interval" sent to clients.
	MinAnnounceInterval time.Duration `yaml:"min_announce_interval"`
	// DefaultNumWant is the number of peers sent when the client names none.
	DefaultNumWant uint32 `yaml:"default_numwant"`
	// MaxNumWant caps the number of peers a client may ask for.
	MaxNumWant uint32 `yaml:"max_numwant"`
	// MaxScrapeInfoHashes caps the info hashes answered in one scrape.
	MaxScrapeInfoHashes uint32 `yaml:"max_scrape_infohashes"`
	// RealIPHeader names a header carrying the client IP (behind a proxy).
	RealIPHeader string `yaml:"real_ip_header"`
	// UDPConnectionKey signs BEP 15 connection ids; empty: random per start.
	UDPConnectionKey string `yaml:"udp_connection_key"`
	// UDPMaxClockSkew is how far in the future a connection id's timestamp
	// may be (ids signed by another instance whose clock runs ahead). An id
	// stays valid for a fixed 2 minutes after its timestamp (BEP 15).
	UDPMaxClockSkew time.Duration `yaml:"udp_max_clock_skew"`
	// UDPWorkers is the number of goroutines reading the UDP sockets, spread
	// over them (0: one per CPU; at least one per socket).
	UDPWorkers int `yaml:"udp_workers"`
	// UDPSockets is the number of sockets bound to udp_addr with
	// SO_REUSEPORT, the kernel spreading clients over them by address (0:
	// one per CPU on Linux, 1 elsewhere; more than 1 needs Linux).
	UDPSockets int `yaml:"udp_sockets"`
	// UDPBatch is the most datagrams one worker reads with one recvmmsg and
	// answers with one sendmmsg (Linux; 0: DefaultUDPBatch, 1: one
	// read and one write per datagram). A batch is answered in one go, so a
	// large one delays its first replies and keeps the other workers idle
	// at moderate load.
	UDPBatch int `yaml:"udp_batch"`
	// HTTPReadTimeout, HTTPWriteTimeout and HTTPIdleTimeout bound each connection.
	HTTPReadTimeout  time.Duration `yaml:"http_read_timeout"`
	HTTPWriteTimeout time.Duration `yaml:"http_write_timeout"`
	HTTPIdleTimeout  time.Duration `yaml:"http_idle_timeout"`
	// HTTPMaxConns bounds the HTTP connections open at once (0:
	// DefaultHTTPMaxConns). At the limit a new connection closes an idle
	// keep-alive one to make room; when it finds none, accepting pauses
	// until one closes or turns idle, new connections waiting in the
	// listen backlog.
	HTTPMaxConns int `yaml:"http_max_conns"`
	// ShutdownTimeout bounds the graceful shutdown of open HTTP requests.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// DefaultUDPBatch is udp_batch's default (see docs/performance.md,
// "Allocations": 8 did best on 2 cores against 1 and 32).
const DefaultUDPBatch = 8

// DefaultHTTPMaxConns is http_max_conns's default. An idle keep-alive
// connection holds ~9 KiB in the process (measured: a 4 KiB goroutine stack,
// the 4 KiB read buffer, the connection) plus the kernel's socket: about
// 250 MiB with all 20,000 open.
const DefaultHTTPMaxConns = 20000

// DefaultConfig returns the defaults every unset key falls back to.
func DefaultConfig() Config {
	return Config{
		HTTPAddr:            ":6969",
		UDPAddr:             ":6969",
		AnnounceInterval:    30 * time.Minute,
		MinAnnounceInterval: 15 * time.Minute,
		DefaultNumWant:      50,
		MaxNumWant:          100,
		MaxScrapeInfoHashes: 50,
		UDPMaxClockSkew:     2 * time.Minute,
		HTTPReadTimeout:     5 * time.Second,
		HTTPWriteTimeout:    5 * time.Second,
		HTTPIdleTimeout:     60 * time.Second,
		ShutdownTimeout:     5 * time.Second,
	}
}

// Validate returns an error naming the first bad key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("tracker.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.HTTPAddr == "" && c.UDPAddr == "" {
		bad("http_addr", "http_addr and udp_addr are both empty: nothing to serve")
	}
	for key, addr := range map[string]string{"http_addr": c.HTTPAddr, "udp_addr": c.UDPAddr} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "%q is not host:port: %v", addr, err)
		}
	}
	if c.AnnounceInterval < time.Second {
		bad("announce_interval", "%s: must be at least 1s", c.AnnounceInterval)
	}
	if c.MinAnnounceInterval <= 0 || c.MinAnnounceInterval > c.AnnounceInterval {
		bad("min_announce_interval", "%s: must be > 0 and <= announce_interval (%s)", c.MinAnnounceInterval, c.AnnounceInterval)
	}
	if c.MaxNumWant == 0 || c.MaxNumWant > 500 {
		bad("max_numwant", "%d: must be 1..500", c.MaxNumWant)
	}
	if c.DefaultNumWant == 0 || c.DefaultNumWant > c.MaxNumWant {
		bad("default_numwant", "%d: must be 1..max_numwant (%d)", c.DefaultNumWant, c.MaxNumWant)
	}
	if c.MaxScrapeInfoHashes == 0 || c.MaxScrapeInfoHashes > 500 {
		bad("max_scrape_infohashes", "%d: must be 1..500", c.MaxScrapeInfoHashes)
	}
	if c.UDPMaxClockSkew < 10*time.Second {
		bad("udp_max_clock_skew", "%s: must be at least 10s", c.UDPMaxClockSkew)
	}
	if c.UDPWorkers < 0 || c.UDPWorkers > 1024 {
		bad("udp_workers", "%d: must be 0..1024", c.UDPWorkers)
	}
	if c.UDPSockets < 0 || c.UDPSockets > 256 {
		bad("udp_sockets", "%d: must be 0..256", c.UDPSockets)
	}
	if c.HTTPMaxConns < 0 || c.HTTPMaxConns > 1<<20 {
		bad("http_max_conns", "%d: must be 0..%d", c.HTTPMaxConns, 1<<20)
	}
	if c.UDPBatch < 0 || c.UDPBatch > 1024 {
		bad("udp_batch", "%d: must be 0..1024", c.UDPBatch)
	}
	for key, d := range map[string]time.Duration{
		"http_read_timeout": c.HTTPReadTimeout, "http_write_timeout": c.HTTPWriteTimeout,
		"http_idle_timeout": c.HTTPIdleTimeout, "shutdown_timeout": c.ShutdownTimeout,
	} {
		if d <= 0 {
			bad(key, "%s: must be > 0", d)
		}
	}
	return errors.Join(errs...)
}
