package chain_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fbsobreira/gotron-sdk/pkg/keystore"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/seedpay/seedpay/chain"
)

const testPass = "correct horse battery"

// env builds a KeyConfig.LookupEnv from pairs.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// keyHex is the private key's hex, to prove it never shows up anywhere.
func keyHex(k *chain.HotKey) string {
	return hex.EncodeToString(crypto.FromECDSA(k.PrivateKey()))
}

func TestKeystoreRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	addr, path, err := chain.NewKeystoreFile(dir, testPass, true)
	if err != nil {
		t.Fatal(err)
	}
	if !chain.ValidAddress(addr) || filepath.Dir(path) != dir {
		t.Fatalf("address %q, path %q", addr, path)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("keystore file mode %v, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("keystore dir mode %v, want 0700", st.Mode().Perm())
	}
	// Both the file and its directory load, to the same address.
	for _, ks := range []string{path, dir} {
		k, err := chain.LoadHotKey(chain.KeyConfig{Keystore: ks, LookupEnv: env(chain.EnvKeystorePassphrase, testPass)})
		if err != nil {
			t.Fatalf("load %s: %v", ks, err)
		}
		if k.Address() != addr || chain.AddressOf(k.PrivateKey()) != addr {
			t.Fatalf("loaded %s, want %s", k.Address(), addr)
		}
		// With the address pinned, too.
		if _, err := chain.LoadHotKey(chain.KeyConfig{Keystore: ks, Address: addr, LookupEnv: env(chain.EnvKeystorePassphrase, testPass)}); err != nil {
			t.Fatalf("pinned load: %v", err)
		}
		// The file is gotron-sdk's format: its own DecryptKey reads it.
		body, _ := os.ReadFile(path)
		sdk, err := keystore.DecryptKey(body, testPass)
		if err != nil || sdk.Address.String() != addr {
			t.Fatalf("gotron-sdk DecryptKey: %v, %v", sdk, err)
		}
		if strings.Contains(string(body), keyHex(k)) {
			t.Fatal("keystore file contains the plain key")
		}
	}
}

