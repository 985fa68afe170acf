package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seedpay/seedpay/receipts"
)

func testKeys(t *testing.T, n int, tag byte) []ed25519.PrivateKey {
	t.Helper()
	keys := make([]ed25519.PrivateKey, n)
	for i := range keys {
		seed := sha1.Sum([]byte{tag, byte(i)})
		keys[i] = ed25519.NewKeyFromSeed(append(seed[:], make([]byte, 12)...))
	}
	return keys
}

func pub32(k ed25519.PrivateKey) (p [32]byte) {
	copy(p[:], k.Public().(ed25519.PublicKey))
	return p
}

type pairKey struct {
	up, down [32]byte
	session  [8]byte
}

// TestPlan: every receipt verifies with the SDK, names its batch's uploader
// and the torrent, and each (uploader, downloader) pair has one session whose
// cumulative count grows by step with every receipt, in send order.
func TestPlan(t *testing.T) {
	up, down := testKeys(t, 3, 'u'), testKeys(t, 5, 'd')
	ih := sha1.Sum([]byte("torrent"))
	const total, size, step = 1037, 50, 4096
	now := time.Unix(1795000000, 0)
	p, err := newPlan(up, down, ih, total, size, step, now)
	if err != nil {
		t.Fatal(err)
	}
	if p.receipts != total || len(p.batches) != 21 {
		t.Fatalf("plan: %d receipts in %d batches, want %d in 21", p.receipts, len(p.batches), total)
	}
	last := map[pairKey]uint64{}
	sessions := map[[2][32]byte][8]byte{}
	n := 0
	for g, b := range p.batches {
		if b.uploader != g%len(up) {
			t.Fatalf("batch %d: uploader %d, want %d", g, b.uploader, g%len(up))
		}
		want := min(size, total-g*size)
		rs, err := receipts.DecodeBatch(b.body, 1000)
		if err != nil {
			t.Fatalf("batch %d: %v", g, err)
		}
		if len(rs) != want || b.n != want {
			t.Fatalf("batch %d: %d receipts (n %d), want %d", g, len(rs), b.n, want)
		}
		for i, err := range receipts.VerifyBatch(rs) {
			if err != nil {
				t.Fatalf("batch %d receipt %d: %v", g, i, err)
			}
		}
		for i, r := range rs {
			n++
			if r.Uploader != pub32(up[b.uploader]) || r.InfoHash != ih || r.Time != now.Unix() {
				t.Fatalf("batch %d receipt %d: wrong uploader, torrent or time", g, i)
			}
			pair := [2][32]byte{r.Uploader, r.Downloader}
			if s, ok := sessions[pair]; ok && s != r.Session {
				t.Fatalf("batch %d receipt %d: a second session for one pair", g, i)
			}
			sessions[pair] = r.Session
			k := pairKey{r.Uploader, r.Downloader, r.Session}
			if r.Cumulative != last[k]+step {
				t.Fatalf("batch %d receipt %d: cumulative %d after %d, want +%d", g, i, r.Cumulative, last[k], step)
			}
			last[k] = r.Cumulative
		}
	}
	if n != total || len(sessions) != len(up)*len(down) {
		t.Fatalf("%d receipts over %d pairs, want %d over %d", n, len(sessions), total, len(up)*len(down))
	}
	seen := map[[8]byte]bool{}
	for _, s := range sessions {
		if seen[s] {
			t.Fatal("two pairs share a session id")
		}
		seen[s] = true
	}
}

// fakeSeedpay is a loopback stand-in for the tracker and its admin API with
// the rules receiptload has to satisfy: keys registered to users, both users
// announced the torrent from different IPs, signatures valid, the cumulative
// count of a (pair, session) growing.
type fakeSeedpay struct {
	t         *testing.T
	token     string
	dropFirst bool // forget each user's first announce, as full accounting buffers do
	seen      map[string]int

	mu        sync.Mutex
	torrents  map[[20]byte]int64
	users     map[string]string // passkey -> id
	keys      map[[32]byte]string
	announced map[string]string // user id -> IP
	last      map[pairKey]uint64
	batches   int
}

