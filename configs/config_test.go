package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seedpay/seedpay/rewards"
)

func TestEmbeddedDevDefault(t *testing.T) {
	t.Setenv(EnvAdminToken, "")
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Redis.Embedded || cfg.API.AdminToken != "dev-admin-token" || cfg.Tracker.HTTPAddr != ":6969" ||
		cfg.Tracker.UDPAddr != ":6969" || cfg.API.Addr != ":6970" || !cfg.Access.Private || cfg.Log.Format != "console" {
		t.Fatalf("dev default %+v", cfg)
	}
}

func TestProductionNeedsSecretsFromEnv(t *testing.T) {
	t.Setenv(EnvAdminToken, "")
	if _, err := Load("production.yaml"); err == nil || !strings.Contains(err.Error(), "api.admin_token") {
		t.Fatalf("production without a token: %v", err)
	}
	t.Setenv(EnvAdminToken, "short")
	if _, err := Load("production.yaml"); err == nil || !strings.Contains(err.Error(), "api.admin_token: too short") {
		t.Fatalf("production with a short token: %v", err)
	}
	t.Setenv(EnvAdminToken, strings.Repeat("s", 32))
	t.Setenv(EnvRedisAddr, "10.1.2.3:6380")
	cfg, err := Load("production.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis.Embedded || cfg.Redis.Addr != "10.1.2.3:6380" || cfg.Log.Format != "json" || cfg.API.AdminToken != strings.Repeat("s", 32) {
		t.Fatalf("production %+v", cfg)
	}
}

func TestEveryKeyDocumentedInBothFiles(t *testing.T) {
	// Every key the schema has appears in dev.yaml and production.yaml, so
	// the files are the reference.
	for _, file := range []string{"dev.yaml", "production.yaml"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"level", "format", "embedded", "addr", "password", "db", "http_addr", "udp_addr",
			"announce_interval", "min_announce_interval", "default_numwant", "max_numwant", "max_scrape_infohashes",
			"real_ip_header", "udp_connection_key", "udp_max_clock_skew", "udp_workers", "udp_sockets", "udp_batch", "http_read_timeout",
			"http_write_timeout", "http_idle_timeout", "http_max_conns", "shutdown_timeout", "private", "client_whitelist",
			"peer_lifetime", "gc_interval", "shard_count", "reload_interval", "flush_interval", "admin_token",
			"enabled", "buffer_size", "rarity_exponent", "size_weight_min", "size_weight_max", "upload_rate", "max_gap",
			"max_rate", "max_peers_per_torrent", "length", "grace", "retention", "id", "budget_per_epoch",
			"simulated", "sim_fund", "network", "full_node", "solidity_node", "token", "token_decimals", "fee_limit", "expiration",
			"call_timeout", "tls", "api_key", "hot_key", "keystore", "min_payout", "interval", "concurrency",
			"resource_pause", "accept_unsafe_ledger", "receipts", "max_redownload", "pair_epoch_cap",
			"uploader_epoch_cap", "max_skew", "max_batch", "rate", "burst", "max_clients", "trusted_proxies", "min_refund", "sessions", "snapshot_interval"} {
			if !strings.Contains(string(data), "  "+key+":") {
				t.Errorf("%s does not document %s", file, key)
			}
		}
	}
}

