package rewards

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/internal/redistest"
)

// fakeTransfers is a chain of blocks holding token transfers.
type fakeTransfers struct {
	mu     sync.Mutex
	head   int64
	blocks map[int64][]TokenTransfer
	down   bool
	dup    bool // deliver every transfer twice
	calls  int
}

func (f *fakeTransfers) HeadBlock(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, ErrChainUnavailable
	}
	return f.head, nil
}

func (f *fakeTransfers) TokenTransfers(_ context.Context, from, to int64) ([]TokenTransfer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		return nil, ErrChainUnavailable
	}
	if to-from+1 > 100 || from > to || to > f.head {
		return nil, fmt.Errorf("bad range %d..%d (head %d)", from, to, f.head)
	}
	var out []TokenTransfer
	for b := from; b <= to; b++ {
		for _, t := range f.blocks[b] {
			out = append(out, t)
			if f.dup {
				out = append(out, t)
			}
		}
	}
	return out, nil
}

func (f *fakeTransfers) add(block int64, to string, amount int64) TokenTransfer {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blocks == nil {
		f.blocks = map[int64][]TokenTransfer{}
	}
	t := TokenTransfer{TxID: fmt.Sprintf("%064x", block*1000+int64(len(f.blocks[block]))), LogIndex: len(f.blocks[block]),
		Block: block, From: "TFunder", To: to, Amount: big.NewInt(amount)}
	f.blocks[block] = append(f.blocks[block], t)
	return t
}

