package receipts

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/internal/redistest"
	"github.com/seedpay/seedpay/middleware/registry"
	"github.com/seedpay/seedpay/receipts"
	"github.com/seedpay/seedpay/rewards"
)

type noSwarms struct{}

func (noSwarms) ScrapeSwarm(bittorrent.InfoHash, bittorrent.AddressFamily) bittorrent.Scrape {
	return bittorrent.Scrape{Complete: 1}
}

type env struct {
	t        testing.TB
	rdb      *redis.Client
	cache    *registry.Cache
	intake   *Intake
	keys     *rewards.ReceiptKeys
	mux      *http.ServeMux
	up, down registry.User
	upKey    ed25519.PrivateKey
	downKey  ed25519.PrivateKey
	ih       bittorrent.InfoHash
	now      time.Time
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	store := registry.NewStore(rdb)
	cache, _ := registry.NewCache(store, registry.CacheConfig{}, zap.NewNop())
	cfg := rewards.DefaultConfig()
	cfg.Epoch = rewards.EpochConfig{Length: time.Minute, Grace: 10 * time.Second, Retention: time.Hour}
	cfg.Scoring.MaxGap = 2 * time.Minute
	cfg.Receipts.MaxBatch = 4
	ledger, err := rewards.NewReceiptLedger(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys := rewards.NewReceiptKeys(rdb)
	in, err := New(cache, noSwarms{}, keys, ledger, rdb, cfg.Receipts, 2, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, rdb: rdb, cache: cache, intake: in, keys: keys, mux: http.NewServeMux(), now: time.Now()}
	e.mux.Handle("POST /receipts/{passkey}", in)
	e.mux.Handle("POST /keys/{passkey}", NewKeyRegistration(cache, keys, zap.NewNop()))
	e.up, _ = store.CreateUser(ctx, "uploader")
	e.down, _ = store.CreateUser(ctx, "downloader")
	copy(e.ih[:], "receipt-torrent-0001")
	_, _ = store.PutTorrent(ctx, registry.Torrent{InfoHash: e.ih, Size: 1 << 30, Name: "t"})
	_ = cache.Reload(ctx)
	_, e.upKey, _ = ed25519.GenerateKey(nil)
	_, e.downKey, _ = ed25519.GenerateKey(nil)
	e.register(e.up, e.upKey)
	e.register(e.down, e.downKey)
	// Both announced the torrent this epoch, from different addresses.
	n := cfg.Epoch.EpochOf(e.now.Unix())
	ihHex := hex.EncodeToString(e.ih[:])
	rdb.SAdd(ctx, rewards.KeyTorrentIPs(e.up.ID, ihHex, n), "10.0.0.1")
	rdb.SAdd(ctx, rewards.KeyTorrentIPs(e.down.ID, ihHex, n), "10.0.0.2")
	return e
}

func (e *env) register(u registry.User, key ed25519.PrivateKey) {
	e.t.Helper()
	var pub [32]byte
	copy(pub[:], key.Public().(ed25519.PublicKey))
	if err := e.keys.Register(context.Background(), u.ID, pub); err != nil {
		e.t.Fatal(err)
	}
}

func pubOf(k ed25519.PrivateKey) (p [32]byte) { copy(p[:], k.Public().(ed25519.PublicKey)); return }

// receipt is signed by the downloader for bytes received from the uploader.
func (e *env) receipt(cumulative uint64, mutate func(*receipts.Receipt)) receipts.Receipt {
	r := receipts.Receipt{InfoHash: e.ih, Uploader: pubOf(e.upKey), Cumulative: cumulative, Time: e.now.Unix()}
	r.Session[0] = 1
	if mutate != nil {
		mutate(&r)
	}
	if err := receipts.Sign(&r, e.downKey); err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) post(passkey, contentType string, body []byte) (*httptest.ResponseRecorder, BatchResult) {
	req := httptest.NewRequest(http.MethodPost, "/receipts/"+passkey, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	var res BatchResult
	_ = json.Unmarshal(rec.Body.Bytes(), &res)
	return rec, res
}

func TestIntakeCreditsAndRejectsByReason(t *testing.T) {
	e := newEnv(t)
	_, stranger, _ := ed25519.GenerateKey(nil)
	batch := []receipts.Receipt{
		e.receipt(100<<20, nil), // credited
		e.receipt(50<<20, nil),  // replay: not monotonic
		func() receipts.Receipt { r := e.receipt(200<<20, nil); r.Signature[0] ^= 1; return r }(),
		e.receipt(300<<20, func(r *receipts.Receipt) { r.Uploader = pubOf(stranger) }),
	}
	rec, res := e.post(e.up.Passkey, "application/octet-stream", receipts.EncodeBatch(batch))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	want := []string{"", rewards.ReasonNotMonotonic, ReasonBadSignature, ReasonUnknownUploaderKey}
	for i, r := range res.Results {
		if r.Reason != want[i] {
			t.Errorf("receipt %d: %+v, want reason %q", i, r, want[i])
		}
	}
	if res.Accepted != 1 || res.Rejected != 3 || res.CreditedBytes != 100<<20 || res.Results[0].Credited != 100<<20 {
		t.Fatalf("batch %+v", res)
	}
	stats, _ := e.rdb.HGetAll(context.Background(), rewards.KeyReceiptStats).Result()
	if stats["accepted"] != "1" || stats[rewards.ReasonNotMonotonic] != "1" || stats[ReasonBadSignature] != "1" || stats["credited_bytes"] != "104857600" {
		t.Fatalf("stats %v", stats)
	}
	if testutil.ToFloat64(e.intake.results.WithLabelValues(ReasonUnknownUploaderKey)) != 1 {
		t.Fatal("metric by reason not counted")
	}
}

func TestIntakeOwnershipRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	third, _ := registry.NewStore(e.rdb).CreateUser(ctx, "third")
	_ = e.cache.Reload(ctx)
	_, thirdKey, _ := ed25519.GenerateKey(nil)
	e.register(third, thirdKey)
	_, unregistered, _ := ed25519.GenerateKey(nil)
	var otherIH bittorrent.InfoHash
	tests := []struct {
		name    string
		passkey string
		r       receipts.Receipt
		want    string
	}{
		{"submitted by someone else than the uploader", third.Passkey, e.receipt(1, nil), ReasonNotYourKey},
		{"downloader key unregistered", e.up.Passkey, receipts.Receipt{}, ""},
		{"self-dealing: both keys of one user", e.up.Passkey, e.receipt(1, nil), ""},
		{"unregistered torrent", e.up.Passkey, e.receipt(1, func(r *receipts.Receipt) { r.InfoHash = otherIH }), ReasonUnknownTorrent},
	}
	// Downloader signs with a key nobody registered.
	tests[1].r = receipts.Receipt{InfoHash: e.ih, Uploader: pubOf(e.upKey), Cumulative: 1, Time: e.now.Unix()}
	_ = receipts.Sign(&tests[1].r, unregistered)
	tests[1].want = ReasonUnknownDownloaderKey
	// The uploader signs a receipt for itself with a second key of its own.
	_, second, _ := ed25519.GenerateKey(nil)
	e.register(e.up, second)
	tests[2].r = receipts.Receipt{InfoHash: e.ih, Uploader: pubOf(e.upKey), Cumulative: 1, Time: e.now.Unix()}
	_ = receipts.Sign(&tests[2].r, second)
	tests[2].want = ReasonSelfDealing
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, res := e.post(tt.passkey, "application/octet-stream", tt.r.Encode())
			if len(res.Results) != 1 || res.Results[0].Reason != tt.want {
				t.Fatalf("%+v, want %q", res, tt.want)
			}
		})
	}
}

