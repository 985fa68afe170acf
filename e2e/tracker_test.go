package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// tracker is a running `seedpay serve` child process.
type tracker struct {
	t        *testing.T
	proc     *proc
	httpAddr string // host:port of the HTTP announce frontend
	udpAddr  string // host:port of the UDP frontend
	apiAddr  string // host:port of the admin API
	token    string
	client   *http.Client
}

// startTracker runs `seedpay serve` in dev mode with its HTTP and UDP
// frontends on host (same free port for both) and the admin API on
// 127.0.0.1, and waits until /readyz answers 200. extraArgs go to `serve`
// after the address flags (e.g. "--config", path; the flags still set the
// addresses and SEEDPAY_ADMIN_TOKEN the token).
func startTracker(t *testing.T, host string, extraArgs ...string) *tracker {
	t.Helper()
	port := freeTCPUDPPort(t, host)
	tr := &tracker{
		t:        t,
		httpAddr: net.JoinHostPort(host, strconv.Itoa(port)),
		udpAddr:  net.JoinHostPort(host, strconv.Itoa(port)),
		apiAddr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(freeTCPUDPPort(t, "127.0.0.1"))),
		token:    randHex(t, 16),
		client:   &http.Client{Timeout: 5 * time.Second},
	}
	argv := []string{seedpayBin, "serve", "--http", tr.httpAddr, "--udp", tr.udpAddr, "--api", tr.apiAddr}
	tr.proc = startProc(t, "seedpay", []string{"SEEDPAY_ADMIN_TOKEN=" + tr.token}, append(argv, extraArgs...)...)
	ready := waitFor(20*time.Second, 100*time.Millisecond, func() bool {
		if tr.proc.exited() {
			return false
		}
		resp, err := tr.client.Get("http://" + tr.apiAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !ready {
		t.Fatalf("seedpay serve not ready within 20s (process %s)", tr.proc.exitString())
	}
	return tr
}

// httpAnnounceURL is the HTTP announce URL for a passkey.
func (tr *tracker) httpAnnounceURL(passkey string) string {
	return "http://" + tr.httpAddr + "/announce/" + passkey
}

// udpAnnounceURL is the UDP announce URL for a passkey (BEP 41 URL data).
func (tr *tracker) udpAnnounceURL(passkey string) string {
	return "udp://" + tr.udpAddr + "/" + passkey
}

// api performs an admin API call; in and out are JSON (either may be nil).
func (tr *tracker) api(method, path string, in any, wantStatus int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+tr.apiAddr+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tr.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := tr.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != wantStatus {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, wantStatus, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decoding %q: %v", method, path, b, err)
		}
	}
	return nil
}

// createUser registers a user and returns the passkey.
func (tr *tracker) createUser(name string) string {
	tr.t.Helper()
	var u struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Passkey string `json:"passkey"`
	}
	if err := tr.api("POST", "/api/v1/users", map[string]string{"name": name}, http.StatusCreated, &u); err != nil {
		tr.t.Fatalf("create user %q: %v", name, err)
	}
	if len(u.Passkey) != 32 {
		tr.t.Fatalf("create user %q: passkey %q is not 32 characters", name, u.Passkey)
	}
	return u.Passkey
}

// registerTorrent registers an info hash (40 lowercase hex) with the tracker.
func (tr *tracker) registerTorrent(infoHash string, size int64, name string) {
	tr.t.Helper()
	in := map[string]any{"info_hash": infoHash, "size": size, "name": name}
	if err := tr.api("POST", "/api/v1/torrents", in, http.StatusCreated, nil); err != nil {
		tr.t.Fatalf("register torrent %s: %v", infoHash, err)
	}
}

type torrentStats struct {
	InfoHash  string `json:"info_hash"`
	Seeders   int    `json:"seeders"`
	Leechers  int    `json:"leechers"`
	Completed int    `json:"completed"`
}

// stats fetches the tracker's view of a torrent.
func (tr *tracker) stats(infoHash string) (torrentStats, error) {
	var s torrentStats
	err := tr.api("GET", "/api/v1/torrents/"+infoHash, nil, http.StatusOK, &s)
	return s, err
}

// waitStats polls the torrent's stats until cond holds (at most timeout)
// and fails the test otherwise.
func (tr *tracker) waitStats(infoHash, what string, timeout time.Duration, cond func(torrentStats) bool) torrentStats {
	tr.t.Helper()
	var last torrentStats
	var lastErr error
	ok := waitFor(timeout, 200*time.Millisecond, func() bool {
		last, lastErr = tr.stats(infoHash)
		return lastErr == nil && cond(last)
	})
	if !ok {
		tr.t.Fatalf("tracker stats for %s: %s not reached within %v (last %+v, err %v)",
			infoHash, what, timeout, last, lastErr)
	}
	return last
}

// freeTCPUDPPort returns a port that is free for both TCP and UDP on host.
func freeTCPUDPPort(t *testing.T, host string) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatalf("listen on %s: %v", host, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	t.Fatalf("no port free for both TCP and UDP on %s", host)
	return 0
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
