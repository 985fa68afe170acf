package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Reward settings of TestRewardsLibtorrent: short epochs so two of them
// are sealed within a minute.
const (
	rewardsEpoch    = 10 * time.Second
	rewardsInterval = 2 * time.Second // tracker.announce_interval
	rewardsBudget   = "1000000000000000000000"
	// rewardsSealBy bounds the wait for an ended epoch's record: grace (2s)
	// + the settler's margin (2 x flush_interval + 2s) + one settler tick
	// (epoch/4), plus slack.
	rewardsSealBy = 2*time.Second + 3*time.Second + rewardsEpoch/4 + 8*time.Second
)

// rewardsConfig is the `seedpay serve --config` file of the test: the dev
// setup (embedded Redis) with 10 s epochs and a 2 s announce interval.
// Addresses come from the flags, the admin token from the environment.
const rewardsConfig = `
log:
  level: info
  format: console
redis:
  embedded: true
tracker:
  announce_interval: 2s
  min_announce_interval: 1s
peer_store:
  peer_lifetime: 1m
  gc_interval: 30s
registry:
  flush_interval: 1s
rewards:
  enabled: true
  flush_interval: 500ms
  scoring:
    max_gap: 10s
  epoch:
    length: 10s
    grace: 2s
    retention: 1h
  global_pool:
    id: global
    budget_per_epoch: "` + rewardsBudget + `"
`

// epochView is an epoch as GET /api/v1/epochs[/{n}] shows it.
type epochView struct {
	Epoch         int64  `json:"epoch"`
	State         string `json:"state"`
	Start         int64  `json:"start"`
	End           int64  `json:"end"`
	Root          string `json:"root"`
	Users         int    `json:"users"`
	TotalPoints   string `json:"total_points"`
	TotalCredited string `json:"total_credited"`
	Pools         []struct {
		ID        string `json:"id"`
		Budget    string `json:"budget"`
		Available string `json:"available"`
		Credited  string `json:"credited"`
	} `json:"pools"`
	UserLines []struct {
		User        string            `json:"user"`
		SeedSeconds int64             `json:"seed_seconds"`
		Points      map[string]string `json:"points"`
		Amount      string            `json:"amount"`
	} `json:"user_lines"`
}

// userRewards is GET /api/v1/users/{id}/rewards.
type userRewards struct {
	User    string `json:"user"`
	Balance string `json:"balance"`
	Epochs  []struct {
		Epoch       int64             `json:"epoch"`
		State       string            `json:"state"`
		SeedSeconds int64             `json:"seed_seconds"`
		Points      map[string]string `json:"points"`
		Credit      string            `json:"credit"`
	} `json:"epochs"`
}

// createUserID registers a user and returns its id and passkey.
func (tr *tracker) createUserID(name string) (id, passkey string) {
	tr.t.Helper()
	var u struct {
		ID      string `json:"id"`
		Passkey string `json:"passkey"`
	}
	if err := tr.api("POST", "/api/v1/users", map[string]string{"name": name}, http.StatusCreated, &u); err != nil {
		tr.t.Fatalf("create user %q: %v", name, err)
	}
	if u.ID == "" || len(u.Passkey) != 32 {
		tr.t.Fatalf("create user %q: got id %q, passkey %q", name, u.ID, u.Passkey)
	}
	return u.ID, u.Passkey
}

// firstReply waits up to 20 s for the client's first tracker reply and
// returns its Unix time.
func (c *ltClient) firstReply(t *testing.T) float64 {
	t.Helper()
	var first float64
	if !waitFor(20*time.Second, 50*time.Millisecond, func() bool {
		if r := c.replies(t); len(r) > 0 {
			first = r[0]
			return true
		}
		return c.exited()
	}) || first == 0 {
		t.Fatalf("%s got no tracker reply within 20s (%s)", c.name, c.exitString())
	}
	return first
}

// replies returns the Unix times (client clock, same host as the tracker)
// of the tracker replies a libtorrent client printed so far; it fails the
// test on a tracker or torrent error.
func (c *ltClient) replies(t *testing.T) []float64 {
	t.Helper()
	var ts []float64
	for _, e := range c.events() {
		switch e.Ev {
		case "tracker_reply":
			ts = append(ts, e.T)
		case "tracker_error", "error":
			t.Fatalf("%s: %s: %s %s %s", c.name, e.Ev, e.Msg, e.Failure, e.Error)
		}
	}
	return ts
}

func parseAmount(t *testing.T, what, s string) *big.Int {
	t.Helper()
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Sign() < 0 {
		t.Fatalf("%s: %q is not a non-negative integer", what, s)
	}
	return v
}

// within10 reports whether got is within 10% of want.
func within10(got, want float64) bool { return math.Abs(got-want) <= 0.1*want }