func TestIntakeJSONAndBadInput(t *testing.T) {
	e := newEnv(t)
	body, _ := receipts.EncodeJSONBatch([]receipts.Receipt{e.receipt(10<<20, nil)})
	rec, res := e.post(e.up.Passkey, "application/json; charset=utf-8", body)
	if rec.Code != 200 || res.Accepted != 1 {
		t.Fatalf("JSON batch: %d %s", rec.Code, rec.Body)
	}
	tests := []struct {
		name, passkey, ct string
		body              []byte
		status            int
		want              string
	}{
		{"unknown passkey", strings.Repeat("x", 32), "application/octet-stream", nil, 403, "unknown passkey"},
		{"not a whole receipt", e.up.Passkey, "application/octet-stream", make([]byte, 100), 400, "multiple of"},
		{"too many receipts", e.up.Passkey, "application/octet-stream", make([]byte, 5*receipts.Size), 400, "too many"},
		{"oversized body", e.up.Passkey, "application/octet-stream", make([]byte, 1<<20), 413, "too large"},
		{"bad JSON", e.up.Passkey, "application/json", []byte(`{"receipts":[{"version":1}]}`), 400, ""},
		{"unknown JSON field", e.up.Passkey, "application/json", []byte(`{"receipts":[],"extra":1}`), 400, ""},
	}
	for _, tt := range tests {
		rec, _ := e.post(tt.passkey, tt.ct, tt.body)
		if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) || !strings.Contains(rec.Body.String(), `"error"`) {
			t.Errorf("%s: %d %s, want %d containing %q", tt.name, rec.Code, rec.Body, tt.status, tt.want)
		}
	}
}

