package rewards

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/internal/redistest"
)

func testConfig(budget string) Config {
	cfg := DefaultConfig()
	cfg.Epoch = EpochConfig{Length: 60 * time.Second, Grace: 10 * time.Second, Retention: time.Hour}
	cfg.Scoring.MaxGap = 150 * time.Second
	cfg.Global.BudgetPerEpoch = budget
	return cfg
}

// newTestSettler returns a settler whose clock stands after every epoch
// below `after`.
func newTestSettler(t testing.TB, rdb redis.UniversalClient, budget string, after int64) *Settler {
	t.Helper()
	s, err := NewSettler(rdb, testConfig(budget), nil, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.Unix(after*60+30, 0) } // grace 10s + margin 4s have passed
	return s
}

// seedPoints writes a user's points for an epoch as account.lua would.
func seedPoints(t testing.TB, rdb redis.UniversalClient, epoch int64, user string, points, seconds int64) {
	t.Helper()
	ctx := context.Background()
	if err := rdb.SAdd(ctx, KeyEpochUsers(epoch), user).Err(); err != nil {
		t.Fatal(err)
	}
	if points > 0 {
		rdb.HIncrBy(ctx, KeyUserEpoch(user, epoch), "pts:"+GlobalPool, points)
		rdb.HIncrBy(ctx, KeyUserEpoch(user, epoch), "seed_s", seconds)
	}
}

func lead(t testing.TB, s *Settler) int64 {
	t.Helper()
	tok, err := s.Acquire(context.Background())
	if err != nil || tok == 0 {
		t.Fatalf("acquire: %d, %v", tok, err)
	}
	return tok
}

func TestSealDividesAndIsDeterministic(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	rdb.Set(ctx, KeyFirstEpoch, 100, 0)
	seedPoints(t, rdb, 100, "carol", 1, 1)
	seedPoints(t, rdb, 100, "alice", 1, 1)
	seedPoints(t, rdb, 100, "bob", 1, 1)
	seedPoints(t, rdb, 100, "idle", 0, 0) // announced, earned nothing
	s := newTestSettler(t, rdb, "10", 101)

	a, err := s.Compute(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Compute(ctx, 100)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Fatalf("same inputs, different records:\n%s\n%s", ja, jb)
	}
	// 10 among three equal users: 4/3/3, the odd unit to the smallest id.
	want := map[string]string{"alice": "4", "bob": "3", "carol": "3"}
	if len(a.Users) != 3 {
		t.Fatalf("users %+v, want three (idle excluded)", a.Users)
	}
	for _, u := range a.Users {
		if want[u.User] != u.Amount {
			t.Errorf("%s got %s, want %s", u.User, u.Amount, want[u.User])
		}
	}
	if a.TotalCredited != "10" || a.TotalPoints != "3" || a.Pools[0].DustOut != "0" {
		t.Fatalf("totals %+v", a)
	}
	// The root is the Merkle root of the users' leaves.
	var leaves [][32]byte
	for _, u := range a.Users {
		amt, _ := new(big.Int).SetString(u.Amount, 10)
		leaves = append(leaves, Leaf(100, u.User, u.Address, amt))
	}
	root := NewTree(leaves).Root()
	if a.Root != hex.EncodeToString(root[:]) {
		t.Fatalf("root %s, want %x", a.Root, root)
	}

	rec, err := s.seal(ctx, 100, lead(t, s))
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := rdb.Get(ctx, KeyEpochRecord(100)).Result()
	if stored != string(ja) {
		t.Fatalf("stored record differs from computed:\n%s\n%s", stored, ja)
	}
	// Points arriving after sealing do not change a sealed epoch.
	seedPoints(t, rdb, 100, "late", 1000, 10)
	again, _ := s.seal(ctx, 100, 0) // sealed: read back, whoever asks
	if again.Root != rec.Root || len(again.Users) != 3 {
		t.Fatal("a sealed record changed")
	}
}

