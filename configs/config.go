// Package configs holds seedpay's configuration: the schema with defaults and
// validation, and the embedded dev default (dev.yaml). Every key is
// documented in dev.yaml and production.yaml.
package configs

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/seedpay/seedpay/api"
	"github.com/seedpay/seedpay/chain"
	"github.com/seedpay/seedpay/chain/tronsim"
	"github.com/seedpay/seedpay/middleware/auth"
	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/rewards"
	"github.com/seedpay/seedpay/tracker"
)

//go:embed dev.yaml
var devYAML []byte

// DevYAML returns the embedded dev configuration.
func DevYAML() []byte { return devYAML }

// Config is the whole configuration file.
type Config struct {
	Log       LogConfig            `yaml:"log"`
	Redis     RedisConfig          `yaml:"redis"`
	Tracker   tracker.Config       `yaml:"tracker"`
	Access    auth.Config          `yaml:"access"`
	PeerStore PeerStoreConfig      `yaml:"peer_store"`
	Registry  registry.CacheConfig `yaml:"registry"`
	API       APIConfig            `yaml:"api"`
	Public    PublicConfig         `yaml:"public"`
	Rewards   rewards.Config       `yaml:"rewards"`
	Chain     ChainConfig          `yaml:"chain"`
	Payouts   PayoutsConfig        `yaml:"payouts"`
	Pools     PoolsConfig          `yaml:"pools"`
}

// PoolsConfig is content-owner pools and their deposits (rewards on).
type PoolsConfig struct {
	// KeystoreDir holds the deposit addresses' keys, encrypted with the
	// passphrase in SEEDPAY_POOL_KEYSTORE_PASSPHRASE. Empty: in dev a
	// temporary directory and a random passphrase nobody keeps; with a real
	// Redis, pools cannot be created (existing ones keep settling).
	KeystoreDir string `yaml:"keystore_dir"`
	// ReloadInterval is how often the torrent -> pools index is fully
	// re-read (changes apply at once through pub/sub).
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// Deposits configures the watcher that credits pools from the chain.
	Deposits rewards.DepositConfig `yaml:"deposits"`
	// MinRefund (base units) is the least a closed pool must hold
	// unrefunded before a late deposit reopens its refund; smaller late
	// deposits are credited and listed (held) but not refunded
	// automatically, so dust cannot force a refund payout each. Empty:
	// payouts.min_payout.
	MinRefund string `yaml:"min_refund"`
}

// ChainConfig says which TRON node pays and with which key.
type ChainConfig struct {
	// Simulated runs tronsim in the process with a freshly funded hot wallet:
	// dev only, no real token moves.
	Simulated bool `yaml:"simulated"`
	// SimFund funds wallets on the simulated chain at start, each
	// "<base58 address>=<whole tokens>" (with TRX and energy for transfers):
	// a content owner's wallet to try pool deposits with. Simulated only.
	SimFund      []string `yaml:"sim_fund"`
	chain.Config `yaml:",inline"`
	// HotKey locates the hot wallet's key (secrets come from the environment).
	HotKey chain.KeyConfig `yaml:"hot_key"`
}

// PayoutsConfig turns balances into TRC-20 transfers.
type PayoutsConfig struct {
	Enabled             bool `yaml:"enabled"`
	rewards.PayerConfig `yaml:",inline"`
	// AcceptUnsafeLedger runs the payer even when the ledger Redis does not
	// persist every write (appendonly yes + appendfsync always): a crash may
	// then lose a stored step and pay twice. Logged as a warning at start.
	AcceptUnsafeLedger bool `yaml:"accept_unsafe_ledger"`
}

// LogConfig selects zap's output.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // console, json
}

// RedisConfig says where the ledger, users and torrents live.
type RedisConfig struct {
	// Embedded runs an in-process Redis-protocol server (miniredis): dev only,
	// nothing persists.
	Embedded bool   `yaml:"embedded"`
	Addr     string `yaml:"addr"`
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
}

