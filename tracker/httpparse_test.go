package tracker

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/chihaya/chihaya/bittorrent"
	httpfront "github.com/chihaya/chihaya/frontend/http"
)

var diffOpts = httpfront.ParseOptions{RealIPHeader: "X-Real-Ip", MaxNumWant: 50, DefaultNumWant: 30, MaxScrapeInfoHashes: 3}

func ourOpts() httpParseOptions {
	return httpParseOptions{MaxNumWant: diffOpts.MaxNumWant, DefaultNumWant: diffOpts.DefaultNumWant, MaxScrapeInfoHashes: diffOpts.MaxScrapeInfoHashes}
}

// chihayaRequest is what net/http hands chihaya's parser for target.
func chihayaRequest(target, remote, realIP string) *http.Request {
	r := &http.Request{Method: http.MethodGet, RequestURI: target, RemoteAddr: remote, Header: http.Header{}}
	if realIP != "" {
		r.Header.Set(diffOpts.RealIPHeader, realIP)
	}
	return r
}

// diffAnnounce checks our announce parser against chihaya's on one input.
func diffAnnounce(t *testing.T, target, remote, realIP string) {
	t.Helper()
	want, wantErr := httpfront.ParseAnnounce(chihayaRequest(target, remote, realIP), diffOpts)
	var got bittorrent.AnnounceRequest
	q := httpQuery{hashes: make([]bittorrent.InfoHash, 0, 2)}
	var ip [16]byte
	opts := ourOpts()
	err := parseHTTPAnnounce(target, remoteAddr(remote), realIP, &opts, &got, &q, &ip)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("%q (real IP %q): error %v, chihaya %v", target, realIP, err, wantErr)
	}
	if err != nil {
		return
	}
	if got.Event != want.Event || got.EventProvided != want.EventProvided || got.Compact != want.Compact ||
		got.InfoHash != want.InfoHash || got.Peer.ID != want.Peer.ID || got.Peer.Port != want.Peer.Port ||
		!got.Peer.IP.Equal(want.Peer.IP.IP) || got.Peer.IP.AddressFamily != want.Peer.IP.AddressFamily ||
		got.Left != want.Left || got.Downloaded != want.Downloaded || got.Uploaded != want.Uploaded ||
		got.NumWant != want.NumWant || got.NumWantProvided != want.NumWantProvided || got.IPProvided != want.IPProvided {
		t.Fatalf("%q:\n got %+v\nwant %+v", target, got, *want)
	}
	diffParams(t, target, got.Params, want.Params)
}

func diffParams(t *testing.T, target string, got, want bittorrent.Params) {
	t.Helper()
	if got.RawPath() != want.RawPath() || got.RawQuery() != want.RawQuery() {
		t.Fatalf("%q: path/query %q %q, chihaya %q %q", target, got.RawPath(), got.RawQuery(), want.RawPath(), want.RawQuery())
	}
	for _, k := range append(queryKeys[:], "passkey", "key", "info_hash", "x") {
		gv, gok := got.String(k)
		wv, wok := want.String(k)
		if gv != wv || gok != wok {
			t.Fatalf("%q: String(%q) = %q %v, chihaya %q %v", target, k, gv, gok, wv, wok)
		}
	}
}

func diffScrape(t *testing.T, target string) {
	t.Helper()
	want, wantErr := httpfront.ParseScrape(chihayaRequest(target, "10.0.0.1:1", ""), diffOpts)
	var got bittorrent.ScrapeRequest
	q := httpQuery{hashes: make([]bittorrent.InfoHash, 0, diffOpts.MaxScrapeInfoHashes)}
	err := parseHTTPScrape(target, int(diffOpts.MaxScrapeInfoHashes), &got, &q)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("%q: error %v, chihaya %v", target, err, wantErr)
	}
	if err != nil {
		return
	}
	if len(got.InfoHashes) != len(want.InfoHashes) {
		t.Fatalf("%q: %d hashes, chihaya %d", target, len(got.InfoHashes), len(want.InfoHashes))
	}
	for i := range got.InfoHashes {
		if got.InfoHashes[i] != want.InfoHashes[i] {
			t.Fatalf("%q: hash %d differs", target, i)
		}
	}
	diffParams(t, target, got.Params, want.Params)
}

var (
	ih20   = url.QueryEscape(string(ihX[:]))
	pid20  = url.QueryEscape(peerID(7))
	goodQS = "info_hash=" + ih20 + "&peer_id=" + pid20 + "&port=6881&uploaded=1&downloaded=2&left=3"
)

