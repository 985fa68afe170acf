package e2e

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seedpay/seedpay/internal/redistest"
	"github.com/seedpay/seedpay/receipts"
	"github.com/seedpay/seedpay/receipts/peer"
	"github.com/seedpay/seedpay/rewards"
)

// Settings of TestReceiptsClient. anacrolix/torrent re-announces at most
// once a minute whatever the tracker asks, and the tracker credits a
// receipt only if both users announced the torrent in the receipt's epoch
// or the one before: epochs must be longer than that minute.
const (
	receiptsEpoch   = 90 * time.Second
	receiptsPayload = 32 << 20
	receiptsRedown  = 3 // rewards.receipts.max_redownload
)

// receiptsConfig is the tracker's config: a real redis-server (the test
// reads the per-user credit from the ledger), 90 s epochs, 2 s announce
// interval (libtorrent follows it; anacrolix announces every minute).
func receiptsConfig(redisAddr string) string {
	return `
log:
  level: info
  format: console
redis:
  addr: "` + redisAddr + `"
tracker:
  announce_interval: 2s
  min_announce_interval: 1s
peer_store:
  peer_lifetime: 3m
  gc_interval: 30s
registry:
  flush_interval: 1s
rewards:
  enabled: true
  flush_interval: 500ms
  scoring:
    max_gap: 90s
  epoch:
    length: 90s
    grace: 10s
    retention: 1h
  receipts:
    max_redownload: ` + strconv.Itoa(receiptsRedown) + `
  global_pool:
    id: global
    budget_per_epoch: "` + rewardsBudget + `"
`
}

// clientUpstream is one entry of a `seedpay client` status line's
// received_from: what it received from one seedpay-aware uploader.
type clientUpstream struct {
	Key       string `json:"key"`
	Session   string `json:"session"`
	Received  uint64 `json:"received"`
	Signed    uint64 `json:"signed"`
	Delivered uint64 `json:"delivered"`
	Live      int    `json:"live"`
}

// clientEvent is one JSON line printed by `seedpay client`.
type clientEvent struct {
	Ev             string           `json:"ev"`
	T              float64          `json:"t"`
	PublicKey      string           `json:"public_key"`
	InfoHash       string           `json:"info_hash"`
	Complete       bool             `json:"complete"`
	BytesCompleted int64            `json:"bytes_completed"`
	ReceivedFrom   []clientUpstream `json:"received_from"`
	CreditedTotal  uint64           `json:"credited_total"`
	Uploaded       int64            `json:"uploaded"`
	Conns          []struct {
		Remote      string `json:"remote"`
		Key         string `json:"key"`
		ReadUseful  int64  `json:"read_useful"`
		WrittenData int64  `json:"written_data"`
	} `json:"conns"`
	// receipt_result
	Downloader    string `json:"downloader"`
	Cumulative    uint64 `json:"cumulative"`
	Status        string `json:"status"`
	Reason        string `json:"reason"`
	CreditedBytes uint64 `json:"credited_bytes"`
	Err           string `json:"err"`
}

// spClient is a running `seedpay client`.
type spClient struct {
	*proc
	pub string // its receipt key, hex
}

// startSeedpayClient runs `seedpay client` inside h's namespace, listening
// on h's address, and waits for its start line.
func startSeedpayClient(t *testing.T, name string, h *nsHost, args ...string) *spClient {
	t.Helper()
	argv := h.exec(append([]string{seedpayBin, "client", "--listen", net.JoinHostPort(h.ip, "0"),
		"--submit-every", "1s", "--receipt-every", "1MiB", "--receipt-interval", "1s", "--max-runtime", "5m"}, args...)...)
	c := &spClient{proc: startProc(t, name, nil, argv...)}
	if !waitFor(20*time.Second, 50*time.Millisecond, func() bool {
		if e, ok := c.first("start"); ok {
			c.pub = e.PublicKey
			return true
		}
		return c.exited()
	}) || c.pub == "" {
		t.Fatalf("%s printed no start line within 20s (%s)", name, c.exitString())
	}
	return c
}

