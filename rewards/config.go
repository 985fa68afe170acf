package rewards

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"
)

// ScoringConfig turns seeding into points. Points are integers
// (micro-points): seed seconds x Weight(size, seeders).
type ScoringConfig struct {
	// RarityExponent: rarity(s) = 1 / max(s,1)^RarityExponent (default 0.35).
	RarityExponent float64 `yaml:"rarity_exponent"`
	// SizeMin and SizeMax clamp size_weight = size / 1 GiB (defaults 0.1, 50).
	SizeMin float64 `yaml:"size_weight_min"`
	SizeMax float64 `yaml:"size_weight_max"`
	// UploadRate is the points per verified GiB uploaded (receipts, issue 6).
	UploadRate float64 `yaml:"upload_rate"`
	// MaxGap is the longest gap between two announces that still counts as
	// continuous seeding (default 1.5 x announce interval + 60s).
	MaxGap time.Duration `yaml:"max_gap"`
	// MaxRate caps the bytes/s a counter may grow (default 1 GiB/s).
	MaxRate uint64 `yaml:"max_rate"`
	// MaxPeersPerTorrent caps the client sessions per user per torrent that
	// are tracked (default 3); more earn nothing more anyway.
	MaxPeersPerTorrent int `yaml:"max_peers_per_torrent"`
}

// EpochConfig sets the settlement clock.
type EpochConfig struct {
	// Length of an epoch: epoch n covers [n*Length, (n+1)*Length) in Unix time.
	Length time.Duration `yaml:"length"`
	// Grace after an epoch's end before it is sealed: late announces land.
	Grace time.Duration `yaml:"grace"`
	// Retention keeps settled per-user epoch data this long.
	Retention time.Duration `yaml:"retention"`
}

// PoolConfig is a reward pool. The global pool covers every torrent;
// content-owner pools (issue 7) cover their own list and are funded on chain.
type PoolConfig struct {
	ID string `yaml:"id"`
	// BudgetPerEpoch in token base units, as a decimal string (18 decimals
	// for BTT overflow int64 quickly).
	BudgetPerEpoch string `yaml:"budget_per_epoch"`
}

// Where accounting keeps client sessions (Config.Sessions).
const (
	SessionsLocal = "local"
	SessionsRedis = "redis"
)

// GlobalPool is the id of the pool that covers every torrent.
const GlobalPool = "global"

// Config is the rewards section of the configuration.
type Config struct {
	Enabled bool          `yaml:"enabled"`
	Scoring ScoringConfig `yaml:"scoring"`
	Epoch   EpochConfig   `yaml:"epoch"`
	Global  PoolConfig    `yaml:"global_pool"`
	// FlushInterval is how often buffered accounting events go to Redis.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// BufferSize is the events buffered per CPU before drops are counted
	// (Redis session mode).
	BufferSize int `yaml:"buffer_size"`
	// Sessions says where client sessions live: SessionsLocal (in the
	// tracker's memory; Redis gets aggregates per user and flush) or
	// SessionsRedis (account.lua per event; for several tracker instances).
	Sessions string `yaml:"sessions"`
	// SnapshotInterval is how often local mode saves its sessions to Redis
	// besides on stop (0: on stop only); it bounds what a crash forgets.
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
	// Receipts bounds what signed upload receipts earn.
	Receipts ReceiptConfig `yaml:"receipts"`
}

// DefaultConfig is the production default for an announce interval of 30m.
func DefaultConfig() Config {
	return Config{
		Enabled: true,
		Scoring: ScoringConfig{
			RarityExponent:     0.35,
			SizeMin:            0.1,
			SizeMax:            50,
			UploadRate:         1,
			MaxGap:             46 * time.Minute,
			MaxRate:            1 << 30,
			MaxPeersPerTorrent: 3,
		},
		Epoch:            EpochConfig{Length: time.Hour, Grace: 2 * time.Minute, Retention: 90 * 24 * time.Hour},
		Global:           PoolConfig{ID: GlobalPool, BudgetPerEpoch: "0"},
		FlushInterval:    time.Second,
		BufferSize:       8192,
		Sessions:         SessionsLocal,
		SnapshotInterval: 5 * time.Minute,
		Receipts:         DefaultReceiptConfig(),
	}
}

// Budget parses the pool's budget.
func (p PoolConfig) Budget() (*big.Int, error) {
	b, ok := new(big.Int).SetString(p.BudgetPerEpoch, 10)
	if !ok || b.Sign() < 0 {
		return nil, fmt.Errorf("budget_per_epoch %q: want a non-negative integer of token base units", p.BudgetPerEpoch)
	}
	return b, nil
}

