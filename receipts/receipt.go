// Package receipts implements seedpay's signed upload receipts, the Go SDK that
// seedpay-aware BitTorrent clients import.
//
// A downloader signs, from time to time, how many bytes of a torrent it has
// received so far from one uploader in its current session. The uploader keeps
// the newest receipt and submits it to the tracker, which credits the growth of
// the cumulative count since the last receipt it accepted for the same
// (uploader, downloader, session). Because the count is cumulative (as in Storj
// orders and Tribler bandwidth records), a lost or replayed receipt costs
// nothing: the next one covers the same bytes and a replay credits zero.
//
// A receipt is 173 bytes (version 1):
//
//	offset size field
//	     0    1 version (1)
//	     1   20 info_hash
//	    21   32 uploader ed25519 public key
//	    53   32 downloader ed25519 public key
//	    85    8 session (random per downloader session)
//	    93    8 cumulative bytes, big-endian unsigned
//	   101    8 unix time in seconds, big-endian, 0 <= time < 2^63
//	   109   64 ed25519 signature by the downloader over Domain || bytes 0..108
//
// The full specification, with the JSON form and test vectors, is
// docs/receipts.md in the seedpay repository.
//
// Decoding checks structure only (size, version, time range); Verify checks the
// keys and the signature. Neither decides whether a receipt earns credit: that
// is tracker policy (monotonic cumulative per session, time window, caps).
package receipts

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	// Version1 is the only receipt version defined so far.
	Version1 = 1
	// Size is the length in bytes of a version 1 receipt.
	Size = 173
	// MaxJSONSize is the length of the longest JSON form MarshalJSON writes
	// (largest cumulative and time); present-day receipts take about 445
	// bytes. Other encoders may add white space.
	MaxJSONSize = 461
	// Domain is prefixed to the signed fields before signing, so a receipt
	// signature can never be taken for a signature of another protocol's
	// message made with the same key. A later version gets a new prefix.
	Domain = "seedpay-receipt-v1\x00"
)

// Field offsets in the binary form.
const (
	offVersion    = 0
	offInfoHash   = 1
	offUploader   = 21
	offDownloader = 53
	offSession    = 85
	offCumulative = 93
	offTime       = 101
	offSignature  = 109 // also the length of the signed fields
	msgLen        = len(Domain) + offSignature
)

// Receipt is a downloader's signed statement that it has received Cumulative
// bytes of the torrent InfoHash from Uploader during session Session.
type Receipt struct {
	Version    uint8
	InfoHash   [20]byte
	Uploader   [32]byte // ed25519 public key of the peer that uploaded
	Downloader [32]byte // ed25519 public key of the signer
	Session    [8]byte  // random, chosen by the downloader once per session
	Cumulative uint64   // bytes received in this session so far
	Time       int64    // unix seconds when signed; never negative
	Signature  [64]byte
}

// Errors returned by this package wrap one of these; test with errors.Is.
var (
	ErrSize         = errors.New("wrong size")
	ErrVersion      = errors.New("unsupported version")
	ErrTime         = errors.New("time out of range")
	ErrKey          = errors.New("unusable key")
	ErrBadSignature = errors.New("bad signature")
	ErrMalformed    = errors.New("malformed")
	ErrTooMany      = errors.New("too many receipts")
	ErrDecreasing   = errors.New("cumulative went down")
)

// Sign sets r.Downloader to the public half of downloaderKey and signs r with
// it. A zero r.Version becomes Version1. r is left unchanged on error: the key
// is malformed, or is the uploader's own key, or r has an unsupported version
// or a negative time.
func Sign(r *Receipt, downloaderKey ed25519.PrivateKey) error {
	pub, err := checkPrivateKey(downloaderKey)
	if err != nil {
		return err
	}
	return sign(r, downloaderKey, pub)
}