// PeerStoreConfig tunes the in-memory peer store.
type PeerStoreConfig struct {
	PeerLifetime time.Duration `yaml:"peer_lifetime"`
	GCInterval   time.Duration `yaml:"gc_interval"`
	ShardCount   int           `yaml:"shard_count"`
}

// APIConfig is the admin/metrics HTTP server.
type APIConfig struct {
	Addr       string `yaml:"addr"`
	AdminToken string `yaml:"admin_token"`
}

// PublicConfig is the transparency page and the read-only public API.
type PublicConfig struct {
	// Enabled serves them (with rewards on: they show the reward ledger).
	Enabled bool `yaml:"enabled"`
	// Addr gives them a listener of their own, so the admin port can stay
	// private; "" serves them on api.addr.
	Addr string `yaml:"addr"`
	// Rate and Burst are each client's token bucket (requests/s, at once).
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
	// MaxClients bounds the clients the rate limiter remembers.
	MaxClients int `yaml:"max_clients"`
	// TrustedProxies are CIDRs (or addresses) of reverse proxies whose
	// X-Forwarded-For names the client; without them every visitor behind
	// a proxy shares the proxy's bucket.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Prefixes parses TrustedProxies (checked by Validate).
func (p PublicConfig) Prefixes() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(p.TrustedProxies))
	for _, s := range p.TrustedProxies {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		pr, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q: want an address or a CIDR", s)
		}
		out = append(out, pr.Masked())
	}
	return out, nil
}

// Default returns the value of every key not set in a file.
func Default() Config {
	return Config{
		Log:       LogConfig{Level: "info", Format: "json"},
		Redis:     RedisConfig{Addr: "127.0.0.1:6379"},
		Tracker:   tracker.DefaultConfig(),
		Access:    auth.Config{Private: true},
		PeerStore: PeerStoreConfig{PeerLifetime: 31 * time.Minute, GCInterval: 3 * time.Minute, ShardCount: 1024},
		Registry:  registry.CacheConfig{ReloadInterval: time.Minute, FlushInterval: 5 * time.Second},
		API:       APIConfig{Addr: ":6970"},
		Public:    PublicConfig{Enabled: true, Rate: api.DefaultPublicRate, Burst: api.DefaultPublicBurst, MaxClients: api.DefaultPublicMaxClients},
		Rewards:   rewards.DefaultConfig(),
		Chain:     ChainConfig{Config: chain.DefaultConfig()},
		Payouts:   PayoutsConfig{PayerConfig: rewards.DefaultPayerConfig()},
		Pools:     PoolsConfig{ReloadInterval: time.Minute, Deposits: rewards.DefaultDepositConfig()},
	}
}

// minDepositConfirmations is the least pools.deposits.confirmations on a
// real chain: TRON blocks are irreversible after 19 confirmations.
const minDepositConfirmations = 19

// Env variables that override the file; secrets belong here, not in files.
const (
	EnvAdminToken    = "SEEDPAY_ADMIN_TOKEN"
	EnvRedisAddr     = "SEEDPAY_REDIS_ADDR"
	EnvRedisPassword = "SEEDPAY_REDIS_PASSWORD"
	EnvUDPKey        = "SEEDPAY_UDP_CONNECTION_KEY"
	EnvLogLevel      = "SEEDPAY_LOG_LEVEL"
	EnvAPIAddr       = "SEEDPAY_API_ADDR"
	EnvTronAPIKey    = "SEEDPAY_TRON_API_KEY"
	// EnvPoolPassphrase encrypts the pools' deposit keys (pools.keystore_dir).
	EnvPoolPassphrase = "SEEDPAY_POOL_KEYSTORE_PASSPHRASE"
)

// Load reads the file at path, or the embedded dev default when path is "",
// applies environment overrides and validates the result.
func Load(path string) (Config, error) {
	data := devYAML
	name := "embedded dev.yaml"
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return Config{}, fmt.Errorf("config: %w", err)
		}
		name = path
	}
	cfg, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	cfg.applyEnv(os.LookupEnv)
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	return cfg, nil
}