func newFake(t *testing.T) (*fakeSeedpay, string) {
	f := &fakeSeedpay{t: t, token: "secret", torrents: map[[20]byte]int64{}, users: map[string]string{},
		keys: map[[32]byte]string{}, announced: map[string]string{}, last: map[pairKey]uint64{}, seen: map[string]int{}}
	m := http.NewServeMux()
	m.HandleFunc("POST /api/v1/torrents", f.admin(f.createTorrent))
	m.HandleFunc("POST /api/v1/users", f.admin(f.createUser))
	m.HandleFunc("POST /api/v1/users/{id}/keys", f.admin(f.addKey))
	m.HandleFunc("GET /announce/{passkey}", f.announce)
	m.HandleFunc("POST /receipts/{passkey}", f.receipts)
	srv := httptest.NewServer(m) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeSeedpay) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		h(w, r)
	}
}

func (f *fakeSeedpay) createTorrent(w http.ResponseWriter, r *http.Request) {
	var req struct {
		InfoHash string `json:"info_hash"`
		Size     int64  `json:"size"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	raw, err := hex.DecodeString(req.InfoHash)
	if err != nil || len(raw) != 20 || req.Size <= 0 {
		http.Error(w, "bad torrent", http.StatusBadRequest)
		return
	}
	f.torrents[[20]byte(raw)] = req.Size
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"info_hash":"` + req.InfoHash + `"}`))
}

func (f *fakeSeedpay) createUser(w http.ResponseWriter, r *http.Request) {
	id := fmt.Sprintf("u%d", len(f.users))
	pk := fmt.Sprintf("pk%032d", len(f.users))
	f.users[pk] = id
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "passkey": pk, "name": "x"})
}

func (f *fakeSeedpay) addKey(w http.ResponseWriter, r *http.Request) {
	var req struct{ Key string }
	_ = json.NewDecoder(r.Body).Decode(&req)
	raw, err := hex.DecodeString(req.Key)
	if err != nil || len(raw) != 32 {
		http.Error(w, "bad key", http.StatusBadRequest)
		return
	}
	f.keys[[32]byte(raw)] = r.PathValue("id")
	w.WriteHeader(http.StatusCreated)
}

func (f *fakeSeedpay) announce(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.users[r.PathValue("passkey")]
	ih := r.URL.Query().Get("info_hash")
	if !ok || len(ih) != 20 || f.torrents[[20]byte([]byte(ih))] == 0 {
		_, _ = w.Write([]byte("d14:failure reason7:refusede"))
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if f.seen[id]++; !f.dropFirst || f.seen[id] > 1 {
		f.announced[id] = host
	}
	_, _ = w.Write([]byte("d8:intervali1800e5:peers0:e"))
}

func (f *fakeSeedpay) receipts(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	uploader, ok := f.users[r.PathValue("passkey")]
	body, _ := io.ReadAll(r.Body)
	rs, err := receipts.DecodeBatch(body, 1000)
	if !ok || err != nil {
		http.Error(w, "bad batch", http.StatusBadRequest)
		return
	}
	f.batches++
	res := receipts.BatchResult{Results: make([]receipts.Result, len(rs))}
	for i, verr := range receipts.VerifyBatch(rs) {
		rc := rs[i]
		k := pairKey{rc.Uploader, rc.Downloader, rc.Session}
		up, down := f.keys[rc.Uploader], f.keys[rc.Downloader]
		reason := ""
		switch {
		case verr != nil:
			reason = "bad_signature"
		case up != uploader:
			reason = "uploader_key_not_yours"
		case down == "" || down == up:
			reason = "unknown_downloader_key"
		case f.announced[up] == "" || f.announced[down] == "":
			reason = "not_announced"
		case f.announced[up] == f.announced[down]:
			reason = "shared_ip"
		case rc.Cumulative <= f.last[k]:
			reason = "not_monotonic"
		}
		if reason != "" {
			res.Results[i] = receipts.Result{Index: i, Status: "rejected", Reason: reason}
			res.Rejected++
			continue
		}
		res.Results[i] = receipts.Result{Index: i, Status: "accepted", Credited: rc.Cumulative - f.last[k]}
		res.CreditedBytes += rc.Cumulative - f.last[k]
		res.Accepted++
		f.last[k] = rc.Cumulative
	}
	_ = json.NewEncoder(w).Encode(res)
}

// TestRunAgainstFake runs the whole command (setup, probe, signing, timed
// phase) against the fake: every user announces from its own address and
// every receipt is accepted.
func TestRunAgainstFake(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("dropFirstAnnounce=%v", drop), func(t *testing.T) { testRunAgainstFake(t, drop) })
	}
}

