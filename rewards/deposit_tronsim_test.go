package rewards_test

import (
	"context"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/chain"
	"github.com/seedpay/seedpay/chain/tronsim"
	"github.com/seedpay/seedpay/internal/redistest"
	"github.com/seedpay/seedpay/rewards"
)

// keystoreKeys makes deposit keys as seedpay serve does.
type keystoreKeys struct{ dir string }

func (k keystoreKeys) NewDepositAddress() (string, error) {
	addr, _, err := chain.NewKeystoreFile(k.dir, "test passphrase", true)
	return addr, err
}

// TestDepositWatcherOnTronsim runs the watcher through the real chain client
// against tronsim: a deposit is credited once it has enough confirmations,
// exactly once across watcher restarts and rescans, and a transfer to
// someone else is not ours.
func TestDepositWatcherOnTronsim(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	node, token, _, err := tronsim.NewDev("127.0.0.1:0", tronsim.Config{BlockPeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	rdb := redistest.Start(t).Client(t)
	dir := t.TempDir()
	pools := rewards.NewPools(rdb, keystoreKeys{dir}, func(a string) error { _, err := chain.ParseAddress(a); return err }, "0", zap.NewNop())
	pool, err := pools.Create(ctx, rewards.PoolSpec{Name: "films", Owner: "studio", RefundAddress: "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE",
		Torrents: []string{strings.Repeat("ab", 20)}, BudgetPerEpoch: "1000"})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 1 || !strings.Contains(strings.ToLower(files[0].Name()), "utc--") {
		t.Fatalf("keystore dir holds %v, want one keystore file", files)
	}

	reader, err := chain.New(chain.SimConfig(node.Addr(), token), nil) // read-only, as in production
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reader.Close() })
	watcher := func() *rewards.DepositWatcher {
		cfg := rewards.DefaultDepositConfig()
		cfg.Enabled, cfg.Confirmations = true, 3
		w, err := rewards.NewDepositWatcher(rdb, reader, cfg, prometheus.NewRegistry(), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := watcher()
	if _, err := w.Poll(ctx); err != nil { // first run: the cursor starts at the confirmed head
		t.Fatal(err)
	}
	start, _ := w.Cursor(ctx)

	key, _, err := node.NewWallet(tronsim.TokenUnits(big.NewInt(100), 18))
	if err != nil {
		t.Fatal(err)
	}
	funder, err := chain.NewWithKey(chain.SimConfig(node.Addr(), token), key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { funder.Close() })
	amount, _ := new(big.Int).SetString("12500000000000000000", 10) // 12.5 tokens
	if _, err := funder.Send(ctx, pool.DepositAddress, amount); err != nil {
		t.Fatal(err)
	}
	if _, err := funder.Send(ctx, "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE", big.NewInt(7)); err != nil { // not a deposit address
		t.Fatal(err)
	}
	block := node.ProduceBlock()
	funded := func() string {
		t.Helper()
		v, err := pools.Get(ctx, pool.ID)
		if err != nil {
			t.Fatal(err)
		}
		return v.Funded
	}
	for range 2 { // 0, 1 and 2 blocks on top: not confirmed yet
		if n, err := w.Poll(ctx); err != nil || n != 0 || funded() != "0" {
			t.Fatalf("credited below the confirmation depth (head %d, block %d): %d %v %s", node.Head(), block, n, err, funded())
		}
		node.ProduceBlock()
	}
	if n, err := w.Poll(ctx); err != nil || n != 0 || funded() != "0" {
		t.Fatalf("credited with 2 confirmations: %d %v", n, err)
	}
	node.ProduceBlock() // 3 on top
	if n, err := w.Poll(ctx); err != nil || n != 1 || funded() != amount.String() {
		t.Fatalf("confirmed deposit: %d %v funded %s", n, err, funded())
	}

	// Restarts: a fresh watcher, then one rescanning from the start.
	for _, rescan := range []bool{false, true} {
		if rescan {
			rdb.Set(ctx, "sp:deposits:cursor", start, 0)
		}
		w = watcher()
		node.ProduceBlock()
		if n, err := w.Poll(ctx); err != nil || n != 0 {
			t.Fatalf("restart (rescan %v): %d %v", rescan, n, err)
		}
		if funded() != amount.String() {
			t.Fatalf("funded %s after restart, want %s once", funded(), amount)
		}
	}
	deps, err := pools.Deposits(ctx, pool.ID, 10)
	if err != nil || len(deps) != 1 || deps[0].Block != block || deps[0].Amount != amount.String() || deps[0].To != pool.DepositAddress {
		t.Fatalf("deposits %+v %v", deps, err)
	}
	if un, _ := pools.Deposits(ctx, "", 10); len(un) != 0 {
		t.Fatalf("unclaimed %+v", un)
	}
}
