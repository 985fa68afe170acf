package peerstore

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for a zero Config field.
const (
	DefaultShardCount   = 1024
	DefaultPeerLifetime = 31 * time.Minute
	DefaultGCInterval   = 3 * time.Minute

	// MaxShardCount bounds ShardCount (per address family).
	MaxShardCount = 1 << 16
)

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("peerstore: invalid config")

// Config tunes a Store. The zero value is valid: every zero field takes its
// default.
type Config struct {
	// ShardCount is the number of lock shards per address family, rounded up
	// to a power of two. 0 means DefaultShardCount.
	ShardCount int `yaml:"shard_count"`
	// PeerLifetime is how long a peer stays without announcing before the
	// garbage collector removes it. Resolution is one second. 0 means
	// DefaultPeerLifetime.
	PeerLifetime time.Duration `yaml:"peer_lifetime"`
	// GCInterval is the time between two sweeps for stale peers. 0 means
	// DefaultGCInterval.
	GCInterval time.Duration `yaml:"gc_interval"`
	// Now is the clock; nil means time.Now. Tests inject a fake one.
	Now func() time.Time `yaml:"-"`
}

// Validate fills defaults for zero fields and rejects values that make no
// sense. The returned Config has ShardCount rounded up to a power of two.
func (c Config) Validate() (Config, error) {
	if c.ShardCount == 0 {
		c.ShardCount = DefaultShardCount
	}
	if c.PeerLifetime == 0 {
		c.PeerLifetime = DefaultPeerLifetime
	}
	if c.GCInterval == 0 {
		c.GCInterval = DefaultGCInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ShardCount < 1 || c.ShardCount > MaxShardCount {
		return c, fmt.Errorf("shard_count %d: must be 1..%d: %w", c.ShardCount, MaxShardCount, ErrInvalidConfig)
	}
	if c.PeerLifetime < time.Second {
		return c, fmt.Errorf("peer_lifetime %s: must be at least 1s: %w", c.PeerLifetime, ErrInvalidConfig)
	}
	if c.PeerLifetime > 10*365*24*time.Hour {
		return c, fmt.Errorf("peer_lifetime %s: must be at most ten years: %w", c.PeerLifetime, ErrInvalidConfig)
	}
	if c.GCInterval < 10*time.Millisecond {
		return c, fmt.Errorf("gc_interval %s: must be at least 10ms: %w", c.GCInterval, ErrInvalidConfig)
	}
	n := 1
	for n < c.ShardCount {
		n <<= 1
	}
	c.ShardCount = n
	return c, nil
}
