package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/seedpay/seedpay/chain"
	"github.com/seedpay/seedpay/rewards"
)

// poolView is a pool as GET /api/v1/pools/{id} shows it.
type poolView struct {
	ID             string   `json:"id"`
	State          string   `json:"state"`
	DepositAddress string   `json:"deposit_address"`
	BudgetPerEpoch string   `json:"budget_per_epoch"`
	Torrents       []string `json:"torrents"`
	Funded         string   `json:"funded"`
	Spent          string   `json:"spent"`
	Remaining      string   `json:"remaining"`
	EpochSpend     []struct {
		Epoch  int64  `json:"epoch"`
		Amount string `json:"amount"`
	} `json:"epoch_spend"`
	TorrentSpend []struct {
		InfoHash string `json:"info_hash"`
		Amount   string `json:"amount"`
	} `json:"torrent_spend"`
}

// linkAddress links key's TRON address to the user by signing the API's
// one-time challenge (TestPayoutLibtorrent checks the refusals) and
// returns the address.
func (tr *tracker) linkAddress(userID string) string {
	t := tr.t
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr := chain.AddressOf(key)
	var ch struct {
		Message string `json:"message"`
	}
	path := "/api/v1/users/" + userID + "/payout-address"
	if err := tr.api("GET", path+"/challenge", nil, http.StatusOK, &ch); err != nil {
		t.Fatal(err)
	}
	sig, err := chain.SignMessage(key, []byte(ch.Message))
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]string{"address": addr, "message": ch.Message, "signature": "0x" + hex.EncodeToString(sig)}
	if err := tr.api("PUT", path, body, http.StatusOK, nil); err != nil {
		t.Fatalf("link %s to %s: %v", addr, userID, err)
	}
	return addr
}

