package peer

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// ErrKeyFile: the key file exists but does not hold a key.
var ErrKeyFile = errors.New("peer: bad key file")

// LoadOrCreateKey reads an ed25519 key from path: its 32-byte seed (RFC
// 8032) as 64 hex digits, optionally followed by a newline. When the file
// does not exist it makes a new key and writes it with mode 0600 (never
// overwriting a file that appeared meanwhile); created says so.
func LoadOrCreateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, false, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			k, err := LoadKey(path)
			return k, false, err
		}
		if err != nil {
			return nil, false, err
		}
		_, werr := f.WriteString(hex.EncodeToString(seed) + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			_ = os.Remove(path)
			return nil, false, werr
		}
		return ed25519.NewKeyFromSeed(seed), true, nil
	}
	if err != nil {
		return nil, false, err
	}
	key, err = parseKey(path, b)
	return key, false, err
}

// LoadKey reads a key file written by LoadOrCreateKey.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseKey(path, b)
}

func parseKey(path string, b []byte) (ed25519.PrivateKey, error) {
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: %s: want the 32-byte ed25519 seed as 64 hex digits", ErrKeyFile, path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
