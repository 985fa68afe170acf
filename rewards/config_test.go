package rewards

import (
	"strings"
	"testing"
	"time"
)

func TestWeight(t *testing.T) {
	s := DefaultConfig().Scoring
	const gib = 1 << 30
	tests := []struct {
		name    string
		size    int64
		seeders uint32
		want    int64
	}{
		{"1 GiB, lone seeder", gib, 1, 1_000_000},
		{"zero seeders count as one", gib, 0, 1_000_000},
		{"10 seeders: 10^-0.35", gib, 10, 446_683},
		{"100 seeders", gib, 100, 199_526},
		{"tiny torrent clamps to 0.1", 1, 1, 100_000},
		{"huge torrent clamps to 50", 1000 * gib, 1, 50_000_000},
		{"4 GiB", 4 * gib, 1, 4_000_000},
	}
	for _, tt := range tests {
		if got := s.Weight(tt.size, tt.seeders); got != tt.want {
			t.Errorf("%s: Weight = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestEpochArithmetic(t *testing.T) {
	e := EpochConfig{Length: time.Minute, Grace: 10 * time.Second}
	for _, tc := range []struct{ t, want int64 }{{0, 0}, {59, 0}, {60, 1}, {-1, -1}, {-60, -1}, {-61, -2}} {
		if got := e.EpochOf(tc.t); got != tc.want {
			t.Errorf("EpochOf(%d) = %d, want %d", tc.t, got, tc.want)
		}
	}
	if e.Start(3) != 180 {
		t.Error("Start")
	}
	// At 120+9 s epoch 1 is still within its grace; at 120+10 it is closed.
	if got := e.MinOpenEpoch(time.Unix(129, 0)); got != 1 {
		t.Errorf("MinOpenEpoch(129) = %d, want 1", got)
	}
	if got := e.MinOpenEpoch(time.Unix(130, 0)); got != 2 {
		t.Errorf("MinOpenEpoch(130) = %d, want 2", got)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for key, mutate := range map[string]func(*Config){
		"rewards.scoring.max_peers_per_torrent": func(c *Config) { c.Scoring.MaxPeersPerTorrent = 0 },
		"rewards.scoring.max_rate":              func(c *Config) { c.Scoring.MaxRate = 0 },
		"rewards.scoring.size_weight_min":       func(c *Config) { c.Scoring.SizeMin = 100 },
		"rewards.epoch.retention":               func(c *Config) { c.Epoch.Retention = time.Second },
		"rewards.global_pool.id":                func(c *Config) { c.Global.ID = "other" },
		"rewards.buffer_size":                   func(c *Config) { c.BufferSize = 1 },
		"rewards.flush_interval":                func(c *Config) { c.FlushInterval = time.Hour },
	} {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v", key, err)
		}
	}
}