// sign signs r with key, whose public half pub has been checked.
func sign(r *Receipt, key ed25519.PrivateKey, pub [32]byte) error {
	s := *r
	if s.Version == 0 {
		s.Version = Version1
	}
	s.Downloader = pub
	if err := s.check(); err != nil {
		return fmt.Errorf("receipts: sign: %w", err)
	}
	if s.Uploader == s.Downloader {
		return fmt.Errorf("receipts: sign: %w: the uploader key is the downloader's own key", ErrKey)
	}
	copy(s.Signature[:], ed25519.Sign(key, s.Message()))
	*r = s
	return nil
}

// checkPrivateKey returns the public half of key after checking that the key
// is well formed: signing with a private key whose stored public half does not
// match its seed gives signatures that leak the key.
func checkPrivateKey(key ed25519.PrivateKey) (pub [32]byte, err error) {
	if len(key) != ed25519.PrivateKeySize {
		return pub, fmt.Errorf("receipts: %w: private key is %d bytes, want %d", ErrKey, len(key), ed25519.PrivateKeySize)
	}
	derived := ed25519.NewKeyFromSeed(key.Seed())
	if !bytes.Equal(derived[ed25519.SeedSize:], key[ed25519.SeedSize:]) {
		return pub, fmt.Errorf("receipts: %w: private key's public half does not match its seed", ErrKey)
	}
	copy(pub[:], key[ed25519.SeedSize:])
	return pub, nil
}

// Verify reports whether r is a well-formed receipt signed by r.Downloader.
// The error wraps ErrVersion, ErrTime, ErrKey (the downloader key is
// non-canonical or of small order, see CheckPublicKey, or equals the uploader
// key) or ErrBadSignature. Verify does not apply tracker policy.
func (r *Receipt) Verify() error {
	if err := r.check(); err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	if err := checkPublicKey(&r.Downloader); err != nil {
		return fmt.Errorf("receipts: downloader %w", err)
	}
	if r.Uploader == r.Downloader {
		return fmt.Errorf("receipts: %w: uploader and downloader keys are the same", ErrKey)
	}
	if !ed25519.Verify(r.Downloader[:], r.Message(), r.Signature[:]) {
		return fmt.Errorf("receipts: %w", ErrBadSignature)
	}
	return nil
}

// Message returns the exact bytes the downloader signs: Domain followed by the
// first 109 bytes of the binary form (every field but the signature). It is
// for signers that keep the key elsewhere and for cross-checking other
// implementations; Sign and Verify build it themselves.
func (r *Receipt) Message() []byte {
	m := make([]byte, msgLen)
	copy(m, Domain)
	r.putSigned(m[len(Domain):])
	return m
}

// check validates the fields that have a restricted range.
func (r *Receipt) check() error {
	if r.Version != Version1 {
		return fmt.Errorf("%w %d (want %d)", ErrVersion, r.Version, Version1)
	}
	if r.Time < 0 {
		return fmt.Errorf("%w: time %d is negative", ErrTime, r.Time)
	}
	return nil
}

// CheckPublicKey reports whether pub can sign receipts: 32 bytes, the
// canonical encoding of a curve point, and not a point of small order (for
// which anyone can forge signatures that crypto/ed25519 accepts). The tracker
// should apply it when a user registers a key; Verify applies it to the
// downloader key. The error wraps ErrKey.
func CheckPublicKey(pub []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("receipts: %w: public key is %d bytes, want %d", ErrKey, len(pub), ed25519.PublicKeySize)
	}
	if err := checkPublicKey((*[32]byte)(pub)); err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	return nil
}

// smallOrder holds the canonical encodings of the eight points of small order
// (orders 1, 2, 4 and 8), with the sign bit (bit 7 of byte 31) cleared: the
// check ignores it, which also catches "negative zero" encodings. The same
// list as libsodium's ge25519_has_small_order; TestSmallOrderKeysForgeable
// proves each entry is forgeable with crypto/ed25519.
var smallOrder = [...][32]byte{
	{0x00}, // y = 0: the two points of order 4
	{0x01}, // y = 1: the identity (order 1)
	{ // y = p-1: the point of order 2
		0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
	},
	{ // two points of order 8
		0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
	},
	{ // the other two points of order 8
		0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
	},
}

