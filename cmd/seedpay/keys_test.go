package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/seedpay/seedpay/chain"
)

const keysTestPass = "keys-test-passphrase"

// cleanKeyEnv keeps secrets from the developer's environment out of the
// child process (exec keeps the last of duplicate variables).
var cleanKeyEnv = []string{chain.EnvHotKey + "=", chain.EnvKeystorePassphrase + "="}

func runSeedpay(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd, out := seedpay(t, append(append([]string{}, cleanKeyEnv...), env...), args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return exitCode(t, cmd, out), out.String()
}

var keysNewOut = regexp.MustCompile(`\Aaddress: (T[1-9A-HJ-NP-Za-km-z]{33})\nkeystore: (\S+)\n\z`)

// noKeyMaterial fails if out contains the private key in any usual spelling.
func noKeyMaterial(t *testing.T, out string, k *chain.HotKey) {
	t.Helper()
	raw := crypto.FromECDSA(k.PrivateKey())
	h := hex.EncodeToString(raw)
	dec := new(big.Int).SetBytes(raw).String()
	for _, s := range []string{h, strings.ToUpper(h), h[:16], h[len(h)-16:], dec} {
		if strings.Contains(out, s) {
			t.Fatalf("output contains key material %q:\n%s", s, out)
		}
	}
	if bytes.Contains([]byte(out), raw) {
		t.Fatalf("output contains the raw key bytes")
	}
}

func TestKeysNewRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hot")
	code, out := runSeedpay(t, []string{chain.EnvKeystorePassphrase + "=" + keysTestPass}, "keys", "new", "--keystore", dir, "--light-kdf")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	m := keysNewOut.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output is not exactly the address and the path:\n%q", out)
	}
	addr, path := m[1], m[2]
	if filepath.Dir(path) != dir {
		t.Fatalf("keystore %s not in %s", path, dir)
	}
	if strings.Contains(out, keysTestPass) {
		t.Fatal("output contains the passphrase")
	}

	k, err := chain.LoadHotKey(chain.KeyConfig{Keystore: path, LookupEnv: func(v string) (string, bool) {
		if v == chain.EnvKeystorePassphrase {
			return keysTestPass, true
		}
		return "", false
	}})
	if err != nil {
		t.Fatal(err)
	}
	if k.Address() != addr {
		t.Fatalf("loaded %s, printed %s", k.Address(), addr)
	}
	noKeyMaterial(t, out, k)

	// keys show decrypts it to the same address, from the file or the dir.
	for _, ks := range []string{path, dir} {
		code, out = runSeedpay(t, []string{chain.EnvKeystorePassphrase + "=" + keysTestPass}, "keys", "show", "--keystore", ks, "--address", addr)
		if code != 0 || out != "address: "+addr+"\nsource: keystore "+path+"\n" {
			t.Fatalf("show %s: exit %d\n%s", ks, code, out)
		}
		noKeyMaterial(t, out, k)
	}

	// The same key given as SEEDPAY_HOT_KEY.
	code, out = runSeedpay(t, []string{chain.EnvHotKey + "=" + hex.EncodeToString(crypto.FromECDSA(k.PrivateKey()))}, "keys", "show")
	if code != 0 || out != "address: "+addr+"\nsource: env "+chain.EnvHotKey+"\n" {
		t.Fatalf("show from env: exit %d\n%s", code, out)
	}
	noKeyMaterial(t, out, k)
}

func TestKeysWrongPassphrase(t *testing.T) {
	dir := t.TempDir()
	_, path, err := chain.NewKeystoreFile(dir, keysTestPass, true)
	if err != nil {
		t.Fatal(err)
	}
	code, out := runSeedpay(t, []string{chain.EnvKeystorePassphrase + "=wrong-passphrase"}, "keys", "show", "--keystore", path)
	if code != 1 || !strings.Contains(out, "wrong passphrase") || !strings.Contains(out, path) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if strings.Contains(out, "wrong-passphrase") || strings.Contains(out, keysTestPass) {
		t.Fatalf("error shows a passphrase:\n%s", out)
	}
}

func TestKeysRefusals(t *testing.T) {
	dir := t.TempDir()
	badKey := strings.Repeat("zz", 32)
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no passphrase, no terminal", nil, []string{"keys", "new", "--keystore", dir}, "set " + chain.EnvKeystorePassphrase + ", or run this on a terminal"},
		{"short passphrase", []string{chain.EnvKeystorePassphrase + "=short"}, []string{"keys", "new", "--keystore", dir, "--light-kdf"}, "at least 8 characters"},
		{"no directory", []string{chain.EnvKeystorePassphrase + "=" + keysTestPass}, []string{"keys", "new"}, "--keystore DIR is required"},
		{"stray argument", nil, []string{"keys", "new", "--keystore", dir, "extra"}, "unknown command"},
		{"show without a key", nil, []string{"keys", "show"}, "no hot wallet key configured"},
		{"show with a bad env key", []string{chain.EnvHotKey + "=" + badKey}, []string{"keys", "show"}, "not hexadecimal"},
		{"show, empty dir", []string{chain.EnvKeystorePassphrase + "=" + keysTestPass}, []string{"keys", "show", "--keystore", dir}, "has no keystore file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runSeedpay(t, tt.env, tt.args...)
			if code != 1 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, output %q; want 1 and %q", code, out, tt.want)
			}
			if strings.Contains(out, badKey) {
				t.Fatalf("output echoes the key: %s", out)
			}
		})
	}
	// Nothing was written by the refused "new" runs.
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("refused runs wrote %d files", len(entries))
	}
}

// TestKeysPassphrasePrompt drives the terminal path with a fake terminal.
func TestKeysPassphrasePrompt(t *testing.T) {
	tty, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	src := func(answers ...string) passphraseSource {
		return passphraseSource{
			lookupEnv:  func(string) (string, bool) { return "", false },
			isTerminal: func(int) bool { return true },
			readSecret: func(int) ([]byte, error) {
				if len(answers) == 0 {
					return nil, errors.New("EOF")
				}
				a := answers[0]
				answers = answers[1:]
				return []byte(a), nil
			},
		}
	}
	var prompt bytes.Buffer
	got, err := src("secret-pass", "secret-pass").get(tty, &prompt, true)
	if err != nil || got != "secret-pass" {
		t.Fatalf("got %q, %v", got, err)
	}
	if strings.Contains(prompt.String(), "secret-pass") || !strings.Contains(prompt.String(), "Repeat") {
		t.Fatalf("prompt output %q", prompt.String())
	}
	if _, err := src("secret-pass", "other-pass").get(tty, &prompt, true); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Fatalf("mismatch: %v", err)
	}
	if _, err := src("").get(tty, &prompt, true); err == nil || !strings.Contains(err.Error(), "empty passphrase") {
		t.Fatalf("empty: %v", err)
	}
	if _, err := src().get(tty, &prompt, false); err == nil || !strings.Contains(err.Error(), "reading the passphrase") {
		t.Fatalf("read error: %v", err)
	}
	// The environment wins over the terminal.
	s := src()
	s.lookupEnv = func(string) (string, bool) { return "from-env-pass", true }
	if got, err := s.get(tty, &prompt, true); err != nil || got != "from-env-pass" {
		t.Fatalf("env: %q, %v", got, err)
	}
	// Not a terminal (a pipe or a buffer) and no env: refused.
	if _, err := src("x").get(strings.NewReader("piped\n"), &prompt, true); err == nil || !strings.Contains(err.Error(), "on a terminal") {
		t.Fatalf("non-terminal: %v", err)
	}
}
