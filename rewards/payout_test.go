package rewards

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/internal/redistest"
)

// bookChain is a deterministic stand-in for the chain client, for driving
// the outbox through each branch of its state machine. The crash tests run
// the real client against tronsim instead.
type bookChain struct {
	mu        sync.Mutex
	now       time.Time
	seq       int
	known     map[string]TxStatus // what nodes report per txid
	paid      map[string]*big.Int // address -> confirmed total
	amounts   map[string]*big.Int // txid -> amount
	to        map[string]string   // txid -> address
	exp       map[string]time.Time
	solid     time.Time
	signErr   error
	sendErr   error
	dropSends bool // accept but never include
}

func newBookChain() *bookChain {
	return &bookChain{now: time.Unix(1_800_000_000, 0), known: map[string]TxStatus{}, paid: map[string]*big.Int{},
		amounts: map[string]*big.Int{}, to: map[string]string{}, exp: map[string]time.Time{}}
}

func (c *bookChain) SignTransfer(_ context.Context, to string, amount *big.Int) (SignedTx, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.signErr != nil {
		return SignedTx{}, c.signErr
	}
	c.seq++
	raw := []byte(fmt.Sprintf("tx%d:%s:%s", c.seq, to, amount))
	sum := sha256.Sum256(raw)
	id := hex.EncodeToString(sum[:])
	c.amounts[id], c.to[id], c.exp[id] = new(big.Int).Set(amount), to, c.now.Add(time.Minute)
	return SignedTx{TxID: id, Raw: raw, Expiration: c.exp[id]}, nil
}

func (c *bookChain) Broadcast(_ context.Context, raw []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sendErr != nil {
		return c.sendErr
	}
	sum := sha256.Sum256(raw)
	id := hex.EncodeToString(sum[:])
	if _, ok := c.known[id]; ok {
		return nil // DUP: harmless
	}
	if !c.solid.Before(c.exp[id]) {
		return fmt.Errorf("expired: %w", ErrChainRejected)
	}
	if !c.dropSends {
		c.known[id] = TxStatus{State: TxPending}
	}
	return nil
}

// solidify confirms every pending transaction.
func (c *bookChain) solidify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, st := range c.known {
		if st.State == TxPending {
			c.known[id] = TxStatus{State: TxConfirmed}
			if c.paid[c.to[id]] == nil {
				c.paid[c.to[id]] = new(big.Int)
			}
			c.paid[c.to[id]].Add(c.paid[c.to[id]], c.amounts[id])
		}
	}
}

func (c *bookChain) Status(_ context.Context, txid string) (TxStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.known[txid], nil
}

func (c *bookChain) SolidifiedTime(context.Context) (time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.solid, nil
}

type fixedAddresses map[string]string

func (f fixedAddresses) PayoutAddress(_ context.Context, user string) (string, error) {
	return f[user], nil
}