// TestRewardsLibtorrent: two python3-libtorrent seeders (users alice and
// bob) seed one torrent through `seedpay serve` with 10 s epochs until two
// whole epochs lie inside alice's seeding. Once the settler has sealed
// them: alice's seed seconds in each whole epoch are within 10% of its
// length, her seed seconds over all epochs within 10% of the wall-clock
// time between her first and last tracker reply, every sealed epoch
// credits her a positive amount that her balance adds up, and her Merkle
// proof verifies with `seedpay rewards verify-proof` against the epoch's
// root (and fails once its amount is tampered with).
func TestRewardsLibtorrent(t *testing.T) {
	requireLibtorrent(t)
	testStart := time.Now()
	cfg := filepath.Join(t.TempDir(), "rewards.yaml")
	if err := os.WriteFile(cfg, []byte(rewardsConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := startTracker(t, "127.0.0.1", "--config", cfg)

	aliceID, alicePK := tr.createUserID("alice-rewards")
	bobID, bobPK := tr.createUserID("bob-rewards")
	aliceDir, bobDir, torrentDir := t.TempDir(), t.TempDir(), t.TempDir()
	pl := makePayload(t, aliceDir, "payload-"+randHex(t, 4)+".bin", 1<<20)
	b, err := os.ReadFile(pl.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bobDir, pl.name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	aliceTorrent := filepath.Join(torrentDir, "alice.torrent")
	bobTorrent := filepath.Join(torrentDir, "bob.torrent")
	infoHash := makeTorrent(t, pl, tr.httpAnnounceURL(alicePK), aliceTorrent)
	if ih := makeTorrent(t, pl, tr.httpAnnounceURL(bobPK), bobTorrent); ih != infoHash {
		t.Fatalf("info hashes differ between passkeys: %s vs %s", infoHash, ih)
	}
	tr.registerTorrent(infoHash, pl.size, pl.name)

	// libtorrent waits at least min_announce_interval (default 300 s)
	// between announces whatever the tracker says; 1 s lets it follow the
	// tracker's 2 s interval.
	ltArgs := []string{"--set", "min_announce_interval=1"}
	alice := startLT(t, "libtorrent seeder alice", aliceTorrent, aliceDir, loopbackListen(t), ltArgs...)
	bob := startLT(t, "libtorrent seeder bob", bobTorrent, bobDir, loopbackListen(t), ltArgs...)

	// The first announce earns nothing; seeding is credited from it on.
	first := alice.firstReply(t)
	epochLen := int64(rewardsEpoch / time.Second)
	e0 := int64(first) / epochLen // the epoch of alice's first announce
	whole := []int64{e0 + 1, e0 + 2}
	boundary := (e0 + 3) * epochLen // end of the last whole epoch
	t.Logf("alice's first tracker reply at %.3f (epoch %d); seeding until after %d, the end of epoch %d",
		first, e0, boundary, e0+2)

	// Seed until a reply shows the tracker heard alice after the boundary
	// (an announce credits the time since the previous one, so this one
	// completes epoch e0+2), and check libtorrent follows the interval.
	deadline := time.Until(time.Unix(boundary, 0)) + 4*rewardsInterval
	if !waitFor(deadline, 50*time.Millisecond, func() bool {
		r := alice.replies(t)
		return (len(r) > 0 && r[len(r)-1] >= float64(boundary)+0.5) || alice.exited() || bob.exited()
	}) || alice.exited() || bob.exited() {
		t.Fatalf("no reply to alice after %d within %v (alice %s, bob %s, replies %v)",
			boundary, deadline, alice.exitString(), bob.exitString(), alice.replies(t))
	}
	alice.stop()
	bob.stop()
	rs := alice.replies(t)
	last := rs[len(rs)-1]
	maxGap := 0.0
	for i := 1; i < len(rs); i++ {
		maxGap = max(maxGap, rs[i]-rs[i-1])
	}
	t.Logf("alice: %d tracker replies from %.3f to %.3f (%.3f s), longest gap %.3f s; bob: %d replies",
		len(rs), first, last, last-first, maxGap, len(bob.replies(t)))
	if maxGap > 1.5*rewardsInterval.Seconds() {
		t.Errorf("libtorrent re-announced after %.3f s, want about the tracker's interval %v", maxGap, rewardsInterval)
	}

	// Wait for the settler to seal the last whole epoch (it seals in order).
	sealWait := time.Until(time.Unix(boundary, 0)) + rewardsSealBy
	var ev epochView
	if !waitFor(sealWait, 250*time.Millisecond, func() bool {
		err := tr.api("GET", fmt.Sprintf("/api/v1/epochs/%d", e0+2), nil, http.StatusOK, &ev)
		return err == nil && ev.State == "sealed"
	}) {
		t.Fatalf("epoch %d not sealed within %v of its end: %+v", e0+2, sealWait, ev)
	}
	t.Logf("epoch %d sealed %.1f s after its end", e0+2, time.Since(time.Unix(boundary, 0)).Seconds())

	var list struct {
		Epochs []epochView `json:"epochs"`
	}
	if err := tr.api("GET", "/api/v1/epochs?limit=10", nil, http.StatusOK, &list); err != nil {
		t.Fatal(err)
	}
	listed := map[int64]epochView{}
	for _, e := range list.Epochs {
		listed[e.Epoch] = e
	}

	// The sealed epochs of alice's seeding: e0 (partial) and the whole ones.
	sealed := map[int64]epochView{}
	var sealedSecs int64
	for n := e0; n <= e0+2; n++ {
		var v epochView
		if err := tr.api("GET", fmt.Sprintf("/api/v1/epochs/%d", n), nil, http.StatusOK, &v); err != nil {
			t.Fatal(err)
		}
		if v.State != "sealed" || len(v.Root) != 64 {
			t.Fatalf("epoch %d: state %q root %q, want sealed with a root", n, v.State, v.Root)
		}
		if l, ok := listed[n]; !ok || l.State != "sealed" || l.Root != v.Root {
			t.Errorf("epoch %d: /epochs lists %+v, want sealed with root %s", n, l, v.Root)
		}
		if v.Start != n*epochLen || v.End != (n+1)*epochLen {
			t.Errorf("epoch %d covers [%d, %d), want [%d, %d)", n, v.Start, v.End, n*epochLen, (n+1)*epochLen)
		}
		sealed[n] = v
		for _, l := range v.UserLines {
			if l.User == aliceID {
				sealedSecs += l.SeedSeconds
			}
		}
	}
	wantSealed := float64(boundary) - first // wall-clock seeding inside e0..e0+2
	t.Logf("alice: %d seed seconds in sealed epochs %d..%d, wall clock %.3f s", sealedSecs, e0, e0+2, wantSealed)
	if !within10(float64(sealedSecs), wantSealed) {
		t.Errorf("alice: %d seed seconds in sealed epochs %d..%d, want %.3f s +-10%%", sealedSecs, e0, e0+2, wantSealed)
	}

	budget := parseAmount(t, "budget", rewardsBudget)
	amounts := map[int64]*big.Int{}
	for _, n := range whole {
		v := sealed[n]
		var secs int64 = -1
		users := map[string]bool{}
		lineSum := new(big.Int)
		for _, l := range v.UserLines {
			users[l.User] = true
			lineSum.Add(lineSum, parseAmount(t, "amount", l.Amount))
			if l.User == aliceID {
				secs = l.SeedSeconds
				amounts[n] = parseAmount(t, "amount", l.Amount)
			}
		}
		t.Logf("epoch %d: alice %d seed seconds of %d, amount %v; users %d, total points %s, credited %s, root %s",
			n, secs, epochLen, amounts[n], v.Users, v.TotalPoints, v.TotalCredited, v.Root)
		if !within10(float64(secs), float64(epochLen)) {
			t.Errorf("epoch %d: alice has %d seed seconds, want %d (the whole epoch) +-10%%", n, secs, epochLen)
		}
		if amounts[n] == nil || amounts[n].Sign() <= 0 {
			t.Errorf("epoch %d: alice's amount is %v, want > 0", n, amounts[n])
		}
		if !users[bobID] {
			t.Errorf("epoch %d: bob, who seeded in it, has no line", n)
		}
		if v.Users != len(v.UserLines) {
			t.Errorf("epoch %d: users %d but %d user lines", n, v.Users, len(v.UserLines))
		}
		if c := parseAmount(t, "total_credited", v.TotalCredited); c.Sign() <= 0 || c.Cmp(lineSum) != 0 {
			t.Errorf("epoch %d: total_credited %s, want > 0 and the sum of the user lines %s", n, c, lineSum)
		}
		if len(v.Pools) != 1 || v.Pools[0].ID != "global" || v.Pools[0].Budget != rewardsBudget ||
			parseAmount(t, "available", v.Pools[0].Available).Cmp(budget) < 0 ||
			parseAmount(t, "credited", v.Pools[0].Credited).Cmp(parseAmount(t, "available", v.Pools[0].Available)) > 0 {
			t.Errorf("epoch %d: pools %+v, want the global pool with budget %s crediting at most what is available", n, v.Pools, rewardsBudget)
		}
	}

	// All of alice's seeding, sealed or not, against her first and last
	// reply. The killed client sent no "stopped"; wait until the tracker's
	// accounting of her last announces is flushed and stops changing.
	total, ur := settledSeedSeconds(t, tr, aliceID)
	t.Logf("alice: %d seed seconds over all epochs, wall clock between first and last reply %.3f s", total, last-first)
	if !within10(float64(total), last-first) {
		t.Errorf("alice: %d seed seconds over all epochs, want %.3f s (first to last reply) +-10%%", total, last-first)
	}

	// Credits and balance.
	sum := new(big.Int)
	credited := map[int64]*big.Int{}
	for _, e := range ur.Epochs {
		c := parseAmount(t, "credit", e.Credit)
		credited[e.Epoch] = c
		sum.Add(sum, c)
	}
	for _, n := range whole {
		c := credited[n]
		if c == nil || c.Sign() <= 0 {
			t.Errorf("epoch %d: /users/%s/rewards credit %v, want > 0", n, aliceID, c)
		} else if amounts[n] != nil && c.Cmp(amounts[n]) != 0 {
			t.Errorf("epoch %d: credit %s differs from the record's amount %s", n, c, amounts[n])
		}
	}
	for _, e := range ur.Epochs {
		if e.Epoch <= e0+2 && e.State != "sealed" {
			t.Errorf("epoch %d: state %q in /users/%s/rewards, want sealed", e.Epoch, e.State, aliceID)
		}
	}
	if bal := parseAmount(t, "balance", ur.Balance); bal.Cmp(sum) != 0 || bal.Sign() <= 0 {
		t.Errorf("alice's balance %s, want the sum of her credits %s (> 0)", bal, sum)
	}
	t.Logf("alice: balance %s = sum of credits over %d epochs", ur.Balance, len(ur.Epochs))

	// The proof of alice's credit in the last whole epoch.
	n := whole[len(whole)-1]
	if amounts[n] == nil {
		t.Fatalf("epoch %d has no line for alice: no proof to check", n)
	}
	root := sealed[n].Root
	var raw json.RawMessage
	if err := tr.api("GET", fmt.Sprintf("/api/v1/epochs/%d/proof/%s", n, aliceID), nil, http.StatusOK, &raw); err != nil {
		t.Fatal(err)
	}
	var proof map[string]any
	if err := json.Unmarshal(raw, &proof); err != nil {
		t.Fatal(err)
	}
	if proof["root"] != root || proof["user"] != aliceID || proof["amount"] != amounts[n].String() {
		t.Errorf("proof %s: want root %s, user %s, amount %s", raw, root, aliceID, amounts[n])
	}
	if path, _ := proof["path"].([]any); len(path) == 0 {
		t.Errorf("proof %s: empty path, but the epoch has alice and bob", raw)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "proof.json")
	if err := os.WriteFile(good, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(30*time.Second, seedpayBin, "rewards", "verify-proof", "--root", root, good)
	if err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("verify-proof of epoch %d's proof: %v: %s", n, err, out)
	} else {
		t.Logf("verify-proof: %s", strings.TrimSpace(out))
	}

	// The same from stdin.
	if out, err := runCmd(30*time.Second, "sh", "-c", `exec "$0" rewards verify-proof --root "$1" - <"$2"`, seedpayBin, root, good); err != nil || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("verify-proof of epoch %d's proof on stdin: %v: %s", n, err, out)
	}

	// Tampered amount: the leaf no longer matches.
	proof["amount"] = new(big.Int).Add(amounts[n], big.NewInt(1)).String()
	tb, err := json.Marshal(proof)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "tampered.json")
	if err := os.WriteFile(bad, tb, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(30*time.Second, seedpayBin, "rewards", "verify-proof", "--root", root, bad); err == nil {
		t.Errorf("verify-proof accepted a proof with a tampered amount: %s", out)
	} else {
		t.Logf("tampered amount refused: %s", strings.TrimSpace(out))
	}
	// The genuine proof against another epoch's root.
	if other := sealed[whole[0]].Root; other != root {
		if out, err := runCmd(30*time.Second, seedpayBin, "rewards", "verify-proof", "--root", other, good); err == nil {
			t.Errorf("verify-proof accepted epoch %d's proof against epoch %d's root: %s", n, whole[0], out)
		}
	}
	t.Logf("runtime %v", time.Since(testStart).Round(100*time.Millisecond))
}

// settledSeedSeconds waits (bounded) until a user's seed seconds over all
// epochs stop changing, i.e. the tracker has flushed their last announces,
// and returns the total with the last rewards view.
func settledSeedSeconds(t *testing.T, tr *tracker, userID string) (int64, userRewards) {
	t.Helper()
	var ur userRewards
	var total, prev int64 = -1, -2
	if !waitFor(10*time.Second, time.Second, func() bool {
		if err := tr.api("GET", "/api/v1/users/"+userID+"/rewards", nil, http.StatusOK, &ur); err != nil {
			t.Log(err)
			return false
		}
		prev, total = total, 0
		for _, e := range ur.Epochs {
			total += e.SeedSeconds
		}
		return total == prev
	}) {
		t.Fatalf("user %s: seed seconds did not settle: %+v", userID, ur)
	}
	return total, ur
}
