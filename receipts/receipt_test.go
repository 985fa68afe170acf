package receipts

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func testKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func pubOf(k ed25519.PrivateKey) (p [32]byte) {
	copy(p[:], k.Public().(ed25519.PublicKey))
	return p
}

// signed returns a valid receipt from testKey(1) for bytes uploaded by
// testKey(2): the "typical" test vector.
func signed(t testing.TB) Receipt {
	t.Helper()
	r := Receipt{
		InfoHash:   [20]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67},
		Uploader:   pubOf(testKey(2)),
		Session:    [8]byte{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x08},
		Cumulative: 1 << 30,
		Time:       1795000000,
	}
	if err := Sign(&r, testKey(1)); err != nil {
		t.Fatal(err)
	}
	return r
}

// wantErr fails unless err wraps class and its text contains every word.
func wantErr(t *testing.T, err, class error, words ...string) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Fatalf("error %v, want one wrapping %q", err, class)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not mention %q", err, w)
		}
	}
}

func TestLayout(t *testing.T) {
	if Size != 1+20+32+32+8+8+8+64 || msgLen != 128 || len(Domain) != 19 {
		t.Fatalf("Size %d, msgLen %d, Domain %d bytes", Size, msgLen, len(Domain))
	}
	r := signed(t)
	b := r.Encode()
	if len(b) != Size || b[0] != Version1 ||
		!bytes.Equal(b[1:21], r.InfoHash[:]) || !bytes.Equal(b[21:53], r.Uploader[:]) ||
		!bytes.Equal(b[53:85], r.Downloader[:]) || !bytes.Equal(b[85:93], r.Session[:]) ||
		binary.BigEndian.Uint64(b[93:]) != r.Cumulative || binary.BigEndian.Uint64(b[101:]) != uint64(r.Time) ||
		!bytes.Equal(b[109:], r.Signature[:]) {
		t.Fatalf("layout mismatch: %x", b)
	}
	if m := r.Message(); !bytes.Equal(m, append([]byte(Domain), b[:109]...)) {
		t.Fatalf("message %x", m)
	}
}

func TestSignSetsDownloaderAndVersion(t *testing.T) {
	r := signed(t)
	if r.Downloader != pubOf(testKey(1)) || r.Version != Version1 {
		t.Fatalf("downloader %x version %d", r.Downloader, r.Version)
	}
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
	// A caller-supplied Downloader is overwritten by the key's.
	r2 := r
	r2.Downloader = pubOf(testKey(9))
	if err := Sign(&r2, testKey(1)); err != nil || r2 != r {
		t.Fatalf("re-sign: %v, %+v", err, r2)
	}
}

func TestSignErrors(t *testing.T) {
	base := signed(t)
	cases := []struct {
		name  string
		edit  func(*Receipt)
		key   ed25519.PrivateKey
		class error
		words []string
	}{
		{"short key", nil, testKey(1)[:32], ErrKey, []string{"32 bytes", "64"}},
		{"nil key", nil, nil, ErrKey, []string{"0 bytes"}},
		{"mismatched key halves", nil, append(append(ed25519.PrivateKey{}, testKey(1)[:32]...), testKey(3)[32:]...), ErrKey, []string{"does not match"}},
		{"version 2", func(r *Receipt) { r.Version = 2 }, testKey(1), ErrVersion, []string{"2"}},
		{"negative time", func(r *Receipt) { r.Time = -1 }, testKey(1), ErrTime, []string{"negative"}},
		{"self receipt", func(r *Receipt) { r.Uploader = pubOf(testKey(1)) }, testKey(1), ErrKey, []string{"uploader"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := base
			if c.edit != nil {
				c.edit(&r)
			}
			before := r
			wantErr(t, Sign(&r, c.key), c.class, c.words...)
			if r != before {
				t.Fatal("Sign changed the receipt on error")
			}
		})
	}
}

// TestTamper changes every byte position of a signed receipt in turn: no
// change verifies.
func TestTamper(t *testing.T) {
	b := signed(t).Encode()
	for i := range b {
		for _, bit := range []byte{0x01, 0x80} {
			c := append([]byte(nil), b...)
			c[i] ^= bit
			r, err := Decode(c)
			if err == nil {
				err = r.Verify()
			}
			if err == nil {
				t.Fatalf("byte %d bit %#x flipped: still verifies", i, bit)
			}
			switch {
			case i == 0:
				wantErr(t, err, ErrVersion)
			case i == offTime && bit == 0x80:
				wantErr(t, err, ErrTime)
			case errors.Is(err, ErrKey): // a flipped downloader key may be non-canonical
				if i < offDownloader || i >= offSession {
					t.Fatalf("byte %d: %v", i, err)
				}
			default:
				wantErr(t, err, ErrBadSignature)
			}
		}
	}
}

func TestTamperFields(t *testing.T) {
	edits := map[string]func(*Receipt){
		"info_hash":  func(r *Receipt) { r.InfoHash[19]++ },
		"uploader":   func(r *Receipt) { r.Uploader = pubOf(testKey(3)) },
		"downloader": func(r *Receipt) { r.Downloader = pubOf(testKey(3)) },
		"session":    func(r *Receipt) { r.Session[0]++ },
		"cumulative": func(r *Receipt) { r.Cumulative++ },
		"time":       func(r *Receipt) { r.Time++ },
		"signature":  func(r *Receipt) { r.Signature[0]++ },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			r := signed(t)
			edit(&r)
			wantErr(t, r.Verify(), ErrBadSignature)
		})
	}
	r := signed(t)
	r.Version = 0
	wantErr(t, r.Verify(), ErrVersion, "0")
	r = signed(t)
	r.Time = -5
	wantErr(t, r.Verify(), ErrTime)
}