func TestBadConfigNamesTheKey(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top key", "trakcer:\n  http_addr: x\n", "trakcer (line 1): unknown key"},
		{"unknown nested key", "tracker:\n  http_adr: ':1'\n", "tracker.http_adr (line 2): unknown key"},
		{"wrong type", "tracker:\n  max_numwant: lots\n", "tracker.max_numwant (line 2): wrong type"},
		{"bad duration", "tracker:\n  announce_interval: soon\n", "tracker.announce_interval (line 2)"},
		{"not a mapping", "tracker: 5\n", "tracker (line 1): must be a mapping"},
		{"bad log level", "log:\n  level: loud\n", "log.level"},
		{"bad log format", "log:\n  format: xml\n", "log.format"},
		{"min interval above interval", "tracker:\n  announce_interval: 1m\n  min_announce_interval: 2m\n", "tracker.min_announce_interval"},
		{"numwant zero", "tracker:\n  max_numwant: 0\n", "tracker.max_numwant"},
		{"default above max", "tracker:\n  max_numwant: 10\n  default_numwant: 20\n", "tracker.default_numwant"},
		{"bad address", "tracker:\n  http_addr: nonsense\n", "tracker.http_addr"},
		{"http max conns", "tracker:\n  http_max_conns: -1\n", "tracker.http_max_conns"},
		{"nothing to serve", "tracker:\n  http_addr: ''\n  udp_addr: ''\n", "tracker.http_addr"},
		{"peer lifetime below interval", "peer_store:\n  peer_lifetime: 1m\n", "peer_store.peer_lifetime"},
		{"shards", "peer_store:\n  shard_count: 0\n", "peer_store.shard_count"},
		{"whitelist entry", "access:\n  client_whitelist: ['']\n", "access.client_whitelist[0]"},
		{"registry reload", "registry:\n  reload_interval: 1ms\n", "registry.reload_interval"},
		{"redis db", "redis:\n  db: 99\n", "redis.db"},
		{"api addr", "api:\n  addr: ''\n", "api.addr"},
		{"budget not a number", "rewards:\n  global_pool:\n    budget_per_epoch: '1.5'\n", "rewards.global_pool.budget_per_epoch"},
		{"negative budget", "rewards:\n  global_pool:\n    budget_per_epoch: '-1'\n", "rewards.global_pool.budget_per_epoch"},
		{"fractional epoch", "rewards:\n  epoch:\n    length: 1500ms\n", "rewards.epoch.length"},
		{"grace below two flushes", "rewards:\n  flush_interval: 2s\n  epoch:\n    grace: 3s\n", "rewards.epoch.grace"},
		{"max gap below announce interval", "tracker:\n  announce_interval: 30m\nrewards:\n  scoring:\n    max_gap: 31m\n", "rewards.scoring.max_gap"},
		{"rarity", "rewards:\n  scoring:\n    rarity_exponent: -1\n", "rewards.scoring.rarity_exponent"},
		{"min payout", "payouts:\n  enabled: true\n  min_payout: 'lots'\n", "payouts.min_payout"},
		{"chain network", "payouts:\n  enabled: true\nchain:\n  network: moon\n", "chain.network"},
		{"chain expiration", "payouts:\n  enabled: true\nchain:\n  expiration: 48h\n", "chain.expiration"},
		{"unknown chain key", "chain:\n  ful_node: x\n", "chain.ful_node (line 2): unknown key"},
		{"receipt pair cap", "rewards:\n  receipts:\n    pair_epoch_cap: 0\n", "rewards.receipts.pair_epoch_cap"},
		{"unknown rewards key", "rewards:\n  epoch:\n    lenght: 1h\n", "rewards.epoch.lenght (line 3): unknown key"},
		{"pool index reload", "pools:\n  reload_interval: 1ms\n", "pools.reload_interval"},
		{"deposit confirmations", "pools:\n  deposits:\n    enabled: true\n    confirmations: -1\n", "pools.deposits.confirmations"},
		{"deposit range", "pools:\n  deposits:\n    enabled: true\n    max_range: 500\n", "pools.deposits.max_range"},
		{"deposit poll", "pools:\n  deposits:\n    enabled: true\n    poll_interval: 1ms\n", "pools.deposits.poll_interval"},
		{"deposits need a chain", "pools:\n  deposits:\n    enabled: true\nchain:\n  network: moon\n", "chain.network"},
		{"sim fund on a real chain", "chain:\n  sim_fund: ['TJRabPrwbZy45sbavfcjinPJC18kjpRTv8=1']\n", "chain.sim_fund: only for the simulated chain"},
		{"sim fund entry", "chain:\n  simulated: true\n  sim_fund: ['TJRabPrwbZy45sbavfcjinPJC18kjpRTv8=lots']\n", "chain.sim_fund[0]"},
		{"sim fund address", "chain:\n  simulated: true\n  sim_fund: ['Tnope=1']\n", "chain.sim_fund[0]"},
		{"public addr", "public:\n  addr: nonsense\n", "public.addr"},
		{"public addr is the api's", "api:\n  addr: ':7000'\npublic:\n  addr: ':7000'\n", "public.addr"},
		{"public rate", "public:\n  rate: 0\n", "public.rate"},
		{"public rate NaN", "public:\n  rate: .nan\n", "public.rate"},
		{"public rate infinite", "public:\n  rate: .inf\n", "public.rate"},
		{"deposit confirmations zero on a real chain", "pools:\n  deposits:\n    enabled: true\n    confirmations: 0\n", "pools.deposits.confirmations: 0: want at least 19"},
		{"deposit confirmations 18 on a real chain", "pools:\n  deposits:\n    enabled: true\n    confirmations: 18\n", "pools.deposits.confirmations: 18: want at least 19"},
		{"public burst", "public:\n  burst: 0\n", "public.burst"},
		{"public clients", "public:\n  max_clients: 0\n", "public.max_clients"},
		{"trusted proxy", "public:\n  trusted_proxies: ['10.0.0.0/8', 'proxy.local']\n", "public.trusted_proxies[1]"},
		{"min refund", "pools:\n  min_refund: '1.5'\n", "pools.min_refund"},
		{"min refund zero", "pools:\n  deposits:\n    enabled: false\n  min_refund: '0'\n", "pools.min_refund"},
		{"unknown pools key", "pools:\n  keystore: x\n", "pools.keystore (line 2): unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvAdminToken, strings.Repeat("x", 30))
			path := filepath.Join(t.TempDir(), "c.yaml")
			body := tt.yaml
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestPoolDefaults(t *testing.T) {
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Pools.Deposits.Enabled || cfg.Pools.Deposits.Confirmations != 3 || cfg.Pools.KeystoreDir != "" {
		t.Fatalf("dev pools %+v", cfg.Pools)
	}
	t.Setenv(EnvAdminToken, strings.Repeat("s", 32))
	prod, err := Load("production.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !prod.Pools.Deposits.Enabled || prod.Pools.Deposits.Confirmations != 20 || prod.Pools.KeystoreDir == "" {
		t.Fatalf("production pools %+v", prod.Pools)
	}
	// A file without a pools section (and no chain) watches nothing.
	if d := Default().Pools.Deposits; d.Enabled {
		t.Fatal("deposits on by default without a chain")
	}
}

// TestMinRefund: pools.min_refund defaults to payouts.min_payout and
// reaches the deposit watcher's config.
func TestMinRefund(t *testing.T) {
	cfg, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pools.MinRefund != cfg.Payouts.MinPayout || cfg.Pools.Deposits.MinRefund != cfg.Payouts.MinPayout || cfg.Pools.MinRefund == "" {
		t.Fatalf("dev min_refund %q / %q, min_payout %q", cfg.Pools.MinRefund, cfg.Pools.Deposits.MinRefund, cfg.Payouts.MinPayout)
	}
	c, err := Parse([]byte("pools:\n  min_refund: '5000'\n"))
	if err != nil || c.Pools.Deposits.MinRefund != "5000" {
		t.Fatalf("explicit min_refund: %q %v", c.Pools.Deposits.MinRefund, err)
	}
	if c, err := Parse(nil); err != nil || c.Pools.Deposits.MinRefund != rewards.DefaultPayerConfig().MinPayout {
		t.Fatalf("empty file: %q %v", c.Pools.Deposits.MinRefund, err)
	}
}

// TestDepositConfirmationsSimulated: the simulated chain does not fork, so
// a low depth is fine there (dev uses 3); 19 is enough on a real chain.
func TestDepositConfirmationsSimulated(t *testing.T) {
	t.Setenv(EnvAdminToken, strings.Repeat("x", 30))
	for _, body := range []string{
		"chain:\n  simulated: true\npools:\n  deposits:\n    enabled: true\n    confirmations: 0\n",
		"pools:\n  deposits:\n    enabled: true\n    confirmations: 19\n",
	} {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err != nil {
			t.Errorf("%q: %v", body, err)
		}
	}
}

func TestParseKeepsDefaultsForUnsetKeys(t *testing.T) {
	cfg, err := Parse([]byte("tracker:\n  announce_interval: 45m\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tracker.AnnounceInterval != 45*time.Minute || cfg.Tracker.MinAnnounceInterval != 15*time.Minute || cfg.PeerStore.ShardCount != 1024 {
		t.Fatalf("%+v", cfg.Tracker)
	}
	if _, err := Parse(nil); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	cfg := Default()
	env := map[string]string{EnvAdminToken: "t", EnvRedisAddr: "r:1", EnvRedisPassword: "p", EnvUDPKey: "k", EnvLogLevel: "warn", EnvAPIAddr: ":7000"}
	cfg.applyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if cfg.API.AdminToken != "t" || cfg.Redis.Addr != "r:1" || cfg.Redis.Password != "p" || cfg.Tracker.UDPConnectionKey != "k" || cfg.Log.Level != "warn" || cfg.API.Addr != ":7000" {
		t.Fatalf("%+v", cfg)
	}
}

func TestMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestTrustedProxyPrefixes(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"10.1.2.3", "10.1.2.3/32"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"::1", "::1/128"},
		{"2001:db8::7/64", "2001:db8::/64"},
	}
	for _, tt := range tests {
		got, err := PublicConfig{TrustedProxies: []string{tt.in}}.Prefixes()
		if err != nil || len(got) != 1 || got[0].String() != tt.want {
			t.Errorf("Prefixes(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	if _, err := (PublicConfig{TrustedProxies: []string{"10.0.0.0/33"}}).Prefixes(); err == nil {
		t.Error("Prefixes accepted 10.0.0.0/33")
	}
}
