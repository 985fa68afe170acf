package chain

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fbsobreira/gotron-sdk/pkg/address"
	"github.com/fbsobreira/gotron-sdk/pkg/keystore"
)

// The hot wallet's key comes from one of two places, both read from the
// environment so that no secret is ever in a config file:
//
//   - a keystore file (gotron-sdk pkg/keystore: Web3 Secret Storage v3 JSON,
//     scrypt + AES-128-CTR) named by KeyConfig.Keystore, decrypted with the
//     passphrase in SEEDPAY_KEYSTORE_PASSPHRASE;
//   - SEEDPAY_HOT_KEY: the private key as 64 hex digits (dev, CI, or a secret
//     store that injects environment variables).
//
// The key is never logged, printed or put into an error: HotKey prints as its
// address, and every error below names files, variables and lengths only.

// Environment variables holding hot-wallet secrets.
const (
	EnvKeystorePassphrase = "SEEDPAY_KEYSTORE_PASSPHRASE"
	EnvHotKey             = "SEEDPAY_HOT_KEY"
)

// MinPassphraseLen is the shortest passphrase NewKeystoreFile accepts.
const MinPassphraseLen = 8

// Errors from loading the hot key; the returned errors wrap one of them.
var (
	// ErrNoHotKey: neither SEEDPAY_HOT_KEY nor a keystore is configured.
	ErrNoHotKey = errors.New("no hot wallet key configured")
	// ErrHotKey: a key source is configured but unusable (missing
	// passphrase, wrong passphrase, malformed key, several sources...).
	ErrHotKey = errors.New("hot wallet key")
	// ErrWrongPassphrase: the keystore did not decrypt with the passphrase.
	// It also wraps ErrHotKey.
	ErrWrongPassphrase = fmt.Errorf("%w: wrong passphrase (the keystore's MAC does not match)", ErrHotKey)
)

// KeyConfig says where the hot wallet key is. Secrets come from the
// environment (EnvKeystorePassphrase, EnvHotKey), never from this struct.
type KeyConfig struct {
	// Keystore is a keystore JSON file as `seedpay keys new` writes it, or
	// a directory holding such files (then exactly one, or the one for
	// Address). Configuring it while SEEDPAY_HOT_KEY is also set is refused
	// as ambiguous.
	Keystore string `yaml:"keystore"`
	// Address, if set, is the base58 address the key must have: a key for
	// another address is refused (guards against a swapped file).
	Address string `yaml:"address"`
	// LookupEnv reads the environment; nil means os.LookupEnv. For tests.
	LookupEnv func(key string) (string, bool) `yaml:"-"`
}

func (c KeyConfig) lookup(k string) (string, bool) {
	if c.LookupEnv != nil {
		return c.LookupEnv(k)
	}
	return os.LookupEnv(k)
}

// HotKey is the hot wallet's private key. Its String, GoString, Format,
// MarshalText and MarshalJSON show only the address and where the key came
// from, so printing or logging a HotKey (fmt, zap.Any, zap.Stringer, JSON)
// never shows key material. Use PrivateKey only to sign.
type HotKey struct {
	key    *ecdsa.PrivateKey
	addr   address.Address
	source string
}

// Address is the key's base58 TRON address (T...).
func (k HotKey) Address() string { return k.addr.String() }

// AddressBytes is the key's 21-byte address (0x41 prefix), a copy.
func (k *HotKey) AddressBytes() []byte { return k.addr.Bytes() }

// Source says where the key came from ("keystore <path>" or "env
// SEEDPAY_HOT_KEY"), for start-up logs.
func (k HotKey) Source() string { return k.source }

// PrivateKey returns the key for signing (e.g. gotron-sdk's
// signer.NewPrivateKeySigner). Callers must not log or persist it.
func (k *HotKey) PrivateKey() *ecdsa.PrivateKey { return k.key }

// SignDigest signs a 32-byte digest (a TRON txid = sha256(raw_data)) and
// returns R || S || V with V 0 or 1, the form TRON transactions carry.
func (k *HotKey) SignDigest(digest []byte) ([]byte, error) {
	if k.key == nil {
		return nil, fmt.Errorf("%w: key has been destroyed", ErrHotKey)
	}
	if len(digest) != 32 {
		return nil, fmt.Errorf("sign: digest must be 32 bytes, got %d", len(digest))
	}
	return crypto.Sign(digest, k.key)
}

// Destroy overwrites the private scalar (best effort: Go may have copied
// it) and drops the key; the HotKey cannot sign afterwards and PrivateKey
// returns nil.
func (k *HotKey) Destroy() {
	zeroKey(k.key)
	k.key = nil
}

// String describes the key without its secret: "hot wallet T... (source)".
func (k HotKey) String() string {
	return "hot wallet " + k.Address() + " (" + k.source + ")"
}

