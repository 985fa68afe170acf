package payoutcrash

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/chain"
	"github.com/seedpay/seedpay/chain/tronsim"
	"github.com/seedpay/seedpay/internal/redistest"
	"github.com/seedpay/seedpay/rewards"
)

// The test binary doubles as the payer process.
const (
	envRedis   = "SEEDPAY_CRASH_REDIS"
	envNode    = "SEEDPAY_CRASH_NODE"
	envToken   = "SEEDPAY_CRASH_TOKEN"
	envHotKey  = "SEEDPAY_CRASH_HOT_KEY"
	envCrashAt = "SEEDPAY_CRASH_AT"
	envUntil   = "SEEDPAY_CRASH_UNTIL" // "final": run until no payout is open
)

func TestMain(m *testing.M) {
	if os.Getenv(envRedis) != "" {
		os.Exit(runChildPayer())
	}
	os.Exit(m.Run())
}

// runChildPayer makes payout passes until killed, until it crashes itself
// at the named step, or (final) until every payout is finished.
func runChildPayer() int {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv(envRedis)})
	keyBytes, err := hex.DecodeString(os.Getenv(envHotKey))
	if err != nil {
		return fail(err)
	}
	key, err := crypto.ToECDSA(keyBytes)
	if err != nil {
		return fail(err)
	}
	cfg := chain.SimConfig(os.Getenv(envNode), os.Getenv(envToken))
	cfg.Expiration = 3 * time.Second // dropped transactions expire quickly: exercises re-signing
	cfg.CallTimeout = 2 * time.Second
	client, err := chain.NewWithKey(cfg, key)
	if err != nil {
		return fail(err)
	}
	pcfg := rewards.DefaultPayerConfig()
	pcfg.MinPayout, pcfg.Interval, pcfg.ResourcePause = "1", 100*time.Millisecond, time.Second
	payer, err := rewards.NewPayer(rdb, client, rewards.NewAddresses(rdb, chain.TIP191{}), pcfg, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		return fail(err)
	}
	if at := os.Getenv(envCrashAt); at != "" {
		payer.SetCrashPoint(func(step string) {
			if step == at {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				time.Sleep(time.Second) // the signal lands before anything else runs
			}
		})
	}
	for ctx.Err() == nil {
		if err := payer.Pass(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "pass:", err)
		}
		if os.Getenv(envUntil) == "final" && openPayouts(ctx, rdb) == 0 {
			return 0
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 3
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, err)
	return 2
}

func openPayouts(ctx context.Context, rdb redis.UniversalClient) int {
	n := 0
	for _, st := range []string{rewards.PayoutPending, rewards.PayoutSigned, rewards.PayoutBroadcast} {
		l, _ := rewards.Payouts(ctx, rdb, st, "", 10000)
		n += len(l)
	}
	ok, _ := rdb.SCard(ctx, rewards.KeyPayoutCandidates).Result()
	return n + int(ok)
}

type world struct {
	t        *testing.T
	rdb      *redis.Client
	redis    *redistest.Server
	node     *tronsim.Node
	hotHex   string
	users    []string
	addrs    map[string]string
	credited map[string]*big.Int // everything ever added to a user's balance
	r        *rand.Rand
}

func newWorld(t *testing.T) *world {
	t.Helper()
	srv := redistest.Start(t, redistest.Option{"--appendonly", "yes", "--appendfsync", "always"})
	node, err := tronsim.New(tronsim.Config{BlockPeriod: 100 * time.Millisecond, SolidityLag: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	hot, _ := crypto.GenerateKey()
	if err := node.Fund(chain.AddressOf(hot), tronsim.TokenUnits(big.NewInt(1_000_000), 18), tronsim.DevTRX, tronsim.DevEnergy); err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, rdb: srv.Client(t), redis: srv, node: node, hotHex: hex.EncodeToString(crypto.FromECDSA(hot)),
		addrs: map[string]string{}, credited: map[string]*big.Int{}, r: rand.New(rand.NewPCG(3, 4))}
	ctx := context.Background()
	for i := range 6 {
		u := fmt.Sprintf("user%d", i)
		k, _ := crypto.GenerateKey()
		w.users = append(w.users, u)
		w.addrs[u] = chain.AddressOf(k)
		w.credited[u] = new(big.Int)
		w.rdb.Set(ctx, rewards.KeyAddress(u), w.addrs[u], 0)
	}
	return w
}

// credit adds to random users' balances as the settler would.
func (w *world) credit() {
	ctx := context.Background()
	for _, u := range w.users {
		if w.r.IntN(2) == 0 {
			continue
		}
		amt := new(big.Int).Mul(big.NewInt(w.r.Int64N(1e6)+1), big.NewInt(1e12))
		err := w.rdb.Watch(ctx, func(tx *redis.Tx) error {
			cur, _ := tx.Get(ctx, rewards.KeyBalance(u)).Result()
			bal, _ := new(big.Int).SetString(orZero(cur), 10)
			bal.Add(bal, amt)
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, rewards.KeyBalance(u), bal.String(), 0)
				p.SAdd(ctx, rewards.KeyPayoutCandidates, u)
				return nil
			})
			return err
		}, rewards.KeyBalance(u))
		if err != nil {
			w.t.Fatal(err)
		}
		w.credited[u].Add(w.credited[u], amt)
	}
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func (w *world) child(crashAt, until string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRedis+"="+w.redis.Addr, envNode+"="+w.node.Addr(), envToken+"="+w.node.TokenAddress(),
		envHotKey+"="+w.hotHex, envCrashAt+"="+crashAt, envUntil+"="+until)
	return cmd
}