func TestDustCarriesWhenNobodyEarns(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	rdb.Set(ctx, KeyFirstEpoch, 7, 0)
	seedPoints(t, rdb, 8, "alice", 5, 5)
	s := newTestSettler(t, rdb, "1000", 9)
	if err := s.SettleDue(ctx, lead(t, s)); err != nil {
		t.Fatal(err)
	}
	r7, _ := LoadRecord(ctx, rdb, 7)
	r8, _ := LoadRecord(ctx, rdb, 8)
	if r7 == nil || r8 == nil {
		t.Fatal("epochs 7 and 8 not both sealed")
	}
	if r7.Pools[0].DustOut != "1000" || r7.TotalCredited != "0" {
		t.Fatalf("empty epoch: %+v", r7.Pools[0])
	}
	if r8.Pools[0].DustIn != "1000" || r8.Pools[0].Available != "2000" || r8.Users[0].Amount != "2000" {
		t.Fatalf("next epoch did not receive the dust: %+v %+v", r8.Pools[0], r8.Users)
	}
	if bal, _ := rdb.Get(ctx, KeyBalance("alice")).Result(); bal != "2000" {
		t.Fatalf("balance %s, want 2000", bal)
	}
	if next, _ := rdb.Get(ctx, keyNext).Int64(); next != 9 {
		t.Fatalf("next %d, want 9", next)
	}
	// Epoch 9 is not over (plus grace) at the settler's clock.
	if _, err := LoadRecord(ctx, rdb, 9); !errors.Is(err, ErrNotSealed) {
		t.Fatalf("epoch 9: %v", err)
	}
}

func TestApplyIsIdempotentAndFenced(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	rdb.Set(ctx, KeyFirstEpoch, 1, 0)
	// Balances beyond int64: 18-decimal tokens make that ordinary.
	seedPoints(t, rdb, 1, "alice", 3, 3)
	seedPoints(t, rdb, 1, "bob", 1, 1)
	s := newTestSettler(t, rdb, "40000000000000000000000", 2)
	rdb.Set(ctx, KeyBalance("alice"), "9223372036854775807", 0)

	tok := lead(t, s)
	rec, err := s.seal(ctx, 1, tok)
	if err != nil {
		t.Fatal(err)
	}
	// A settler without the lock cannot credit.
	if err := s.Apply(ctx, rec, 12345); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("apply without the lock: %v, want ErrNotLeader", err)
	}
	if bal, _ := rdb.Get(ctx, KeyBalance("alice")).Result(); bal != "9223372036854775807" {
		t.Fatalf("fenced apply changed the balance to %s", bal)
	}
	for range 3 {
		rdb.Del(ctx, KeyEpochApplied(1)) // as if the process died before marking
		if err := s.Apply(ctx, rec, tok); err != nil {
			t.Fatal(err)
		}
	}
	if bal, _ := rdb.Get(ctx, KeyBalance("alice")).Result(); bal != "30009223372036854775807" {
		t.Fatalf("alice %s, want 30000000000000000000000 + 2^63-1 exactly once", bal)
	}
	if bal, _ := rdb.Get(ctx, KeyBalance("bob")).Result(); bal != "10000000000000000000000" {
		t.Fatalf("bob %s", bal)
	}
	if cr, _ := rdb.HGet(ctx, KeyCredits("bob"), "1").Result(); cr != "10000000000000000000000" {
		t.Fatalf("credit record %s", cr)
	}
}

// TestSealAndRefundFenced: a settler whose lock was taken over (a stale
// fencing token) can neither seal an epoch nor refund a closing pool: both
// fail with ErrNotLeader and write nothing (no record, no refund).
func TestSealAndRefundFenced(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	rdb.Set(ctx, KeyFirstEpoch, 10, 0)
	pools := newTestPools(t, rdb)
	a := mustPool(t, pools, "40", ih('1'))
	fund(t, rdb, a.ID, "100")
	seedPoints(t, rdb, 10, "alice", 3, 3)
	s := newTestSettler(t, rdb, "0", 11)
	stale := lead(t, s)
	rdb.Del(ctx, KeySettleLock) // the lock expired; another settler leads now
	fresh := lead(t, s)
	if _, err := s.seal(ctx, 10, stale); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("seal with a stale token: %v, want ErrNotLeader", err)
	}
	if _, err := s.seal(ctx, 10, 0); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("seal without a token: %v, want ErrNotLeader", err)
	}
	if n, _ := rdb.Exists(ctx, KeyEpochRecord(10)).Result(); n != 0 {
		t.Fatal("a fenced seal wrote the record")
	}
	if _, err := pools.Close(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.refundClosing(ctx, stale, 10); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("refund with a stale token: %v, want ErrNotLeader", err)
	}
	v, _ := pools.Get(ctx, a.ID)
	if v.State != PoolClosing || v.Refunded != "0" {
		t.Fatalf("a fenced refund changed the pool: %+v", v)
	}
	if n, _ := rdb.Exists(ctx, KeyBalance(PoolAccount(a.ID))).Result(); n != 0 {
		t.Fatal("a fenced refund credited the pool account")
	}
	if n, _ := rdb.SIsMember(ctx, KeyPayoutCandidates, PoolAccount(a.ID)).Result(); n {
		t.Fatal("a fenced refund queued a payout")
	}
	// The leader does both.
	if _, err := s.seal(ctx, 10, fresh); err != nil {
		t.Fatal(err)
	}
	if err := s.refundClosing(ctx, fresh, 11); err != nil {
		t.Fatal(err)
	}
	if v, _ := pools.Get(ctx, a.ID); v.State != PoolClosed || v.Refunded != "100" {
		t.Fatalf("leader's refund: %+v", v)
	}
}

