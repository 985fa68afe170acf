package chain_test

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fbsobreira/gotron-sdk/pkg/address"
	"github.com/fbsobreira/gotron-sdk/pkg/keystore"

	"github.com/seedpay/seedpay/chain"
)

// Fixed TIP-191 (v2) vectors. The signatures were computed by SignMessage
// and agree byte for byte with two independent implementations' published
// tests: Trust Wallet Core's Tron MessageSigner ("Hello World") and
// mrtnetwork/blockchain_utils' TronSigner.signPersonalMessage ("message").
// RFC 6979 makes ECDSA deterministic, so any correct signer gives these bytes.
var tip191Vectors = []struct {
	key, msg, addr, sig string
}{
	{
		key:  "75065f100e38d3f3b4c5c4235834ba8216de62272a4f03532c44b31a5734360a",
		msg:  "Hello World",
		addr: "TWWb9EjUWai17YEVB7FR8hreupYJKG9sMR",
		sig:  "bc0753c070cc55693097df11bc11e1a7c4bd5e1a40b9dc94c75568e59bcc9d6b50a7873ef25b469e494490a54de37327b4bc7fc825c81a377b555e34fb7261ba1c",
	},
	{
		key:  "43985273a3d94eb753fe6acfd7003e88254effce1eb53e2e97b8522558a98038",
		msg:  "message",
		addr: "TCFvmqhxFrEdPbnQzKWaGNdXz7X3za7w5r",
		sig:  "fde00bc33d78109bc61de314c1c0526a047e22a2aaae473ca84b32d8aa35ed3e03720e05d614087e3d8c6fae63879755b32aa08818a2d4de66fee1a617a971671b",
	},
}

