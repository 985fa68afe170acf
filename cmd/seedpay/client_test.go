package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/seedpay/seedpay/receipts"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"1": 1, "1048576": 1 << 20, "1MiB": 1 << 20, "512KiB": 512 << 10, "2 MB": 2e6, "1GiB": 1 << 30, "3M": 3 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "MiB", "1TiB", "-1", "1.5MiB", "99999999999999999999"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestTorrentSpecFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.bin")
	if err := os.WriteFile(file, bytes.Repeat([]byte("x"), 300<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := torrentSpec(clientOptions{}); err == nil {
		t.Error("no source accepted")
	}
	if _, _, err := torrentSpec(clientOptions{seedFile: file, magnet: "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"}); err == nil {
		t.Error("two sources accepted")
	}
	if _, _, err := torrentSpec(clientOptions{seedFile: file, dataDir: t.TempDir()}); err == nil {
		t.Error("--seed outside --data accepted")
	}
	out := filepath.Join(dir, "f.torrent")
	spec, data, err := torrentSpec(clientOptions{seedFile: file, torrentOut: out, announce: "http://t/announce/pk"})
	if err != nil || data != dir {
		t.Fatalf("seed: %v, data %q", err, data)
	}
	mi, err := metainfo.LoadFromFile(out)
	if err != nil {
		t.Fatal(err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.Private == nil || !*info.Private || info.PieceLength != 256<<10 || info.Length != 300<<10 || info.Name != "f.bin" ||
		mi.Announce != "http://t/announce/pk" || mi.HashInfoBytes() != spec.InfoHash {
		t.Fatalf("torrent %+v, info %+v", mi, info)
	}
	if _, _, err := torrentSpec(clientOptions{torrentFile: filepath.Join(dir, "missing.torrent")}); err == nil {
		t.Error("a missing .torrent accepted")
	}
	spec, _, err = torrentSpec(clientOptions{magnet: "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&tr=http://t/announce/pk"})
	if err != nil || firstAnnounce(spec) != "http://t/announce/pk" {
		t.Fatalf("magnet: %v, %+v", err, spec)
	}
}

// clientOutput collects a client's stdout.
type clientOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *clientOutput) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *clientOutput) events(ev string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["ev"] == ev {
			out = append(out, m)
		}
	}
	return out
}

// fakeTracker is an HTTP tracker for one torrent on loopback that also
// takes receipts and keys, accepting every valid receipt.
type fakeTracker struct {
	mu       sync.Mutex
	peers    map[string]string // peer id -> ip:port
	receipts map[string][]receipts.Receipt
	keys     map[string]string
}

