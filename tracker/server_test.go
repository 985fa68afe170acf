package tracker

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chihaya/chihaya/bittorrent"
	"github.com/chihaya/chihaya/frontend/http/bencode"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedpay/seedpay/middleware/auth"
)

var ihX = bittorrent.InfoHashFromString("xxxxxxxxxxxxxxxxxxxx")

func peerID(i int) string { return fmt.Sprintf("-SP0001-%012d", i) }

func compactPeers(t *testing.T, d bencode.Dict, key string, size int) []string {
	t.Helper()
	raw, _ := d[key].(string)
	if len(raw)%size != 0 {
		t.Fatalf("%s has %d bytes, not a multiple of %d", key, len(raw), size)
	}
	var out []string
	for p := raw; len(p) > 0; p = p[size:] {
		out = append(out, net.JoinHostPort(net.IP(p[:size-2]).String(), fmt.Sprint(binary.BigEndian.Uint16([]byte(p[size-2:size])))))
	}
	return out
}

func TestHTTPAnnounce(t *testing.T) {
	s := newStack(t, nil)
	alice, bob := s.user(t, "alice"), s.user(t, "bob")
	s.torrent(t, ihX)

	// Alone in the swarm: no peers at all, never itself.
	d := s.httpAnnounce(t, "127.0.0.1", announce{passkey: alice.Passkey, peerID: peerID(1), ih: ihX, port: 1001, left: 0, numwant: -1, compact: true})
	if fr, ok := d["failure reason"]; ok {
		t.Fatalf("failure: %v", fr)
	}
	if got := compactPeers(t, d, "peers", 6); len(got) != 0 {
		t.Fatalf("lone seeder got peers %v, want none (never itself)", got)
	}
	if d["interval"] != int64(60) || d["min interval"] != int64(30) {
		t.Fatalf("intervals %v/%v, want 60/30 from config", d["interval"], d["min interval"])
	}

	// Bob leeches: he sees Alice, not himself; counts include both.
	d = s.httpAnnounce(t, "127.0.0.1", announce{passkey: bob.Passkey, peerID: peerID(2), ih: ihX, port: 1002, left: 10, numwant: -1, compact: true})
	if got := compactPeers(t, d, "peers", 6); len(got) != 1 || got[0] != "127.0.0.1:1001" {
		t.Fatalf("leecher got peers %v, want [127.0.0.1:1001]", got)
	}
	if d["complete"] != int64(1) {
		t.Fatalf("complete %v, want 1", d["complete"])
	}

	// Bob again, non-compact: dictionaries with peer id, ip, port.
	d = s.httpAnnounce(t, "127.0.0.1", announce{passkey: bob.Passkey, peerID: peerID(2), ih: ihX, port: 1002, left: 10, numwant: -1})
	list, ok := d["peers"].(bencode.List)
	if !ok || len(list) != 1 {
		t.Fatalf("non-compact peers %#v, want one dictionary", d["peers"])
	}
	p := list[0].(bencode.Dict)
	if p["peer id"] != peerID(1) || p["ip"] != "127.0.0.1" || p["port"] != int64(1001) {
		t.Fatalf("peer dict %v", p)
	}

	// Bob completes: as a seeder he is still in the leecher set when the
	// response is built; he must not get himself back.
	d = s.httpAnnounce(t, "127.0.0.1", announce{passkey: bob.Passkey, peerID: peerID(2), ih: ihX, port: 1002, left: 0, event: "completed", numwant: -1, compact: true})
	for _, got := range compactPeers(t, d, "peers", 6) {
		if got == "127.0.0.1:1002" {
			t.Fatalf("requester in its own peer list: %v", got)
		}
	}
	s.sync(t)
	if e, _ := s.cache.Torrent(ihX); e.Completed() != 1 {
		t.Fatalf("completed %d, want 1", e.Completed())
	}
}

func TestNumwantCapped(t *testing.T) {
	s := newStack(t, nil) // max_numwant 20, default 10
	u := s.user(t, "u")
	s.torrent(t, ihX)
	for i := range 30 {
		s.httpAnnounce(t, "127.0.0.1", announce{passkey: u.Passkey, peerID: peerID(i), ih: ihX, port: uint16(2000 + i), left: 0, numwant: 0, compact: true})
	}
	leecher := announce{passkey: u.Passkey, peerID: peerID(99), ih: ihX, port: 3000, left: 5, compact: true}
	for _, tc := range []struct{ numwant, want int }{{-1, 10}, {5, 5}, {500, 20}} {
		leecher.numwant = tc.numwant
		d := s.httpAnnounce(t, "127.0.0.1", leecher)
		if got := len(compactPeers(t, d, "peers", 6)); got != tc.want {
			t.Errorf("numwant %d: got %d peers, want %d", tc.numwant, got, tc.want)
		}
	}
}

