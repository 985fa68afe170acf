package receipts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// batch returns n valid receipts for distinct cumulative counts.
func batch(t testing.TB, n int) []Receipt {
	t.Helper()
	is := NewIssuer(testKey(1), [20]byte{1}, pubOf(testKey(2)))
	rs := make([]Receipt, n)
	for i := range rs {
		r, err := is.Receipt(uint64(i)*1000, testNow)
		if err != nil {
			t.Fatal(err)
		}
		rs[i] = r
	}
	return rs
}

func TestBinaryBatchRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		rs := batch(t, n)
		b := EncodeBatch(rs)
		if len(b) != n*Size {
			t.Fatalf("%d receipts: %d bytes", n, len(b))
		}
		got, err := DecodeBatch(b, n)
		if err != nil || len(got) != n {
			t.Fatalf("%d receipts: %d, %v", n, len(got), err)
		}
		for i := range rs {
			if got[i] != rs[i] {
				t.Fatalf("receipt %d differs", i)
			}
		}
	}
}

func TestDecodeBatchBounds(t *testing.T) {
	b := EncodeBatch(batch(t, 3))
	_, err := DecodeBatch(b, 2)
	wantErr(t, err, ErrTooMany, "3", "at most 2")
	_, err = DecodeBatch(b, 0)
	wantErr(t, err, ErrTooMany)
	_, err = DecodeBatch(b, -1)
	wantErr(t, err, ErrTooMany)
	if rs, err := DecodeBatch(nil, 0); err != nil || len(rs) != 0 {
		t.Fatalf("empty batch: %v %v", rs, err)
	}
	for _, n := range []int{1, Size - 1, Size + 1, 2*Size + 100, len(b) - 1} {
		_, err := DecodeBatch(b[:n], 10)
		wantErr(t, err, ErrSize, fmt.Sprint(n), "multiple of 173")
	}
	// A huge claimed count is refused before anything is allocated.
	big := make([]byte, 1000*Size)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		DecodeBatch(big, 10)
	}
	runtime.ReadMemStats(&after)
	if perCall := (after.TotalAlloc - before.TotalAlloc) / 10; perCall > 1000 {
		t.Fatalf("refusing an oversized batch allocated %d bytes", perCall)
	}
	// One bad receipt fails the batch and is named.
	b[Size] = 9
	_, err = DecodeBatch(b, 10)
	wantErr(t, err, ErrVersion, "receipt 1", "version 9")
	b[Size] = Version1
	b[2*Size+offTime] = 0xff
	_, err = DecodeBatch(b, 10)
	wantErr(t, err, ErrTime, "receipt 2")
}

func TestJSONBatchRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		rs := batch(t, n)
		b, err := EncodeJSONBatch(rs)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) || !bytes.HasPrefix(b, []byte(`{"receipts":[`)) || len(b) > 16+n*(MaxJSONSize+1) {
			t.Fatalf("%s", b)
		}
		got, err := DecodeJSONBatch(b, n)
		if err != nil || len(got) != n {
			t.Fatalf("%d receipts: %d, %v", n, len(got), err)
		}
		for i := range rs {
			if got[i] != rs[i] {
				t.Fatalf("receipt %d differs", i)
			}
		}
		// encoding/json reads the same thing.
		var v struct{ Receipts []Receipt }
		if err := json.Unmarshal(b, &v); err != nil || len(v.Receipts) != n {
			t.Fatal(err)
		}
	}
	if got, err := DecodeJSONBatch([]byte(` { "receipts" : [ ] } `), 0); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("%v %v", got, err)
	}
}

func TestEncodeJSONBatchRefuses(t *testing.T) {
	rs := batch(t, 3)
	rs[2].Time = -1
	_, err := EncodeJSONBatch(rs)
	wantErr(t, err, ErrTime, "receipt 2")
}

func TestDecodeJSONBatchMalformed(t *testing.T) {
	rs := batch(t, 3)
	good, _ := EncodeJSONBatch(rs)
	one, _ := json.Marshal(rs[0])
	g := string(good)
	cases := []struct {
		name, in string
		max      int
		class    error
		words    []string
	}{
		{"too many", g, 2, ErrTooMany, []string{"more than 2"}},
		{"empty, negative max", `{"receipts":[]}`, -1, ErrTooMany, []string{"at most -1"}},
		{"none allowed", g, 0, ErrTooMany, []string{"more than 0"}},
		{"empty input", ``, 5, ErrMalformed, []string{"object"}},
		{"null", `null`, 5, ErrMalformed, []string{"object"}},
		{"bare array", `[` + string(one) + `]`, 5, ErrMalformed, []string{"object"}},
		{"missing receipts", `{}`, 5, ErrMalformed, []string{`"receipts"`, "missing"}},
		{"receipts null", `{"receipts":null}`, 5, ErrMalformed, []string{"array", "null"}},
		{"receipts object", `{"receipts":{}}`, 5, ErrMalformed, []string{"array"}},
		{"unknown field", `{"receipts":[],"epoch":3}`, 5, ErrMalformed, []string{`"epoch"`, "unknown"}},
		{"duplicate receipts", `{"receipts":[],"receipts":[]}`, 5, ErrMalformed, []string{"duplicate"}},
		{"null element", `{"receipts":[null]}`, 5, ErrMalformed, []string{"receipt 0", "null"}},
		{"bad element", strings.Replace(g, `"version":1`, `"version":1,"x":0`, 1), 5, ErrMalformed, []string{"receipt 0", `"x"`}},
		{"bad third element", g[:strings.LastIndex(g, `"time":`)] + `"time":-4` + g[strings.LastIndex(g, `,"signature"`):], 5, ErrTime, []string{"receipt 2", `"time"`}},
		{"trailing", g + `x`, 5, ErrMalformed, []string{"after"}},
		{"unterminated", g[:len(g)-2], 5, ErrMalformed, []string{"unterminated"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs, err := DecodeJSONBatch([]byte(c.in), c.max)
			wantErr(t, err, c.class, c.words...)
			if rs != nil {
				t.Fatal("receipts returned with an error")
			}
		})
	}
}

func TestVerifyBatch(t *testing.T) {
	for _, n := range []int{0, 1, verifyChunk, verifyChunk + 1, 5*verifyChunk + 7} {
		rs := batch(t, n)
		bad := map[int]error{}
		for i := 0; i < n; i += 13 {
			switch i % 3 {
			case 0:
				rs[i].Cumulative++
				bad[i] = ErrBadSignature
			case 1:
				rs[i].Version = 2
				bad[i] = ErrVersion
			case 2:
				rs[i].Uploader = rs[i].Downloader
				bad[i] = ErrKey
			}
		}
		errs := VerifyBatch(rs)
		if len(errs) != n {
			t.Fatalf("%d receipts, %d results", n, len(errs))
		}
		for i, err := range errs {
			if want, isBad := bad[i]; isBad != (err != nil) || (isBad && !errors.Is(err, want)) {
				t.Fatalf("n=%d receipt %d: %v, want %v", n, i, err, bad[i])
			}
		}
	}
}

func TestVerifyBatchOneProc(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	rs := batch(t, 3*verifyChunk)
	rs[40].Signature[5]++
	errs := VerifyBatch(rs)
	for i, err := range errs {
		if (i == 40) != (err != nil) {
			t.Fatalf("receipt %d: %v", i, err)
		}
	}
}