// Parse decodes YAML over the defaults. Unknown keys and values of the wrong
// type are errors that name the key.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, err
	}
	if len(root.Content) > 0 {
		if err := decodeStrict(root.Content[0], reflect.ValueOf(&cfg).Elem(), ""); err != nil {
			return Config{}, err
		}
	}
	if cfg.Pools.MinRefund == "" {
		cfg.Pools.MinRefund = cfg.Payouts.MinPayout
	}
	cfg.Pools.Deposits.MinRefund = cfg.Pools.MinRefund // the watcher applies it
	return cfg, nil
}

// decodeStrict walks mappings into structs by yaml tag so an error can say
// "tracker.announce_interval" rather than only a line number.
func decodeStrict(n *yaml.Node, v reflect.Value, path string) error {
	if v.Kind() != reflect.Struct || v.Type() == reflect.TypeOf(time.Duration(0)) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				return fmt.Errorf("%s (line %d): wrong type: %s", path, n.Line, strings.Join(te.Errors, "; "))
			}
			return fmt.Errorf("%s (line %d): %w", path, n.Line, err)
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%s (line %d): must be a mapping of keys", orRoot(path), n.Line)
	}
	fields := map[string]reflect.Value{}
	collectFields(v, fields)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i].Value
		fv, ok := fields[key]
		if !ok {
			return fmt.Errorf("%s (line %d): unknown key", join(path, key), n.Content[i].Line)
		}
		if err := decodeStrict(n.Content[i+1], fv, join(path, key)); err != nil {
			return err
		}
	}
	return nil
}