func newTestPayer(t *testing.T, rdb redis.UniversalClient, chain Chain) *Payer {
	t.Helper()
	cfg := DefaultPayerConfig()
	cfg.MinPayout = "100"
	p, err := NewPayer(rdb, chain, fixedAddresses{"alice": "TAlice", "bob": "TBob"}, cfg, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func credit(t *testing.T, rdb redis.UniversalClient, user, amount string) {
	t.Helper()
	ctx := context.Background()
	rdb.Set(ctx, KeyBalance(user), amount, 0)
	rdb.SAdd(ctx, KeyPayoutCandidates, user)
}

func TestPayoutHappyPath(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	chain := newBookChain()
	p := newTestPayer(t, rdb, chain)
	credit(t, rdb, "alice", "123456789012345678901234567890") // beyond int64
	credit(t, rdb, "bob", "99")                               // below the minimum
	credit(t, rdb, "carol", "1000")                           // no address

	if err := p.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	list, _ := Payouts(ctx, rdb, "", "alice", 10)
	if len(list) != 1 || list[0].State != PayoutBroadcast || len(list[0].Txs) != 1 || list[0].Amount != "123456789012345678901234567890" {
		t.Fatalf("after one pass: %+v", list)
	}
	if bal, _ := rdb.Get(ctx, KeyBalance("alice")).Result(); bal != "0" {
		t.Fatalf("balance not debited: %s", bal)
	}
	for _, u := range []string{"bob", "carol"} {
		if l, _ := Payouts(ctx, rdb, "", u, 10); len(l) != 0 {
			t.Fatalf("%s got a payout: %+v", u, l)
		}
	}
	chain.solidify()
	if err := p.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	po, _ := LoadPayout(ctx, rdb, list[0].ID)
	if po.State != PayoutConfirmed || chain.paid["TAlice"].String() != "123456789012345678901234567890" {
		t.Fatalf("payout %+v, paid %v", po, chain.paid)
	}
	if testutil.ToFloat64(p.states.WithLabelValues(PayoutConfirmed)) != 1 {
		t.Fatal("state gauge not updated")
	}
	// Another pass pays nothing more.
	_ = p.Pass(ctx)
	chain.solidify()
	if chain.paid["TAlice"].String() != "123456789012345678901234567890" {
		t.Fatal("paid twice")
	}
}

func TestPayoutDroppedThenExpiredIsResigned(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	chain := newBookChain()
	chain.dropSends = true
	p := newTestPayer(t, rdb, chain)
	credit(t, rdb, "alice", "500")
	_ = p.Pass(ctx)
	list, _ := Payouts(ctx, rdb, "", "alice", 1)
	first := list[0].Txs[0].TxID
	// Unknown but not expired: the same bytes go out again, no new txid.
	_ = p.Pass(ctx)
	if po, _ := LoadPayout(ctx, rdb, list[0].ID); len(po.Txs) != 1 || po.State != PayoutBroadcast {
		t.Fatalf("re-broadcast changed the transaction: %+v", po)
	}
	// A solidified block passes the expiration: that txid is dead for good.
	chain.mu.Lock()
	chain.solid = chain.exp[first].Add(time.Second)
	chain.now = chain.solid
	chain.dropSends = false
	chain.mu.Unlock()
	_ = p.Pass(ctx)
	po, _ := LoadPayout(ctx, rdb, list[0].ID)
	if len(po.Txs) != 2 || !po.Txs[0].Dead || po.Txs[0].TxID != first || po.Txs[1].Dead || po.State != PayoutBroadcast {
		t.Fatalf("after expiry: %+v", po)
	}
	chain.solidify()
	_ = p.Pass(ctx)
	po, _ = LoadPayout(ctx, rdb, list[0].ID)
	if po.State != PayoutConfirmed || chain.paid["TAlice"].String() != "500" {
		t.Fatalf("final %+v paid %v", po, chain.paid)
	}
}

func TestPayoutFailureCreditsBack(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	chain := newBookChain()
	p := newTestPayer(t, rdb, chain)
	credit(t, rdb, "alice", "700")
	_ = p.Pass(ctx)
	list, _ := Payouts(ctx, rdb, "", "alice", 1)
	chain.mu.Lock()
	chain.known[list[0].Txs[0].TxID] = TxStatus{State: TxFailed, Reason: "OUT_OF_ENERGY"}
	chain.mu.Unlock()
	// The failed payout credits back; the next pass makes a new payout of it.
	if _, err := p.Step(ctx, list[0].ID); err != nil {
		t.Fatal(err)
	}
	po, _ := LoadPayout(ctx, rdb, list[0].ID)
	if po.State != PayoutFailed || po.Reason == "" {
		t.Fatalf("payout %+v", po)
	}
	if bal, _ := rdb.Get(ctx, KeyBalance("alice")).Result(); bal != "700" {
		t.Fatalf("balance after failure %s, want 700", bal)
	}
	if ok, _ := rdb.SIsMember(ctx, KeyPayoutCandidates, "alice").Result(); !ok {
		t.Fatal("credited-back user is not a payout candidate again")
	}
}

func TestPayoutPausesOnResources(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	chain := newBookChain()
	chain.signErr = fmt.Errorf("no energy: %w", ErrChainResources)
	p := newTestPayer(t, rdb, chain)
	credit(t, rdb, "alice", "700")
	_ = p.Pass(ctx)
	if testutil.ToFloat64(p.paused) != 1 || testutil.ToFloat64(p.chainErrors.WithLabelValues("resources")) != 1 {
		t.Fatal("not paused")
	}
	chain.signErr = nil
	_ = p.Pass(ctx) // still paused: nothing signed
	list, _ := Payouts(ctx, rdb, "", "alice", 1)
	if list[0].State != PayoutPending || len(list[0].Txs) != 0 || list[0].Reason == "" {
		t.Fatalf("payout while paused: %+v", list[0])
	}
	p.now = func() time.Time { return time.Now().Add(time.Hour) }
	_ = p.Pass(ctx)
	if po, _ := LoadPayout(ctx, rdb, list[0].ID); po.State != PayoutBroadcast {
		t.Fatalf("after the pause: %+v", po)
	}
}

func TestPayoutRejectedSignFails(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	chain := newBookChain()
	chain.signErr = fmt.Errorf("bad address: %w", ErrChainRejected)
	p := newTestPayer(t, rdb, chain)
	credit(t, rdb, "alice", "700")
	_ = p.Pass(ctx)
	list, _ := Payouts(ctx, rdb, "", "alice", 1)
	if list[0].State != PayoutFailed {
		t.Fatalf("%+v", list[0])
	}
	if bal, _ := rdb.Get(ctx, KeyBalance("alice")).Result(); bal != "700" {
		t.Fatalf("balance %s", bal)
	}
}

func TestCheckDurableLedger(t *testing.T) {
	ctx := context.Background()
	unsafe := redistest.Start(t).Client(t)
	if err := CheckDurableLedger(ctx, unsafe); !errors.Is(err, ErrUnsafeLedger) {
		t.Fatalf("no AOF accepted: %v", err)
	}
	safe := redistest.Start(t, redistest.Option{"--appendonly", "yes", "--appendfsync", "always"}).Client(t)
	if err := CheckDurableLedger(ctx, safe); err != nil {
		t.Fatalf("durable redis refused: %v", err)
	}
}

func TestRejectedBroadcastWaitsForExpiryNotFailure(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	chain := newBookChain()
	chain.sendErr = fmt.Errorf("SIGERROR: %w", ErrChainRejected)
	p := newTestPayer(t, rdb, chain)
	credit(t, rdb, "alice", "900")
	_ = p.Pass(ctx)
	list, _ := Payouts(ctx, rdb, "", "alice", 1)
	po := list[0]
	// Refused by this node, but it might sit in another: no credit back.
	if po.State != PayoutSigned || len(po.Txs) != 1 || !strings.Contains(po.Reason, "waiting for expiry") {
		t.Fatalf("after a refused broadcast: %+v", po)
	}
	if bal, _ := rdb.Get(ctx, KeyBalance("alice")).Result(); bal != "0" {
		t.Fatalf("credited back before expiry: balance %s", bal)
	}
	// Expired unseen: that txid is dead and a new one is signed and sent.
	chain.mu.Lock()
	chain.solid = chain.exp[po.Txs[0].TxID].Add(time.Second)
	chain.now = chain.solid
	chain.sendErr = nil
	chain.mu.Unlock()
	_ = p.Pass(ctx)
	got, _ := LoadPayout(ctx, rdb, po.ID)
	if got.State != PayoutBroadcast || len(got.Txs) != 2 || !got.Txs[0].Dead {
		t.Fatalf("after expiry: %+v", got)
	}
}