// GoString is String, so %#v does not dump the struct.
func (k HotKey) GoString() string { return k.String() }

// Format prints String for every verb (%v, %+v, %#v, %s, %x, ...).
func (k HotKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// MarshalText returns the address only.
func (k HotKey) MarshalText() ([]byte, error) { return []byte(k.Address()), nil }

// MarshalJSON returns {"address": ..., "source": ...}.
func (k HotKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Address string `json:"address"`
		Source  string `json:"source"`
	}{k.Address(), k.source})
}

// LoadHotKey loads the hot wallet key: from SEEDPAY_HOT_KEY if that is set,
// else from cfg.Keystore decrypted with SEEDPAY_KEYSTORE_PASSPHRASE. Both
// set is an error (which one would be meant?). Errors wrap ErrNoHotKey,
// ErrHotKey or ErrWrongPassphrase and never contain key material or the
// passphrase.
func LoadHotKey(cfg KeyConfig) (*HotKey, error) {
	var want address.Address
	if cfg.Address != "" {
		a, err := ParseAddress(cfg.Address)
		if err != nil {
			return nil, fmt.Errorf("%w: configured address: %w", ErrHotKey, err)
		}
		want = a
	}
	hexKey, haveEnvKey := cfg.lookup(EnvHotKey)
	haveEnvKey = haveEnvKey && hexKey != ""
	var (
		k   *HotKey
		err error
	)
	switch {
	case haveEnvKey && cfg.Keystore != "":
		return nil, fmt.Errorf("%w: both %s and a keystore (%s) are configured; use one", ErrHotKey, EnvHotKey, cfg.Keystore)
	case haveEnvKey:
		k, err = keyFromHex(hexKey)
	case cfg.Keystore != "":
		pass, ok := cfg.lookup(EnvKeystorePassphrase)
		if !ok {
			return nil, fmt.Errorf("%w: keystore %s: %s is not set", ErrHotKey, cfg.Keystore, EnvKeystorePassphrase)
		}
		k, err = keyFromKeystore(cfg.Keystore, pass, want)
	default:
		return nil, fmt.Errorf("%w: set %s, or a keystore file and %s", ErrNoHotKey, EnvHotKey, EnvKeystorePassphrase)
	}
	if err != nil {
		return nil, err
	}
	if want != nil && !bytes.Equal(k.addr, want) {
		got := k.Address()
		k.Destroy()
		return nil, fmt.Errorf("%w: the key (%s) is for %s, but the configured address is %s", ErrHotKey, k.source, got, cfg.Address)
	}
	return k, nil
}

// keyFromHex parses 64 hex digits (an optional 0x prefix and surrounding
// white space allowed). Errors say what is wrong by length and position.
func keyFromHex(s string) (*HotKey, error) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	if len(s) != 64 {
		return nil, fmt.Errorf("%w: %s must be 64 hex digits (a 32-byte private key), got %d characters", ErrHotKey, EnvHotKey, len(s))
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return nil, fmt.Errorf("%w: %s is not hexadecimal (character %d)", ErrHotKey, EnvHotKey, i+1)
		}
	}
	raw, err := hex.DecodeString(s)
	if err != nil { // unreachable after the checks above
		return nil, fmt.Errorf("%w: %s is not hexadecimal", ErrHotKey, EnvHotKey)
	}
	defer clear(raw)
	key, err := crypto.ToECDSA(raw)
	if err != nil {
		// go-ethereum's messages here name the range only, but keep ours.
		return nil, fmt.Errorf("%w: %s is not a valid secp256k1 private key (zero or not below the curve order)", ErrHotKey, EnvHotKey)
	}
	return &HotKey{key: key, addr: address.PubkeyToAddress(key.PublicKey), source: "env " + EnvHotKey}, nil
}

// keystoreHeader is the public part of a keystore file.
type keystoreHeader struct {
	Address string          `json:"address"`
	Crypto  json.RawMessage `json:"crypto"`
	Version json.RawMessage `json:"version"`
}

func readKeystoreHeader(path string) ([]byte, keystoreHeader, error) {
	var h keystoreHeader
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, h, fmt.Errorf("%w: keystore: %w", ErrHotKey, err)
	}
	if err := json.Unmarshal(body, &h); err != nil || len(h.Crypto) == 0 || h.Address == "" {
		return nil, h, fmt.Errorf("%w: keystore %s: not a keystore JSON file (want an object with \"address\" and \"crypto\")", ErrHotKey, path)
	}
	return body, h, nil
}

