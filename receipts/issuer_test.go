package receipts

import (
	"crypto/ed25519"
	"sync"
	"testing"
	"time"
)

var testNow = time.Unix(1795000000, 0)

func TestIssuer(t *testing.T) {
	up := pubOf(testKey(2))
	is := NewIssuer(testKey(1), [20]byte{7}, up)
	other := NewIssuer(testKey(1), [20]byte{7}, up)
	if is.Session() == other.Session() {
		t.Fatal("two issuers drew the same session")
	}
	var prev Receipt
	for i, c := range []uint64{0, 0, 100, 100, 5000} {
		r, err := is.Receipt(c, testNow.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Verify(); err != nil {
			t.Fatal(err)
		}
		if r.Cumulative != c || r.Time != testNow.Unix()+int64(i) || r.Session != is.Session() ||
			r.InfoHash != [20]byte{7} || r.Uploader != up || r.Downloader != pubOf(testKey(1)) || r.Version != Version1 {
			t.Fatalf("%+v", r)
		}
		if i > 0 && r.Signature == prev.Signature {
			t.Fatal("same signature for a different receipt")
		}
		prev = r
	}
	_, err := is.Receipt(4999, testNow)
	wantErr(t, err, ErrDecreasing, "4999", "5000")
	// The refusal does not move the high-water mark.
	if _, err := is.Receipt(5000, testNow); err != nil {
		t.Fatal(err)
	}
	_, err = is.Receipt(0, testNow)
	wantErr(t, err, ErrDecreasing)
	// A new issuer (a new session) starts from zero again.
	if r, err := other.Receipt(0, testNow); err != nil || r.Session == is.Session() {
		t.Fatal(err)
	}
}

func TestIssuerErrors(t *testing.T) {
	up := pubOf(testKey(2))
	_, err := NewIssuer(testKey(1)[:10], [20]byte{}, up).Receipt(1, testNow)
	wantErr(t, err, ErrKey, "10 bytes")
	_, err = NewIssuer(nil, [20]byte{}, up).Receipt(1, testNow)
	wantErr(t, err, ErrKey)
	_, err = NewIssuer(testKey(2), [20]byte{}, up).Receipt(1, testNow)
	wantErr(t, err, ErrKey, "own key")
	_, err = NewIssuer(testKey(1), [20]byte{}, up).Receipt(1, time.Unix(-1, 0))
	wantErr(t, err, ErrTime)
}

func TestIssuerCopiesKey(t *testing.T) {
	key := append(ed25519.PrivateKey(nil), testKey(1)...)
	is := NewIssuer(key, [20]byte{}, pubOf(testKey(2)))
	clear(key)
	r, err := is.Receipt(1, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestIssuerConcurrent races goroutines on one issuer (run with -race): the
// high-water mark afterwards is the highest count it signed.
func TestIssuerConcurrent(t *testing.T) {
	is := NewIssuer(testKey(1), [20]byte{}, pubOf(testKey(2)))
	var mu sync.Mutex
	var hi uint64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				if r, err := is.Receipt(uint64(i*8+g), testNow); err == nil {
					mu.Lock()
					hi = max(hi, r.Cumulative)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if hi == 0 {
		t.Fatal("nothing above zero signed")
	}
	if _, err := is.Receipt(hi, testNow); err != nil {
		t.Fatalf("re-signing the high-water mark %d: %v", hi, err)
	}
	if _, err := is.Receipt(hi-1, testNow); err == nil {
		t.Fatal("signed below the high-water mark")
	}
}
