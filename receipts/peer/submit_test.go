package peer

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/seedpay/seedpay/receipts"
)

func TestEndpointsFromAnnounce(t *testing.T) {
	ep, err := EndpointsFromAnnounce("http://10.0.0.1:6969/announce/abcDEF123?x=1")
	if err != nil {
		t.Fatal(err)
	}
	if ep.Receipts != "http://10.0.0.1:6969/receipts/abcDEF123" || ep.Keys != "http://10.0.0.1:6969/keys/abcDEF123" || ep.Passkey != "abcDEF123" {
		t.Fatalf("%+v", ep)
	}
	ep, err = EndpointsFromAnnounce("https://t.example/tr/announce/pk")
	if err != nil || ep.Receipts != "https://t.example/tr/receipts/pk" {
		t.Fatalf("%+v %v", ep, err)
	}
	for _, bad := range []string{"udp://t:6969/pk", "http://t/announce", "http://t/announce/", "http://t/announce/a/b", "http://t/scrape/pk", "::"} {
		if _, err := EndpointsFromAnnounce(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// fakeIntake answers POST /receipts/pk like the tracker: accepted with the
// growth per (downloader, session), not_monotonic otherwise; a receipt
// whose cumulative is 13 gets "error" (retry); status makes it fail whole.
type fakeIntake struct {
	mu     sync.Mutex
	last   map[string]uint64
	status int
	posts  int
}

func (f *fakeIntake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts++
	if f.status != 0 {
		http.Error(w, `{"error":"ledger unavailable"}`, f.status)
		return
	}
	if r.URL.Path != "/receipts/pk" || r.Header.Get("Content-Type") != "application/octet-stream" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	b, _ := io.ReadAll(r.Body)
	rs, err := receipts.DecodeBatch(b, 1000)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var res BatchResult
	for i, rc := range rs {
		k := hex.EncodeToString(rc.Downloader[:]) + hex.EncodeToString(rc.Session[:])
		out := Result{Index: i, Status: "rejected"}
		switch {
		case rc.Verify() != nil:
			out.Reason = "bad_signature"
		case rc.Cumulative == 13:
			out.Reason = "error"
		case rc.Cumulative <= f.last[k]:
			out.Reason = "not_monotonic"
		default:
			out = Result{Index: i, Status: "accepted", Credited: rc.Cumulative - f.last[k]}
			f.last[k] = rc.Cumulative
			res.CreditedBytes += out.Credited
		}
		if out.Status == "accepted" {
			res.Accepted++
		} else {
			res.Rejected++
		}
		res.Results = append(res.Results, out)
	}
	_ = json.NewEncoder(w).Encode(res)
}

func TestSubmitter(t *testing.T) {
	fi := &fakeIntake{last: map[string]uint64{}}
	srv := httptest.NewServer(fi)
	defer srv.Close()
	up := pubOf(testKey(1))
	col := NewCollector(up)
	var answers []Result
	s := &Submitter{URL: srv.URL + "/receipts/pk", Collector: col, MaxBatch: 2, MaxAttempts: 2,
		OnResult: func(_ receipts.Receipt, r Result) { answers = append(answers, r) }}
	ctx := context.Background()
	if sum, err := s.Submit(ctx); err != nil || sum.Submitted != 0 || fi.posts != 0 {
		t.Fatalf("nothing pending: %+v %v, %d posts", sum, err, fi.posts)
	}
	for i, n := range []uint64{100, 13, 7} {
		if _, err := col.Add(testReceipt(t, testKey(byte(2+i)), up, n)); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := s.Submit(ctx)
	if err != nil || sum.Submitted != 3 || sum.Accepted != 2 || sum.Rejected != 1 || sum.CreditedBytes != 107 || fi.posts != 2 {
		t.Fatalf("first submission %+v %v (%d posts)", sum, err, fi.posts)
	}
	if p := col.Pending(0); len(p) != 1 || p[0].Cumulative != 13 {
		t.Fatalf("pending %+v, want the one answered \"error\"", p)
	}
	fi.status = http.StatusServiceUnavailable
	if _, err := s.Submit(ctx); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("a 503 was not an error: %v", err)
	}
	if p := col.Pending(0); len(p) != 1 {
		t.Fatalf("pending %d after a failed request", len(p))
	}
	fi.status = 0
	if sum, err := s.Submit(ctx); err != nil || sum.Rejected != 1 {
		t.Fatalf("retry: %+v %v", sum, err)
	}
	if p := col.Pending(0); len(p) != 0 {
		t.Fatalf("still pending after %d attempts: %+v", s.MaxAttempts, p)
	}
	if len(answers) != 4 {
		t.Fatalf("%d answers reported, want 4", len(answers))
	}
}

func TestPostChecksTheAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"accepted":1,"rejected":0,"credited_bytes":1,"results":[{"index":1,"status":"accepted"}]}`)
	}))
	defer srv.Close()
	r := testReceipt(t, testKey(2), pubOf(testKey(1)), 1)
	if _, err := Post(context.Background(), http.DefaultClient, srv.URL, []receipts.Receipt{r}); err == nil {
		t.Fatal("a result with the wrong index was accepted")
	}
	if _, err := Post(context.Background(), http.DefaultClient, srv.URL, []receipts.Receipt{r, r}); err == nil {
		t.Fatal("one result for two receipts was accepted")
	}
}

func TestRegisterKey(t *testing.T) {
	key := testKey(5)
	var got struct{ Key, Signature string }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/keys/pk" {
			http.Error(w, `{"error":"unknown passkey"}`, http.StatusForbidden)
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		pub, _ := hex.DecodeString(got.Key)
		sig, _ := hex.DecodeString(got.Signature)
		var p [32]byte
		copy(p[:], pub)
		if len(pub) != 32 || !ed25519.Verify(pub, receipts.RegistrationMessage(p, "pk"), sig) {
			http.Error(w, `{"error":"signature"}`, http.StatusUnprocessableEntity)
			return
		}
		_, _ = io.WriteString(w, `{"user":"u1","key":"`+got.Key+`"}`)
	}))
	defer srv.Close()
	ep, err := EndpointsFromAnnounce(srv.URL + "/announce/pk")
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterKey(context.Background(), http.DefaultClient, ep, key); err != nil {
		t.Fatal(err)
	}
	pub := pubOf(key)
	if got.Key != hex.EncodeToString(pub[:]) {
		t.Fatalf("registered %s", got.Key)
	}
	ep.Keys = srv.URL + "/keys/other"
	if err := RegisterKey(context.Background(), http.DefaultClient, ep, key); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a refusal was not an error: %v", err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	k1, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatal(created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", fi.Mode(), err)
	}
	k2, created, err := LoadOrCreateKey(path)
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("reloaded a different key (created %v, err %v)", created, err)
	}
	if err := os.WriteFile(path, []byte("not hex\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(path); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("a bad key file: %v", err)
	}
	if _, err := LoadKey(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadKey of a missing file: %v", err)
	}
}
