package receipts

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The seed corpora are testdata/fuzz/<Name>/, built from the test vectors;
// `go test` runs them as ordinary tests. Fuzz with e.g.
//
//	go test ./receipts -run '^$' -fuzz '^FuzzDecode$' -fuzztime 30s

// FuzzDecode: Decode never panics; an accepted input is re-encoded to the
// same bytes and survives the JSON form; Verify never panics.
func FuzzDecode(f *testing.F) {
	f.Add(signed(f).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(b)
		if err != nil {
			return
		}
		if enc := r.Encode(); !bytes.Equal(enc, b) {
			t.Fatalf("re-encoded %x, input %x", enc, b)
		}
		j, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("MarshalJSON of a decoded receipt: %v", err)
		}
		var back Receipt
		if err := back.UnmarshalJSON(j); err != nil || back != r {
			t.Fatalf("JSON round trip: %v", err)
		}
		_ = r.Verify()
	})
}

// FuzzUnmarshalJSON: UnmarshalJSON never panics and agrees with
// encoding/json; an accepted receipt survives both forms.
func FuzzUnmarshalJSON(f *testing.F) {
	j, _ := json.Marshal(signed(f))
	f.Add(j)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Receipt
		err := r.UnmarshalJSON(b)
		var viaJSON Receipt
		errJSON := json.Unmarshal(b, &viaJSON)
		if (err == nil) != (errJSON == nil) || viaJSON != r {
			t.Fatalf("UnmarshalJSON: %v; json.Unmarshal: %v", err, errJSON)
		}
		if err != nil {
			return
		}
		out, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of an accepted receipt: %v", err)
		}
		var back Receipt
		if err := back.UnmarshalJSON(out); err != nil || back != r {
			t.Fatalf("JSON round trip of %s: %v", out, err)
		}
		if d, err := Decode(r.Encode()); err != nil || d != r {
			t.Fatalf("binary round trip: %v", err)
		}
	})
}

// FuzzDecodeBatch: DecodeBatch never panics and never returns more than max
// receipts; an accepted batch re-encodes to the input.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(EncodeBatch([]Receipt{signed(f), signed(f)}), 2)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		rs, err := DecodeBatch(b, max)
		if err != nil {
			if rs != nil {
				t.Fatal("receipts returned with an error")
			}
			return
		}
		if len(rs) > max || len(rs)*Size != len(b) {
			t.Fatalf("%d receipts from %d bytes, max %d", len(rs), len(b), max)
		}
		if enc := EncodeBatch(rs); !bytes.Equal(enc, b) {
			t.Fatal("re-encoded batch differs")
		}
	})
}

// FuzzDecodeJSONBatch: DecodeJSONBatch never panics and never returns more
// than max receipts; an accepted batch survives a round trip.
func FuzzDecodeJSONBatch(f *testing.F) {
	b, _ := EncodeJSONBatch([]Receipt{signed(f), signed(f)})
	f.Add(b, 2)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		rs, err := DecodeJSONBatch(b, max)
		if err != nil {
			if rs != nil {
				t.Fatal("receipts returned with an error")
			}
			return
		}
		if len(rs) > max {
			t.Fatalf("%d receipts, max %d", len(rs), max)
		}
		out, err := EncodeJSONBatch(rs)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeJSONBatch(out, max)
		if err != nil || len(back) != len(rs) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range rs {
			if back[i] != rs[i] {
				t.Fatalf("receipt %d differs after a round trip", i)
			}
		}
	})
}