func TestSealableAndLock(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	s := newTestSettler(t, rdb, "1", 0)
	s.now = func() time.Time { return time.Unix(120+10, 0) } // epoch 1 ended at 120, grace 10s
	if s.Sealable(1) {
		t.Fatal("epoch 1 sealable before grace + margin")
	}
	s.now = func() time.Time { return time.Unix(120, 0).Add(10*time.Second + s.margin) }
	if !s.Sealable(1) || s.Sealable(2) {
		t.Fatal("sealable boundaries wrong")
	}
	other := newTestSettler(t, rdb, "1", 0)
	tok := lead(t, s)
	if t2, err := other.Acquire(ctx); err != nil || t2 != 0 {
		t.Fatalf("second settler got the lock: %d %v", t2, err)
	}
	if ok, err := s.renew(ctx, tok); !ok || err != nil {
		t.Fatalf("renew: %v %v", ok, err)
	}
	if ok, _ := other.renew(ctx, tok+1); ok {
		t.Fatal("a wrong token renewed the lock")
	}
	if n, _ := s.lock.Run(ctx, rdb, []string{KeySettleLock}, tok, 0).Int(); n != 1 {
		t.Fatal("release failed")
	}
	if t2, _ := other.Acquire(ctx); t2 <= tok {
		t.Fatalf("token after release %d, want > %d (fencing tokens only grow)", t2, tok)
	}
}

func TestLedgerViews(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client(t)
	rdb.Set(ctx, KeyFirstEpoch, 10, 0)
	seedPoints(t, rdb, 10, "alice", 7, 7)
	seedPoints(t, rdb, 10, "bob", 3, 3)
	s := newTestSettler(t, rdb, "100", 11)
	if err := s.SettleDue(ctx, lead(t, s)); err != nil {
		t.Fatal(err)
	}
	seedPoints(t, rdb, 11, "alice", 5, 5)
	l := NewLedger(rdb, s.cfg)
	l.now = func() time.Time { return time.Unix(11*60+5, 0) }

	list, err := l.Epochs(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Epoch != 11 || list[0].State != StateOpen || list[0].TotalPoints != "5" ||
		list[1].Epoch != 10 || list[1].State != StateSealed || list[1].Credited != "100" {
		t.Fatalf("epochs %+v", list)
	}
	if page, _ := l.Epochs(ctx, 11, 10); len(page) != 1 || page[0].Epoch != 10 {
		t.Fatalf("page before 11: %+v", page)
	}
	p, err := l.Proof(ctx, 10, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if p.Amount != "30" || p.Root != list[1].Root {
		t.Fatalf("proof %+v", p)
	}
	if err := p.Verify(); err != nil {
		t.Fatalf("proof does not verify: %v", err)
	}
	if _, err := l.Proof(ctx, 10, "nobody"); !errors.Is(err, ErrNoUser) {
		t.Fatalf("proof of a stranger: %v", err)
	}
	if _, err := l.Proof(ctx, 11, "alice"); !errors.Is(err, ErrNotSealed) {
		t.Fatalf("proof of an open epoch: %v", err)
	}
	ur, err := l.UserRewards(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ur.Balance != "70" || len(ur.Epochs) != 2 || ur.Epochs[0].Epoch != 11 || ur.Epochs[0].Credit != "0" ||
		ur.Epochs[1].Credit != "70" || ur.Epochs[1].SeedSeconds != 7 || ur.Epochs[1].State != StateSealed {
		t.Fatalf("user rewards %+v", ur)
	}
}

// balanceSum is every user's balance and the sum of their credit records.
func creditsMatchBalances(t testing.TB, rdb redis.UniversalClient, users []string) {
	t.Helper()
	ctx := context.Background()
	for _, u := range users {
		bal, err := readBalance(ctx, rdb, u)
		if err != nil {
			t.Fatal(err)
		}
		cr, _ := rdb.HGetAll(ctx, KeyCredits(u)).Result()
		sum := new(big.Int)
		for _, v := range cr {
			x, _ := new(big.Int).SetString(v, 10)
			sum.Add(sum, x)
		}
		if bal.Cmp(sum) != 0 {
			t.Fatalf("%s: balance %s != sum of credits %s (credited twice or lost)", u, bal, sum)
		}
	}
}

func userName(i int) string { return "u" + strconv.Itoa(1000+i) }

var _ = fmt.Sprint