func (f *fakeTracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kind, pk, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch kind {
	case "announce":
		q := r.URL.Query()
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		var compact []byte
		for id, addr := range f.peers {
			if id == q.Get("peer_id") {
				continue
			}
			ap, err := net.ResolveTCPAddr("tcp", addr)
			if err != nil {
				continue
			}
			compact = append(compact, ap.IP.To4()...)
			compact = binary.BigEndian.AppendUint16(compact, uint16(ap.Port))
		}
		if q.Get("event") != "stopped" {
			f.peers[q.Get("peer_id")] = net.JoinHostPort(host, q.Get("port"))
		}
		fmt.Fprintf(w, "d8:intervali60e5:peers%d:%se", len(compact), compact)
	case "receipts":
		b, _ := io.ReadAll(r.Body)
		rs, err := receipts.DecodeBatch(b, 1000)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		type result struct {
			Index    int    `json:"index"`
			Status   string `json:"status"`
			Reason   string `json:"reason,omitempty"`
			Credited uint64 `json:"credited_bytes,omitempty"`
		}
		res := struct {
			Accepted      int      `json:"accepted"`
			Rejected      int      `json:"rejected"`
			CreditedBytes uint64   `json:"credited_bytes"`
			Results       []result `json:"results"`
		}{}
		for i, rc := range rs {
			if err := rc.Verify(); err != nil {
				res.Rejected++
				res.Results = append(res.Results, result{Index: i, Status: "rejected", Reason: "bad_signature"})
				continue
			}
			f.receipts[pk] = append(f.receipts[pk], rc)
			res.Accepted++
			res.CreditedBytes += rc.Cumulative
			res.Results = append(res.Results, result{Index: i, Status: "accepted", Credited: rc.Cumulative})
		}
		_ = json.NewEncoder(w).Encode(res)
	case "keys":
		var req struct{ Key, Signature string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.keys[pk] = req.Key
		_ = json.NewEncoder(w).Encode(map[string]string{"user": pk, "key": req.Key})
	default:
		http.NotFound(w, r)
	}
}

// TestClientLoopback runs two clients in the process against a fake
// tracker on loopback: A seeds a file, B downloads it and signs receipts
// for A, and A submits them; both stop cleanly when their context ends.
func TestClientLoopback(t *testing.T) {
	ft := &fakeTracker{peers: map[string]string{}, receipts: map[string][]receipts.Receipt{}, keys: map[string]string{}}
	srv := httptest.NewServer(ft)
	defer srv.Close()
	dirA, dirB, work := t.TempDir(), t.TempDir(), t.TempDir()
	const size = 3<<20 + 12345
	payload := make([]byte, size)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirA, "payload.bin"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	torrentFile := filepath.Join(work, "p.torrent")
	common := clientOptions{listen: "127.0.0.1:0", receiptEvery: "256KiB", receiptInterval: 200 * time.Millisecond,
		submitEvery: 200 * time.Millisecond, statusEvery: 200 * time.Millisecond, linger: 300 * time.Millisecond, registerKey: true}
	run := func(name string, o clientOptions) (*clientOutput, context.CancelFunc, func() error) {
		out := &clientOutput{}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		done := make(chan struct{})
		var err error
		go func() { err = runClient(ctx, o, out, io.Discard); close(done) }()
		t.Cleanup(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("%s did not stop within 10s of its context", name)
			}
		})
		return out, cancel, func() error { <-done; return err }
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	oa := common
	oa.announce, oa.keyFile, oa.seedFile, oa.torrentOut = srv.URL+"/announce/pkA", filepath.Join(work, "a.key"), filepath.Join(dirA, "payload.bin"), torrentFile
	outA, cancelA, doneA := run("A", oa)
	wait("A's start line", func() bool { return len(outA.events("start")) == 1 })
	ob := common
	ob.announce, ob.keyFile, ob.torrentFile, ob.dataDir = srv.URL+"/announce/pkB", filepath.Join(work, "b.key"), torrentFile, dirB
	outB, cancelB, doneB := run("B", ob)
	wait("B's copy", func() bool {
		b, _ := os.ReadFile(filepath.Join(dirB, "payload.bin"))
		return bytes.Equal(b, payload)
	})
	pubA := outA.events("start")[0]["public_key"].(string)
	pubB := outB.events("start")[0]["public_key"].(string)
	wait("A's submission of B's receipt for the whole file", func() bool {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		rs := ft.receipts["pkA"]
		return len(rs) > 0 && rs[len(rs)-1].Cumulative == size
	})
	cancelB()
	if err := doneB(); err != nil {
		t.Fatalf("B: %v", err)
	}
	cancelA()
	if err := doneA(); err != nil {
		t.Fatalf("A: %v", err)
	}

	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.keys["pkA"] != pubA || ft.keys["pkB"] != pubB {
		t.Errorf("registered keys %v, want pkA %s and pkB %s", ft.keys, pubA, pubB)
	}
	if len(ft.receipts["pkB"]) != 0 {
		t.Errorf("B, which uploaded nothing, submitted %d receipts", len(ft.receipts["pkB"]))
	}
	var last uint64
	for _, r := range ft.receipts["pkA"] {
		if hex.EncodeToString(r.Uploader[:]) != pubA || hex.EncodeToString(r.Downloader[:]) != pubB || r.Cumulative <= last {
			t.Errorf("receipt %+v: want uploader A, downloader B, growing counts", r)
		}
		last = r.Cumulative
	}
	finals := outB.events("final")
	if len(finals) != 1 {
		t.Fatalf("B printed %d final lines", len(finals))
	}
	from := finals[0]["received_from"].([]any)
	if len(from) != 1 || from[0].(map[string]any)["key"] != pubA || from[0].(map[string]any)["received"] != float64(size) {
		t.Errorf("B's final received_from %v, want %d bytes from %s", from, size, pubA)
	}
	if res := outA.events("receipt_result"); len(res) == 0 || res[len(res)-1]["status"] != "accepted" {
		t.Errorf("A logged results %v", res)
	}
	if n := len(outA.events("final")); n != 1 {
		t.Errorf("A printed %d final lines", n)
	}
	t.Logf("A submitted %d receipts from B, the last for %s bytes", len(ft.receipts["pkA"]), strconv.FormatUint(last, 10))
}
