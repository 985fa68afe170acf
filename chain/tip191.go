package chain

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fbsobreira/gotron-sdk/pkg/address"
	"github.com/fbsobreira/gotron-sdk/pkg/common"
)

// TIP-191 signed messages: a user proves they control a TRON address by
// signing a text with its key, as TronWeb's trx.signMessageV2 and wallets
// (TronLink) do. The digest is
//
//	keccak256("\x19TRON Signed Message:\n" + decimal len(msg) + msg)
//
// and the signature is 65 bytes R || S || V over it (secp256k1).

// tip191Prefix starts every TIP-191 (v2) message digest.
const tip191Prefix = "\x19TRON Signed Message:\n"

// SignatureLen is the length of a TIP-191 signature: R (32) || S (32) || V (1).
const SignatureLen = 65

// Errors from address and signature checks. Errors wrap one of these (%w)
// and say what exactly is wrong.
var (
	// ErrBadAddress: not a base58check TRON address (T...).
	ErrBadAddress = errors.New("invalid TRON address")
	// ErrBadSignature: malformed (length, V, R/S range) or no public key
	// can be recovered from it.
	ErrBadSignature = errors.New("invalid signature")
	// ErrWrongSigner: a well-formed signature, but made by another address
	// (or over another message, which recovers to an unrelated address).
	ErrWrongSigner = errors.New("signed by another address")
)

// HashMessage returns the TIP-191 (v2) digest of msg:
// keccak256("\x19TRON Signed Message:\n" + decimal len(msg) + msg). It is the
// digest gotron-sdk's keystore.TextHash and TronWeb's signMessageV2 sign.
func HashMessage(msg []byte) []byte {
	buf := make([]byte, 0, len(tip191Prefix)+20+len(msg))
	buf = append(buf, tip191Prefix...)
	buf = strconv.AppendInt(buf, int64(len(msg)), 10)
	buf = append(buf, msg...)
	return crypto.Keccak256(buf)
}

// SignMessage signs msg the TIP-191 way with key and returns 65 bytes
// R || S || V with V 27 or 28, as TronWeb does. It is for tests and tools:
// the tracker itself never signs messages.
func SignMessage(key *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	if key == nil {
		return nil, errors.New("tip191 sign: nil private key")
	}
	sig, err := crypto.Sign(HashMessage(msg), key)
	if err != nil {
		// go-ethereum's errors name sizes only, never key bytes.
		return nil, fmt.Errorf("tip191 sign: %w", err)
	}
	sig[64] += 27
	return sig, nil
}

// ParseAddress decodes a base58check TRON address ("T" + 33 characters,
// 21 bytes with the 0x41 prefix). Errors wrap ErrBadAddress.
func ParseAddress(s string) (address.Address, error) {
	switch {
	case s == "":
		return nil, fmt.Errorf("%w: empty", ErrBadAddress)
	case looksHexAddress(s):
		return nil, fmt.Errorf("%w: this is the hex form (41...); give the base58 form that starts with T", ErrBadAddress)
	case len(s) != address.AddressLengthBase58:
		return nil, fmt.Errorf("%w: want %d base58 characters, got %d", ErrBadAddress, address.AddressLengthBase58, len(s))
	case s[0] != 'T':
		return nil, fmt.Errorf("%w: must start with T", ErrBadAddress)
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(base58Alphabet, rune(s[i])) {
			return nil, fmt.Errorf("%w: character %d (%q) is not base58", ErrBadAddress, i+1, s[i])
		}
	}
	b, err := common.DecodeCheck(s)
	if err != nil {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadAddress)
	}
	a := address.Address(b)
	if !a.IsValid() {
		return nil, fmt.Errorf("%w: not a 21-byte address with prefix 0x41", ErrBadAddress)
	}
	return a, nil
}

// looksHexAddress: "41" + 40 hex digits, optionally with 0x.
func looksHexAddress(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s) != 2*address.AddressLength || s[:2] != "41" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// ValidAddress reports whether s is a valid base58check TRON address.
func ValidAddress(s string) bool {
	_, err := ParseAddress(s)
	return err == nil
}