// collectFields maps yaml keys to fields, descending into `,inline` structs.
func collectFields(v reflect.Value, fields map[string]reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		parts := strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")
		switch {
		case len(parts) > 1 && parts[1] == "inline":
			collectFields(v.Field(i), fields)
		case parts[0] != "" && parts[0] != "-":
			fields[parts[0]] = v.Field(i)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

func (c *Config) applyEnv(lookup func(string) (string, bool)) {
	set := func(name string, dst *string) {
		if v, ok := lookup(name); ok && v != "" {
			*dst = v
		}
	}
	set(EnvAdminToken, &c.API.AdminToken)
	set(EnvRedisAddr, &c.Redis.Addr)
	set(EnvRedisPassword, &c.Redis.Password)
	set(EnvUDPKey, &c.Tracker.UDPConnectionKey)
	set(EnvLogLevel, &c.Log.Level)
	set(EnvAPIAddr, &c.API.Addr)
	set(EnvTronAPIKey, &c.Chain.APIKey)
}

// Validate returns every bad key at once, each named.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "console", "json":
	default:
		bad("log.format", "%q: want console or json", c.Log.Format)
	}
	if !c.Redis.Embedded && c.Redis.Addr == "" {
		bad("redis.addr", "empty: set it (or %s), or use redis.embedded for dev", EnvRedisAddr)
	}
	if c.Redis.DB < 0 || c.Redis.DB > 15 {
		bad("redis.db", "%d: must be 0..15", c.Redis.DB)
	}
	if err := c.Tracker.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Access.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("access.%w", err))
	}
	if c.PeerStore.PeerLifetime < c.Tracker.AnnounceInterval {
		bad("peer_store.peer_lifetime", "%s: must be at least tracker.announce_interval (%s), or peers vanish between announces", c.PeerStore.PeerLifetime, c.Tracker.AnnounceInterval)
	}
	if c.PeerStore.GCInterval < time.Second {
		bad("peer_store.gc_interval", "%s: must be at least 1s", c.PeerStore.GCInterval)
	}
	if c.PeerStore.ShardCount < 1 || c.PeerStore.ShardCount > 1<<16 {
		bad("peer_store.shard_count", "%d: must be 1..65536", c.PeerStore.ShardCount)
	}
	if _, err := c.Registry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("registry.%w", err))
	}
	if c.Rewards.Enabled {
		if err := c.Rewards.Validate(); err != nil {
			errs = append(errs, err)
		}
		if min := c.Tracker.AnnounceInterval + c.Tracker.AnnounceInterval/2; c.Rewards.Scoring.MaxGap < min {
			bad("rewards.scoring.max_gap", "%s: must be at least 1.5 x tracker.announce_interval (%s), or ordinary seeders lose credit between announces", c.Rewards.Scoring.MaxGap, min)
		}
	}
	if c.Rewards.Enabled {
		if c.Pools.ReloadInterval < time.Second {
			bad("pools.reload_interval", "%s: must be at least 1s", c.Pools.ReloadInterval)
		}
		if v, err := rewards.ParseAmount(c.Pools.MinRefund); (err != nil || v.Sign() == 0) && !c.Pools.Deposits.Enabled { // else Deposits.Validate says it
			bad("pools.min_refund", "%q: want a positive integer of base units (a string of digits)", c.Pools.MinRefund)
		}
		if c.Pools.Deposits.Enabled {
			if err := c.Pools.Deposits.Validate(); err != nil {
				errs = append(errs, err)
			}
			// serve reads transfers from the full node, whose newest blocks
			// may still be reorganized: only the confirmation depth protects
			// a credit (TRON blocks are final after 19). The simulated chain
			// does not fork.
			if d := c.Pools.Deposits.Confirmations; !c.Chain.Simulated && d >= 0 && d < minDepositConfirmations {
				bad("pools.deposits.confirmations", "%d: want at least %d on a real chain (deposits are read from the full node, and TRON blocks are final only after 19 confirmations; 20 is the default)", d, minDepositConfirmations)
			}
			if !c.Chain.Simulated && !c.Payouts.Enabled {
				if err := c.Chain.Config.Validate(); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if c.Payouts.Enabled {
		if !c.Rewards.Enabled {
			bad("payouts.enabled", "needs rewards.enabled: there is nothing to pay without accounting")
		}
		if err := c.Payouts.PayerConfig.Validate(); err != nil {
			errs = append(errs, err)
		}
		if !c.Chain.Simulated {
			if err := c.Chain.Config.Validate(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(c.Chain.SimFund) > 0 && !c.Chain.Simulated {
		bad("chain.sim_fund", "only for the simulated chain (chain.simulated: true)")
	}
	for i, f := range c.Chain.SimFund {
		if _, _, err := tronsim.ParseFund(f, 18); err != nil {
			bad(fmt.Sprintf("chain.sim_fund[%d]", i), "%v", err)
		}
	}
	if c.API.Addr == "" {
		bad("api.addr", "empty: the admin API and /metrics need an address")
	}
	if c.Public.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Public.Addr); err != nil {
			bad("public.addr", "%q: want host:port or :port", c.Public.Addr)
		} else if c.Public.Addr == c.API.Addr {
			bad("public.addr", "%q: same as api.addr; leave it empty to serve the page on the API's port", c.Public.Addr)
		}
	}
	if !(c.Public.Rate > 0 && c.Public.Rate <= 1e6) { // also false for NaN
		bad("public.rate", "%v: want requests per second per client, above 0 and at most 1000000", c.Public.Rate)
	}
	if c.Public.Burst < 1 || c.Public.Burst > 1e6 {
		bad("public.burst", "%d: want 1..1000000", c.Public.Burst)
	}
	if c.Public.MaxClients < 1 || c.Public.MaxClients > 10_000_000 {
		bad("public.max_clients", "%d: want 1..10000000", c.Public.MaxClients)
	}
	for i, s := range c.Public.TrustedProxies {
		if _, err := (PublicConfig{TrustedProxies: []string{s}}).Prefixes(); err != nil {
			bad(fmt.Sprintf("public.trusted_proxies[%d]", i), "%v", err)
		}
	}
	switch {
	case c.API.AdminToken == "":
		bad("api.admin_token", "empty: set %s", EnvAdminToken)
	case !c.Redis.Embedded && len(c.API.AdminToken) < 24:
		bad("api.admin_token", "too short for production (%d characters, need 24+): set %s to a long random value", len(c.API.AdminToken), EnvAdminToken)
	}
	return errors.Join(errs...)
}
