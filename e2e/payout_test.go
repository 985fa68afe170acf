package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/seedpay/seedpay/chain"
	"github.com/seedpay/seedpay/chain/tronsim"
	"github.com/seedpay/seedpay/rewards"
)

// payoutConfig is rewardsConfig (embedded Redis, 10 s epochs, 2 s announce
// interval) with the simulated chain and payouts on: every sealed credit is
// paid out at once (min_payout 1 base unit, a pass every second).
const payoutConfig = rewardsConfig + `
chain:
  simulated: true
payouts:
  enabled: true
  min_payout: "1"
  interval: 1s
`

// simBanner is the line `seedpay serve` prints on stderr when it runs
// tronsim in the process.
var simBanner = regexp.MustCompile(`TRON is SIMULATED: tronsim at (\S+), token (T\w+), hot wallet (T\w+)`)

// payoutView is a payout as GET /api/v1/users/{id}/payouts lists it.
type payoutView struct {
	ID      string `json:"id"`
	User    string `json:"user"`
	Address string `json:"address"`
	Amount  string `json:"amount"`
	State   string `json:"state"`
	Reason  string `json:"reason"`
	Txs     []struct {
		TxID       string `json:"txid"`
		Raw        string `json:"raw"`
		Expiration int64  `json:"expiration"`
		Dead       bool   `json:"dead"`
	} `json:"txs"`
}

// liveTxID is the txid of the payout's transaction that is not dead ("" if
// none is).
func (p payoutView) liveTxID() string {
	for _, tx := range p.Txs {
		if !tx.Dead {
			return tx.TxID
		}
	}
	return ""
}

// simChain waits for the line `seedpay serve` prints about its simulated
// chain and returns tronsim's address, the token and the hot wallet.
func (tr *tracker) simChain() (node, token, hotWallet string) {
	tr.t.Helper()
	var m []string
	if !waitFor(5*time.Second, 50*time.Millisecond, func() bool {
		m = simBanner.FindStringSubmatch(tr.proc.out.String())
		return m != nil
	}) {
		tr.t.Fatalf("seedpay serve printed no %q line", "TRON is SIMULATED")
	}
	return m[1], m[2], m[3]
}

// tokenBalance reads addr's token balance on tronsim through c.
func tokenBalance(t *testing.T, c *chain.Client, addr string) *big.Int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := c.TokenBalance(ctx, addr)
	if err != nil {
		t.Fatalf("token balance of %s on tronsim: %v", addr, err)
	}
	return b
}

// apiStatus performs an admin API call and returns the status and body,
// whatever the status.
func (tr *tracker) apiStatus(method, path string, in any) (int, string, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequest(method, "http://"+tr.apiAddr+path, bytes.NewReader(b))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+tr.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := tr.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body), err
}