func TestRoundTripBinary(t *testing.T) {
	r := signed(t)
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var d Receipt
	if err := d.UnmarshalBinary(b); err != nil || d != r {
		t.Fatalf("%+v %v", d, err)
	}
	if d2, err := Decode(r.Encode()); err != nil || d2 != r {
		t.Fatalf("%+v %v", d2, err)
	}
	// Extremes of every numeric field.
	r.Cumulative, r.Time = ^uint64(0), 1<<63-1
	if d, err := Decode(r.Encode()); err != nil || d != r {
		t.Fatalf("%+v %v", d, err)
	}
}

func TestMarshalBinaryRefuses(t *testing.T) {
	r := signed(t)
	r.Version = 3
	_, err := r.MarshalBinary()
	wantErr(t, err, ErrVersion, "3")
	r = signed(t)
	r.Time = -1
	_, err = r.MarshalBinary()
	wantErr(t, err, ErrTime)
}

func TestDecodeMalformed(t *testing.T) {
	good := signed(t).Encode()
	mod := func(f func([]byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name  string
		b     []byte
		class error
		words []string
	}{
		{"nil", nil, ErrSize, []string{"empty", "173"}},
		{"one byte", []byte{1}, ErrSize, []string{"got 1 bytes", "173"}},
		{"short", good[:Size-1], ErrSize, []string{"172", "173"}},
		{"long", append(append([]byte(nil), good...), 0), ErrSize, []string{"174", "173"}},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0; return b }), ErrVersion, []string{"version 0"}},
		{"version 2 of another size", []byte{2, 0, 0}, ErrVersion, []string{"version 2"}},
		{"version 255", mod(func(b []byte) []byte { b[0] = 255; return b }), ErrVersion, []string{"255"}},
		{"time top bit", mod(func(b []byte) []byte { b[offTime] = 0x80; return b }), ErrTime, []string{"top bit"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := signed(t)
			before := r
			wantErr(t, r.UnmarshalBinary(c.b), c.class, c.words...)
			if r != before {
				t.Fatal("UnmarshalBinary changed the receipt on error")
			}
			if _, err := Decode(c.b); !errors.Is(err, c.class) {
				t.Fatalf("Decode: %v", err)
			}
		})
	}
}

// TestDecodeDoesNotAlias checks the decoded receipt owns its bytes.
func TestDecodeDoesNotAlias(t *testing.T) {
	b := signed(t).Encode()
	r, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
}

// smallOrderPoints are the canonical encodings of the eight points of small
// order, sign bit included.
func smallOrderPoints() [][32]byte {
	var pts [][32]byte
	for _, p := range smallOrder {
		pts = append(pts, p)
		if p != [32]byte{0x01} && p != smallOrder[2] { // x = 0 for the identity and the order-2 point: no negative twin
			p[31] |= 0x80
			pts = append(pts, p)
		}
	}
	return pts
}

// TestSmallOrderKeysForgeable shows why Verify checks the key: for every point
// of small order, a signature that crypto/ed25519 accepts on a receipt can be
// made without any private key. Verify rejects them all. It also proves the
// constants in smallOrder are right.
func TestSmallOrderKeysForgeable(t *testing.T) {
	pts := smallOrderPoints()
	if len(pts) != 8 {
		t.Fatalf("%d small-order points, want 8", len(pts))
	}
	for _, a := range pts {
		r := signed(t)
		r.Downloader = a
		forged := false
		// With S = 0 the verifier recomputes R as [k](-A), a small-order point
		// depending on the message; try every candidate R over a few messages.
		for attempt := 0; attempt < 64 && !forged; attempt++ {
			r.Session[0] = byte(attempt)
			for _, cand := range pts {
				r.Signature = [64]byte{}
				copy(r.Signature[:], cand[:])
				if ed25519.Verify(a[:], r.Message(), r.Signature[:]) {
					forged = true
					break
				}
			}
		}
		if !forged {
			t.Fatalf("no forgery found for key %x: not a small-order point?", a)
		}
		wantErr(t, r.Verify(), ErrKey, "small order")
		wantErr(t, CheckPublicKey(a[:]), ErrKey, "small order")
	}
}

func TestCheckPublicKey(t *testing.T) {
	if err := CheckPublicKey(testKey(1).Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, CheckPublicKey(make([]byte, 31)), ErrKey, "31 bytes")
	wantErr(t, CheckPublicKey(nil), ErrKey, "0 bytes")
	// Every y >= p (2^255-19 .. 2^255-1), with either sign bit, is non-canonical.
	for y0 := 0xed; y0 <= 0xff; y0++ {
		for _, top := range []byte{0x7f, 0xff} {
			k := bytes.Repeat([]byte{0xff}, 32)
			k[0], k[31] = byte(y0), top
			wantErr(t, CheckPublicKey(k), ErrKey, "canonical")
		}
	}
	// p-1 is canonical but of order 2; p-2 is canonical and not of small order
	// (whether it is on the curve is not CheckPublicKey's business).
	k := bytes.Repeat([]byte{0xff}, 32)
	k[0], k[31] = 0xec, 0x7f
	wantErr(t, CheckPublicKey(k), ErrKey, "small order")
	k[0] = 0xeb
	if err := CheckPublicKey(k); err != nil {
		t.Fatalf("p-2: %v", err)
	}
}

func TestVerifyRejectsSameKeys(t *testing.T) {
	r := signed(t)
	r.Uploader = r.Downloader
	copy(r.Signature[:], ed25519.Sign(testKey(1), r.Message()))
	wantErr(t, r.Verify(), ErrKey, "same")
}