// check asserts the ledger invariants after any run, crashed or not:
//   - conservation: credited == balance + amounts of payouts not failed;
//   - the chain paid each user exactly the payouts whose transaction it
//     confirmed, each payout at most once;
//   - a payout marked confirmed has a confirmed transaction.
func (w *world) check(client *chain.Client) {
	w.t.Helper()
	ctx := context.Background()
	// Let every accepted transaction reach a block and solidify (delay
	// fault 5 blocks + solidity lag 3), so chain state and lookups agree.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.node.WaitBlocks(wctx, 12); err != nil {
		w.t.Fatal(err)
	}
	for _, u := range w.users {
		bal, _ := w.rdb.Get(ctx, rewards.KeyBalance(u)).Result()
		sum, _ := new(big.Int).SetString(orZero(bal), 10)
		paidOnChain := new(big.Int)
		list, err := rewards.Payouts(ctx, w.rdb, "", u, 10000)
		if err != nil {
			w.t.Fatal(err)
		}
		for _, p := range list {
			amt, _ := new(big.Int).SetString(p.Amount, 10)
			if p.State != rewards.PayoutFailed {
				sum.Add(sum, amt)
			}
			confirmed := 0
			for _, tx := range p.Txs {
				st := w.status(client, tx.TxID)
				if st.State == rewards.TxConfirmed {
					confirmed++
				}
			}
			if confirmed > 1 {
				w.t.Fatalf("payout %s of %s paid %d times on chain", p.ID, u, confirmed)
			}
			if confirmed == 1 {
				paidOnChain.Add(paidOnChain, amt)
			}
			if p.State == rewards.PayoutConfirmed && confirmed != 1 {
				w.t.Fatalf("payout %s marked confirmed without a confirmed transaction", p.ID)
			}
		}
		if sum.Cmp(w.credited[u]) != 0 {
			w.t.Fatalf("%s: credited %s but balance + payouts = %s", u, w.credited[u], sum)
		}
		onChain, err := w.node.TokenBalance(w.addrs[u])
		if err != nil {
			w.t.Fatal(err)
		}
		if onChain.Cmp(paidOnChain) != 0 {
			w.t.Fatalf("%s: chain balance %s, confirmed payouts %s (paid twice or lost)", u, onChain, paidOnChain)
		}
	}
}

func (w *world) status(client *chain.Client, txid string) rewards.TxStatus {
	for range 20 {
		st, err := client.Status(context.Background(), txid)
		if err == nil {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.t.Fatalf("status of %s unavailable", txid)
	return rewards.TxStatus{}
}

func TestPayerSurvivesSIGKILLAtEveryStep(t *testing.T) {
	w := newWorld(t)
	client, err := chain.New(chain.SimConfig(w.node.Addr(), w.node.TokenAddress()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	steps := []string{"signed-not-stored", "stored-not-broadcast", "broadcast-not-stored", "confirmed-not-stored", ""}
	rounds := 4
	if testing.Short() {
		rounds = 2
	}
	crashed := map[string]int{}
	for round := 0; round < rounds; round++ {
		for i, step := range steps {
			w.credit()
			// Faults on: the node drops, delays, answers DUP, goes away.
			switch (round + i) % 4 {
			case 0:
				// Enough drops that a transaction expires unseen and the
				// payer must sign a new one.
				w.node.DropBroadcast(40)
			case 1:
				w.node.AnswerDup(2)
			case 2:
				w.node.Unavailable(3)
			case 3:
				w.node.DelayBroadcast(5, 2)
			}
			cmd := w.child(step, "")
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			limit := 3 * time.Second
			if step == "" {
				limit = time.Duration(100+w.r.IntN(900)) * time.Millisecond // a kill at a random moment
			}
			select {
			case err := <-done:
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
					crashed[step]++
				} else if err != nil {
					t.Fatalf("payer exited: %v\n%s", err, out.String())
				}
			case <-time.After(limit):
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-done
				if step == "" {
					crashed["random"]++
				}
			}
			w.check(client)
		}
	}
	for _, step := range steps[:4] {
		if crashed[step] == 0 {
			t.Errorf("the payer never crashed at %s: that step is untested", step)
		}
	}
	// Faults off: a last run finishes every payout.
	w.node.ClearFaults()
	cmd := w.child("", "final")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final payer run: %v\n%s", err, out)
	}
	w.check(client)
	ctx := context.Background()
	for _, u := range w.users {
		bal, _ := w.rdb.Get(ctx, rewards.KeyBalance(u)).Result()
		onChain, _ := w.node.TokenBalance(w.addrs[u])
		if orZero(bal) != "0" || onChain.Cmp(w.credited[u]) != 0 {
			t.Fatalf("%s: after the final run balance %s, on chain %s, credited %s", u, bal, onChain, w.credited[u])
		}
	}
	dead := 0
	for _, u := range w.users {
		list, _ := rewards.Payouts(ctx, w.rdb, "", u, 10000)
		for _, p := range list {
			for _, tx := range p.Txs {
				if tx.Dead {
					dead++
				}
			}
		}
	}
	t.Logf("crashes by step: %v; expired transactions re-signed: %d", crashed, dead)
	if dead == 0 {
		t.Error("no transaction expired: the re-signing path went untested")
	}
}