func (c *spClient) events() []clientEvent {
	var evs []clientEvent
	sc := bufio.NewScanner(strings.NewReader(c.out.String()))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var e clientEvent
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Ev != "" {
			evs = append(evs, e)
		}
	}
	return evs
}

func (c *spClient) first(ev string) (clientEvent, bool) {
	for _, e := range c.events() {
		if e.Ev == ev {
			return e, true
		}
	}
	return clientEvent{}, false
}

func (c *spClient) last(ev string) (clientEvent, bool) {
	evs := c.events()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Ev == ev {
			return evs[i], true
		}
	}
	return clientEvent{}, false
}

// receivedFrom is what e reports it received from key.
func (e clientEvent) receivedFrom(key string) clientUpstream {
	for _, u := range e.ReceivedFrom {
		if u.Key == key {
			return u
		}
	}
	return clientUpstream{Key: key}
}

// stopClean sends SIGTERM and checks the client exited 0 after its final
// line.
func (c *spClient) stopClean(t *testing.T) clientEvent {
	t.Helper()
	c.stop()
	f, ok := c.last("final")
	if !ok || c.exitString() != "exit status 0" {
		t.Fatalf("%s: stopped with %s, final line present: %v", c.name, c.exitString(), ok)
	}
	return f
}

// waitKnownPasskey waits until the tracker's intake knows passkey: POST
// /keys/<passkey> with an empty object answers 400 (bad key) for a known
// account and 403 for an unknown one; nothing is registered either way.
func waitKnownPasskey(t *testing.T, tr *tracker, passkey string) {
	t.Helper()
	var last int
	if !waitFor(5*time.Second, 50*time.Millisecond, func() bool {
		resp, err := tr.client.Post("http://"+tr.httpAddr+"/keys/"+passkey, "application/json", strings.NewReader("{}"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		last = resp.StatusCode
		return last == http.StatusBadRequest
	}) {
		t.Fatalf("passkey %s not known to the tracker within 5s (POST /keys: %d)", passkey, last)
	}
}

// ledgerCredits reads, from the ledger in Redis, the receipt-verified bytes
// credited per (uploader user, downloader user) on a torrent, summed over
// epochs.
func ledgerCredits(t *testing.T, rdb *redis.Client, infoHash string) map[[2]string]uint64 {
	t.Helper()
	ctx := context.Background()
	prefix := "sp:{r:" + infoHash + "}:pe:"
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[[2]string]uint64{}
	for _, k := range keys {
		f := strings.Split(strings.TrimPrefix(k, prefix), ":") // up:down:epoch
		if len(f) != 3 {
			t.Fatalf("unexpected ledger key %q", k)
		}
		v, err := rdb.Get(ctx, k).Uint64()
		if err != nil {
			t.Fatal(err)
		}
		out[[2]string{f[0], f[1]}] += v
	}
	return out
}

// upVerified sums the user's up_verified field over the epochs [from, to].
func upVerified(t *testing.T, rdb *redis.Client, user string, from, to int64) uint64 {
	t.Helper()
	var n uint64
	for e := from; e <= to; e++ {
		v, err := rdb.HGet(context.Background(), rewards.KeyUserEpoch(user, e), "up_verified").Uint64()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		n += v
	}
	return n
}

type receiptStats struct {
	Accepted      int64            `json:"accepted"`
	CreditedBytes int64            `json:"credited_bytes"`
	Rejected      map[string]int64 `json:"rejected"`
}

func (tr *tracker) receiptStats(t *testing.T) receiptStats {
	t.Helper()
	var s receiptStats
	if err := tr.api("GET", "/api/v1/receipts/stats", nil, http.StatusOK, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// within1 reports whether got is within 1% of want.
func within1(got, want uint64) bool {
	d := float64(got) - float64(want)
	return d*d <= 1e-4*float64(want)*float64(want)
}

// TestReceiptsClient runs three `seedpay client`s, each a user announcing
// from a network namespace of its own, around `seedpay serve` (real
// redis-server, 90 s epochs), with python3-libtorrent clients in the same
// swarm:
//
//  1. A seeds a 32 MiB file; B and C download it (from A and from each
//     other) and sign receipts for what each uploader sent them. The bytes
//     the ledger credits to A equal, within 1%, what B and C report they
//     received from A; B and C are credited exactly what the other one
//     received from them, and nothing for what they did not send.
//  2. Cheats, from a Go helper in the test: a replayed and an older
//     receipt (not_monotonic), forged signatures (bad_signature), receipts
//     signed by a second account from the uploader's own address
//     (shared_ip) and by a second key of the uploader's own account
//     (self_dealing), and an inflated count, credited only up to size x
//     max_redownload (then capped): each shows under its reason in
//     /api/v1/receipts/stats and earns nothing beyond the cap.
//  3. A python3-libtorrent leecher completes in the same swarm and a
//     libtorrent seeder earns seed time.
func TestReceiptsClient(t *testing.T) {
	requireLibtorrent(t)
	testStart := time.Now()
	l := newLab(t, 6)
	hA, hB, hC, hSeed, hLeech, hDave := l.hosts[0], l.hosts[1], l.hosts[2], l.hosts[3], l.hosts[4], l.hosts[5]
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	cfg := filepath.Join(t.TempDir(), "receipts.yaml")
	if err := os.WriteFile(cfg, []byte(receiptsConfig(rs.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := startTracker(t, l.hostIP, "--config", cfg)
	for _, h := range l.hosts {
		h.waitReachable(t, tr.httpAddr)
	}

	// The payload, the torrent, the users.
	dirA, dirB, dirC, dirSeed, dirLeech, work := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	pl := makePayload(t, dirA, "receipts-"+randHex(t, 4)+".bin", receiptsPayload)
	b, err := os.ReadFile(pl.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirSeed, pl.name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	users := map[string][2]string{} // name -> id, passkey
	for _, n := range []string{"A", "B", "C", "lt-seeder", "lt-leecher", "dave", "mallory", "mallory2"} {
		id, pk := tr.createUserID("receipts-" + n + "-" + randHex(t, 2))
		users[n] = [2]string{id, pk}
	}
	id := func(n string) string { return users[n][0] }
	announce := func(n string) string { return tr.httpAnnounceURL(users[n][1]) }
	torrentA := filepath.Join(work, "A.torrent")
	ih := makeTorrent(t, pl, announce("A"), torrentA)
	torrentFor := func(n string) string {
		p := filepath.Join(work, n+".torrent")
		if got := makeTorrent(t, pl, announce(n), p); got != ih {
			t.Fatalf("info hash %s for %s, want %s", got, n, ih)
		}
		return p
	}
	torrentSeed, torrentLeech := torrentFor("lt-seeder"), torrentFor("lt-leecher")
	tr.registerTorrent(ih, pl.size, pl.name)
	for n := range users {
		waitKnownPasskey(t, tr, users[n][1])
	}
	t.Logf("torrent %s (%d bytes); users %v", ih, pl.size, users)
	epochOf := func(ts time.Time) int64 { return ts.Unix() / int64(receiptsEpoch/time.Second) }
	firstEpoch := epochOf(time.Now())

	// 1. A seeds; a libtorrent leecher downloads from A alone; then the
	// libtorrent seeder joins, and B and C download.
	keyFile := func(n string) string { return filepath.Join(work, n+".key") }
	a := startSeedpayClient(t, "seedpay client A (seed)", hA, "--passkey-url", announce("A"), "--key", keyFile("A"),
		"--torrent", torrentA, "--data", dirA, "--register-key")
	tr.waitStats(ih, "seeders >= 1", seederTimeout, func(st torrentStats) bool { return st.Seeders >= 1 })
	ltArgs := []string{"--set", "min_announce_interval=1"}
	ltLeech := startLTIn(t, "libtorrent leecher", hLeech, torrentLeech, dirLeech, ltArgs...)
	leechStart := time.Now()
	if ok, err := waitFileSHA256(filepath.Join(dirLeech, pl.name), pl.sha256, 60*time.Second, allAlive(a.proc, ltLeech.proc)); err != nil || !ok {
		t.Fatalf("the libtorrent leecher did not complete from A within 60s (err %v)", err)
	}
	var upToLT int64
	if !waitFor(5*time.Second, 100*time.Millisecond, func() bool {
		e, ok := a.last("status")
		upToLT = e.Uploaded
		return ok && upToLT >= pl.size
	}) {
		t.Fatalf("A reports %d bytes uploaded after the libtorrent leecher completed, want >= %d", upToLT, pl.size)
	}
	t.Logf("the libtorrent leecher completed from A in %.1f s; A uploaded %d bytes (no receipts: not seedpay-aware)",
		time.Since(leechStart).Seconds(), upToLT)
	ltSeed := startLTIn(t, "libtorrent seeder", hSeed, torrentSeed, dirSeed, ltArgs...)
	b1 := startSeedpayClient(t, "seedpay client B", hB, "--passkey-url", announce("B"), "--key", keyFile("B"),
		"--torrent", torrentA, "--data", dirB, "--register-key")
	c1 := startSeedpayClient(t, "seedpay client C", hC, "--passkey-url", announce("C"), "--key", keyFile("C"),
		"--torrent", torrentA, "--data", dirC, "--register-key")
	alive := allAlive(a.proc, b1.proc, c1.proc, ltSeed.proc, ltLeech.proc)
	transferStart := time.Now()
	for _, dir := range []string{dirB, dirC} {
		f := filepath.Join(dir, pl.name)
		ok, err := waitFileSHA256(f, pl.sha256, 60*time.Second, alive)
		if err != nil || !ok {
			t.Fatalf("%s not complete within 60s of the start (err %v)", f, err)
		}
	}
	t.Logf("B and C hold the verified payload %.1f s after they started",
		time.Since(transferStart).Seconds())

	// Every receipt delivered: each downloader has signed all it received
	// from each seedpay-aware uploader and handed it over (unless no
	// connection to that uploader is left to carry it).
	settled := func(c *spClient) bool {
		e, ok := c.last("status")
		if !ok || !e.Complete || e.T < float64(time.Now().Add(-3*time.Second).UnixNano())/1e9 {
			return false
		}
		for _, u := range e.ReceivedFrom {
			if u.Received != u.Signed || (u.Signed != u.Delivered && u.Live > 0) {
				return false
			}
		}
		return true
	}
	if !waitFor(20*time.Second, 250*time.Millisecond, func() bool { return settled(b1) && settled(c1) }) {
		eb, _ := b1.last("status")
		ec, _ := c1.last("status")
		t.Fatalf("receipts not all delivered within 20s: B %+v, C %+v", eb.ReceivedFrom, ec.ReceivedFrom)
	}

	// The downloaders stop first (a last receipt each, then their own
	// submission), then A (its last submission).
	finalB, finalC := b1.stopClean(t), c1.stopClean(t)
	finalA := a.stopClean(t)
	fromA := finalB.receivedFrom(a.pub).Received + finalC.receivedFrom(a.pub).Received
	cFromB, bFromC := finalC.receivedFrom(b1.pub).Received, finalB.receivedFrom(c1.pub).Received
	deliveredFromA := finalB.receivedFrom(a.pub).Delivered + finalC.receivedFrom(a.pub).Delivered
	cDelivB, bDelivC := finalC.receivedFrom(b1.pub).Delivered, finalB.receivedFrom(c1.pub).Delivered
	t.Logf("reports: B received %d from A, %d from C; C received %d from A, %d from B; B+C from A %d",
		finalB.receivedFrom(a.pub).Received, bFromC, finalC.receivedFrom(a.pub).Received, cFromB, fromA)
	for _, e := range []clientEvent{finalB, finalC} {
		for _, cn := range e.Conns {
			t.Logf("  conn %s key %.8s: read %d useful, wrote %d", cn.Remote, cn.Key, cn.ReadUseful, cn.WrittenData)
		}
	}
	for _, e := range []struct {
		name string
		fin  clientEvent
	}{{"B", finalB}, {"C", finalC}} {
		var sum uint64
		for _, u := range e.fin.ReceivedFrom {
			sum += u.Received
		}
		if sum > uint64(pl.size) {
			t.Errorf("%s reports %d bytes received from seedpay peers, more than the %d-byte file", e.name, sum, pl.size)
		}
	}
	if fromA == 0 {
		t.Fatalf("B and C report nothing received from A")
	}

	// What the ledger credits.
	lastEpoch := epochOf(time.Now())
	credits := ledgerCredits(t, rdb, ih)
	t.Logf("ledger credits (uploader user, downloader user) -> bytes: %v", credits)
	verA := credits[[2]string{id("A"), id("B")}] + credits[[2]string{id("A"), id("C")}]
	verB := credits[[2]string{id("B"), id("C")}]
	verC := credits[[2]string{id("C"), id("B")}]
	upA, upB, upC := upVerified(t, rdb, id("A"), firstEpoch, lastEpoch), upVerified(t, rdb, id("B"), firstEpoch, lastEpoch),
		upVerified(t, rdb, id("C"), firstEpoch, lastEpoch)
	t.Logf("verified upload: A %d (up_verified %d) for %d received from A (%.4f%%); B %d (up_verified %d) for %d C received from B; C %d (up_verified %d) for %d B received from C; A's client counted %d credited",
		verA, upA, fromA, 100*(float64(verA)-float64(fromA))/float64(fromA), verB, upB, cFromB, verC, upC, bFromC, finalA.CreditedTotal)
	if !within1(verA, fromA) || verA > fromA {
		t.Errorf("A's verified upload %d, want within 1%% of (and at most) the %d bytes B and C received from A", verA, fromA)
	}
	if upA != verA || upB != verB || upC != verC {
		t.Errorf("up_verified (A %d, B %d, C %d) differs from the pair credits (A %d, B %d, C %d)", upA, upB, upC, verA, verB, verC)
	}
	if finalA.CreditedTotal != verA {
		t.Errorf("A's client counted %d bytes credited in the tracker's answers, the ledger %d", finalA.CreditedTotal, verA)
	}
	if verA != deliveredFromA {
		t.Errorf("A's verified upload %d, want the %d bytes B and C signed and handed over", verA, deliveredFromA)
	}
	// B and C earn exactly what the other signed for (which is at most
	// what it received from them): nothing for what they did not send.
	for _, c := range []struct {
		who                      string
		got, delivered, received uint64
	}{{"B", verB, cDelivB, cFromB}, {"C", verC, bDelivC, bFromC}} {
		if c.got != c.delivered || c.delivered > c.received {
			t.Errorf("%s is credited %d bytes; the other downloader signed for %d and received %d from it", c.who, c.got, c.delivered, c.received)
		}
		if c.delivered != c.received {
			t.Logf("%s: %d of the %d bytes the other downloader received from it were never signed over to it (no connection left)",
				c.who, c.received-c.delivered, c.received)
		}
	}
	for k, v := range credits {
		if k[0] != id("A") && k[0] != id("B") && k[0] != id("C") || k[0] == id("A") && k[1] != id("B") && k[1] != id("C") {
			t.Errorf("unexpected credit %d for uploader %s from downloader %s", v, k[0], k[1])
		}
		if k[1] == id("A") {
			t.Errorf("A, which downloaded nothing, signed for %s: %d bytes", k[0], v)
		}
	}
	stats := tr.receiptStats(t)
	t.Logf("receipt stats after the honest swarm: %+v", stats)
	// A receipt can reach the tracker before the announce of its
	// downloader is accounted (flushed every 500 ms): not_announced, which
	// the client submits again. No other rejection is expected.
	for reason, n := range stats.Rejected {
		if reason != rewards.ReasonNotAnnounced {
			t.Errorf("receipt stats: %d honest receipts rejected as %s", n, reason)
		}
	}
	if stats.CreditedBytes != int64(verA+verB+verC) || stats.Accepted == 0 {
		t.Errorf("receipt stats %+v: want credited_bytes %d (A+B+C) and some accepted", stats, verA+verB+verC)
	}
	var urA userRewards
	if err := tr.api("GET", "/api/v1/users/"+id("A")+"/rewards", nil, http.StatusOK, &urA); err != nil {
		t.Fatal(err)
	}
	pointsA := int64(0)
	for _, e := range urA.Epochs {
		p, _ := strconv.ParseInt(e.Points["global"], 10, 64)
		pointsA += p
	}
	t.Logf("A's rewards: %+v", urA.Epochs)
	if pointsA <= 0 {
		t.Errorf("A has no points: %+v", urA)
	}

	// 3. The libtorrent clients: the leecher completed (above) and says
	// so; the seeder earns seed time.
	if !waitFor(10*time.Second, 100*time.Millisecond, func() bool {
		_, ok := ltLeech.has(func(e ltEvent) bool { return e.Ev == "finished" })
		return ok
	}) {
		t.Errorf("the libtorrent leecher never reported torrent_finished")
	}
	// Let the seeder re-announce for a while (every 2 s) before stopping it.
	if !waitFor(20*time.Second, 100*time.Millisecond, func() bool {
		r := ltSeed.replies(t)
		return len(r) >= 2 && r[len(r)-1]-r[0] >= 8
	}) {
		t.Fatalf("the libtorrent seeder got no tracker replies spanning 8 s: %v", ltSeed.replies(t))
	}
	ltLeech.stop()
	ltSeed.stop()
	seedReplies := ltSeed.replies(t)
	span := seedReplies[len(seedReplies)-1] - seedReplies[0]
	seedSecs, _ := settledSeedSeconds(t, tr, id("lt-seeder"))
	t.Logf("libtorrent seeder: %d seed seconds; %d tracker replies over %.1f s", seedSecs, len(seedReplies), span)
	if !within10(float64(seedSecs), span) {
		t.Errorf("the libtorrent seeder earned %d seed seconds, want %.1f (its first to last tracker reply) +-10%%", seedSecs, span)
	}

	// 2. Cheats.
	cheats(t, tr, rdb, hDave, ih, pl.size, users, stats)
	t.Logf("runtime %v", time.Since(testStart).Round(100*time.Millisecond))
}

// startLTIn runs testdata/ltclient.py inside h's namespace, listening on
// h's address.
func startLTIn(t *testing.T, name string, h *nsHost, torrent, savePath string, extraArgs ...string) *ltClient {
	t.Helper()
	script, err := filepath.Abs("testdata/ltclient.py")
	if err != nil {
		t.Fatal(err)
	}
	argv := []string{pythonBin, "-u", script, "--torrent", torrent, "--save-path", savePath,
		"--listen", net.JoinHostPort(h.ip, "6881"), "--max-seconds", "300"}
	return &ltClient{startProc(t, name, nil, h.exec(append(argv, extraArgs...)...)...)}
}

// nsAnnounce sends one HTTP announce (event=started) from inside h's
// namespace, so the tracker sees h's address, and fails the test unless
// the tracker answers with an interval.
func nsAnnounce(t *testing.T, h *nsHost, trackerAddr, passkey, infoHash string, left int64) {
	t.Helper()
	raw, err := hex.DecodeString(infoHash)
	if err != nil {
		t.Fatal(err)
	}
	peerID := make([]byte, 20)
	copy(peerID, "-SE2E0-")
	if _, err := rand.Read(peerID[7:]); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(trackerAddr)
	req := "GET /announce/" + passkey + "?info_hash=" + url.QueryEscape(string(raw)) + "&peer_id=" + url.QueryEscape(string(peerID)) +
		"&port=6881&uploaded=0&downloaded=0&left=" + strconv.FormatInt(left, 10) + "&compact=1&event=started HTTP/1.0\r\nHost: " +
		trackerAddr + "\r\n\r\n"
	out, err := runCmd(10*time.Second, h.exec("timeout", "5", "bash", "-c",
		`exec 3<>/dev/tcp/"$1"/"$2" && printf '%s' "$3" >&3 && cat <&3`, "announce", host, port, req)...)
	if err != nil || !strings.Contains(out, "8:interval") || strings.Contains(out, "failure reason") {
		t.Fatalf("announce from %s: %v: %q", h.ip, err, out)
	}
}

// waitAnnouncedFrom waits until the ledger records that user announced
// infoHash from ip in the current epoch (the accountant writes it shortly
// after the announce).
func waitAnnouncedFrom(t *testing.T, rdb *redis.Client, user, infoHash, ip string) {
	t.Helper()
	if !waitFor(5*time.Second, 50*time.Millisecond, func() bool {
		n := time.Now().Unix() / int64(receiptsEpoch/time.Second)
		ok, err := rdb.SIsMember(context.Background(), rewards.KeyTorrentIPs(user, infoHash, n), ip).Result()
		return err == nil && ok
	}) {
		t.Fatalf("the ledger has no announce of %s from %s for user %s", infoHash, ip, user)
	}
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubOf(k ed25519.PrivateKey) [32]byte {
	var p [32]byte
	copy(p[:], k.Public().(ed25519.PublicKey))
	return p
}

// cheats is part 2 of TestReceiptsClient: mallory (uploader) submits
// receipts that must not pay. dave announces as a downloader from his own
// namespace; mallory and her second account mallory2 announce from the
// test's own address (the bridge's).
func cheats(t *testing.T, tr *tracker, rdb *redis.Client, hDave *nsHost, ih string, size int64, users map[string][2]string, before receiptStats) {
	ctx := context.Background()
	hc := &http.Client{Timeout: 10 * time.Second}
	ep := func(n string) peer.Endpoints {
		e, err := peer.EndpointsFromAnnounce(tr.httpAnnounceURL(users[n][1]))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	keyDave, keyMal, keyMal2, keyMalAlt := newKey(t), newKey(t), newKey(t), newKey(t)
	for _, r := range []struct {
		user string
		key  ed25519.PrivateKey
	}{{"dave", keyDave}, {"mallory", keyMal}, {"mallory2", keyMal2}, {"mallory", keyMalAlt}} {
		if err := peer.RegisterKey(ctx, hc, ep(r.user), r.key); err != nil {
			t.Fatalf("register a key for %s: %v", r.user, err)
		}
	}
	nsAnnounce(t, hDave, tr.httpAddr, users["dave"][1], ih, size)
	trackerHost, _, _ := net.SplitHostPort(tr.httpAddr)
	for _, n := range []string{"mallory", "mallory2"} {
		p := newRawPeer(t, 40100)
		if res, err := p.httpAnnounce(tr.httpAnnounceURL(users[n][1]), ih, 0, "started"); err != nil || res.failure != "" {
			t.Fatalf("announce as %s: %v %q", n, err, res.failure)
		}
	}
	// The test process reaches the tracker on the bridge: mallory and
	// mallory2 announce from the bridge's address.
	waitAnnouncedFrom(t, rdb, users["dave"][0], ih, hDave.ip)
	waitAnnouncedFrom(t, rdb, users["mallory"][0], ih, trackerHost)
	waitAnnouncedFrom(t, rdb, users["mallory2"][0], ih, trackerHost)

	var ihb [20]byte
	if _, err := hex.Decode(ihb[:], []byte(ih)); err != nil {
		t.Fatal(err)
	}
	mal := pubOf(keyMal)
	submit := func(what string, rs ...receipts.Receipt) peer.BatchResult {
		t.Helper()
		res, err := peer.Post(ctx, hc, ep("mallory").Receipts, rs)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %+v", what, res)
		return res
	}
	want := func(what string, res peer.BatchResult, i int, status, reason string, credited uint64) {
		t.Helper()
		r := res.Results[i]
		if r.Status != status || r.Reason != reason || r.Credited != credited {
			t.Errorf("%s: got %s/%s credited %d, want %s/%s credited %d", what, r.Status, r.Reason, r.Credited, status, reason, credited)
		}
	}
	now := time.Now()

	// (a) A genuine receipt from dave, then the same again and an older one.
	daveIss := receipts.NewIssuer(keyDave, ihb, mal)
	old, err := daveIss.Receipt(2<<20, now)
	if err != nil {
		t.Fatal(err)
	}
	good, err := daveIss.Receipt(4<<20, now)
	if err != nil {
		t.Fatal(err)
	}
	want("genuine", submit("genuine receipt", good), 0, "accepted", "", 4<<20)
	res := submit("replays", good, old)
	want("replayed receipt", res, 0, "rejected", rewards.ReasonNotMonotonic, 0)
	want("older receipt", res, 1, "rejected", rewards.ReasonNotMonotonic, 0)

	// (b) Forgeries: a flipped signature bit; a receipt naming dave but
	// signed with another key.
	flipped := good
	flipped.Cumulative = 8 << 20
	flipped.Signature[10] ^= 0x40
	forged := receipts.Receipt{InfoHash: ihb, Uploader: mal, Cumulative: 8 << 20, Time: now.Unix()}
	if err := receipts.Sign(&forged, newKey(t)); err != nil {
		t.Fatal(err)
	}
	forged.Downloader = pubOf(keyDave)
	res = submit("forgeries", flipped, forged)
	want("flipped signature", res, 0, "rejected", "bad_signature", 0)
	want("signed by another key", res, 1, "rejected", "bad_signature", 0)

	// (c) Signed by mallory's second account (same address) and by a
	// second key of her own account.
	r2, err := receipts.NewIssuer(keyMal2, ihb, mal).Receipt(16<<20, now)
	if err != nil {
		t.Fatal(err)
	}
	rSelf, err := receipts.NewIssuer(keyMalAlt, ihb, mal).Receipt(16<<20, now)
	if err != nil {
		t.Fatal(err)
	}
	res = submit("sybils", r2, rSelf)
	want("second account, same address", res, 0, "rejected", rewards.ReasonSharedIP, 0)
	want("second key, same account", res, 1, "rejected", "self_dealing", 0)

	// (d) Inflated: dave "received" far more than the torrent's size x
	// max_redownload in a new session, then more in another.
	capBytes := uint64(size) * receiptsRedown
	inflated, err := receipts.NewIssuer(keyDave, ihb, mal).Receipt(capBytes+(64<<20), now)
	if err != nil {
		t.Fatal(err)
	}
	more, err := receipts.NewIssuer(keyDave, ihb, mal).Receipt(1<<20, now)
	if err != nil {
		t.Fatal(err)
	}
	res = submit("inflated", inflated, more)
	want("inflated beyond the cap", res, 0, "accepted", "", capBytes-(4<<20))
	want("after the cap", res, 1, "rejected", rewards.ReasonCapped, 0)

	// What mallory earned: the cap, nothing more.
	credits := ledgerCredits(t, rdb, ih)
	var malTotal uint64
	for k, v := range credits {
		if k[0] == users["mallory"][0] {
			malTotal += v
			if k[1] != users["dave"][0] {
				t.Errorf("mallory credited %d bytes from %s", v, k[1])
			}
		}
	}
	t.Logf("mallory's verified upload: %d bytes; the cap size x max_redownload is %d", malTotal, capBytes)
	if malTotal != capBytes {
		t.Errorf("mallory credited %d bytes, want exactly the cap %d", malTotal, capBytes)
	}
	after := tr.receiptStats(t)
	t.Logf("receipt stats after the cheats: %+v", after)
	for reason, n := range map[string]int64{rewards.ReasonNotMonotonic: 2, "bad_signature": 2, rewards.ReasonSharedIP: 1,
		"self_dealing": 1, rewards.ReasonCapped: 1} {
		if got := after.Rejected[reason] - before.Rejected[reason]; got != n {
			t.Errorf("stats: %d more %s, want %d", got, reason, n)
		}
	}
	if d := after.CreditedBytes - before.CreditedBytes; d != int64(capBytes) {
		t.Errorf("stats: credited_bytes grew by %d, want the cap %d", d, capBytes)
	}
	if d := after.Accepted - before.Accepted; d != 2 {
		t.Errorf("stats: %d more accepted, want 2 (the genuine and the inflated receipt, the latter capped)", d)
	}
}