// TestPayoutLibtorrent, on the dev default (embedded Redis, tronsim in the
// process): a user links a TRON address by signing the challenge (a
// tampered signature is refused and does not use the challenge up), seeds
// with python3-libtorrent through two whole 10 s epochs, and stops. Once
// every epoch of the seeding is sealed, all the user's payouts are
// confirmed, the balance is 0, and the sum of the confirmed payouts equals
// the sum of the credits and the token balance of the linked address on
// tronsim (read through chain.Client); each payout's transaction is
// confirmed on chain, the hot wallet lost exactly that sum, and `seedpay
// payouts list --user` shows the payouts with their txids.
func TestPayoutLibtorrent(t *testing.T) {
	requireLibtorrent(t)
	testStart := time.Now()
	cfg := filepath.Join(t.TempDir(), "payout.yaml")
	if err := os.WriteFile(cfg, []byte(payoutConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := startTracker(t, "127.0.0.1", "--config", cfg)

	// The simulated chain: printed before the API is ready.
	nodeAddr, token, hotWallet := tr.simChain()
	if !strings.HasPrefix(nodeAddr, "127.0.0.1:") {
		t.Fatalf("tronsim listens on %s, want loopback", nodeAddr)
	}
	t.Logf("tronsim at %s, token %s, hot wallet %s", nodeAddr, token, hotWallet)
	cc, err := chain.New(chain.SimConfig(nodeAddr, token), nil)
	if err != nil {
		t.Fatalf("chain client for tronsim: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	balanceOf := func(addr string) *big.Int { return tokenBalance(t, cc, addr) }
	hotStart := balanceOf(hotWallet)
	if want := tronsim.TokenUnits(big.NewInt(tronsim.DevTokens), 18); hotStart.Cmp(want) != 0 {
		t.Errorf("hot wallet holds %s base units at start, want %s", hotStart, want)
	}

	// Register the user and link a fresh key's address.
	userID, passkey := tr.createUserID("carol-payout")
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr := chain.AddressOf(key)
	if got := balanceOf(addr); got.Sign() != 0 {
		t.Fatalf("fresh address %s holds %s tokens before any payout", addr, got)
	}
	var ch struct {
		Message   string `json:"message"`
		Nonce     string `json:"nonce"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := tr.api("GET", "/api/v1/users/"+userID+"/payout-address/challenge", nil, http.StatusOK, &ch); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ch.Message, userID) || !strings.Contains(ch.Message, ch.Nonce) || ch.Nonce == "" {
		t.Fatalf("challenge %+v: the message should name the user %s and the nonce", ch, userID)
	}
	sig, err := chain.SignMessage(key, []byte(ch.Message))
	if err != nil {
		t.Fatal(err)
	}
	linkPath := "/api/v1/users/" + userID + "/payout-address"
	link := func(sig []byte) map[string]string {
		return map[string]string{"address": addr, "message": ch.Message, "signature": "0x" + hex.EncodeToString(sig)}
	}
	tampered := bytes.Clone(sig)
	tampered[40] ^= 0x01 // a bit of S: recovers another key
	status, body, err := tr.apiStatus("PUT", linkPath, link(tampered))
	if err != nil {
		t.Fatal(err)
	}
	if status/100 != 4 {
		t.Fatalf("PUT %s with a tampered signature: status %d, want 4xx: %s", linkPath, status, body)
	}
	t.Logf("tampered signature refused: %d %s", status, strings.TrimSpace(body))
	var linked struct {
		User    string `json:"user"`
		Address string `json:"address"`
	}
	if err := tr.api("GET", linkPath, nil, http.StatusOK, &linked); err != nil || linked.Address != "" {
		t.Fatalf("after the refused link the user's payout address is %q (err %v), want none", linked.Address, err)
	}
	// The refused attempt left the challenge open: the genuine one links.
	if err := tr.api("PUT", linkPath, link(sig), http.StatusOK, &linked); err != nil {
		t.Fatal(err)
	}
	if linked.User != userID || linked.Address != addr {
		t.Fatalf("PUT %s answered %+v, want user %s address %s", linkPath, linked, userID, addr)
	}
	if status, body, err := tr.apiStatus("PUT", linkPath, link(sig)); err != nil || status != http.StatusConflict {
		t.Errorf("replaying the used challenge: status %d (err %v), want 409: %s", status, err, body)
	}
	if err := tr.api("GET", linkPath, nil, http.StatusOK, &linked); err != nil || linked.Address != addr {
		t.Fatalf("GET %s: %+v (err %v), want address %s", linkPath, linked, err, addr)
	}
	t.Logf("user %s linked payout address %s", userID, addr)

	// Seed through two whole epochs, as in TestRewardsLibtorrent.
	dir, torrentDir := t.TempDir(), t.TempDir()
	pl := makePayload(t, dir, "payout-"+randHex(t, 4)+".bin", 1<<20)
	torrent := filepath.Join(torrentDir, "carol.torrent")
	infoHash := makeTorrent(t, pl, tr.httpAnnounceURL(passkey), torrent)
	tr.registerTorrent(infoHash, pl.size, pl.name)
	seeder := startLT(t, "libtorrent seeder carol", torrent, dir, loopbackListen(t), "--set", "min_announce_interval=1")

	first := seeder.firstReply(t)
	epochLen := int64(rewardsEpoch / time.Second)
	e0 := int64(first) / epochLen
	whole := []int64{e0 + 1, e0 + 2}
	boundary := (e0 + 3) * epochLen
	t.Logf("first tracker reply at %.3f (epoch %d); seeding until after %d, the end of epoch %d", first, e0, boundary, e0+2)
	deadline := time.Until(time.Unix(boundary, 0)) + 4*rewardsInterval
	if !waitFor(deadline, 50*time.Millisecond, func() bool {
		r := seeder.replies(t)
		return (len(r) > 0 && r[len(r)-1] >= float64(boundary)+0.5) || seeder.exited()
	}) || seeder.exited() {
		t.Fatalf("no reply to the seeder after %d within %v (%s, replies %v)", boundary, deadline, seeder.exitString(), seeder.replies(t))
	}
	seeder.stop()
	stopped := time.Now()
	rs := seeder.replies(t)
	t.Logf("seeder: %d tracker replies from %.3f to %.3f, stopped at %.3f",
		len(rs), first, rs[len(rs)-1], float64(stopped.UnixNano())/1e9)

	// Every announce the tracker got lies in an epoch up to the one the
	// seeder was stopped in; the settler seals in order, so once that one
	// is sealed no credit for the user is still to come.
	lastEpoch := stopped.Unix() / epochLen
	sealWait := time.Until(time.Unix((lastEpoch+1)*epochLen, 0)) + rewardsSealBy
	var ev epochView
	if !waitFor(sealWait, 250*time.Millisecond, func() bool {
		err := tr.api("GET", fmt.Sprintf("/api/v1/epochs/%d", lastEpoch), nil, http.StatusOK, &ev)
		return err == nil && ev.State == "sealed"
	}) {
		t.Fatalf("epoch %d not sealed within %v: %+v", lastEpoch, sealWait, ev)
	}
	t.Logf("epoch %d (the last of the seeding) sealed %.1f s after the seeder stopped", lastEpoch, time.Since(stopped).Seconds())

	// Wait until everything credited is paid and confirmed.
	var (
		ur      userRewards
		payouts []payoutView
		credits *big.Int
		paid    *big.Int
		why     string
	)
	payWait := 20 * time.Second
	if !waitFor(payWait, 250*time.Millisecond, func() bool {
		var page struct {
			Payouts []payoutView `json:"payouts"`
		}
		if err := tr.api("GET", "/api/v1/users/"+userID+"/payouts", nil, http.StatusOK, &page); err != nil {
			why = err.Error()
			return false
		}
		if err := tr.api("GET", "/api/v1/users/"+userID+"/rewards", nil, http.StatusOK, &ur); err != nil {
			why = err.Error()
			return false
		}
		payouts, credits, paid = page.Payouts, new(big.Int), new(big.Int)
		for _, e := range ur.Epochs {
			if c, ok := new(big.Int).SetString(e.Credit, 10); ok {
				credits.Add(credits, c)
			}
		}
		for _, p := range payouts {
			if p.State != rewards.PayoutConfirmed {
				why = fmt.Sprintf("payout %s is %s (%s)", p.ID, p.State, p.Reason)
				return false
			}
			if a, ok := new(big.Int).SetString(p.Amount, 10); ok {
				paid.Add(paid, a)
			}
		}
		switch {
		case len(payouts) == 0:
			why = "no payout yet"
		case ur.Balance != "0":
			why = "balance " + ur.Balance
		case paid.Cmp(credits) != 0:
			why = fmt.Sprintf("paid %s of credits %s", paid, credits)
		default:
			return true
		}
		return false
	}) {
		t.Fatalf("the user's credits not all paid and confirmed within %v of the last seal: %s; payouts %+v, rewards %+v",
			payWait, why, payouts, ur)
	}
	t.Logf("all %d payouts confirmed %.1f s after the seeder stopped", len(payouts), time.Since(stopped).Seconds())

	// Credits: positive in both whole epochs, every epoch sealed.
	credited := map[int64]*big.Int{}
	sumCredits := new(big.Int)
	for _, e := range ur.Epochs {
		c := parseAmount(t, "credit", e.Credit)
		credited[e.Epoch] = c
		sumCredits.Add(sumCredits, c)
		t.Logf("epoch %d: %s, %d seed seconds, credit %s", e.Epoch, e.State, e.SeedSeconds, c)
		if e.State != "sealed" {
			t.Errorf("epoch %d is %s in /users/%s/rewards, want sealed", e.Epoch, e.State, userID)
		}
	}
	for _, n := range whole {
		if c := credited[n]; c == nil || c.Sign() <= 0 {
			t.Errorf("whole epoch %d: credit %v, want > 0", n, c)
		}
	}

	// Payouts: each to the linked address, its live transaction confirmed
	// on chain, no dead one confirmed.
	sumPaid := new(big.Int)
	ids := map[string]bool{}
	for _, p := range payouts {
		amt := parseAmount(t, "payout amount", p.Amount)
		sumPaid.Add(sumPaid, amt)
		ids[p.ID] = true
		if p.User != userID || p.Address != addr || amt.Sign() <= 0 {
			t.Errorf("payout %s: user %s address %s amount %s, want user %s address %s and a positive amount",
				p.ID, p.User, p.Address, p.Amount, userID, addr)
		}
		live := 0
		for _, tx := range p.Txs {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			st, err := cc.Status(ctx, tx.TxID)
			cancel()
			if err != nil {
				t.Errorf("payout %s: status of tx %s on tronsim: %v", p.ID, tx.TxID, err)
				continue
			}
			if tx.Dead {
				if st.State == rewards.TxConfirmed {
					t.Errorf("payout %s: dead tx %s is confirmed on chain (paid twice?)", p.ID, tx.TxID)
				}
				continue
			}
			live++
			if st.State != rewards.TxConfirmed {
				t.Errorf("payout %s: tx %s has chain status %v (%s), want confirmed", p.ID, tx.TxID, st.State, st.Reason)
			}
		}
		if live != 1 {
			t.Errorf("payout %s: %d live transactions, want 1: %+v", p.ID, live, p.Txs)
		}
		t.Logf("payout %s: %s to %s, %s, %d tx(s), txid %s", p.ID, p.Amount, p.Address, p.State, len(p.Txs), p.liveTxID())
	}

	// The sums and the chain.
	onChain := balanceOf(addr)
	hotEnd := balanceOf(hotWallet)
	t.Logf("credits %s, confirmed payouts %s (%d), balance at %s on tronsim %s; hot wallet %s -> %s",
		sumCredits, sumPaid, len(payouts), addr, onChain, hotStart, hotEnd)
	if sumPaid.Cmp(sumCredits) != 0 || sumPaid.Sign() <= 0 {
		t.Errorf("confirmed payouts sum to %s, want the sum of the credits %s (> 0)", sumPaid, sumCredits)
	}
	if onChain.Cmp(sumCredits) != 0 {
		t.Errorf("token balance of %s on tronsim is %s, want the sum of the credits %s", addr, onChain, sumCredits)
	}
	if spent := new(big.Int).Sub(hotStart, hotEnd); spent.Cmp(sumPaid) != 0 {
		t.Errorf("the hot wallet spent %s tokens, want the confirmed payouts %s", spent, sumPaid)
	}

	// The confirmed list has them all.
	var conf struct {
		Payouts []payoutView `json:"payouts"`
	}
	if err := tr.api("GET", "/api/v1/payouts?state=confirmed&limit=1000", nil, http.StatusOK, &conf); err != nil {
		t.Fatal(err)
	}
	for _, p := range conf.Payouts {
		delete(ids, p.ID)
	}
	if len(ids) != 0 {
		t.Errorf("GET /api/v1/payouts?state=confirmed misses the user's payouts %v", ids)
	}

	// The CLI shows each payout, confirmed, with its txid.
	out, err := runCmd(30*time.Second, "env", "SEEDPAY_ADMIN_TOKEN="+tr.token,
		seedpayBin, "payouts", "list", "--api", "http://"+tr.apiAddr, "--user", userID)
	if err != nil {
		t.Fatalf("seedpay payouts list --user: %v", err)
	}
	t.Logf("seedpay payouts list --user %s:\n%s", userID, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(payouts)+1 || !strings.HasPrefix(lines[0], "ID") {
		t.Errorf("seedpay payouts list --user: %d lines, want a header and %d payouts", len(lines), len(payouts))
	}
	for _, p := range payouts {
		found := false
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) >= 5 && f[0] == p.ID {
				found = true
				if f[1] != userID || f[2] != p.Amount || f[3] != rewards.PayoutConfirmed || f[4] != p.liveTxID() || p.liveTxID() == "" {
					t.Errorf("seedpay payouts list: line %q, want %s %s %s %s %s", l, p.ID, userID, p.Amount, rewards.PayoutConfirmed, p.liveTxID())
				}
			}
		}
		if !found {
			t.Errorf("seedpay payouts list --user does not list payout %s", p.ID)
		}
	}
	t.Logf("runtime %v", time.Since(testStart).Round(100*time.Millisecond))
}
