package peer

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seedpay/seedpay/receipts"
)

func testKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func testReceipt(t testing.TB, down ed25519.PrivateKey, up [32]byte, cumulative uint64) receipts.Receipt {
	t.Helper()
	r, err := receipts.NewIssuer(down, [20]byte{1, 2, 3}, up).Receipt(cumulative, time.Unix(1795000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHelloEncoding(t *testing.T) {
	var pub [32]byte
	for i := range pub {
		pub[i] = byte(i)
	}
	got := EncodeHello(pub)
	want := "d3:key32:" + string(pub[:]) + "8:msg_typei0e1:vi1ee"
	if string(got) != want {
		t.Fatalf("hello %q, want %q", got, want)
	}
	m, err := DecodeMessage(got)
	if err != nil || m.Type != MsgHello || m.Key != pub || m.Version != 1 {
		t.Fatalf("decoded %+v, %v", m, err)
	}
}

func TestReceiptMessageRoundTrip(t *testing.T) {
	up := pubOf(testKey(2))
	r := testReceipt(t, testKey(1), up, 123456789)
	b := EncodeReceipt(r)
	if want := "d8:msg_typei1e7:receipt173:"; !strings.HasPrefix(string(b), want) || len(b) != len(want)+173+1 {
		t.Fatalf("receipt message %q", b)
	}
	m, err := DecodeMessage(b)
	if err != nil || m.Type != MsgReceipt || m.Receipt != r {
		t.Fatalf("decoded %+v, %v", m, err)
	}
	if err := m.Receipt.Verify(); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeMessageRejects(t *testing.T) {
	key := string(bytes.Repeat([]byte{7}, 32))
	rc := string(testReceipt(t, testKey(1), pubOf(testKey(2)), 5).Encode())
	s := func(v string) string { return strconv.Itoa(len(v)) + ":" + v }
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"empty", "", ErrMalformed},
		{"list", "le", ErrMalformed},
		{"no msg_type", "d3:key" + s(key) + "e", ErrMalformed},
		{"msg_type string", "d8:msg_type1:0e", ErrMalformed},
		{"short key", "d3:key3:abc8:msg_typei0ee", ErrMalformed},
		{"key integer", "d3:keyi5e8:msg_typei0ee", ErrMalformed},
		{"v string", "d3:key" + s(key) + "8:msg_typei0e1:v1:1e", ErrMalformed},
		{"receipt missing", "d8:msg_typei1ee", ErrMalformed},
		{"receipt short", "d8:msg_typei1e7:receipt" + s(rc[:172]) + "e", ErrMalformed},
		{"receipt bad version", "d8:msg_typei1e7:receipt" + s("\x02"+rc[1:]) + "e", ErrMalformed},
		{"trailing data", "d8:msg_typei0e3:key" + s(key) + "ex", ErrMalformed},
		{"duplicate key", "d8:msg_typei0e8:msg_typei0e3:key" + s(key) + "e", ErrMalformed},
		{"unterminated", "d8:msg_typei0e3:key" + s(key), ErrMalformed},
		{"string overrun", "d8:msg_typei0e3:key99:abce", ErrMalformed},
		{"leading zero length", "d08:msg_typei0ee", ErrMalformed},
		{"non-canonical int", "d8:msg_typei00ee", ErrMalformed},
		{"too deep", "d1:x" + strings.Repeat("l", 20) + strings.Repeat("e", 20) + "8:msg_typei0e3:key" + s(key) + "e", ErrMalformed},
		{"too large", "d1:x" + s(strings.Repeat("y", MaxMessageSize)) + "e", ErrMalformed},
		{"unknown type", "d8:msg_typei7ee", ErrUnknownType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeMessage([]byte(tc.in)); !errors.Is(err, tc.want) {
				t.Fatalf("DecodeMessage(%q): %v, want %v", tc.in, err, tc.want)
			}
		})
	}
	// Unknown keys, lists and dictionaries are skipped.
	in := "d5:extrald1:ai1eee3:key" + s(key) + "8:msg_typei0e1:zi-3ee"
	if m, err := DecodeMessage([]byte(in)); err != nil || m.Type != MsgHello || string(m.Key[:]) != key {
		t.Fatalf("with unknown keys: %+v, %v", m, err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(EncodeHello(pubOf(testKey(3))))
	f.Add(EncodeReceipt(testReceipt(f, testKey(1), pubOf(testKey(2)), 9)))
	f.Add([]byte("d8:msg_typei9e1:xl1:ad1:bi2eeee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		var again []byte
		switch m.Type {
		case MsgHello:
			again = EncodeHello(m.Key)
		case MsgReceipt:
			again = EncodeReceipt(m.Receipt)
		default:
			t.Fatalf("decoded unknown type %d without an error", m.Type)
		}
		m2, err := DecodeMessage(again)
		if err != nil || m2.Type != m.Type || m2.Key != m.Key || m2.Receipt != m.Receipt {
			t.Fatalf("re-encoded %q decodes to %+v, %v; want %+v", again, m2, err, m)
		}
	})
}

func pubOf(k ed25519.PrivateKey) [32]byte {
	var p [32]byte
	copy(p[:], k.Public().(ed25519.PublicKey))
	return p
}