func TestKeystoreWrongPassphrase(t *testing.T) {
	dir := t.TempDir()
	_, path, err := chain.NewKeystoreFile(dir, testPass, true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = chain.LoadHotKey(chain.KeyConfig{Keystore: path, LookupEnv: env(chain.EnvKeystorePassphrase, "not the passphrase")})
	if !errors.Is(err, chain.ErrWrongPassphrase) || !errors.Is(err, chain.ErrHotKey) {
		t.Fatalf("err = %v, want ErrWrongPassphrase", err)
	}
	if !strings.Contains(err.Error(), "wrong passphrase") || !strings.Contains(err.Error(), path) {
		t.Fatalf("error does not say what is wrong: %v", err)
	}
	if strings.Contains(err.Error(), "not the passphrase") || strings.Contains(err.Error(), testPass) {
		t.Fatalf("error leaks the passphrase: %v", err)
	}
	// No passphrase in the environment at all.
	_, err = chain.LoadHotKey(chain.KeyConfig{Keystore: path, LookupEnv: env()})
	if !errors.Is(err, chain.ErrHotKey) || !strings.Contains(err.Error(), chain.EnvKeystorePassphrase+" is not set") {
		t.Fatalf("err = %v, want a missing-passphrase error", err)
	}
}

func TestKeystoreFromEnvHex(t *testing.T) {
	raw := strings.Repeat("ab", 32)
	want := chain.AddressOf(mustKey(t, raw))
	for _, in := range []string{raw, "0x" + raw, " " + strings.ToUpper(raw) + "\n"} {
		k, err := chain.LoadHotKey(chain.KeyConfig{LookupEnv: env(chain.EnvHotKey, in)})
		if err != nil {
			t.Fatalf("%v", err) // err cannot contain the key; see below
		}
		if k.Address() != want || k.Source() != "env SEEDPAY_HOT_KEY" {
			t.Fatalf("got %s from %s", k.Address(), k.Source())
		}
	}
	n := hex.EncodeToString(crypto.S256().Params().N.Bytes())
	for _, tt := range []struct{ in, contains string }{
		{raw[:63], "64 hex digits"},
		{raw + "00", "got 66 characters"},
		{raw[:40] + "zz" + raw[42:], "not hexadecimal (character 41)"},
		{strings.Repeat("0", 64), "not a valid secp256k1 private key"},
		{n, "not a valid secp256k1 private key"},
	} {
		_, err := chain.LoadHotKey(chain.KeyConfig{LookupEnv: env(chain.EnvHotKey, tt.in)})
		if !errors.Is(err, chain.ErrHotKey) || !strings.Contains(err.Error(), tt.contains) {
			t.Errorf("err = %v, want ErrHotKey containing %q", err, tt.contains)
			continue
		}
		if strings.Contains(err.Error(), tt.in[:20]) {
			t.Errorf("error echoes the key: %v", err)
		}
	}
}

func TestKeystoreConfigErrors(t *testing.T) {
	dir := t.TempDir()
	addr, path, err := chain.NewKeystoreFile(dir, testPass, true)
	if err != nil {
		t.Fatal(err)
	}
	other := chain.AddressOf(newKey(t))
	hexKey := strings.Repeat("ab", 32)

	_, err = chain.LoadHotKey(chain.KeyConfig{LookupEnv: env()})
	if !errors.Is(err, chain.ErrNoHotKey) {
		t.Fatalf("nothing configured: %v", err)
	}
	_, err = chain.LoadHotKey(chain.KeyConfig{Keystore: path, LookupEnv: env(chain.EnvHotKey, hexKey, chain.EnvKeystorePassphrase, testPass)})
	if !errors.Is(err, chain.ErrHotKey) || !strings.Contains(err.Error(), "use one") {
		t.Fatalf("two sources: %v", err)
	}
	_, err = chain.LoadHotKey(chain.KeyConfig{Keystore: path, Address: other, LookupEnv: env(chain.EnvKeystorePassphrase, testPass)})
	if !errors.Is(err, chain.ErrHotKey) || !strings.Contains(err.Error(), "is for "+addr+", but the configured address is "+other) {
		t.Fatalf("pinned to another address: %v", err)
	}
	_, err = chain.LoadHotKey(chain.KeyConfig{Keystore: dir, Address: other, LookupEnv: env(chain.EnvKeystorePassphrase, testPass)})
	if !errors.Is(err, chain.ErrHotKey) || !strings.Contains(err.Error(), "has no key for "+other) {
		t.Fatalf("directory without the pinned key: %v", err)
	}
	_, err = chain.LoadHotKey(chain.KeyConfig{Keystore: dir, Address: "Tnope", LookupEnv: env(chain.EnvKeystorePassphrase, testPass)})
	if !errors.Is(err, chain.ErrBadAddress) {
		t.Fatalf("bad configured address: %v", err)
	}
	_, err = chain.LoadHotKey(chain.KeyConfig{Keystore: filepath.Join(dir, "missing"), LookupEnv: env(chain.EnvKeystorePassphrase, testPass)})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk.json")
	_ = os.WriteFile(junk, []byte(`{"hello":1}`), 0o600)
	_, err = chain.LoadHotKey(chain.KeyConfig{Keystore: junk, LookupEnv: env(chain.EnvKeystorePassphrase, testPass)})
	if !errors.Is(err, chain.ErrHotKey) || !strings.Contains(err.Error(), "not a keystore JSON file") {
		t.Fatalf("junk file: %v", err)
	}

	// Two keys in one directory: ambiguous unless the address picks one.
	addr2, _, err := chain.NewKeystoreFile(dir, testPass, true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = chain.LoadHotKey(chain.KeyConfig{Keystore: dir, LookupEnv: env(chain.EnvKeystorePassphrase, testPass)})
	if !errors.Is(err, chain.ErrHotKey) || !strings.Contains(err.Error(), "has 2 keystore files") {
		t.Fatalf("two files: %v", err)
	}
	k, err := chain.LoadHotKey(chain.KeyConfig{Keystore: dir, Address: addr2, LookupEnv: env(chain.EnvKeystorePassphrase, testPass)})
	if err != nil || k.Address() != addr2 {
		t.Fatalf("pick by address: %v, %v", k, err)
	}

	// A file whose address field was swapped for another's is refused.
	body, _ := os.ReadFile(path)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	otherKey, _ := chain.LoadHotKey(chain.KeyConfig{Keystore: dir, Address: addr2, LookupEnv: env(chain.EnvKeystorePassphrase, testPass)})
	m["address"] = hex.EncodeToString(otherKey.AddressBytes())
	swapped, _ := json.Marshal(m)
	sp := filepath.Join(t.TempDir(), "swapped.json")
	_ = os.WriteFile(sp, swapped, 0o600)
	_, err = chain.LoadHotKey(chain.KeyConfig{Keystore: sp, LookupEnv: env(chain.EnvKeystorePassphrase, testPass)})
	if !errors.Is(err, chain.ErrHotKey) || !strings.Contains(err.Error(), "does not match the key inside") {
		t.Fatalf("swapped address field: %v", err)
	}

	if _, _, err := chain.NewKeystoreFile(t.TempDir(), "short", true); !errors.Is(err, chain.ErrHotKey) || !strings.Contains(err.Error(), "at least 8") {
		t.Fatalf("short passphrase: %v", err)
	}
}

// TestKeystoreHotKeyNeverPrints: every way of printing, logging or encoding
// a HotKey shows its address and source, never the key.
func TestKeystoreHotKeyNeverPrints(t *testing.T) {
	k, err := chain.LoadHotKey(chain.KeyConfig{LookupEnv: env(chain.EnvHotKey, hex.EncodeToString(crypto.FromECDSA(newKey(t))))})
	if err != nil {
		t.Fatal(err)
	}
	secret := keyHex(k)
	dec := new(big.Int).SetBytes(crypto.FromECDSA(k.PrivateKey())).String()
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	log.Info("loaded", zap.Any("key", k), zap.Stringer("key2", k), zap.Reflect("key3", k))
	js, _ := json.Marshal(k)
	txt, _ := k.MarshalText()
	var out []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		out = append(out, fmt.Sprintf(f, k))
	}
	out = append(out, fmt.Sprint(k), fmt.Sprintf("%v", *k), string(js), string(txt))
	for _, e := range logs.All() {
		for _, f := range e.Context {
			out = append(out, fmt.Sprint(f.Interface, f.String))
		}
		enc, _ := json.Marshal(e.ContextMap())
		out = append(out, string(enc))
	}
	all := strings.Join(out, "\n")
	if strings.Contains(strings.ToLower(all), secret) || strings.Contains(all, dec) {
		t.Fatalf("key material printed:\n%s", all)
	}
	if !strings.Contains(all, k.Address()) {
		t.Fatalf("address missing from:\n%s", all)
	}
}

func TestKeystoreSignDigestAndDestroy(t *testing.T) {
	priv := newKey(t)
	k, err := chain.LoadHotKey(chain.KeyConfig{LookupEnv: env(chain.EnvHotKey, hex.EncodeToString(crypto.FromECDSA(priv)))})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("raw_data"))
	sig, err := k.SignDigest(digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 65 || sig[64] > 1 {
		t.Fatalf("signature %x: want 65 bytes with V 0/1", sig)
	}
	pub, err := crypto.SigToPub(digest[:], sig)
	if err != nil || crypto.PubkeyToAddress(*pub) != crypto.PubkeyToAddress(priv.PublicKey) {
		t.Fatalf("signature does not recover the key: %v", err)
	}
	if _, err := k.SignDigest(digest[:31]); err == nil {
		t.Fatal("short digest accepted")
	}
	k.Destroy()
	if k.PrivateKey() != nil {
		t.Fatal("Destroy left the key")
	}
	if _, err := k.SignDigest(digest[:]); !errors.Is(err, chain.ErrHotKey) {
		t.Fatalf("signing after Destroy: %v", err)
	}
}
