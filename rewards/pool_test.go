package rewards

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/internal/redistest"
)

// fakeKeys hands out distinct fake deposit addresses.
type fakeKeys struct{ n atomic.Int64 }

func (k *fakeKeys) NewDepositAddress() (string, error) {
	return fmt.Sprintf("TDeposit%034d", k.n.Add(1)), nil
}

func ih(c byte) string { return strings.Repeat(string(c), 40) }

func ihBytes(s string) (h [20]byte) {
	hex.Decode(h[:], []byte(s))
	return h
}

func newTestPools(t testing.TB, rdb redis.UniversalClient) *Pools {
	t.Helper()
	return NewPools(rdb, &fakeKeys{}, nil, "60", zap.NewNop())
}

func mustPool(t testing.TB, p *Pools, budget string, torrents ...string) PoolView {
	t.Helper()
	v, err := p.Create(context.Background(), PoolSpec{Name: "pool", Owner: "studio", RefundAddress: "TRefund", Torrents: torrents, BudgetPerEpoch: budget})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// fund credits a pool as a confirmed deposit would.
func fund(t testing.TB, rdb redis.UniversalClient, id, amount string) {
	t.Helper()
	ctx := context.Background()
	cur, _ := readAmountField(ctx, rdb, keyPool(id), "funded")
	a, _ := new(big.Int).SetString(amount, 10)
	rdb.HSet(ctx, keyPool(id), "funded", cur.Add(cur, a).String())
}

// seedTorrentPoints writes points as account.lua does with the pool index's
// list for the torrent: every pool field, and the attribution field.
func seedTorrentPoints(t testing.TB, rdb redis.UniversalClient, x *PoolIndex, epoch int64, user, torrent string, points int64) {
	t.Helper()
	ctx := context.Background()
	h := ihBytes(torrent)
	rdb.SAdd(ctx, KeyEpochUsers(epoch), user)
	rdb.HIncrBy(ctx, KeyUserEpoch(user, epoch), "seed_s", 1)
	for _, p := range x.Lookup(h) {
		rdb.HIncrBy(ctx, KeyUserEpoch(user, epoch), "pts:"+p, points)
	}
}

func poolRec(rec *Record, id string) PoolRecord {
	for _, p := range rec.Pools {
		if p.ID == id {
			return p
		}
	}
	return PoolRecord{}
}

func TestTwoPoolsOverlappingTorrents(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	rdb.Set(ctx, KeyFirstEpoch, 100, 0)
	pools := newTestPools(t, rdb)
	a := mustPool(t, pools, "100", ih('1'), ih('2'))
	b := mustPool(t, pools, "500", ih('2'), ih('3'))
	c := mustPool(t, pools, "50", ih('4'))
	fund(t, rdb, a.ID, "1000")
	fund(t, rdb, b.ID, "300") // less than its budget: remaining caps the spend
	fund(t, rdb, c.ID, "100") // nobody seeds its torrent: it keeps its money
	x := NewPoolIndex(pools, 0, nil)
	if err := x.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	h2 := ihBytes(ih('2'))
	if got := strings.Join(x.Lookup(h2), ","); got != "global,p1,p2,@"+ih('2') {
		t.Fatalf("lookup %s", got)
	}
	if got := x.Lookup([20]byte{9}); len(got) != 1 || got[0] != GlobalPool {
		t.Fatalf("uncovered torrent: %v", got)
	}
	seedTorrentPoints(t, rdb, x, 100, "alice", ih('1'), 10)
	seedTorrentPoints(t, rdb, x, 100, "bob", ih('2'), 30)
	seedTorrentPoints(t, rdb, x, 100, "carol", ih('3'), 20)
	seedTorrentPoints(t, rdb, x, 100, "dave", ih('9'), 40) // global only

	s := newTestSettler(t, rdb, "100", 101)
	r1, err := s.Compute(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := s.Compute(ctx, 100)
	j1, _ := json.Marshal(r1)
	j2, _ := json.Marshal(r2)
	if string(j1) != string(j2) {
		t.Fatalf("not deterministic:\n%s\n%s", j1, j2)
	}
	// global 100 over 10/30/20/40; p1 100 over alice 10, bob 30; p2
	// min(500, 300) over bob 30, carol 20; p3 nothing.
	want := map[string]string{"alice": "10+25", "bob": "30+75+180", "carol": "20+120", "dave": "40"}
	for _, u := range r1.Users {
		sum := new(big.Int)
		for _, part := range strings.Split(want[u.User], "+") {
			v, _ := new(big.Int).SetString(part, 10)
			sum.Add(sum, v)
		}
		if u.Amount != sum.String() {
			t.Errorf("%s got %s, want %s", u.User, u.Amount, want[u.User])
		}
		for pool := range u.Points {
			if strings.HasPrefix(pool, TorrentPointsPrefix) {
				t.Errorf("%s: attribution field %s leaked into the record's points", u.User, pool)
			}
		}
	}
	if p := poolRec(r1, a.ID); p.Credited != "100" || p.Budget != "100" || p.Remaining != "1000" || p.DustOut != "0" ||
		p.Torrents[ih('1')] != "25" || p.Torrents[ih('2')] != "75" || len(p.Torrents) != 2 {
		t.Fatalf("pool a %+v", p)
	}
	if p := poolRec(r1, b.ID); p.Credited != "300" || p.Budget != "300" || p.Torrents[ih('2')] != "180" || p.Torrents[ih('3')] != "120" {
		t.Fatalf("pool b %+v", p)
	}
	if p := poolRec(r1, c.ID); p.Credited != "0" || p.Budget != "50" || p.DustOut != "0" || p.Points != "0" {
		t.Fatalf("pool c %+v", p)
	}
	if r1.TotalCredited != "500" {
		t.Fatalf("total credited %s, want 100+100+300", r1.TotalCredited)
	}

	tok := lead(t, s)
	if err := s.SettleDue(ctx, tok); err != nil {
		t.Fatal(err)
	}
	rec, _ := LoadRecord(ctx, rdb, 100)
	for range 3 { // a crash before the applied mark repeats Apply: pools are charged once
		rdb.Del(ctx, KeyEpochApplied(100))
		if err := s.Apply(ctx, rec, tok); err != nil {
			t.Fatal(err)
		}
	}
	check := func(id, funded, spent, remaining string) PoolView {
		t.Helper()
		v, err := pools.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Funded != funded || v.Spent != spent || v.Remaining != remaining {
			t.Fatalf("pool %s: funded %s spent %s remaining %s, want %s %s %s", id, v.Funded, v.Spent, v.Remaining, funded, spent, remaining)
		}
		return v
	}
	va := check(a.ID, "1000", "100", "900")
	if len(va.EpochSpend) != 1 || va.EpochSpend[0] != (EpochSpend{100, "100"}) ||
		len(va.TorrentSpend) != 2 || va.TorrentSpend[0] != (TorrentSpend{ih('2'), "75"}) {
		t.Fatalf("pool a spend %+v %+v", va.EpochSpend, va.TorrentSpend)
	}
	check(b.ID, "300", "300", "0")
	check(c.ID, "100", "0", "100")
	g, _ := pools.Get(ctx, GlobalPool)
	if g.Spent != "100" || !g.Global {
		t.Fatalf("global %+v", g)
	}
	creditsMatchBalances(t, rdb, []string{"alice", "bob", "carol", "dave"})

	// Epoch 101: b is empty, so bob and carol earn from it nothing more.
	seedTorrentPoints(t, rdb, x, 101, "bob", ih('2'), 30)
	seedTorrentPoints(t, rdb, x, 101, "carol", ih('3'), 20)
	s.now = newTestSettler(t, rdb, "100", 102).now
	if err := s.SettleDue(ctx, tok); err != nil {
		t.Fatal(err)
	}
	r101, _ := LoadRecord(ctx, rdb, 101)
	if p := poolRec(r101, b.ID); p.Budget != "0" || p.Credited != "0" {
		t.Fatalf("empty pool spent: %+v", p)
	}
	check(b.ID, "300", "300", "0")
	check(a.ID, "1000", "200", "800") // bob alone earns a's 100
}

func TestCloseRefundsOnce(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	rdb.Set(ctx, KeyFirstEpoch, 10, 0)
	pools := newTestPools(t, rdb)
	a := mustPool(t, pools, "40", ih('1'))
	fund(t, rdb, a.ID, "100")
	x := NewPoolIndex(pools, 0, nil)
	_ = x.Reload(ctx)
	seedTorrentPoints(t, rdb, x, 10, "alice", ih('1'), 5)
	s := newTestSettler(t, rdb, "0", 11)
	tok := lead(t, s)
	// Seal epoch 10 first (it spends 40), then close: the refund must wait
	// for epoch 10's credit and return exactly 60.
	if _, err := s.seal(ctx, 10, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := pools.Close(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.refundClosing(ctx, tok, 10); err != nil { // epoch 10 sealed, not credited
		t.Fatal(err)
	}
	if v, _ := pools.Get(ctx, a.ID); v.State != PoolClosing || v.Refunded != "0" {
		t.Fatalf("refunded before the sealed epoch was credited: %+v", v)
	}
	for range 2 {
		if _, err := pools.Close(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.SettleDue(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	v, _ := pools.Get(ctx, a.ID)
	if v.State != PoolClosed || v.Spent != "40" || v.Refunded != "60" || v.Remaining != "0" {
		t.Fatalf("after close %+v", v)
	}
	if bal, _ := rdb.Get(ctx, KeyBalance(PoolAccount(a.ID))).Result(); bal != "60" {
		t.Fatalf("refund balance %s, want 60 once", bal)
	}
	// A closed pool earns nothing and is out of the index.
	_ = x.Reload(ctx)
	if got := x.Lookup(ihBytes(ih('1'))); len(got) != 1 {
		t.Fatalf("closed pool still indexed: %v", got)
	}
	// A fenced settler cannot refund.
	if _, err := pools.Close(ctx, "p99"); !errors.Is(err, ErrPoolNotFound) {
		t.Fatalf("close unknown: %v", err)
	}

	// The payer pays the refund to the refund address although it is
	// below min_payout (100 in newTestPayer).
	chain := newBookChain()
	cfg := DefaultPayerConfig()
	cfg.MinPayout = "100"
	payer, err := NewPayer(rdb, chain, PoolAddressBook{Pools: pools, Next: fixedAddresses{}}, cfg, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := payer.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		chain.solidify()
	}
	if got := chain.paid["TRefund"]; got == nil || got.String() != "60" {
		t.Fatalf("refund paid %v, want 60 to TRefund", got)
	}
	v, _ = pools.Get(ctx, a.ID)
	if len(v.Refunds) != 1 || v.Refunds[0].Amount != "60" || v.Refunds[0].State != PayoutConfirmed || v.Refunds[0].TxID == "" {
		t.Fatalf("refund payouts %+v", v.Refunds)
	}
}

func TestPoolValidationAndTorrents(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	pools := newTestPools(t, rdb)
	bad := []PoolSpec{
		{Name: "", Owner: "o", RefundAddress: "T", BudgetPerEpoch: "1"},
		{Name: "n", Owner: "", RefundAddress: "T", BudgetPerEpoch: "1"},
		{Name: "n", Owner: "o", RefundAddress: "", BudgetPerEpoch: "1"},
		{Name: "n", Owner: "o", RefundAddress: "T", BudgetPerEpoch: "0"},
		{Name: "n", Owner: "o", RefundAddress: "T", BudgetPerEpoch: "01"},
		{Name: "n", Owner: "o", RefundAddress: "T", BudgetPerEpoch: "-1"},
		{Name: "n", Owner: "o", RefundAddress: "T", BudgetPerEpoch: "1.5"},
		{Name: "n", Owner: "o", RefundAddress: "T", BudgetPerEpoch: "1", Torrents: []string{"xyz"}},
	}
	for i, spec := range bad {
		if _, err := pools.Create(ctx, spec); !errors.Is(err, ErrPoolInvalid) {
			t.Errorf("spec %d: %v, want ErrPoolInvalid", i, err)
		}
	}
	v := mustPool(t, pools, "5", strings.ToUpper(ih('a')), ih('a'))
	if len(v.Torrents) != 1 || v.Torrents[0] != ih('a') || v.DepositAddress == "" || v.State != PoolOpen {
		t.Fatalf("created %+v", v)
	}
	if id, _ := rdb.Get(ctx, keyPoolAddr(v.DepositAddress)).Result(); id != v.ID {
		t.Fatalf("address index %q", id)
	}
	v, err := pools.SetTorrents(ctx, v.ID, []string{ih('b')}, true)
	if err != nil || len(v.Torrents) != 2 {
		t.Fatalf("add: %+v %v", v, err)
	}
	v, err = pools.SetTorrents(ctx, v.ID, []string{ih('a')}, false)
	if err != nil || len(v.Torrents) != 1 || v.Torrents[0] != ih('b') {
		t.Fatalf("remove: %+v %v", v, err)
	}
	_, _ = pools.Close(ctx, v.ID)
	if _, err := pools.SetTorrents(ctx, v.ID, []string{ih('c')}, true); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("add to a closed pool: %v", err)
	}
	list, err := pools.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != GlobalPool || list[1].ID != v.ID {
		t.Fatalf("list %+v %v", list, err)
	}
	// Bounty: one pool per torrent, created once.
	b1, created, err := pools.Bounty(ctx, ih('d'), PoolSpec{RefundAddress: "TR", BudgetPerEpoch: "7"})
	if err != nil || !created || b1.Bounty != ih('d') || len(b1.Torrents) != 1 {
		t.Fatalf("bounty %+v %v %v", b1, created, err)
	}
	b2, created, err := pools.Bounty(ctx, strings.ToUpper(ih('d')), PoolSpec{})
	if err != nil || created || b2.ID != b1.ID {
		t.Fatalf("second bounty %+v %v %v", b2, created, err)
	}
	// A closed bounty is replaced by a new one.
	_, _ = pools.Close(ctx, b1.ID)
	if _, _, err := pools.Bounty(ctx, ih('d'), PoolSpec{}); !errors.Is(err, ErrPoolInvalid) {
		t.Fatalf("new bounty without a refund address: %v", err)
	}
	b3, created, err := pools.Bounty(ctx, ih('d'), PoolSpec{RefundAddress: "TR", BudgetPerEpoch: "7"})
	if err != nil || !created || b3.ID == b1.ID || b3.State != PoolOpen {
		t.Fatalf("bounty after close %+v %v %v", b3, created, err)
	}
	for _, id := range []string{"", "p", "p0", "p01", "x1", "p1a", "p123456789012345678901"} {
		if ValidPoolID(id) {
			t.Errorf("ValidPoolID(%q)", id)
		}
	}
}

// TestPoolsThroughAccounting runs real announces through account.lua with
// the pool index's lookup and settles them: the script writes the pool and
// attribution fields, and each pool pays only its torrents' seeders.
func TestPoolsThroughAccounting(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	pools := newTestPools(t, rdb)
	a := mustPool(t, pools, "1000", ih('1'))
	fund(t, rdb, a.ID, "5000")
	x := NewPoolIndex(pools, 0, nil)
	if err := x.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("300")
	acct, err := NewAccountant(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const epoch = 500
	t0 := int64(epoch*60 + 5)
	rdb.Set(ctx, KeyFirstEpoch, epoch, 0)
	seed := func(user string, torrent string, peer byte, at int64) {
		t.Helper()
		ev := Event{User: user, InfoHash: ihBytes(torrent), PeerID: [20]byte{peer}, Size: 1 << 30, Seeders: 1, Time: at}
		if _, err := acct.Account(ctx, []Event{ev}, epoch, x.Lookup); err != nil {
			t.Fatal(err)
		}
	}
	for _, at := range []int64{t0, t0 + 40} { // 40 seeding seconds each
		seed("alice", ih('1'), 1, at) // in pool a and global
		seed("bob", ih('2'), 2, at)   // global only
	}
	h, _ := rdb.HGetAll(ctx, KeyUserEpoch("alice", epoch)).Result()
	if h["pts:"+a.ID] == "" || h["pts:@"+ih('1')] != h["pts:"+a.ID] || h["pts:global"] != h["pts:"+a.ID] {
		t.Fatalf("alice's epoch hash %v", h)
	}
	if hb, _ := rdb.HGetAll(ctx, KeyUserEpoch("bob", epoch)).Result(); len(poolPoints(hb)) != 1 || len(torrentPoints(hb)) != 0 {
		t.Fatalf("bob's epoch hash %v", hb)
	}
	s := newTestSettler(t, rdb, "300", epoch+1)
	if err := s.SettleDue(ctx, lead(t, s)); err != nil {
		t.Fatal(err)
	}
	rec, err := LoadRecord(ctx, rdb, epoch)
	if err != nil {
		t.Fatal(err)
	}
	amounts := map[string]string{}
	for _, u := range rec.Users {
		amounts[u.User] = u.Amount
	}
	// Equal points: global 300 splits 150/150; pool a's 1000 all to alice.
	if amounts["alice"] != "1150" || amounts["bob"] != "150" {
		t.Fatalf("amounts %v", amounts)
	}
	if p := poolRec(rec, a.ID); p.Torrents[ih('1')] != "1000" {
		t.Fatalf("pool line %+v", p)
	}
	if v, _ := pools.Get(ctx, a.ID); v.Spent != "1000" || v.Remaining != "4000" || v.TorrentSpend[0].Amount != "1000" {
		t.Fatalf("pool %+v", v)
	}
}

// TestPoolIndexSkipsBadEntries: ids and torrent entries in Redis that the
// settler would refuse never reach the accounting index (a long entry
// would have written past the info hash).
func TestPoolIndexSkipsBadEntries(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	pools := newTestPools(t, rdb)
	good := mustPool(t, pools, "100", ih('1'))
	rdb.SAdd(ctx, keyPoolsSet, "p,9")
	rdb.HSet(ctx, keyPool("p,9"), "state", PoolOpen)
	rdb.SAdd(ctx, keyPoolTorrents("p,9"), ih('1'))
	rdb.SAdd(ctx, keyPoolTorrents(good.ID), ih('2')+"00", "zz"+ih('3')[2:])
	x := NewPoolIndex(pools, 0, nil)
	if err := x.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(x.Lookup(ihBytes(ih('1'))), ","); got != "global,"+good.ID+",@"+ih('1') {
		t.Fatalf("lookup %s: the bad pool id must not be there", got)
	}
	if got := x.Lookup(ihBytes(ih('2'))); len(got) != 1 || got[0] != GlobalPool {
		t.Fatalf("a 42-digit entry was indexed: %v", got)
	}
	if got := x.Lookup(ihBytes(ih('3'))); len(got) != 1 || got[0] != GlobalPool {
		t.Fatalf("a non-hex entry was indexed: %v", got)
	}
}
