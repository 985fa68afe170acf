package receipts

import (
	"encoding/json"
	"runtime"
	"testing"
)

func BenchmarkSign(b *testing.B) {
	r := signed(b)
	key := testKey(1)
	for b.Loop() {
		r.Cumulative++
		if err := Sign(&r, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssuerReceipt(b *testing.B) {
	is := NewIssuer(testKey(1), [20]byte{}, pubOf(testKey(2)))
	c := uint64(0)
	for b.Loop() {
		c++
		if _, err := is.Receipt(c, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	r := signed(b)
	for b.Loop() {
		if err := r.Verify(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyBatch verifies 1024 receipts per op and reports receipts per
// second in all and per core (GOMAXPROCS).
func BenchmarkVerifyBatch(b *testing.B) {
	rs := batch(b, 1024)
	procs := runtime.GOMAXPROCS(0)
	for b.Loop() {
		for _, err := range VerifyBatch(rs) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	perSec := float64(b.N*len(rs)) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "receipts/s")
	b.ReportMetric(perSec/float64(procs), "receipts/s/core")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkDecode(b *testing.B) {
	enc := signed(b).Encode()
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	enc := EncodeBatch(batch(b, 1024))
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := DecodeBatch(enc, 1024); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalJSON(b *testing.B) {
	j, _ := json.Marshal(signed(b))
	var r Receipt
	for b.Loop() {
		if err := r.UnmarshalJSON(j); err != nil {
			b.Fatal(err)
		}
	}
}