func mustKey(t *testing.T, h string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.HexToECDSA(h)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestTIP191Vectors(t *testing.T) {
	for _, v := range tip191Vectors {
		t.Run(v.msg, func(t *testing.T) {
			k := mustKey(t, v.key)
			if got := chain.AddressOf(k); got != v.addr {
				t.Fatalf("address %s, want %s", got, v.addr)
			}
			sig, err := chain.SignMessage(k, []byte(v.msg))
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(sig); got != v.sig {
				t.Fatalf("signature\n got %s\nwant %s", got, v.sig)
			}
			if sig[64] != 27 && sig[64] != 28 {
				t.Fatalf("V = %d, want 27 or 28 (TronWeb style)", sig[64])
			}
			parsed, err := chain.ParseSignature("0x" + v.sig)
			if err != nil {
				t.Fatal(err)
			}
			if err := chain.VerifyMessage(v.addr, []byte(v.msg), parsed); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
}

// TestTIP191HashMatchesGotronSDK: HashMessage is gotron-sdk's keystore
// TextHash (the same digest TronWeb's signMessageV2 signs), including the
// length counted in bytes, not characters.
func TestTIP191HashMatchesGotronSDK(t *testing.T) {
	for _, m := range []string{"", "hello", "seedpay payout address for user 0123456789abcdef\nnonce: ab\nexpires: 2026-01-01T00:00:00Z", "héllo wörld ✓", strings.Repeat("x", 1000)} {
		if got, want := chain.HashMessage([]byte(m)), keystore.TextHash([]byte(m)); !bytes.Equal(got, want) {
			t.Fatalf("HashMessage(%q) = %x, gotron-sdk TextHash = %x", m, got, want)
		}
	}
	want := crypto.Keccak256([]byte("\x19TRON Signed Message:\n5hello"))
	if got := chain.HashMessage([]byte("hello")); !bytes.Equal(got, want) {
		t.Fatalf("HashMessage(hello) = %x, want %x", got, want)
	}
}

// TestTIP191SignMatchesGotronSDKKeystore signs with gotron-sdk's keystore
// helper (SignTextWithPassphrase, V 0/1) and with SignMessage (V 27/28):
// the same R || S, V offset by 27, and both verify.
func TestTIP191SignMatchesGotronSDKKeystore(t *testing.T) {
	ks := keystore.NewKeyStore(t.TempDir(), keystore.LightScryptN, keystore.LightScryptP)
	defer ks.Close()
	k := mustKey(t, tip191Vectors[0].key)
	acct, err := ks.ImportECDSA(k, "test-passphrase")
	if err != nil {
		t.Fatal(err)
	}
	w := ks.Wallets()[0]
	msg := []byte("seedpay payout address for user u1\nnonce: 00\nexpires: 2026-01-01T00:00:00Z")
	sdkSig, err := w.SignTextWithPassphrase(acct, "test-passphrase", msg)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := chain.SignMessage(k, msg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sdkSig[:64], ours[:64]) || sdkSig[64]+27 != ours[64] {
		t.Fatalf("gotron-sdk %x\n     ours %x", sdkSig, ours)
	}
	for _, sig := range [][]byte{sdkSig, ours} {
		if err := chain.VerifyMessage(acct.Address.String(), msg, sig); err != nil {
			t.Fatalf("V=%d: %v", sig[64], err)
		}
	}
}

func TestTIP191Refusals(t *testing.T) {
	k := newKey(t)
	addr := chain.AddressOf(k)
	other := chain.AddressOf(newKey(t))
	msg := []byte("seedpay payout address for user u1\nnonce: 1234\nexpires: 2026-01-01T00:00:00Z")
	sig, err := chain.SignMessage(k, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := chain.VerifyMessage(addr, msg, sig); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	with := func(f func(s []byte) []byte) []byte { return f(append([]byte(nil), sig...)) }
	n := crypto.S256().Params().N

	tests := []struct {
		name     string
		addr     string
		msg      []byte
		sig      []byte
		want     error
		contains string
	}{
		{"tampered message", addr, []byte(strings.Replace(string(msg), "1234", "1235", 1)), sig, chain.ErrWrongSigner, "not " + addr},
		{"another address", other, msg, sig, chain.ErrWrongSigner, "is by " + addr + ", not " + other},
		{"V 29", addr, msg, with(func(s []byte) []byte { s[64] = 29; return s }), chain.ErrBadSignature, "V must be 0, 1, 27 or 28, got 29"},
		{"V 2", addr, msg, with(func(s []byte) []byte { s[64] = 2; return s }), chain.ErrBadSignature, "got 2"},
		{"flipped V", addr, msg, with(func(s []byte) []byte { s[64] = 55 - s[64]; return s }), chain.ErrWrongSigner, ""},
		{"truncated", addr, msg, sig[:64], chain.ErrBadSignature, "want 65 bytes, got 64"},
		{"too long", addr, msg, append(append([]byte(nil), sig...), 0), chain.ErrBadSignature, "got 66"},
		{"empty", addr, msg, nil, chain.ErrBadSignature, "got 0"},
		{"zero R", addr, msg, with(func(s []byte) []byte { clear(s[:32]); return s }), chain.ErrBadSignature, "R or S out of range"},
		{"S = N", addr, msg, with(func(s []byte) []byte { n.FillBytes(s[32:64]); return s }), chain.ErrBadSignature, "R or S out of range"},
		{"bad address", "T" + addr[2:] + "x", msg, sig, chain.ErrBadAddress, ""},
		{"empty address", "", msg, sig, chain.ErrBadAddress, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := chain.VerifyMessage(tt.addr, tt.msg, tt.sig)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.contains)
			}
		})
	}
}

// TestTIP191HighS: the malleable twin (N-S, V flipped) of a signature
// recovers the same key; it is accepted like the TRON node accepts it.
func TestTIP191HighS(t *testing.T) {
	k := newKey(t)
	msg := []byte("m")
	sig, _ := chain.SignMessage(k, msg)
	n := crypto.S256().Params().N
	s := new(big.Int).SetBytes(sig[32:64])
	twin := append([]byte(nil), sig...)
	new(big.Int).Sub(n, s).FillBytes(twin[32:64])
	twin[64] = 55 - twin[64] // 27 <-> 28
	if err := chain.VerifyMessage(chain.AddressOf(k), msg, twin); err != nil {
		t.Fatalf("high-S twin refused: %v", err)
	}
}

func TestTIP191ParseSignature(t *testing.T) {
	good := tip191Vectors[0].sig
	for _, in := range []string{good, "0x" + good, "0X" + strings.ToUpper(good)} {
		b, err := chain.ParseSignature(in)
		if err != nil || hex.EncodeToString(b) != good {
			t.Fatalf("ParseSignature(%.10s...) = %x, %v", in, b, err)
		}
	}
	for _, tt := range []struct{ in, contains string }{
		{"", "empty"},
		{"0x", "empty"},
		{"0x" + good[:128], "want 130 hex digits (65 bytes), got 128"},
		{"0x" + good + "00", "got 132"},
		{"0x" + good[:129] + "g", "not hexadecimal (character 132)"},
		{"0x" + good[:129], "got 129"},
		{"zz", "not hexadecimal (character 1)"},
	} {
		_, err := chain.ParseSignature(tt.in)
		if !errors.Is(err, chain.ErrBadSignature) || !strings.Contains(err.Error(), tt.contains) {
			t.Errorf("ParseSignature(%q) err = %v, want ErrBadSignature containing %q", tt.in, err, tt.contains)
		}
	}
}

func TestTIP191ValidAddress(t *testing.T) {
	good := tip191Vectors[0].addr
	if !chain.ValidAddress(good) || !chain.ValidAddress("TAFjULxiVgT4qWk6UZwjqwZXTSaGaqnVp4") {
		t.Fatal("valid address refused")
	}
	// A 21-byte address with another prefix (0xa0, Ethereum-like) encodes
	// to a valid base58check string that is not a TRON address.
	body := append([]byte{0xa0}, make([]byte, 20)...)
	wrongPrefix := address.Address(body).String()
	lastFlipped := good[:33] + map[bool]string{true: "S", false: "R"}[good[33] == 'R']
	for _, tt := range []struct{ in, contains string }{
		{"", "empty"},
		{good[:33], "want 34 base58 characters, got 33"},
		{good + "1", "got 35"},
		{"A" + good[1:], "must start with T"},
		{good[:10] + "0" + good[11:], "character 11 ('0') is not base58"},
		{good[:10] + "l" + good[11:], "is not base58"},
		{lastFlipped, "checksum"},
		{"41" + strings.Repeat("0", 32), "must start with T"},
		{"41" + strings.Repeat("0", 40), "hex form"},
		{"0x41" + strings.Repeat("a", 40), "hex form"},
		{wrongPrefix, ""},
		{" " + good[1:], "must start with T"},
	} {
		err := func() error { _, err := chain.ParseAddress(tt.in); return err }()
		if !errors.Is(err, chain.ErrBadAddress) || !strings.Contains(err.Error(), tt.contains) || chain.ValidAddress(tt.in) {
			t.Errorf("ParseAddress(%q) err = %v, want ErrBadAddress containing %q", tt.in, err, tt.contains)
		}
	}
}

func TestTIP191VerifierType(t *testing.T) {
	var v chain.TIP191
	k := mustKey(t, tip191Vectors[1].key)
	sig, _ := chain.SignMessage(k, []byte("x"))
	if err := v.VerifyMessage(tip191Vectors[1].addr, []byte("x"), sig); err != nil {
		t.Fatal(err)
	}
	if err := v.CheckAddress("nope"); !errors.Is(err, chain.ErrBadAddress) {
		t.Fatalf("CheckAddress: %v", err)
	}
}
