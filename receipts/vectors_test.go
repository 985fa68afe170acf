package receipts

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
)

// vectorFile is testdata/vectors.json, the test vectors of docs/receipts.md.
type vectorFile struct {
	Comment string          `json:"comment"`
	Domain  string          `json:"domain_hex"`
	Size    int             `json:"size"`
	Valid   []validVector   `json:"valid"`
	Invalid []invalidVector `json:"invalid"`
}

type validVector struct {
	Name           string `json:"name"`
	DownloaderSeed string `json:"downloader_seed"`
	UploaderSeed   string `json:"uploader_seed"`
	InfoHash       string `json:"info_hash"`
	Session        string `json:"session"`
	Cumulative     string `json:"cumulative"`
	Time           int64  `json:"time"`
	// Expected outputs.
	Uploader   string `json:"uploader"`
	Downloader string `json:"downloader"`
	Message    string `json:"message"`
	Signature  string `json:"signature"`
	Binary     string `json:"binary"`
	JSON       string `json:"json"`
}

// An invalid vector has either a binary or a JSON form, and the error class
// it must be rejected with (by decoding, or else by verification).
type invalidVector struct {
	Name   string `json:"name"`
	Binary string `json:"binary,omitempty"`
	JSON   string `json:"json,omitempty"`
	Error  string `json:"error"`
	Field  string `json:"field,omitempty"`
}

var errorClasses = map[string]error{
	"size":      ErrSize,
	"version":   ErrVersion,
	"time":      ErrTime,
	"key":       ErrKey,
	"signature": ErrBadSignature,
	"malformed": ErrMalformed,
}

func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	return f
}

func mustHex(t testing.TB, s string, n int) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || (n >= 0 && len(b) != n) {
		t.Fatalf("bad hex %q (want %d bytes): %v", s, n, err)
	}
	return b
}

// TestVectors recomputes every committed vector from its inputs: any change to
// the encoding, the signed message or the JSON form fails here.
func TestVectors(t *testing.T) {
	f := loadVectors(t)
	if got := hex.EncodeToString([]byte(Domain)); f.Domain != got || f.Size != Size {
		t.Fatalf("vectors are for domain %s size %d; code has %s size %d", f.Domain, f.Size, got, Size)
	}
	if len(f.Valid) < 3 || len(f.Invalid) < 10 {
		t.Fatalf("vector file lost vectors: %d valid, %d invalid", len(f.Valid), len(f.Invalid))
	}
	for _, v := range f.Valid {
		t.Run(v.Name, func(t *testing.T) {
			dkey := ed25519.NewKeyFromSeed(mustHex(t, v.DownloaderSeed, 32))
			ukey := ed25519.NewKeyFromSeed(mustHex(t, v.UploaderSeed, 32))
			cum, err := strconv.ParseUint(v.Cumulative, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			r := Receipt{Cumulative: cum, Time: v.Time}
			copy(r.InfoHash[:], mustHex(t, v.InfoHash, 20))
			copy(r.Session[:], mustHex(t, v.Session, 8))
			copy(r.Uploader[:], ukey.Public().(ed25519.PublicKey))
			if err := Sign(&r, dkey); err != nil {
				t.Fatal(err)
			}
			check := func(what, got, want string) {
				t.Helper()
				if got != want {
					t.Errorf("%s:\n got  %s\n want %s", what, got, want)
				}
			}
			check("uploader", hex.EncodeToString(r.Uploader[:]), v.Uploader)
			check("downloader", hex.EncodeToString(r.Downloader[:]), v.Downloader)
			check("message", hex.EncodeToString(r.Message()), v.Message)
			check("signature", hex.EncodeToString(r.Signature[:]), v.Signature)
			check("binary", hex.EncodeToString(r.Encode()), v.Binary)
			j, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			check("json", string(j), v.JSON)
			if err := r.Verify(); err != nil {
				t.Errorf("Verify: %v", err)
			}
			// The expected forms decode back to the same receipt.
			d, err := Decode(mustHex(t, v.Binary, Size))
			if err != nil || d != r {
				t.Errorf("Decode(binary) = %+v, %v", d, err)
			}
			var dj Receipt
			if err := json.Unmarshal([]byte(v.JSON), &dj); err != nil || dj != r {
				t.Errorf("Unmarshal(json) = %+v, %v", dj, err)
			}
			// The message is the domain and the binary form's first 109 bytes.
			want := append([]byte(Domain), mustHex(t, v.Binary, Size)[:109]...)
			if !bytes.Equal(r.Message(), want) || !ed25519.Verify(dkey.Public().(ed25519.PublicKey), want, r.Signature[:]) {
				t.Error("signature is not a plain ed25519 signature over domain || binary[:109]")
			}
		})
	}
	for _, v := range f.Invalid {
		t.Run(v.Name, func(t *testing.T) {
			class, ok := errorClasses[v.Error]
			if !ok {
				t.Fatalf("unknown error class %q", v.Error)
			}
			var r Receipt
			var err error
			switch {
			case v.Binary != "":
				err = r.UnmarshalBinary(mustHex(t, v.Binary, -1))
			case v.JSON != "":
				err = r.UnmarshalJSON([]byte(v.JSON))
			default:
				t.Fatal("vector has neither binary nor json")
			}
			if err == nil {
				err = r.Verify()
			}
			if !errors.Is(err, class) {
				t.Fatalf("error %v, want class %q", err, v.Error)
			}
			if v.Field != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != v.Field {
					t.Fatalf("error %v does not name field %q", err, v.Field)
				}
			}
		})
	}
}