func TestSelfServiceKeyRegistration(t *testing.T) {
	e := newEnv(t)
	_, key, _ := ed25519.GenerateKey(nil)
	pub, sig, _ := receipts.SignRegistration(key, e.down.Passkey)
	send := func(passkey, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/keys/"+passkey, strings.NewReader(body))
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, req)
		return rec
	}
	good := `{"key":"` + hex.EncodeToString(pub[:]) + `","signature":"` + hex.EncodeToString(sig) + `"}`
	if rec := send(e.down.Passkey, good); rec.Code != 200 {
		t.Fatalf("register: %d %s", rec.Code, rec.Body)
	}
	owners, _ := e.keys.Owners(context.Background(), [][32]byte{pub})
	if owners[0] != e.down.ID {
		t.Fatalf("owner %q", owners[0])
	}
	for _, tc := range []struct {
		name, passkey, body string
		status              int
	}{
		{"replayed for another account", e.up.Passkey, good, 422},
		{"another account's key", e.up.Passkey, func() string {
			_, s, _ := receipts.SignRegistration(key, e.up.Passkey)
			return `{"key":"` + hex.EncodeToString(pub[:]) + `","signature":"` + hex.EncodeToString(s) + `"}`
		}(), 409},
		{"bad key hex", e.down.Passkey, `{"key":"zz","signature":"` + hex.EncodeToString(sig) + `"}`, 400},
		{"unknown field", e.down.Passkey, `{"key":"aa","sig":"bb"}`, 400},
		{"unknown passkey", strings.Repeat("q", 32), good, 403},
	} {
		if rec := send(tc.passkey, tc.body); rec.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.status)
		}
	}
}

func TestIntakeLedgerDownCountsNothing(t *testing.T) {
	e := newEnv(t)
	cfg := rewards.DefaultConfig()
	cfg.Epoch = rewards.EpochConfig{Length: time.Minute, Grace: 10 * time.Second, Retention: time.Hour}
	cfg.Scoring.MaxGap = 2 * time.Minute
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	deadLedger, err := rewards.NewReceiptLedger(dead, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.intake.ledger = deadLedger
	rec, _ := e.post(e.up.Passkey, "application/octet-stream", e.receipt(1<<20, nil).Encode())
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("ledger down: %d %s, want 503", rec.Code, rec.Body)
	}
	if n := testutil.ToFloat64(e.intake.results.WithLabelValues("accepted")); n != 0 {
		t.Fatalf("accepted counted %v while nothing was credited", n)
	}
	if stats, _ := e.rdb.HGetAll(context.Background(), rewards.KeyReceiptStats).Result(); len(stats) != 0 {
		t.Fatalf("stats %v while nothing was credited", stats)
	}
}