func TestHTTPIPv6Peers6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatalf("this test needs IPv6 on loopback: %v", err)
	}
	ln.Close()
	s := newStack(t, func(c *Config, _ *auth.Config) { c.HTTPAddr = "[::]:0" })
	u := s.user(t, "u")
	s.torrent(t, ihX)
	s.httpAnnounce(t, "::1", announce{passkey: u.Passkey, peerID: peerID(1), ih: ihX, port: 4001, numwant: -1, compact: true})
	d := s.httpAnnounce(t, "::1", announce{passkey: u.Passkey, peerID: peerID(2), ih: ihX, port: 4002, left: 1, numwant: -1, compact: true})
	if got := compactPeers(t, d, "peers6", 18); len(got) != 1 || got[0] != "[::1]:4001" {
		t.Fatalf("peers6 %v, want [[::1]:4001]", got)
	}
	if got := compactPeers(t, d, "peers", 6); len(got) != 0 {
		t.Fatalf("IPv4 peers %v for an IPv6 swarm", got)
	}
}

func TestHTTPRefusals(t *testing.T) {
	s := newStack(t, func(_ *Config, a *auth.Config) { a.ClientWhitelist = []string{"-SP"} })
	u := s.user(t, "u")
	banned := s.user(t, "banned")
	if _, err := s.store.SetBanned(context.Background(), banned.ID, true); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	s.torrent(t, ihX)
	// Someone is in the swarm, so a refusal that leaked peers would show.
	s.httpAnnounce(t, "127.0.0.1", announce{passkey: u.Passkey, peerID: peerID(1), ih: ihX, port: 5001, numwant: -1, compact: true})

	base := "http://" + s.srv.HTTPAddr().String()
	ok := announce{passkey: u.Passkey, peerID: peerID(2), ih: ihX, port: 5002, left: 1, numwant: -1, compact: true}
	tests := []struct {
		name, path, want string
	}{
		{"unknown passkey", "/announce/" + strings.Repeat("z", 32) + "?" + ok.query(), auth.ErrUnknownPasskey.Error()},
		{"no passkey", "/announce?" + ok.query(), errMissingPasskey.Error()},
		{"banned", "/announce/" + banned.Passkey + "?" + ok.query(), auth.ErrBanned.Error()},
		{"unregistered torrent", "/announce/" + u.Passkey + "?" + (func() announce { a := ok; a.ih = bittorrent.InfoHashFromString("yyyyyyyyyyyyyyyyyyyy"); return a }()).query(), auth.ErrUnregistered.Error()},
		{"client not whitelisted", "/announce/" + u.Passkey + "?" + (func() announce { a := ok; a.peerID = "-XX0001-000000000000"; return a }()).query(), auth.ErrClientNotAllowed.Error()},
		{"no info_hash", "/announce/" + u.Passkey + "?peer_id=" + peerID(2) + "&port=1&left=0&uploaded=0&downloaded=0", "no info_hash parameter supplied"},
		{"bad port", "/announce/" + u.Passkey + "?" + strings.Replace(ok.query(), "port=5002", "port=99999", 1), "failed to parse parameter: port"},
		{"scrape unknown passkey", "/scrape/" + strings.Repeat("z", 32) + "?info_hash=" + string(ihX[:]), auth.ErrUnknownPasskey.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := httpGet(t, base+tt.path)
			want := fmt.Sprintf("d14:failure reason%d:%se", len(tt.want), tt.want)
			if string(body) != want {
				t.Fatalf("got %q, want exactly %q (failure reason and nothing else)", body, want)
			}
		})
	}
	for reason, want := range map[string]float64{"unknown_passkey": 2, "missing_passkey": 0, "banned": 1, "unregistered_torrent": 1, "client_not_allowed": 1} {
		if got := counterValue(t, s.reg, "seedpay_auth_rejected_total", "reason", reason); got != want {
			t.Errorf("seedpay_auth_rejected_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if got := settledCounter(t, s.reg, "seedpay_tracker_requests_total", "result", "failure", float64(len(tests))); got != float64(len(tests)) {
		t.Errorf("failure results counted %v, want %d", got, len(tests))
	}
}

func TestHTTPScrapeDownloaded(t *testing.T) {
	s := newStack(t, nil)
	u := s.user(t, "u")
	s.torrent(t, ihX)
	s.httpAnnounce(t, "127.0.0.1", announce{passkey: u.Passkey, peerID: peerID(1), ih: ihX, port: 1, left: 0, event: "completed", numwant: -1, compact: true})
	s.httpAnnounce(t, "127.0.0.1", announce{passkey: u.Passkey, peerID: peerID(2), ih: ihX, port: 2, left: 9, numwant: -1, compact: true})
	other := bittorrent.InfoHashFromString("\x00xxxxxxxxxxxxxxxxxxx")
	body := httpGet(t, "http://"+s.srv.HTTPAddr().String()+"/scrape/"+u.Passkey+"?info_hash="+url.QueryEscape(string(ihX[:]))+"&info_hash="+url.QueryEscape(string(other[:])))
	want := "d5:filesd" +
		"20:" + string(other[:]) + "d8:completei0e10:downloadedi0e10:incompletei0ee" +
		"20:" + string(ihX[:]) + "d8:completei1e10:downloadedi1e10:incompletei1ee" +
		"ee"
	if string(body) != want {
		t.Fatalf("scrape\n got %q\nwant %q", body, want)
	}
}

// settledCounter is counterValue once it reaches want, or after 2 s. The
// frontends count a request after writing its answer, so the last one may
// still be counting when its answer is read.
func settledCounter(t *testing.T, g prometheus.Gatherer, name, label, value string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := counterValue(t, g, name, label, value)
		if got >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// counterValue sums the counters named name whose label has the given value.
func counterValue(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