// keyFromKeystore decrypts a keystore file, or picks one in a directory.
func keyFromKeystore(path, passphrase string, want address.Address) (*HotKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: keystore: %w", ErrHotKey, err)
	}
	if st.IsDir() {
		path, err = pickKeystoreFile(path, want)
		if err != nil {
			return nil, err
		}
	}
	body, h, err := readKeystoreHeader(path)
	if err != nil {
		return nil, err
	}
	key, err := keystore.DecryptKey(body, passphrase)
	if err != nil {
		if errors.Is(err, keystore.ErrDecrypt) {
			return nil, fmt.Errorf("keystore %s: %w", path, ErrWrongPassphrase)
		}
		// Unsupported cipher/KDF or malformed parameters: no secrets in
		// these messages.
		return nil, fmt.Errorf("%w: keystore %s: %v", ErrHotKey, path, err)
	}
	addr := key.Address
	// DecryptKey derives the address from the key; the file's own address
	// field must agree, or the file was tampered with.
	if fileAddr, err := hex.DecodeString(strings.TrimPrefix(h.Address, "0x")); err != nil || !bytes.Equal(normalizeAddr(fileAddr), addr) {
		zeroKey(key.PrivateKey)
		return nil, fmt.Errorf("%w: keystore %s: its address field %q does not match the key inside (%s)", ErrHotKey, path, h.Address, addr)
	}
	// Re-derive through go-ethereum so the key carries its secp256k1 curve
	// (DecryptKey uses ToECDSAUnsafe).
	raw := crypto.FromECDSA(key.PrivateKey)
	zeroKey(key.PrivateKey)
	defer clear(raw)
	pk, err := crypto.ToECDSA(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: keystore %s: the key inside is not a valid secp256k1 private key", ErrHotKey, path)
	}
	return &HotKey{key: pk, addr: address.PubkeyToAddress(pk.PublicKey), source: "keystore " + path}, nil
}

// normalizeAddr turns a 20-byte (Ethereum-style) address into the 21-byte
// TRON form.
func normalizeAddr(b []byte) address.Address {
	if len(b) == address.AddressLength-1 {
		return address.BytesToAddress(b)
	}
	return b
}

// pickKeystoreFile finds the keystore file in dir: the one for want, or the
// only one. Hidden files (keystore's temporary files) are skipped.
func pickKeystoreFile(dir string, want address.Address) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("%w: keystore: %w", ErrHotKey, err)
	}
	var found []string
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		_, h, err := readKeystoreHeader(p)
		if err != nil {
			continue // not a keystore file
		}
		if want != nil {
			a, err := hex.DecodeString(strings.TrimPrefix(h.Address, "0x"))
			if err != nil || !bytes.Equal(normalizeAddr(a), want) {
				continue
			}
		}
		found = append(found, p)
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) == 0 && want != nil:
		return "", fmt.Errorf("%w: keystore directory %s has no key for %s", ErrHotKey, dir, want)
	case len(found) == 0:
		return "", fmt.Errorf("%w: keystore directory %s has no keystore file", ErrHotKey, dir)
	default:
		return "", fmt.Errorf("%w: keystore directory %s has %d keystore files; name one file, or set the address", ErrHotKey, dir, len(found))
	}
}

// NewKeystoreFile makes a new random key, writes it encrypted with
// passphrase into dir (created 0700 if missing; the file is 0600, named
// UTC--<time>--<address hex> like geth/gotron-sdk) and returns its address
// and the file path. The key itself is not returned. light selects
// gotron-sdk's light scrypt parameters (N=4096: fast, weaker; for tests and
// dev) instead of the standard ones (N=262144, ~256 MB, ~1 s).
func NewKeystoreFile(dir, passphrase string, light bool) (addr, path string, err error) {
	if len(passphrase) < MinPassphraseLen {
		return "", "", fmt.Errorf("%w: passphrase must be at least %d characters", ErrHotKey, MinPassphraseLen)
	}
	if dir == "" {
		return "", "", fmt.Errorf("%w: no keystore directory given", ErrHotKey)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	n, p := keystore.StandardScryptN, keystore.StandardScryptP
	if light {
		n, p = keystore.LightScryptN, keystore.LightScryptP
	}
	acct, err := keystore.StoreKey(dir, passphrase, n, p)
	if err != nil {
		return "", "", fmt.Errorf("%w: writing keystore in %s: %w", ErrHotKey, dir, err)
	}
	return acct.Address.String(), acct.URL.Path, nil
}

// zeroKey overwrites a private key's scalar in place. go-ethereum's
// secp256k1 keys are ecdsa.PrivateKey values whose only representation of
// the secret is D (crypto/ecdsa's Bytes/ParseRawPrivateKey do not support
// secp256k1), hence the deprecated field.
func zeroKey(k *ecdsa.PrivateKey) {
	if k == nil {
		return
	}
	//lint:ignore SA1019 D is the only handle on a secp256k1 key's secret.
	d := k.D
	if d == nil {
		return
	}
	clear(d.Bits())
	d.SetInt64(0)
}
