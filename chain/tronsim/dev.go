package tronsim

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fbsobreira/gotron-sdk/pkg/address"
)

// What NewDev gives the generated hot wallet.
const (
	DevTokens = 1_000_000_000         // whole tokens
	DevTRX    = 1_000_000 * 1_000_000 // sun (1,000,000 TRX)
	DevEnergy = 50_000_000            // staked energy: hundreds of transfers a day
)

// Fund gives addr tokens (base units, added), sets its TRX balance (sun) and
// its staked energy.
func (n *Node) Fund(addr string, tokens *big.Int, trxSun, energy int64) error {
	if err := n.SetTRX(addr, trxSun); err != nil {
		return err
	}
	if err := n.SetEnergy(addr, energy); err != nil {
		return err
	}
	if tokens != nil && tokens.Sign() > 0 {
		return n.Mint(addr, tokens)
	}
	return nil
}

// NewWallet generates a key and funds its address with tokens (base units
// of the configured token, may be nil), DevTRX and DevEnergy: an external
// wallet (a depositor) that can sign transfers with chain.NewWithKey. The
// key is only ever in memory.
func (n *Node) NewWallet(tokens *big.Int) (key *ecdsa.PrivateKey, addr string, err error) {
	key, err = crypto.GenerateKey()
	if err != nil {
		return nil, "", fmt.Errorf("tronsim: generate key: %w", err)
	}
	addr = address.PubkeyToAddress(key.PublicKey).String()
	if err := n.Fund(addr, tokens, DevTRX, DevEnergy); err != nil {
		return nil, "", err
	}
	return key, addr, nil
}

// NewDev builds a node from cfg, starts it on listen and funds a freshly
// generated hot wallet with DevTokens, DevTRX and DevEnergy. It returns the
// running node, the token contract address and the hot wallet's key (only
// ever in memory: the caller hands it to chain.New and must not log it).
func NewDev(listen string, cfg Config) (node *Node, token string, hotKey *ecdsa.PrivateKey, err error) {
	node, err = New(cfg)
	if err != nil {
		return nil, "", nil, err
	}
	hotKey, err = crypto.GenerateKey()
	if err != nil {
		return nil, "", nil, fmt.Errorf("tronsim: generate hot key: %w", err)
	}
	hot := address.PubkeyToAddress(hotKey.PublicKey).String()
	units := TokenUnits(big.NewInt(DevTokens), node.cfg.Token.Decimals)
	if err := node.Fund(hot, units, DevTRX, DevEnergy); err != nil {
		return nil, "", nil, err
	}
	if err := node.Start(listen); err != nil {
		return nil, "", nil, err
	}
	return node, node.TokenAddress(), hotKey, nil
}

// TokenUnits converts whole tokens to base units.
func TokenUnits(whole *big.Int, decimals uint8) *big.Int {
	return new(big.Int).Mul(whole, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil))
}

// ParseTokenAmount reads a non-negative decimal number of whole tokens
// ("1000", "12.5") into base units; more fractional digits than decimals
// is an error.
func ParseTokenAmount(s string, decimals uint8) (*big.Int, error) {
	s = strings.TrimSpace(s)
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" {
		return nil, fmt.Errorf("amount %q: empty", s)
	}
	if len(frac) > int(decimals) {
		return nil, fmt.Errorf("amount %q: more than %d decimal places", s, decimals)
	}
	digits := whole + frac + strings.Repeat("0", int(decimals)-len(frac))
	for _, c := range digits {
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("amount %q: want a non-negative decimal number of whole tokens", s)
		}
	}
	v, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return nil, fmt.Errorf("amount %q: not a number", s)
	}
	return v, nil
}

// ParseFund reads "<address>=<whole tokens>" (the sim-chain --fund flag).
func ParseFund(s string, decimals uint8) (addr string, units *big.Int, err error) {
	addr, amount, found := strings.Cut(s, "=")
	if !found {
		return "", nil, errors.New("want <address>=<amount of whole tokens>")
	}
	addr = strings.TrimSpace(addr)
	if _, err := ParseAddress(addr); err != nil {
		return "", nil, err
	}
	units, err = ParseTokenAmount(amount, decimals)
	if err != nil {
		return "", nil, err
	}
	return addr, units, nil
}