// Validate names the first bad key (relative to the rewards section).
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("rewards.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	s := c.Scoring
	if s.RarityExponent < 0 || s.RarityExponent > 4 || math.IsNaN(s.RarityExponent) {
		bad("scoring.rarity_exponent", "%v: must be 0..4", s.RarityExponent)
	}
	if !(s.SizeMin > 0 && s.SizeMin <= s.SizeMax && s.SizeMax <= 1e6) {
		bad("scoring.size_weight_min", "%v..%v: need 0 < min <= max <= 1e6", s.SizeMin, s.SizeMax)
	}
	if s.UploadRate < 0 || s.UploadRate > 1e6 || math.IsNaN(s.UploadRate) {
		bad("scoring.upload_rate", "%v: must be 0..1e6", s.UploadRate)
	}
	if s.MaxGap < time.Second {
		bad("scoring.max_gap", "%s: must be at least 1s", s.MaxGap)
	}
	if s.MaxRate == 0 {
		bad("scoring.max_rate", "must be > 0 bytes/s")
	}
	if s.MaxPeersPerTorrent < 1 || s.MaxPeersPerTorrent > 100 {
		bad("scoring.max_peers_per_torrent", "%d: must be 1..100", s.MaxPeersPerTorrent)
	}
	e := c.Epoch
	if e.Length < 10*time.Second || e.Length%time.Second != 0 {
		bad("epoch.length", "%s: must be a whole number of seconds, at least 10s", e.Length)
	}
	if e.Grace < 2*c.FlushInterval || e.Grace%time.Second != 0 {
		bad("epoch.grace", "%s: must be whole seconds and at least twice flush_interval (%s), so buffered events land before sealing", e.Grace, c.FlushInterval)
	}
	if e.Retention < e.Length {
		bad("epoch.retention", "%s: must be at least epoch.length", e.Retention)
	}
	if s.MaxGap > 64*e.Length {
		bad("scoring.max_gap", "%s: at most 64 epochs (%s)", s.MaxGap, 64*e.Length)
	}
	if c.Global.ID != GlobalPool {
		bad("global_pool.id", "%q: must be %q", c.Global.ID, GlobalPool)
	}
	if _, err := c.Global.Budget(); err != nil {
		bad("global_pool.budget_per_epoch", "%v", err)
	}
	if c.FlushInterval < 10*time.Millisecond || c.FlushInterval > time.Minute {
		bad("flush_interval", "%s: must be 10ms..1m", c.FlushInterval)
	}
	if c.BufferSize < 16 || c.BufferSize > 1<<22 {
		bad("buffer_size", "%d: must be 16..4194304", c.BufferSize)
	}
	if c.Sessions != SessionsLocal && c.Sessions != SessionsRedis {
		bad("sessions", "%q: must be %q (one tracker instance) or %q (several)", c.Sessions, SessionsLocal, SessionsRedis)
	}
	if c.SnapshotInterval != 0 && (c.SnapshotInterval < 10*time.Second || c.SnapshotInterval > 24*time.Hour) {
		bad("snapshot_interval", "%s: must be 0 (on stop only) or 10s..24h", c.SnapshotInterval)
	}
	if err := c.Receipts.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Weight is the micro-points one second of seeding earns:
// 1e6 x size_weight(size) x rarity(seeders), rounded down. It is computed in
// Go, once per event, so the Lua scripts only do integer arithmetic.
func (s ScoringConfig) Weight(size int64, seeders uint32) int64 {
	sw := float64(size) / float64(1<<30)
	sw = math.Min(math.Max(sw, s.SizeMin), s.SizeMax)
	r := 1 / math.Pow(math.Max(float64(seeders), 1), s.RarityExponent)
	return int64(1e6 * sw * r)
}

// sessionTTL is how long, in seconds, an idle session and its
// credited-until mark live, in Redis (account.lua) and in memory (Sweep)
// alike: two gaps and an epoch, so a session that may still earn is never
// dropped.
func (c Config) sessionTTL() int64 {
	return 2*int64(c.Scoring.MaxGap/time.Second) + int64(c.Epoch.Length/time.Second)
}

// maxWeight caps a credit's weight: one event credits at most
// min(epoch, max_gap) seconds to one epoch, and seconds x weight must stay
// exact (below 2^53, as Lua's numbers are).
func (c Config) maxWeight() int64 {
	return maxExact / min(int64(c.Epoch.Length/time.Second), int64(c.Scoring.MaxGap/time.Second))
}
