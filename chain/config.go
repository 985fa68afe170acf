package chain

import (
	"errors"
	"fmt"
	"time"
)

// Networks with presets.
const (
	Mainnet = "mainnet"
	Nile    = "nile"
	Shasta  = "shasta"
	Sim     = "sim" // chain/tronsim: endpoints and token must be given
)

// MainnetBTT is BitTorrent's TRC-20 contract on mainnet (18 decimals).
const MainnetBTT = "TAFjULxiVgT4qWk6UZwjqwZXTSaGaqnVp4"

// Limits the chain enforces.
const (
	// MaxFeeLimit is the largest fee_limit TRON accepts: 15,000 TRX in sun.
	MaxFeeLimit int64 = 15_000 * 1_000_000
	// MaxExpiration is how far past the head block TRON accepts a
	// transaction's expiration.
	MaxExpiration = 24 * time.Hour
)

// Config says which TRON network and token to pay with and how. Keys are
// relative to the config file's chain section.
type Config struct {
	// Network: mainnet, nile, shasta or sim. Empty endpoints and token are
	// taken from the network's preset.
	Network string `yaml:"network"`
	// FullNode and SolidityNode are gRPC host:port addresses.
	FullNode     string `yaml:"full_node"`
	SolidityNode string `yaml:"solidity_node"`
	// Token is the TRC-20 contract (base58); TokenDecimals its decimals
	// (0: the preset's, 18). Client.VerifyToken checks both on chain.
	Token         string `yaml:"token"`
	TokenDecimals int    `yaml:"token_decimals"`
	// FeeLimit caps the TRX (sun) one transfer may burn for energy; at most
	// 15,000 TRX.
	FeeLimit int64 `yaml:"fee_limit"`
	// Expiration is how long after signing a transfer stays valid
	// (default 60s, at most 24h). Until then the same bytes may be
	// re-broadcast; after it the payout signs a new transaction.
	Expiration time.Duration `yaml:"expiration"`
	// CallTimeout bounds each gRPC call.
	CallTimeout time.Duration `yaml:"call_timeout"`
	// TLS dials the nodes with TLS (system roots) instead of plaintext.
	TLS bool `yaml:"tls"`
	// APIKey is sent as TRON-PRO-API-KEY (TronGrid). A secret: set it from
	// the environment, never log it.
	APIKey string `yaml:"api_key"`
}

// preset is what a network fills in.
type preset struct {
	full, solidity, token string
	decimals              int
}

var presets = map[string]preset{
	Mainnet: {full: "grpc.trongrid.io:50051", solidity: "grpc.trongrid.io:50052", token: MainnetBTT, decimals: 18},
	// Testnets carry no official BTT: set token to a contract deployed there.
	Nile:   {full: "grpc.nile.trongrid.io:50051", solidity: "grpc.nile.trongrid.io:50061", decimals: 18},
	Shasta: {full: "grpc.shasta.trongrid.io:50051", solidity: "grpc.shasta.trongrid.io:50052", decimals: 18},
	Sim:    {decimals: 18},
}

// Defaults for the tuning keys.
const (
	DefaultFeeLimit    int64 = 100 * 1_000_000 // 100 TRX: a 130k-energy transfer at 420 sun/energy is 54.6 TRX
	DefaultExpiration        = 60 * time.Second
	DefaultCallTimeout       = 10 * time.Second
)

// DefaultConfig is mainnet BTT with the default tuning.
func DefaultConfig() Config {
	return Config{
		Network:     Mainnet,
		FeeLimit:    DefaultFeeLimit,
		Expiration:  DefaultExpiration,
		CallTimeout: DefaultCallTimeout,
	}
}

// SimConfig is a config for a tronsim node serving both services at addr.
func SimConfig(addr, token string) Config {
	c := DefaultConfig()
	c.Network, c.FullNode, c.SolidityNode, c.Token = Sim, addr, addr, token
	return c
}

// Resolved fills empty endpoints, token and decimals from the network's
// preset, and zero tuning keys from the defaults.
func (c Config) Resolved() Config {
	p, ok := presets[c.Network]
	if ok {
		if c.FullNode == "" {
			c.FullNode = p.full
		}
		if c.SolidityNode == "" {
			c.SolidityNode = p.solidity
		}
		if c.Token == "" {
			c.Token = p.token
		}
		if c.TokenDecimals == 0 {
			c.TokenDecimals = p.decimals
		}
	}
	if c.FeeLimit == 0 {
		c.FeeLimit = DefaultFeeLimit
	}
	if c.Expiration == 0 {
		c.Expiration = DefaultExpiration
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	return c
}

// Validate checks the resolved config and names every bad key.
func (c Config) Validate() error {
	c = c.Resolved()
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("chain.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, ok := presets[c.Network]; !ok {
		bad("network", "%q: want mainnet, nile, shasta or sim", c.Network)
	}
	if c.FullNode == "" {
		bad("full_node", "empty: the %s network has no default, give host:port", c.Network)
	}
	if c.SolidityNode == "" {
		bad("solidity_node", "empty: the %s network has no default, give host:port", c.Network)
	}
	switch {
	case c.Token == "":
		bad("token", "empty: the %s network has no default token, give the TRC-20 contract address", c.Network)
	case validAddress(c.Token) != nil:
		bad("token", "%v", validAddress(c.Token))
	}
	if c.TokenDecimals < 0 || c.TokenDecimals > 77 {
		bad("token_decimals", "%d: must be 0..77", c.TokenDecimals)
	}
	if c.FeeLimit <= 0 || c.FeeLimit > MaxFeeLimit {
		bad("fee_limit", "%d sun: must be 1..%d (15,000 TRX)", c.FeeLimit, MaxFeeLimit)
	}
	if c.Expiration < time.Second || c.Expiration > MaxExpiration {
		bad("expiration", "%s: must be 1s..24h", c.Expiration)
	}
	if c.CallTimeout < 100*time.Millisecond || c.CallTimeout > 5*time.Minute {
		bad("call_timeout", "%s: must be 100ms..5m", c.CallTimeout)
	}
	return errors.Join(errs...)
}

// String leaves the API key out.
func (c Config) String() string {
	key := ""
	if c.APIKey != "" {
		key = "[redacted]"
	}
	return fmt.Sprintf("chain.Config{network=%s full_node=%s solidity_node=%s token=%s decimals=%d fee_limit=%d expiration=%s call_timeout=%s tls=%t api_key=%s}",
		c.Network, c.FullNode, c.SolidityNode, c.Token, c.TokenDecimals, c.FeeLimit, c.Expiration, c.CallTimeout, c.TLS, key)
}

// GoString leaves the API key out of %#v too.
func (c Config) GoString() string { return c.String() }

// validAddress checks a base58check TRON address (21 bytes, 0x41 prefix).
func validAddress(s string) error {
	_, err := ParseAddress(s)
	return err
}
