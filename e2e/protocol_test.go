package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawPeer is a hand-rolled announcer used to pin down exactly what the
// tracker answers.
type rawPeer struct {
	peerID [20]byte
	port   uint16
}

func newRawPeer(t *testing.T, port uint16) rawPeer {
	p := rawPeer{port: port}
	copy(p.peerID[:], "-SE2E0-")
	if _, err := rand.Read(p.peerID[7:]); err != nil {
		t.Fatal(err)
	}
	return p
}

// announceResult is a decoded announce response (HTTP or UDP).
type announceResult struct {
	failure  string   // failure reason (HTTP) or error message (UDP)
	peers    []string // "ip:port"
	hasPeers bool     // a peers/peers6 key was present (HTTP)
	interval int64
	raw      []byte
	issues   []string // non-canonical bencoding
}

// httpAnnounce sends a compact HTTP announce for infoHash (40 hex) to
// announceURL.
func (p rawPeer) httpAnnounce(announceURL, infoHash string, left int64, event string) (announceResult, error) {
	ih, err := hex.DecodeString(infoHash)
	if err != nil {
		return announceResult{}, err
	}
	q := "info_hash=" + url.QueryEscape(string(ih)) +
		"&peer_id=" + url.QueryEscape(string(p.peerID[:])) +
		"&port=" + strconv.Itoa(int(p.port)) +
		"&uploaded=0&downloaded=0&left=" + strconv.FormatInt(left, 10) +
		"&compact=1&numwant=50"
	if event != "" {
		q += "&event=" + event
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(announceURL + "?" + q)
	if err != nil {
		return announceResult{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return announceResult{}, err
	}
	res := announceResult{raw: body}
	v, issues, err := bdecode(body)
	res.issues = issues
	if err != nil {
		return res, fmt.Errorf("HTTP %d, body %q is not valid bencode: %v", resp.StatusCode, body, err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		return res, fmt.Errorf("HTTP %d, body %q is not a bencoded dictionary", resp.StatusCode, body)
	}
	if f, ok := d["failure reason"]; ok {
		s, _ := f.(string)
		res.failure = s
	}
	if iv, ok := d["interval"].(int64); ok {
		res.interval = iv
	}
	for _, key := range []string{"peers", "peers6"} {
		pv, ok := d[key]
		if !ok {
			continue
		}
		res.hasPeers = true
		switch pv := pv.(type) {
		case string: // compact
			size := 6
			if key == "peers6" {
				size = 18
			}
			if len(pv)%size != 0 {
				return res, fmt.Errorf("compact %s of %d bytes is not a multiple of %d", key, len(pv), size)
			}
			for i := 0; i < len(pv); i += size {
				ip := net.IP([]byte(pv[i : i+size-2]))
				port := binary.BigEndian.Uint16([]byte(pv[i+size-2 : i+size]))
				res.peers = append(res.peers, net.JoinHostPort(ip.String(), strconv.Itoa(int(port))))
			}
		case []any: // dictionary model
			for _, e := range pv {
				pd, _ := e.(map[string]any)
				ip, _ := pd["ip"].(string)
				port, _ := pd["port"].(int64)
				res.peers = append(res.peers, net.JoinHostPort(ip, strconv.FormatInt(port, 10)))
			}
		default:
			return res, fmt.Errorf("%s has unexpected type %T", key, pv)
		}
	}
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("HTTP status %d, body %q", resp.StatusCode, body)
	}
	return res, nil
}

// udpAnnounce performs a BEP 15 connect + announce to udpAddr, passing
// urlData (path and query, e.g. "/<passkey>") as BEP 41 URL data.
func (p rawPeer) udpAnnounce(udpAddr, urlData, infoHash string, left int64, event uint32) (announceResult, error) {
	ih, err := hex.DecodeString(infoHash)
	if err != nil {
		return announceResult{}, err
	}
	conn, err := net.Dial("udp", udpAddr)
	if err != nil {
		return announceResult{}, err
	}
	defer conn.Close()
	roundTrip := func(req []byte) ([]byte, error) {
		buf := make([]byte, 4096)
		for range 3 {
			if _, err := conn.Write(req); err != nil {
				return nil, err
			}
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := conn.Read(buf)
			if err == nil {
				if n < 8 || !bytes.Equal(buf[4:8], req[12:16]) {
					return nil, fmt.Errorf("UDP reply %x does not echo transaction id %x", buf[:n], req[12:16])
				}
				return buf[:n], nil
			}
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				return nil, err
			}
		}
		return nil, fmt.Errorf("no UDP reply from %s after 3 tries", udpAddr)
	}
	tid := func() []byte {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		return b
	}
	// connect
	var req bytes.Buffer
	_ = binary.Write(&req, binary.BigEndian, uint64(0x41727101980))
	_ = binary.Write(&req, binary.BigEndian, uint32(0))
	req.Write(tid())
	resp, err := roundTrip(req.Bytes())
	if err != nil {
		return announceResult{}, fmt.Errorf("connect: %v", err)
	}
	if action := binary.BigEndian.Uint32(resp[0:4]); action != 0 || len(resp) < 16 {
		return announceResult{raw: resp}, fmt.Errorf("connect: unexpected reply %x", resp)
	}
	connID := resp[8:16]
	// announce
	req.Reset()
	req.Write(connID)
	_ = binary.Write(&req, binary.BigEndian, uint32(1))
	req.Write(tid())
	req.Write(ih)
	req.Write(p.peerID[:])
	_ = binary.Write(&req, binary.BigEndian, []uint64{0, uint64(left), 0}) // downloaded, left, uploaded
	_ = binary.Write(&req, binary.BigEndian, []uint32{event, 0, 0})        // event, ip, key
	_ = binary.Write(&req, binary.BigEndian, int32(50))                    // num_want
	_ = binary.Write(&req, binary.BigEndian, p.port)
	for d := []byte(urlData); len(d) > 0; { // BEP 41 URLData options
		n := min(len(d), 255)
		req.Write([]byte{2, byte(n)})
		req.Write(d[:n])
		d = d[n:]
	}
	req.WriteByte(0) // EndOfOptions
	resp, err = roundTrip(req.Bytes())
	if err != nil {
		return announceResult{}, fmt.Errorf("announce: %v", err)
	}
	res := announceResult{raw: resp}
	switch action := binary.BigEndian.Uint32(resp[0:4]); action {
	case 3:
		res.failure = string(resp[8:])
		return res, nil
	case 1:
		if len(resp) < 20 || (len(resp)-20)%6 != 0 {
			return res, fmt.Errorf("announce reply of %d bytes is malformed: %x", len(resp), resp)
		}
		res.interval = int64(binary.BigEndian.Uint32(resp[8:12]))
		res.hasPeers = len(resp) > 20
		for i := 20; i < len(resp); i += 6 {
			ip := net.IP(resp[i : i+4])
			port := binary.BigEndian.Uint16(resp[i+4 : i+6])
			res.peers = append(res.peers, net.JoinHostPort(ip.String(), strconv.Itoa(int(port))))
		}
		return res, nil
	default:
		return res, fmt.Errorf("announce: unexpected action %d in %x", action, resp)
	}
}

const (
	udpEventNone    = 0
	udpEventStarted = 2
)

// notYetRegistered reports a failure that a registration the admin API
// already confirmed has not reached the announce path yet.
func notYetRegistered(res announceResult) bool {
	f := strings.ToLower(res.failure)
	return strings.Contains(f, "not registered") || strings.Contains(f, "unknown passkey")
}

// firstAnnounce sends the first announce of a freshly registered user or
// torrent, retrying (at most 2 s) while the registration is not visible to
// the announce path yet; TestAnnounceRightAfterRegistration covers that
// delay itself. A failed announce registers no peer, so retrying is safe.
func firstAnnounce(t *testing.T, ann func() (announceResult, error)) (announceResult, error) {
	t.Helper()
	start := time.Now()
	var res announceResult
	var err error
	for i := 0; i < 40; i++ {
		res, err = ann()
		if err != nil || !notYetRegistered(res) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := time.Since(start); d > 40*time.Millisecond {
		t.Logf("first announce needed %v for the registration to become visible (last failure %q)", d.Round(time.Millisecond), res.failure)
	}
	return res, err
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// TestRawAnnounce pins down the wire format the clients rely on, with
// hand-made announces on loopback: bencoding is canonical (sorted keys),
// peers are exchanged between two users, and no requester is ever handed
// its own address.
func TestRawAnnounce(t *testing.T) {
	tr := startTracker(t, "127.0.0.1")
	seedPK, leechPK := tr.createUser("raw-seeder"), tr.createUser("raw-leecher")

	// announce sends one announce with the passkey; started selects the
	// "started" event (else none).
	type announce func(p rawPeer, passkey, infoHash string, left int64, started bool) (announceResult, error)
	protocols := []struct {
		name string
		ann  announce
	}{
		{"HTTP", func(p rawPeer, pk, ih string, left int64, started bool) (announceResult, error) {
			ev := ""
			if started {
				ev = "started"
			}
			return p.httpAnnounce(tr.httpAnnounceURL(pk), ih, left, ev)
		}},
		{"UDP", func(p rawPeer, pk, ih string, left int64, started bool) (announceResult, error) {
			ev := uint32(udpEventNone)
			if started {
				ev = udpEventStarted
			}
			return p.udpAnnounce(tr.udpAddr, "/"+pk, ih, left, ev)
		}},
	}
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			ih := randHex(t, 20)
			tr.registerTorrent(ih, payloadSize, "raw-"+proto.name)
			seeder, leecher := newRawPeer(t, 20001), newRawPeer(t, 20002)
			seederAddr, leecherAddr := "127.0.0.1:20001", "127.0.0.1:20002"
			check := func(who string, res announceResult, err error, self, want string) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s announce: %v (raw %q)", who, err, res.raw)
				}
				if res.failure != "" {
					t.Fatalf("%s announce failed: %q", who, res.failure)
				}
				if len(res.issues) > 0 {
					t.Errorf("%s announce response is not canonical bencode: %v; raw %q", who, res.issues, res.raw)
				}
				if res.interval <= 0 {
					t.Errorf("%s announce: interval %d, want > 0 (raw %q)", who, res.interval, res.raw)
				}
				if contains(res.peers, self) {
					t.Errorf("%s was handed its own address %s: peers %v (raw %q)", who, self, res.peers, res.raw)
				}
				if want != "" && !contains(res.peers, want) {
					t.Errorf("%s announce: peers %v lack %s (raw %q)", who, res.peers, want, res.raw)
				}
			}
			res, err := firstAnnounce(t, func() (announceResult, error) { return proto.ann(seeder, seedPK, ih, 0, true) })
			check("seeder (first)", res, err, seederAddr, "")
			res, err = proto.ann(leecher, leechPK, ih, payloadSize, true)
			check("leecher", res, err, leecherAddr, seederAddr)
			res, err = proto.ann(seeder, seedPK, ih, 0, false)
			check("seeder (again)", res, err, seederAddr, leecherAddr)
			st, err := tr.stats(ih)
			if err != nil {
				t.Fatal(err)
			}
			if st.Seeders != 1 || st.Leechers != 1 {
				t.Errorf("tracker stats %+v, want 1 seeder and 1 leecher", st)
			}
		})
	}
}

// wrongPasskey is a well-formed passkey no user has.
func wrongPasskey(t *testing.T) string { return randHex(t, 16) }

// checkPasskeyFailure asserts a failure reason mentioning the passkey and
// no peers.
func checkPasskeyFailure(t *testing.T, what string, res announceResult, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v (raw %q)", what, err, res.raw)
	}
	if !strings.Contains(strings.ToLower(res.failure), "passkey") {
		t.Errorf("%s: failure reason %q does not mention the passkey (raw %q)", what, res.failure, res.raw)
	}
	if res.hasPeers || len(res.peers) > 0 {
		t.Errorf("%s: got peers %v with a wrong passkey (raw %q)", what, res.peers, res.raw)
	}
	if len(res.issues) > 0 {
		t.Errorf("%s: response is not canonical bencode: %v; raw %q", what, res.issues, res.raw)
	}
}