func newTestWatcher(t testing.TB, rdb redis.UniversalClient, src TransferSource) *DepositWatcher {
	t.Helper()
	cfg := DefaultDepositConfig()
	cfg.Confirmations = 5
	cfg.MaxRange = 7
	w, err := NewDepositWatcher(rdb, src, cfg, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestDepositWatcher(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	pools := newTestPools(t, rdb)
	a := mustPool(t, pools, "10", ih('1'))
	b := mustPool(t, pools, "10", ih('2'))
	// An address reserved for a pool that was never written (a crash).
	rdb.Set(ctx, keyPoolAddr("TOrphan"), "", 0)

	src := &fakeTransfers{head: 10}
	w := newTestWatcher(t, rdb, src)
	if _, err := w.Poll(ctx); err != nil { // first run: starts at the confirmed head
		t.Fatal(err)
	}
	if cur, _ := w.Cursor(ctx); cur != 6 {
		t.Fatalf("first cursor %d, want head-confirmations+1 = 6", cur)
	}
	src.add(7, a.DepositAddress, 100)
	src.add(7, "TSomeoneElse", 999) // not ours
	src.add(8, b.DepositAddress, 5)
	src.add(9, "TOrphan", 42)
	src.add(30, a.DepositAddress, 1000) // below the confirmation depth for a while
	src.mu.Lock()
	src.head = 34
	src.mu.Unlock()
	n, err := w.Poll(ctx)
	if err != nil || n != 3 {
		t.Fatalf("poll: %d %v, want 3 recorded", n, err)
	}
	if cur, _ := w.Cursor(ctx); cur != 30 {
		t.Fatalf("cursor %d, want 30 (head 34 - 5 + 1)", cur)
	}
	va, _ := pools.Get(ctx, a.ID)
	vb, _ := pools.Get(ctx, b.ID)
	if va.Funded != "100" || va.Remaining != "100" || vb.Funded != "5" {
		t.Fatalf("funded a %s b %s", va.Funded, vb.Funded)
	}
	un, _ := pools.Deposits(ctx, "", 10)
	if len(un) != 1 || un[0].To != "TOrphan" || un[0].Amount != "42" || un[0].Pool != "" {
		t.Fatalf("unclaimed %+v", un)
	}
	if testutil.ToFloat64(w.unclaimed) != 1 || testutil.ToFloat64(w.credited) != 2 {
		t.Fatal("metrics")
	}

	// Restart: a new watcher (cursor reset to before everything, as if the
	// cursor write was lost) with duplicate delivery credits nothing twice.
	rdb.Set(ctx, keyDepositCursor, 1, 0)
	src.mu.Lock()
	src.dup, src.head = true, 35
	src.mu.Unlock()
	w2 := newTestWatcher(t, rdb, src)
	n, err = w2.Poll(ctx)
	if err != nil || n != 1 {
		t.Fatalf("rescan: %d %v, want only block 30's deposit", n, err)
	}
	va, _ = pools.Get(ctx, a.ID)
	if va.Funded != "1100" {
		t.Fatalf("funded %s, want 1100 (each transfer once)", va.Funded)
	}
	deps, _ := pools.Deposits(ctx, a.ID, 10)
	if len(deps) != 2 || deps[0].Amount != "1000" || deps[0].Block != 30 || deps[0].Pool != a.ID {
		t.Fatalf("deposits %+v", deps)
	}
	if un, _ := pools.Deposits(ctx, "", 10); len(un) != 1 {
		t.Fatalf("unclaimed recorded twice: %+v", un)
	}

	// A node outage leaves the cursor where it was.
	src.mu.Lock()
	src.down = true
	src.mu.Unlock()
	if _, err := w2.Poll(ctx); !errors.Is(err, ErrChainUnavailable) {
		t.Fatalf("outage: %v", err)
	}
	if cur, _ := w2.Cursor(ctx); cur != 31 {
		t.Fatalf("cursor %d after outage, want 31", cur)
	}

	// A deposit to a closed (refunded) pool reopens its refund.
	rdb.HSet(ctx, keyPool(b.ID), "state", PoolClosed)
	if ok, err := w2.Credit(ctx, TokenTransfer{TxID: "ff", LogIndex: 3, Block: 40, From: "TX", To: b.DepositAddress, Amount: big.NewInt(9)}); !ok || err != nil {
		t.Fatalf("credit: %v %v", ok, err)
	}
	if vb, _ = pools.Get(ctx, b.ID); vb.State != PoolClosing || vb.Funded != "14" {
		t.Fatalf("late deposit to a closed pool: %+v", vb)
	}
}

func TestDepositConfigValidate(t *testing.T) {
	if err := DefaultDepositConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultDepositConfig()
	bad.MaxRange, bad.Confirmations = 101, -1
	if err := bad.Validate(); err == nil {
		t.Fatal("bad config accepted")
	}
}

// TestRescanDeposits: a transfer the watcher missed (its block read empty)
// is credited after a rescan moves the cursor back; a transfer already
// credited in the rescanned range is not credited twice; the cursor never
// moves forward by a rescan.
func TestRescanDeposits(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	pools := newTestPools(t, rdb)
	a := mustPool(t, pools, "10", ih('1'))
	src := &fakeTransfers{head: 10}
	w := newTestWatcher(t, rdb, src)
	if _, err := w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	src.add(7, a.DepositAddress, 100)
	src.mu.Lock()
	src.head = 20
	src.mu.Unlock()
	if n, err := w.Poll(ctx); err != nil || n != 1 {
		t.Fatalf("poll: %d %v", n, err)
	}
	// The node had not delivered block 8's transfer when it was read.
	src.add(8, a.DepositAddress, 5)
	if n, err := w.Poll(ctx); err != nil || n != 0 {
		t.Fatalf("poll: %d %v", n, err)
	}
	if v, _ := pools.Get(ctx, a.ID); v.Funded != "100" {
		t.Fatalf("funded %s before the rescan", v.Funded)
	}
	// Forward (or to the cursor itself) is refused and changes nothing.
	if _, _, err := RescanDeposits(ctx, rdb, 16); !errors.Is(err, ErrRescanForward) {
		t.Fatalf("rescan forward: %v", err)
	}
	if cur, _ := w.Cursor(ctx); cur != 16 {
		t.Fatalf("cursor %d, want 16", cur)
	}
	prev, next, err := RescanDeposits(ctx, rdb, 6)
	if err != nil || prev != 16 || next != 6 {
		t.Fatalf("rescan: %d -> %d %v", prev, next, err)
	}
	if n, err := w.Poll(ctx); err != nil || n != 1 {
		t.Fatalf("poll after rescan: %d %v, want only the missed deposit", n, err)
	}
	v, _ := pools.Get(ctx, a.ID)
	if v.Funded != "105" {
		t.Fatalf("funded %s, want 105 (the missed deposit once, the credited one not again)", v.Funded)
	}
	if deps, _ := pools.Deposits(ctx, a.ID, 10); len(deps) != 2 {
		t.Fatalf("deposits %+v", deps)
	}
	if cur, _ := w.Cursor(ctx); cur != 16 {
		t.Fatalf("cursor %d after the rescan, want 16", cur)
	}
	// A second rescan of the same range credits nothing.
	if _, _, err := RescanDeposits(ctx, rdb, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Poll(ctx); err != nil || n != 0 {
		t.Fatalf("second rescan: %d %v", n, err)
	}
	// A rescan while a scan is under way is not undone by its cursor move.
	if _, _, err := RescanDeposits(ctx, rdb, 3); err != nil {
		t.Fatal(err)
	}
	if on, err := w.advance(ctx, 10, 17); err != nil || on != 3 {
		t.Fatalf("advance after a rescan: %d %v, want to read on from 3", on, err)
	}
	if cur, _ := w.Cursor(ctx); cur != 3 {
		t.Fatalf("cursor %d, want the rescan's 3", cur)
	}
}

// TestLateDustHeld: below pools.min_refund, a deposit to a closed pool is
// credited and listed (held, counted) but does not reopen the refund; once
// the pool holds min_refund unrefunded, the next deposit reopens it and the
// refund returns everything held.
func TestLateDustHeld(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	rdb.Set(ctx, KeyFirstEpoch, 10, 0)
	pools := newTestPools(t, rdb)
	a := mustPool(t, pools, "10", ih('1'))
	cfg := DefaultDepositConfig()
	cfg.MinRefund = "100"
	w, err := NewDepositWatcher(rdb, &fakeTransfers{}, cfg, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, keyPool(a.ID), "state", PoolClosed, "funded", "50", "refunded", "50")
	for i, amt := range []int64{5, 1} {
		if ok, err := w.Credit(ctx, TokenTransfer{TxID: fmt.Sprintf("d%d", i), Block: 40, From: "TGriefer", To: a.DepositAddress, Amount: big.NewInt(amt)}); !ok || err != nil {
			t.Fatalf("credit: %v %v", ok, err)
		}
	}
	v, _ := pools.Get(ctx, a.ID)
	if v.State != PoolClosed || v.Funded != "56" || v.Remaining != "6" {
		t.Fatalf("dust reopened the pool: %+v", v)
	}
	deps, _ := pools.Deposits(ctx, a.ID, 10)
	if len(deps) != 2 || !deps[0].Held || !deps[1].Held {
		t.Fatalf("held deposits %+v", deps)
	}
	if testutil.ToFloat64(w.held) != 2 || testutil.ToFloat64(w.credited) != 2 {
		t.Fatalf("held %v credited %v", testutil.ToFloat64(w.held), testutil.ToFloat64(w.credited))
	}
	// 94 more: the pool holds 100, so it is refunded, held dust included.
	if ok, err := w.Credit(ctx, TokenTransfer{TxID: "big", Block: 41, From: "TOwner", To: a.DepositAddress, Amount: big.NewInt(94)}); !ok || err != nil {
		t.Fatalf("credit: %v %v", ok, err)
	}
	if v, _ = pools.Get(ctx, a.ID); v.State != PoolClosing {
		t.Fatalf("a deposit reaching min_refund left the pool %s", v.State)
	}
	if deps, _ = pools.Deposits(ctx, a.ID, 1); deps[0].Held {
		t.Fatal("the reopening deposit is marked held")
	}
	s := newTestSettler(t, rdb, "0", 10)
	if err := s.refundClosing(ctx, lead(t, s), 10); err != nil {
		t.Fatal(err)
	}
	if bal, _ := rdb.Get(ctx, KeyBalance(PoolAccount(a.ID))).Result(); bal != "100" {
		t.Fatalf("refund %s, want 100", bal)
	}
	bad := DefaultDepositConfig()
	bad.MinRefund = "0"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "pools.min_refund") {
		t.Fatalf("min_refund 0: %v", err)
	}
}