// httpParseCases are announce targets covering each field's rules; they
// are also the fuzzers' seeds.
var httpParseCases = []string{
	"/announce/pk?" + goodQS,
	"/announce/pk?" + goodQS + "&compact=1&numwant=500&event=started",
	"/announce/pk?" + goodQS + "&compact=0&numwant=7&event=STOPPED",
	"/announce/pk?" + goodQS + "&event=none&event=Completed;key=abc",
	"/announce/pk?" + goodQS + "&event=",
	"/announce/pk?" + goodQS + "&event=paused",
	"/announce/pk?" + goodQS + "&event=st%41rted",
	"/announce/pk?" + goodQS + "&numwant=",
	"/announce/pk?" + goodQS + "&numwant=4294967296",
	"/announce/pk?" + goodQS + "&numwant=-1",
	"/announce/pk?" + goodQS + "&port=0",
	"/announce/pk?" + goodQS + "&port=65536",
	"/announce/pk?" + goodQS + "&PORT=80",
	"/announce/pk?" + goodQS + "&left=18446744073709551616",
	"/announce/pk?" + goodQS + "&left=+1",
	"/announce/pk?" + goodQS + "&info_hash=" + ih20,
	"/announce/pk?" + goodQS + "&INFO_HASH=" + ih20,
	"/announce/pk?" + goodQS + "&info%5Fhash=" + ih20,
	"/announce/pk?" + goodQS + "&peer_id=short",
	"/announce/pk?" + goodQS + "&x=%zz",
	"/announce/pk?" + goodQS + "&x=%4",
	"/announce/pk?" + goodQS + "&%=1",
	"/announce/pk?" + goodQS + "&a+b=c+d&&;=",
	"/announce/pk?info_hash=abc&" + goodQS,
	"/announce/pk?info_hash=" + ih20 + "&port=1&uploaded=1&downloaded=1&left=1",
	"/announce/pk?peer_id=" + pid20 + "&port=1&uploaded=1&downloaded=1&left=1",
	"/announce/pk?" + strings.Replace(goodQS, "&left=3", "", 1),
	"/announce/pk?" + strings.Replace(goodQS, "&downloaded=2", "", 1),
	"/announce/pk?" + strings.Replace(goodQS, "&uploaded=1", "", 1),
	"/announce/pk?" + strings.Replace(goodQS, "&port=6881", "", 1),
	"/announce/pk",
	"/announce/pk?",
	"/scrape/pk?info_hash=" + ih20 + "&info_hash=" + pid20 + "&info_hash=" + ih20 + "&info_hash=" + pid20,
	"/scrape/pk?info_hash=",
	"/scrape/pk?x=1",
}

func TestHTTPParseMatchesChihaya(t *testing.T) {
	for _, target := range httpParseCases {
		for _, remote := range []string{"10.1.2.3:5000", "[2001:db8::7]:5000", "[::ffff:10.9.9.9]:1"} {
			diffAnnounce(t, target, remote, "")
		}
		for _, realIP := range []string{"192.0.2.9", "2001:db8::1", "::ffff:192.0.2.1", "not-an-ip", "fe80::1%eth0", " 192.0.2.9"} {
			diffAnnounce(t, target, "10.1.2.3:5000", realIP)
		}
		diffScrape(t, target)
	}
}

// TestHTTPParseNoAllocs: an announce's parse allocates nothing.
func TestHTTPParseNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector; the plain run checks them")
	}
	var req bittorrent.AnnounceRequest
	q := httpQuery{hashes: make([]bittorrent.InfoHash, 0, 2)}
	var ip [16]byte
	opts := ourOpts()
	target := httpParseCases[1]
	remote := netip.MustParseAddr("10.1.2.3")
	if err := parseHTTPAnnounce(target, remote, "", &opts, &req, &q, &ip); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		_ = parseHTTPAnnounce(target, remote, "", &opts, &req, &q, &ip)
	}); n != 0 {
		t.Fatalf("%v allocations per parse", n)
	}
}

// FuzzHTTPAnnounceParse checks our allocation-free parsers against
// chihaya's http.ParseAnnounce and ParseScrape: the same request or the
// same error, for any target and real-IP header.
func FuzzHTTPAnnounceParse(f *testing.F) {
	for _, c := range httpParseCases {
		f.Add(c, "")
	}
	f.Add("/announce/pk?"+goodQS, "192.0.2.1")
	f.Fuzz(func(t *testing.T, target, realIP string) {
		diffAnnounce(t, target, "10.1.2.3:5000", realIP)
		diffScrape(t, target)
	})
}