// ParseSignature decodes a hex signature ("0x" prefix optional) of exactly
// SignatureLen bytes. V is checked by VerifyMessage. Errors wrap
// ErrBadSignature and never echo the input.
func ParseSignature(s string) ([]byte, error) {
	h := s
	if len(h) >= 2 && h[0] == '0' && (h[1] == 'x' || h[1] == 'X') {
		h = h[2:]
	}
	if h == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadSignature)
	}
	for i := 0; i < len(h); i++ {
		if !isHex(h[i]) {
			return nil, fmt.Errorf("%w: not hexadecimal (character %d)", ErrBadSignature, i+1+len(s)-len(h))
		}
	}
	if len(h) != 2*SignatureLen {
		return nil, fmt.Errorf("%w: want %d hex digits (%d bytes), got %d", ErrBadSignature, 2*SignatureLen, SignatureLen, len(h))
	}
	sig, err := hex.DecodeString(h)
	if err != nil { // unreachable after the checks above
		return nil, fmt.Errorf("%w: not hexadecimal", ErrBadSignature)
	}
	return sig, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// RecoverAddress returns the TRON address whose key made sig over the
// TIP-191 digest of msg. V may be 0/1 (go-ethereum, gotron-sdk keystore) or
// 27/28 (TronWeb, TronLink). High-S signatures are accepted (the TRON node
// accepts them too); the challenge they sign is one-time, so malleability
// gains nothing.
func RecoverAddress(msg, sig []byte) (address.Address, error) {
	return recoverDigestSigner(HashMessage(msg), sig)
}

// recoverDigestSigner is the address whose key made sig (65 bytes, V 0/1 or
// 27/28) over a 32-byte digest: a TIP-191 hash or a transaction id.
func recoverDigestSigner(digest, sig []byte) (address.Address, error) {
	if len(sig) != SignatureLen {
		return nil, fmt.Errorf("%w: want %d bytes, got %d", ErrBadSignature, SignatureLen, len(sig))
	}
	v := sig[64]
	switch v {
	case 0, 1:
	case 27, 28:
		v -= 27
	default:
		return nil, fmt.Errorf("%w: V must be 0, 1, 27 or 28, got %d", ErrBadSignature, sig[64])
	}
	norm := make([]byte, SignatureLen)
	copy(norm, sig)
	norm[64] = v
	r := new(big.Int).SetBytes(norm[:32])
	s := new(big.Int).SetBytes(norm[32:64])
	if !crypto.ValidateSignatureValues(v, r, s, false) {
		return nil, fmt.Errorf("%w: R or S out of range", ErrBadSignature)
	}
	pub, err := crypto.SigToPub(digest, norm)
	if err != nil {
		return nil, fmt.Errorf("%w: no public key recoverable from it", ErrBadSignature)
	}
	return address.PubkeyToAddress(*pub), nil
}

// VerifyMessage checks that sig is a TIP-191 signature of msg by the key of
// addr (base58 T...). Errors wrap ErrBadAddress, ErrBadSignature or
// ErrWrongSigner and say what is wrong; a wrong signer's error names the
// address that did sign.
func VerifyMessage(addr string, msg []byte, sig []byte) error {
	want, err := ParseAddress(addr)
	if err != nil {
		return err
	}
	got, err := RecoverAddress(msg, sig)
	if err != nil {
		return err
	}
	if string(got) != string(want) {
		return fmt.Errorf("%w: the signature is by %s, not %s (or the message differs from the one signed)", ErrWrongSigner, got, addr)
	}
	return nil
}

// AddressOf returns the base58 TRON address of a private key's public key.
func AddressOf(key *ecdsa.PrivateKey) string {
	return address.PubkeyToAddress(key.PublicKey).String()
}

// TIP191 bundles address validation and TIP-191 verification for packages
// that take them as an interface (rewards.Addresses: rewards does not import
// chain). The zero value is ready to use.
type TIP191 struct{}

// CheckAddress returns nil for a valid base58 TRON address, else an error
// wrapping ErrBadAddress.
func (TIP191) CheckAddress(addr string) error {
	_, err := ParseAddress(addr)
	return err
}

// VerifyMessage is the package function VerifyMessage.
func (TIP191) VerifyMessage(addr string, msg, sig []byte) error {
	return VerifyMessage(addr, msg, sig)
}