func checkPublicKey(pub *[32]byte) error {
	// Non-canonical: the 255-bit y coordinate is >= p = 2^255 - 19.
	if pub[31]&0x7f == 0x7f && pub[0] >= 0xed && allFF(pub[1:31]) {
		return fmt.Errorf("%w: key is not canonically encoded", ErrKey)
	}
	y := *pub
	y[31] &= 0x7f
	for i := range smallOrder {
		if y == smallOrder[i] {
			return fmt.Errorf("%w: key is a point of small order", ErrKey)
		}
	}
	return nil
}

func allFF(b []byte) bool {
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}

// putSigned writes the signed fields (offsets 0..108) to b[:109].
func (r *Receipt) putSigned(b []byte) {
	_ = b[offSignature-1]
	b[offVersion] = r.Version
	copy(b[offInfoHash:offUploader], r.InfoHash[:])
	copy(b[offUploader:offDownloader], r.Uploader[:])
	copy(b[offDownloader:offSession], r.Downloader[:])
	copy(b[offSession:offCumulative], r.Session[:])
	binary.BigEndian.PutUint64(b[offCumulative:], r.Cumulative)
	binary.BigEndian.PutUint64(b[offTime:], uint64(r.Time))
}

func (r *Receipt) appendBinary(b []byte) []byte {
	n := len(b)
	b = append(b, make([]byte, Size)...)
	r.putSigned(b[n:])
	copy(b[n+offSignature:], r.Signature[:])
	return b
}

// Encode returns the 173-byte binary form. It writes the fields as they are:
// a receipt that MarshalBinary refuses (unsupported version, negative time)
// encodes to bytes that Decode refuses.
func (r Receipt) Encode() []byte {
	return r.appendBinary(make([]byte, 0, Size))
}

// MarshalBinary returns the 173-byte binary form, or an error wrapping
// ErrVersion or ErrTime for a receipt that could not be decoded again.
func (r Receipt) MarshalBinary() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("receipts: %w", err)
	}
	return r.Encode(), nil
}

// UnmarshalBinary decodes exactly one binary receipt. The error wraps
// ErrVersion (checked first, so a future version of another size is named as
// such), ErrSize or ErrTime; r is unchanged on error. It does not verify the
// signature.
func (r *Receipt) UnmarshalBinary(b []byte) error {
	d, err := decode(b)
	if err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	*r = d
	return nil
}

// Decode is UnmarshalBinary returning the receipt.
func Decode(b []byte) (Receipt, error) {
	var r Receipt
	err := r.UnmarshalBinary(b)
	return r, err
}

func decode(b []byte) (Receipt, error) {
	var r Receipt
	if len(b) == 0 {
		return r, fmt.Errorf("%w: empty, want %d bytes", ErrSize, Size)
	}
	if b[offVersion] != Version1 {
		return r, fmt.Errorf("%w %d (want %d)", ErrVersion, b[offVersion], Version1)
	}
	if len(b) != Size {
		return r, fmt.Errorf("%w: got %d bytes, want %d", ErrSize, len(b), Size)
	}
	r.Version = b[offVersion]
	copy(r.InfoHash[:], b[offInfoHash:])
	copy(r.Uploader[:], b[offUploader:])
	copy(r.Downloader[:], b[offDownloader:])
	copy(r.Session[:], b[offSession:])
	r.Cumulative = binary.BigEndian.Uint64(b[offCumulative:])
	t := binary.BigEndian.Uint64(b[offTime:])
	if t >= 1<<63 {
		return Receipt{}, fmt.Errorf("%w: time field %#016x has its top bit set", ErrTime, t)
	}
	r.Time = int64(t)
	copy(r.Signature[:], b[offSignature:])
	return r, nil
}