// With dropFirst the probe has to announce the users again.
func testRunAgainstFake(t *testing.T, dropFirst bool) {
	f, base := newFake(t)
	f.dropFirst = dropFirst
	var out, errb bytes.Buffer
	code := run([]string{"-target", base, "-api", base, "-token", f.token, "-uploaders", "2", "-downloaders", "3",
		"-rate", "20000", "-batch", "40", "-receipts", "1000", "-duration", "20s"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	ips := map[string]bool{}
	for id, ip := range f.announced {
		if ips[ip] || !strings.HasPrefix(ip, "127.77.") {
			t.Fatalf("user %s announced from %s: want a 127.77.x.y of its own", id, ip)
		}
		ips[ip] = true
	}
	if len(ips) != 5 {
		t.Fatalf("%d users announced, want 5", len(ips))
	}
	s := out.String()
	for _, want := range []string{"READY receipts=1000 batches=25 ", "RESULT sent=1000 accepted=1000 rejected=0 ", "reasons=none statuses=none"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	// One probe batch per uploader; with dropFirst, more until the users
	// have announced again (once a second).
	if probes := f.batches - 25; probes < 2 || (!dropFirst && probes != 2) || (dropFirst && probes < 4) {
		t.Errorf("fake got %d probe batches", probes)
	}
}

// TestSendCountsRejections posts a plan twice: the replay is rejected
// (not_monotonic) receipt by receipt, counted by reason, and the run reports
// no acceptance for it.
func TestSendCountsRejections(t *testing.T) {
	f, base := newFake(t)
	up, down := testKeys(t, 2, 'u'), testKeys(t, 2, 'd')
	passkeys := []string{"pk-up0", "pk-up1"}
	for i, k := range up {
		f.users[passkeys[i]] = fmt.Sprintf("up%d", i)
		f.keys[pub32(k)] = fmt.Sprintf("up%d", i)
		f.announced[fmt.Sprintf("up%d", i)] = fmt.Sprintf("127.77.0.%d", i+1)
	}
	for i, k := range down {
		f.keys[pub32(k)] = fmt.Sprintf("down%d", i)
		f.announced[fmt.Sprintf("down%d", i)] = fmt.Sprintf("127.77.1.%d", i+1)
	}
	p, err := newPlan(up, down, [20]byte{1}, 200, 25, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(5*time.Second, 4, nil)
	first := send(t.Context(), c, base, passkeys, p, 1e5, 10*time.Second)
	if first.accepted != 200 || first.rejected != 0 || first.failed != 0 {
		t.Fatalf("first pass: %+v", first)
	}
	replay := send(t.Context(), c, base, passkeys, p, 1e5, 10*time.Second)
	if replay.accepted != 0 || replay.rejected != 200 || replay.reasons["not_monotonic"] != 200 {
		t.Fatalf("replay: accepted %d rejected %d reasons %v", replay.accepted, replay.rejected, replay.reasons)
	}
	var out bytes.Buffer
	replay.print(&out)
	if !strings.Contains(out.String(), "accepted=0 rejected=200 ") || !strings.Contains(out.String(), "reasons=not_monotonic:200 ") {
		t.Fatalf("replay output:\n%s", out.String())
	}
}

// TestSendKeepsRate: at 200 receipts/s for 300 ms, about 60 of 1000
// receipts go out and the rest are left unposted.
func TestSendKeepsRate(t *testing.T) {
	_, base := newFake(t)
	up, down := testKeys(t, 1, 'u'), testKeys(t, 1, 'd')
	p, err := newPlan(up, down, [20]byte{2}, 1000, 10, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res := send(t.Context(), newClient(5*time.Second, 2, nil), base, []string{"nobody"}, p, 200, 300*time.Millisecond)
	if res.sent < 40 || res.sent > 80 || res.unsentRcp != 1000-res.sent {
		t.Fatalf("posted %d receipts (unposted %d), want about 60", res.sent, res.unsentRcp)
	}
	if res.failed != res.batches { // the fake knows no passkey "nobody": 400
		t.Fatalf("%d of %d batches failed, want all", res.failed, res.batches)
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, u := range []string{"http://10.0.0.1:80", "http://example.com", "https://127.0.0.1:1", "127.0.0.1:80", ""} {
		if loopbackURL(u) == nil {
			t.Errorf("%q accepted", u)
		}
	}
	for _, u := range []string{"http://127.0.0.1:6969", "http://[::1]:1", "http://localhost:2"} {
		if err := loopbackURL(u); err != nil {
			t.Errorf("%q: %v", u, err)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"-target", "http://192.0.2.1:80", "-api", "http://127.0.0.1:1", "-token", "x"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d for a non-loopback target", code)
	}
}