// TestPoolDepositSeedPayout, on the dev default (embedded Redis, tronsim
// in the process): a content owner's wallet (funded through
// chain.sim_fund) sends tokens to a new pool's deposit address with the
// real client; the watcher credits the pool exactly that, once, after the
// confirmations. A user then seeds the pool's torrent with
// python3-libtorrent through a whole epoch. Every sealed epoch's pool line
// pays min(budget, remaining) to the seeder, the pool's spend is the sum
// of those lines (all on its one torrent), remaining = funded - spent,
// and the seeder's credits (global + pool) are all paid and confirmed on
// chain to the linked address. The deposit stays on the deposit address
// (no sweep) and the hot wallet paid exactly the payouts.
func TestPoolDepositSeedPayout(t *testing.T) {
	requireLibtorrent(t)
	ownerKey, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ownerAddr := chain.AddressOf(ownerKey)
	const budget = "3000000000000000000" // 3 tokens per epoch
	deposit := new(big.Int).Mul(big.NewInt(7), big.NewInt(1e18))
	config := rewardsConfig + `
chain:
  simulated: true
  sim_fund: ["` + ownerAddr + `=50"]
payouts:
  enabled: true
  min_payout: "1"
  interval: 1s
pools:
  deposits:
    enabled: true
    confirmations: 3
    poll_interval: 500ms
`
	cfg := filepath.Join(t.TempDir(), "pools.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := startTracker(t, "127.0.0.1", "--config", cfg)
	nodeAddr, token, hotWallet := tr.simChain()
	owner, err := chain.NewWithKey(chain.SimConfig(nodeAddr, token), ownerKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = owner.Close() })
	balanceOf := func(addr string) *big.Int { return tokenBalance(t, owner, addr) }
	if got, want := balanceOf(ownerAddr), new(big.Int).Mul(big.NewInt(50), big.NewInt(1e18)); got.Cmp(want) != 0 {
		t.Fatalf("chain.sim_fund gave the owner %s base units, want %s", got, want)
	}
	hotStart := balanceOf(hotWallet)

	userID, passkey := tr.createUserID("dora-pool")
	payTo := tr.linkAddress(userID)
	dir, torrentDir := t.TempDir(), t.TempDir()
	pl := makePayload(t, dir, "pool-"+randHex(t, 4)+".bin", 1<<20)
	torrent := filepath.Join(torrentDir, "dora.torrent")
	infoHash := makeTorrent(t, pl, tr.httpAnnounceURL(passkey), torrent)
	tr.registerTorrent(infoHash, pl.size, pl.name)

	// The pool, funded from the owner's wallet through the real client.
	var pool poolView
	if err := tr.api("POST", "/api/v1/pools", map[string]any{"name": "ACME films", "owner": "acme",
		"refund_address": ownerAddr, "torrents": []string{infoHash}, "budget_per_epoch": budget},
		http.StatusCreated, &pool); err != nil {
		t.Fatal(err)
	}
	if _, err := chain.ParseAddress(pool.DepositAddress); err != nil || pool.Funded != "0" {
		t.Fatalf("new pool %+v: want a deposit address and nothing funded (%v)", pool, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	txid, err := owner.Send(ctx, pool.DepositAddress, deposit)
	cancel()
	if err != nil {
		t.Fatalf("deposit to %s: %v", pool.DepositAddress, err)
	}
	sent := time.Now()
	if !waitFor(20*time.Second, 200*time.Millisecond, func() bool {
		return tr.api("GET", "/api/v1/pools/"+pool.ID, nil, http.StatusOK, &pool) == nil && pool.Funded != "0"
	}) {
		t.Fatalf("pool %s not funded within 20s of deposit %s: %+v", pool.ID, txid, pool)
	}
	t.Logf("deposit %s of %s credited to pool %s after %.1fs", txid, deposit, pool.ID, time.Since(sent).Seconds())
	if pool.Funded != deposit.String() || pool.Remaining != deposit.String() {
		t.Fatalf("pool %s: funded %s remaining %s, want the deposit %s", pool.ID, pool.Funded, pool.Remaining, deposit)
	}
	var deps struct {
		Deposits []rewards.Deposit `json:"deposits"`
	}
	if err := tr.api("GET", "/api/v1/pools/"+pool.ID+"/deposits", nil, http.StatusOK, &deps); err != nil {
		t.Fatal(err)
	}
	if len(deps.Deposits) != 1 || deps.Deposits[0].TxID != txid || deps.Deposits[0].From != ownerAddr || deps.Deposits[0].Amount != deposit.String() {
		t.Fatalf("pool %s deposits %+v, want one of %s from %s (txid %s)", pool.ID, deps.Deposits, deposit, ownerAddr, txid)
	}

	// Seed through one whole epoch.
	seeder := startLT(t, "libtorrent seeder dora", torrent, dir, loopbackListen(t), "--set", "min_announce_interval=1")
	first := seeder.firstReply(t)
	epochLen := int64(rewardsEpoch / time.Second)
	e0 := int64(first) / epochLen
	boundary := (e0 + 2) * epochLen
	if !waitFor(time.Until(time.Unix(boundary, 0))+4*rewardsInterval, 50*time.Millisecond, func() bool {
		r := seeder.replies(t)
		return (len(r) > 0 && r[len(r)-1] >= float64(boundary)+0.5) || seeder.exited()
	}) || seeder.exited() {
		t.Fatalf("no reply to the seeder after %d (%s)", boundary, seeder.exitString())
	}
	seeder.stop()
	stopped := time.Now()
	lastEpoch := stopped.Unix() / epochLen
	var ev epochView
	if !waitFor(time.Until(time.Unix((lastEpoch+1)*epochLen, 0))+rewardsSealBy, 250*time.Millisecond, func() bool {
		return tr.api("GET", fmt.Sprintf("/api/v1/epochs/%d", lastEpoch), nil, http.StatusOK, &ev) == nil && ev.State == "sealed"
	}) {
		t.Fatalf("epoch %d not sealed: %+v", lastEpoch, ev)
	}

	// Each sealed epoch: the pool's line pays at most its budget, all of it
	// to the lone seeder; the pool's spend adds up.
	var ur userRewards
	if err := tr.api("GET", "/api/v1/users/"+userID+"/rewards", nil, http.StatusOK, &ur); err != nil {
		t.Fatal(err)
	}
	budgetN := parseAmount(t, "budget", budget)
	poolPaid, credits := new(big.Int), new(big.Int)
	paidEpochs := 0
	for _, e := range ur.Epochs {
		credit := parseAmount(t, "credit", e.Credit)
		credits.Add(credits, credit)
		if err := tr.api("GET", fmt.Sprintf("/api/v1/epochs/%d", e.Epoch), nil, http.StatusOK, &ev); err != nil {
			t.Fatal(err)
		}
		lines := new(big.Int)
		var fromPool *big.Int
		for _, p := range ev.Pools {
			c := parseAmount(t, "pool credited", p.Credited)
			lines.Add(lines, c)
			if p.ID == pool.ID {
				fromPool = c
			}
		}
		if lines.Cmp(credit) != 0 {
			t.Errorf("epoch %d: the pools credited %s, the lone seeder got %s", e.Epoch, lines, credit)
		}
		if e.Points[pool.ID] != "" && e.Points[pool.ID] != "0" {
			if fromPool == nil || fromPool.Sign() <= 0 || fromPool.Cmp(budgetN) > 0 {
				t.Errorf("epoch %d: seeder has %s points in pool %s, pool paid %v, want 0 < paid <= budget %s", e.Epoch, e.Points[pool.ID], pool.ID, fromPool, budget)
			} else {
				paidEpochs++
				poolPaid.Add(poolPaid, fromPool)
			}
		}
		t.Logf("epoch %d: %d seed s, points %v, credit %s (pool %s: %v)", e.Epoch, e.SeedSeconds, e.Points, credit, pool.ID, fromPool)
	}
	if paidEpochs < 1 {
		t.Fatalf("no sealed epoch paid the seeder from pool %s: %+v", pool.ID, ur)
	}
	if err := tr.api("GET", "/api/v1/pools/"+pool.ID, nil, http.StatusOK, &pool); err != nil {
		t.Fatal(err)
	}
	spent := parseAmount(t, "spent", pool.Spent)
	if spent.Cmp(poolPaid) != 0 {
		t.Errorf("pool %s spent %s, the sealed epochs paid %s from it", pool.ID, spent, poolPaid)
	}
	if want := new(big.Int).Sub(deposit, spent); pool.Remaining != want.String() {
		t.Errorf("pool %s remaining %s, want funded %s - spent %s = %s", pool.ID, pool.Remaining, deposit, spent, want)
	}
	if len(pool.TorrentSpend) != 1 || pool.TorrentSpend[0].InfoHash != infoHash || pool.TorrentSpend[0].Amount != pool.Spent {
		t.Errorf("pool %s torrent spend %+v, want all %s on %s", pool.ID, pool.TorrentSpend, pool.Spent, infoHash)
	}
	t.Logf("pool %s: funded %s, spent %s over %d epochs, remaining %s", pool.ID, pool.Funded, pool.Spent, paidEpochs, pool.Remaining)

	// Paid on chain: the seeder's address holds every credit.
	var why string
	if !waitFor(20*time.Second, 250*time.Millisecond, func() bool {
		if err := tr.api("GET", "/api/v1/users/"+userID+"/rewards", nil, http.StatusOK, &ur); err != nil {
			why = err.Error()
			return false
		}
		got := balanceOf(payTo)
		why = fmt.Sprintf("balance %s unpaid, %s on chain of credits %s", ur.Balance, got, credits)
		return ur.Balance == "0" && got.Cmp(credits) == 0
	}) {
		t.Fatalf("the seeder's credits were not all paid on chain within 20s: %s", why)
	}
	if spentHot := new(big.Int).Sub(hotStart, balanceOf(hotWallet)); spentHot.Cmp(credits) != 0 {
		t.Errorf("the hot wallet paid %s, want the credits %s", spentHot, credits)
	}
	if got := balanceOf(pool.DepositAddress); got.Cmp(deposit) != 0 {
		t.Errorf("deposit address %s holds %s, want the deposit %s (payouts leave from the hot wallet)", pool.DepositAddress, got, deposit)
	}
	if !strings.Contains(tr.proc.out.String(), "wallet funded") {
		t.Errorf("serve did not log the chain.sim_fund funding")
	}
}
