package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/rewards"
)

// payChain signs transfers with deterministic txids, accepts every
// broadcast and confirms the transfers to the addresses in confirm; the
// others stay broadcast.
type payChain struct {
	mu      sync.Mutex
	seq     int
	confirm map[string]bool
	to      map[string]string // txid -> address
}

func (c *payChain) SignTransfer(_ context.Context, to string, amount *big.Int) (rewards.SignedTx, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	raw := []byte(fmt.Sprintf("signed-transfer-%d:%s:%s", c.seq, to, amount))
	sum := sha256.Sum256(raw)
	id := hex.EncodeToString(sum[:])
	if c.to == nil {
		c.to = map[string]string{}
	}
	c.to[id] = to
	return rewards.SignedTx{TxID: id, Raw: raw, Expiration: time.Now().Add(time.Hour)}, nil
}
func (c *payChain) Broadcast(context.Context, []byte) error { return nil }
func (c *payChain) Status(_ context.Context, txid string) (rewards.TxStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.confirm[c.to[txid]] {
		return rewards.TxStatus{State: rewards.TxConfirmed}, nil
	}
	return rewards.TxStatus{State: rewards.TxPending}, nil
}
func (c *payChain) SolidifiedTime(context.Context) (time.Time, error) { return time.Now(), nil }

type addressBook map[string]string

func (b addressBook) PayoutAddress(_ context.Context, user string) (string, error) {
	return b[user], nil
}

// fakePools is a PoolReader with fixed pools.
type fakePools []PublicPool

func (f fakePools) PublicPools(context.Context) ([]PublicPool, error) { return f, nil }
func (f fakePools) PublicPool(_ context.Context, id string) (PublicPool, error) {
	for _, p := range f {
		if p.ID == id {
			return p, nil
		}
	}
	return PublicPool{}, fmt.Errorf("pool %s: %w", id, ErrPoolNotFound)
}

var testPools = fakePools{{ID: "p1", State: "open", Name: "ACME films", DepositAddress: "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8",
	BudgetPerEpoch: "500", Funded: "10000", Spent: "1500", Balance: "8500",
	TorrentCount: 1, // the list view has no torrents array
	Deposits:     []PublicDeposit{{TxID: strings.Repeat("ab", 32), From: "TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf", Amount: "10000", Time: 1_700_000_000}}}}

// testBudget is the global pool's budget per epoch: 1000 tokens of 18
// decimals, past what a JavaScript number holds exactly.
const testBudget = "1000000000000000000000"

// Payout addresses of the public test users (carol has none).
const (
	addrAlice = "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"
	addrBob   = "TEkxiTehnzSmSe2XqrBj4w32RUN966rdz8"
)

// publicEnv is a ledger with sealed epochs, settled on real data by the
// settler, and payouts through the real outbox: alice's credits confirmed,
// bob's broadcast, carol's unpaid (no address). first is the first epoch
// (alice 3 points, bob 1, carol 2); first+1 has alice alone.
type publicEnv struct {
	*env
	first             int64
	alice, bob, carol userJSON
	payer             *rewards.Payer
	ledger            *rewards.Ledger
	settlerCfg        rewards.Config
	passkeys, userIDs []string
	chain             *payChain
	publicCfg         *PublicConfig
	txAlice, txBob    string
	rawAlice, rawBob  string
	sealedLast        int64
}

func newPublicEnv(t *testing.T, pc *PublicConfig) *publicEnv {
	t.Helper()
	pe := &publicEnv{env: newEnv(t, quiet())}
	ctx := context.Background()
	cfg := rewards.DefaultConfig()
	cfg.Epoch = rewards.EpochConfig{Length: 10 * time.Second, Grace: 2 * time.Second, Retention: time.Hour}
	cfg.Scoring.MaxGap = 30 * time.Second
	cfg.Global.BudgetPerEpoch = testBudget
	pe.settlerCfg = cfg
	cur := cfg.Epoch.EpochOf(time.Now().Unix())
	pe.first = cur - 5
	pe.alice, pe.bob, pe.carol = pe.createUser("alice"), pe.createUser("bob"), pe.createUser("carol")
	for _, u := range []userJSON{pe.alice, pe.bob, pe.carol} {
		pe.passkeys = append(pe.passkeys, u.Passkey)
		pe.userIDs = append(pe.userIDs, u.ID)
	}
	book := addressBook{pe.alice.ID: addrAlice, pe.bob.ID: addrBob}
	pe.rdb.Set(ctx, rewards.KeyFirstEpoch, pe.first, 0)
	points := map[int64]map[string]int64{
		pe.first:     {pe.alice.ID: 3, pe.bob.ID: 1, pe.carol.ID: 2},
		pe.first + 1: {pe.alice.ID: 1},
	}
	for n, m := range points {
		for user, pts := range m {
			pe.rdb.SAdd(ctx, rewards.KeyEpochUsers(n), user)
			pe.rdb.HSet(ctx, rewards.KeyUserEpoch(user, n), "pts:global", pts*1_000_000, "seed_s", pts*10)
		}
	}
	s, err := rewards.NewSettler(pe.rdb, cfg, book, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Acquire(ctx)
	if err != nil || tok == 0 {
		t.Fatalf("lock: %v", err)
	}
	if err := s.SettleDue(ctx, tok); err != nil {
		t.Fatal(err)
	}
	for n := pe.first; ; n++ {
		if _, err := rewards.LoadRecord(ctx, pe.rdb, n); err != nil {
			pe.sealedLast = n - 1
			break
		}
	}
	if pe.sealedLast < pe.first+2 {
		t.Fatalf("sealed through %d, want at least %d", pe.sealedLast, pe.first+2)
	}

	pcfg := rewards.DefaultPayerConfig()
	pcfg.MinPayout = "100"
	pe.chain = &payChain{confirm: map[string]bool{addrAlice: true}}
	pe.payer, err = rewards.NewPayer(pe.rdb, pe.chain, book, pcfg, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := pe.payer.Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []*userJSON{&pe.alice, &pe.bob} {
		list, err := pe.payer.List(ctx, "", u.ID, 10)
		if err != nil || len(list) != 1 || len(list[0].Txs) != 1 {
			t.Fatalf("payouts of %s: %+v %v", u.Name, list, err)
		}
		if u.ID == pe.alice.ID {
			pe.txAlice, pe.rawAlice = list[0].Txs[0].TxID, list[0].Txs[0].Raw
			if list[0].State != rewards.PayoutConfirmed {
				t.Fatalf("alice's payout is %s", list[0].State)
			}
		} else {
			pe.txBob, pe.rawBob = list[0].Txs[0].TxID, list[0].Txs[0].Raw
			if list[0].State != rewards.PayoutBroadcast {
				t.Fatalf("bob's payout is %s", list[0].State)
			}
		}
	}

	pe.ledger = rewards.NewLedger(pe.rdb, cfg)
	if pc == nil {
		pc = &PublicConfig{Pools: testPools, Rate: 1000, Burst: 1000}
	}
	pe.publicCfg = pc
	pe.srv, err = New(Config{AdminToken: testToken}, Deps{Store: pe.store, Cache: pe.cache, Swarms: pe.swarms, Gatherer: pe.reg,
		Ledger: pe.ledger, Payer: pe.payer, Public: pc})
	if err != nil {
		t.Fatal(err)
	}
	return pe
}

// get sends an unauthenticated request from addr.
func (pe *publicEnv) get(path string) *httptest.ResponseRecorder {
	return pe.from("GET", path, "192.0.2.1:4000", nil)
}

func (pe *publicEnv) from(method, path, remote string, hdr http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = remote
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	pe.srv.Handler().ServeHTTP(rec, req)
	return rec
}

func wantOK[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return decodeBody[T](t, rec)
}

func TestPublicInfo(t *testing.T) {
	pe := newPublicEnv(t, nil)
	rec := pe.get("/api/v1/public/info")
	v := wantOK[publicInfo](t, rec)
	if v.FirstEpoch == nil || *v.FirstEpoch != pe.first || v.SealedThrough == nil || *v.SealedThrough != pe.sealedLast {
		t.Errorf("info = %+v, want first %d sealed through %d", v, pe.first, pe.sealedLast)
	}
	if !v.Pools || v.CurrentEpoch <= pe.sealedLast || !strings.Contains(v.PublicID, "seedpay/public-id/v1") {
		t.Errorf("info = %+v", v)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != cacheShort {
		t.Errorf("Cache-Control = %q", cc)
	}
	if rec.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Error("no CORS header on public data")
	}
}

func TestPublicID(t *testing.T) {
	// The documented derivation, computed independently.
	sum := sha256.Sum256(append([]byte("seedpay/public-id/v1\x00"), "0123456789abcdef"...))
	if got, want := PublicID("0123456789abcdef"), hex.EncodeToString(sum[:8]); got != want || !validPublicID(got) {
		t.Fatalf("PublicID = %s, want %s", got, want)
	}
	for _, bad := range []string{"", "0123456789abcde", "0123456789abcdef0", "0123456789ABCDEF", "0123456789abcdeg"} {
		if validPublicID(bad) {
			t.Errorf("validPublicID(%q) = true", bad)
		}
	}
}

func TestPublicEpochs(t *testing.T) {
	pe := newPublicEnv(t, nil)
	ctx := context.Background()
	rec := pe.get("/api/v1/public/epochs?limit=50")
	page := wantOK[publicEpochPage](t, rec)
	if want := int(pe.sealedLast - pe.first + 1); len(page.Epochs) != want || page.Next != "" {
		t.Fatalf("%d epochs, next %q; want %d sealed ones: %s", len(page.Epochs), page.Next, want, rec.Body)
	}
	for i, v := range page.Epochs {
		n := pe.sealedLast - int64(i)
		stored, err := rewards.LoadRecord(ctx, pe.rdb, n)
		if err != nil {
			t.Fatal(err)
		}
		if v.Epoch != n || v.Root != stored.Root || v.Start != stored.Start || v.End != stored.End ||
			v.TotalPoints != stored.TotalPoints || v.TotalCredited != stored.TotalCredited || v.Lines != len(stored.Users) {
			t.Errorf("epoch %d = %+v, record %+v", n, v, stored)
		}
		if len(v.Pools) != 1 || v.Pools[0].ID != rewards.GlobalPool || v.Pools[0].Budget != testBudget {
			t.Errorf("epoch %d pools = %+v", n, v.Pools)
		}
		if v.Payouts == nil {
			t.Fatalf("epoch %d without payouts", n)
		}
	}
	e0 := page.Epochs[len(page.Epochs)-1]
	if e0.Epoch != pe.first || e0.TotalCredited != testBudget || e0.Lines != 3 {
		t.Fatalf("first epoch = %+v", e0)
	}
	wantTx := []string{pe.txAlice, pe.txBob}
	slices.Sort(wantTx)
	if !slices.Equal(e0.Payouts.TxIDs, wantTx) || e0.Payouts.States["confirmed"] != 1 ||
		e0.Payouts.States["broadcast"] != 1 || e0.Payouts.States["unpaid"] != 1 {
		t.Errorf("first epoch payouts = %+v, want txids %v, one confirmed, broadcast, unpaid", e0.Payouts, wantTx)
	}
	e1 := page.Epochs[len(page.Epochs)-2]
	if !slices.Equal(e1.Payouts.TxIDs, []string{pe.txAlice}) || e1.Payouts.States["confirmed"] != 1 {
		t.Errorf("second epoch payouts = %+v", e1.Payouts)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != cacheShort {
		t.Errorf("Cache-Control = %q", cc)
	}

	// Paging: two at a time, following next, visits every epoch once.
	var seen []int64
	q := "?limit=2"
	for q != "" {
		p := wantOK[publicEpochPage](t, pe.get("/api/v1/public/epochs"+q))
		for _, v := range p.Epochs {
			seen = append(seen, v.Epoch)
		}
		q = p.Next
		if len(seen) > 100 {
			t.Fatal("paging does not end")
		}
	}
	for i, n := range seen {
		if n != pe.sealedLast-int64(i) {
			t.Fatalf("paged epochs = %v", seen)
		}
	}
	if len(seen) != len(page.Epochs) {
		t.Fatalf("paged epochs = %v, want %d", seen, len(page.Epochs))
	}
	p := wantOK[publicEpochPage](t, pe.get("/api/v1/public/epochs?before="+strconv.FormatInt(pe.first+1, 10)))
	if len(p.Epochs) != 1 || p.Epochs[0].Epoch != pe.first {
		t.Errorf("before=first+1: %+v", p.Epochs)
	}
	p = wantOK[publicEpochPage](t, pe.get("/api/v1/public/epochs?before="+strconv.FormatInt(pe.first, 10)))
	if len(p.Epochs) != 0 || p.Epochs == nil {
		t.Errorf("before=first: %+v", p.Epochs)
	}
}

func TestPublicEpochLines(t *testing.T) {
	pe := newPublicEnv(t, nil)
	ctx := context.Background()
	stored, _ := rewards.LoadRecord(ctx, pe.rdb, pe.first)
	rec := pe.get("/api/v1/public/epochs/" + strconv.FormatInt(pe.first, 10))
	v := wantOK[publicEpochDetail](t, rec)
	if v.Root != stored.Root || len(v.UserLines) != 3 || v.Next != "" || v.Payouts != nil {
		t.Fatalf("epoch = %s", rec.Body)
	}
	byPID := map[string]publicLine{}
	for i, l := range v.UserLines {
		if i > 0 && v.UserLines[i-1].PID >= l.PID {
			t.Errorf("lines not sorted by public id: %s", rec.Body)
		}
		byPID[l.PID] = l
	}
	want := map[string]struct{ addr, state, tx string }{
		pe.alice.ID: {addrAlice, "confirmed", pe.txAlice},
		pe.bob.ID:   {addrBob, "broadcast", pe.txBob},
		pe.carol.ID: {"", "unpaid", ""},
	}
	for _, u := range stored.Users {
		l, ok := byPID[PublicID(u.User)]
		if !ok {
			t.Fatalf("no line for %s", u.User)
		}
		a, _ := new(big.Int).SetString(u.Amount, 10)
		leaf := rewards.Leaf(pe.first, u.User, u.Address, a)
		w := want[u.User]
		if l.Amount != u.Amount || l.Address != w.addr || l.SeedSeconds != u.SeedSeconds || l.Leaf != hex.EncodeToString(leaf[:]) ||
			l.Payout == nil || l.Payout.State != w.state || l.Payout.TxID != w.tx {
			t.Errorf("line of %s = %+v (payout %+v), record %+v, want %+v", u.User, l, l.Payout, u, w)
		}
	}
	if cc := rec.Header().Get("Cache-Control"); cc != cacheShort {
		t.Errorf("epoch with unpaid lines: Cache-Control = %q", cc)
	}
	// Alice alone, paid and confirmed: nothing about it can change.
	rec = pe.get("/api/v1/public/epochs/" + strconv.FormatInt(pe.first+1, 10))
	v = wantOK[publicEpochDetail](t, rec)
	if len(v.UserLines) != 1 || v.UserLines[0].Payout.TxID != pe.txAlice || rec.Header().Get("Cache-Control") != cacheImmutable {
		t.Errorf("settled epoch: %s, Cache-Control %q", rec.Body, rec.Header().Get("Cache-Control"))
	}
	// An empty sealed epoch.
	v = wantOK[publicEpochDetail](t, pe.get("/api/v1/public/epochs/"+strconv.FormatInt(pe.first+2, 10)))
	if v.UserLines == nil || len(v.UserLines) != 0 || v.Root != strings.Repeat("0", 64) {
		t.Errorf("empty epoch = %+v", v)
	}
	// Paging lines.
	var pids []string
	q := "?limit=2"
	for q != "" {
		p := wantOK[publicEpochDetail](t, pe.get("/api/v1/public/epochs/"+strconv.FormatInt(pe.first, 10)+q))
		for _, l := range p.UserLines {
			pids = append(pids, l.PID)
		}
		q = p.Next
	}
	if len(pids) != 3 || !slices.IsSorted(pids) {
		t.Errorf("paged lines = %v", pids)
	}
}

func TestPublicProof(t *testing.T) {
	pe := newPublicEnv(t, nil)
	ctx := context.Background()
	stored, _ := rewards.LoadRecord(ctx, pe.rdb, pe.first)
	for _, u := range stored.Users {
		pid := PublicID(u.User)
		rec := pe.get(fmt.Sprintf("/api/v1/public/epochs/%d/proof/%s", pe.first, pid))
		p := wantOK[publicProof](t, rec)
		if p.Epoch != pe.first || p.PID != pid || p.Root != stored.Root || p.Amount != u.Amount || p.Address != u.Address {
			t.Errorf("proof of %s = %+v", u.User, p)
		}
		// From the leaf hash alone, as the page checks it.
		var root, leaf [32]byte
		hex.Decode(root[:], []byte(p.Root))
		hex.Decode(leaf[:], []byte(p.Leaf))
		path := make([][32]byte, len(p.Path))
		for i, s := range p.Path {
			hex.Decode(path[i][:], []byte(s))
		}
		if !rewards.VerifyProof(root, leaf, path) {
			t.Errorf("proof of %s does not verify from its leaf", u.User)
		}
		// With the user id, the full check of rewards.Proof.
		full := rewards.Proof{Epoch: p.Epoch, User: u.User, Address: p.Address, Amount: p.Amount, Leaf: p.Leaf, Path: p.Path, Root: p.Root}
		if err := full.Verify(); err != nil {
			t.Errorf("proof of %s with its user id: %v", u.User, err)
		}
		full.Amount += "1"
		if full.Verify() == nil {
			t.Errorf("tampered amount of %s verifies", u.User)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != cacheImmutable {
			t.Errorf("proof Cache-Control = %q", cc)
		}
	}
	// The one-line epoch: the leaf is the root, the path empty (not null).
	p := wantOK[publicProof](t, pe.get(fmt.Sprintf("/api/v1/public/epochs/%d/proof/%s", pe.first+1, PublicID(pe.alice.ID))))
	if p.Path == nil || len(p.Path) != 0 || p.Leaf != p.Root {
		t.Errorf("one-line proof = %+v", p)
	}
}

func TestPublicUser(t *testing.T) {
	pe := newPublicEnv(t, nil)
	pid := PublicID(pe.alice.ID)
	rec := pe.get("/api/v1/public/users/" + pid)
	v := wantOK[publicUser](t, rec)
	if v.PID != pid || v.Balance != "0" || len(v.Credits) != 2 || v.Credits[0].Epoch != pe.first+1 || v.Credits[1].Epoch != pe.first {
		t.Fatalf("alice = %s", rec.Body)
	}
	total := new(big.Int)
	for _, c := range v.Credits {
		a, _ := new(big.Int).SetString(c.Amount, 10)
		total.Add(total, a)
		if c.Payout == nil || c.Payout.State != "confirmed" || c.Payout.TxID != pe.txAlice || c.Address != addrAlice {
			t.Errorf("alice's epoch %d = %+v", c.Epoch, c)
		}
		leaf := rewards.Leaf(c.Epoch, pe.alice.ID, addrAlice, a)
		if c.Leaf != hex.EncodeToString(leaf[:]) {
			t.Errorf("alice's epoch %d leaf %s", c.Epoch, c.Leaf)
		}
	}
	if len(v.Payouts) != 1 {
		t.Fatalf("alice's payouts = %+v", v.Payouts)
	}
	po := v.Payouts[0]
	if po.State != "confirmed" || po.Amount != total.String() || po.TxID != pe.txAlice || po.Address != addrAlice ||
		len(po.Txs) != 1 || po.Txs[0].TxID != pe.txAlice || po.Created == 0 || po.Confirmed == 0 {
		t.Errorf("alice's payout = %+v, want %s confirmed", po, total)
	}

	v = wantOK[publicUser](t, pe.get("/api/v1/public/users/"+PublicID(pe.bob.ID)))
	if len(v.Credits) != 1 || v.Credits[0].Payout.State != "broadcast" || len(v.Payouts) != 1 || v.Payouts[0].State != "broadcast" {
		t.Errorf("bob = %+v", v)
	}
	v = wantOK[publicUser](t, pe.get("/api/v1/public/users/"+PublicID(pe.carol.ID)))
	if len(v.Credits) != 1 || v.Credits[0].Payout.State != "unpaid" || len(v.Payouts) != 0 || v.Payouts == nil ||
		v.Balance != v.Credits[0].Amount || v.Credits[0].Address != "" {
		t.Errorf("carol = %+v", v)
	}
	// Paging.
	v = wantOK[publicUser](t, pe.get("/api/v1/public/users/"+pid+"?limit=1"))
	if len(v.Credits) != 1 || v.Credits[0].Epoch != pe.first+1 || v.Next == "" {
		t.Fatalf("limit=1: %+v", v)
	}
	v = wantOK[publicUser](t, pe.get("/api/v1/public/users/"+pid+v.Next))
	if len(v.Credits) != 1 || v.Credits[0].Epoch != pe.first || v.Next != "" {
		t.Errorf("second page: %+v", v)
	}
}

func TestPublicPools(t *testing.T) {
	pe := newPublicEnv(t, nil)
	v := wantOK[publicPoolPage](t, pe.get("/api/v1/public/pools"))
	if len(v.Pools) != 1 || v.Pools[0].ID != "p1" || v.Pools[0].Deposits[0].Amount != "10000" {
		t.Errorf("pools = %+v", v)
	}
	p := wantOK[PublicPool](t, pe.get("/api/v1/public/pools/p1"))
	if p.Name != "ACME films" || p.Balance != "8500" {
		t.Errorf("pool = %+v", p)
	}
	wantError(t, pe.get("/api/v1/public/pools/p999"), http.StatusNotFound, "p999")
	wantError(t, pe.get("/api/v1/public/pools/nope"), http.StatusBadRequest, "pool id")
	wantError(t, pe.get("/api/v1/public/pools/a.b"), http.StatusBadRequest, "pool id")

	// Without a PoolReader there is no pools section.
	pe = newPublicEnv(t, &PublicConfig{Rate: 1000, Burst: 1000})
	wantError(t, pe.get("/api/v1/public/pools"), http.StatusNotFound, "pools")
	wantError(t, pe.get("/api/v1/public/pools/p1"), http.StatusNotFound, "pools")
	if info := wantOK[publicInfo](t, pe.get("/api/v1/public/info")); info.Pools {
		t.Error("info says pools without a reader")
	}
}

func TestPublicBadInputs(t *testing.T) {
	pe := newPublicEnv(t, nil)
	first := strconv.FormatInt(pe.first, 10)
	pid := PublicID(pe.alice.ID)
	for _, c := range []struct {
		path   string
		status int
		parts  []string
	}{
		{"/api/v1/public/epochs?limit=0", 400, []string{"limit"}},
		{"/api/v1/public/epochs?limit=51", 400, []string{"limit"}},
		{"/api/v1/public/epochs?limit=x", 400, []string{"limit"}},
		{"/api/v1/public/epochs?before=-1", 400, []string{"before"}},
		{"/api/v1/public/epochs?before=99999999999999999999", 400, []string{"before"}},
		{"/api/v1/public/epochs/abc", 400, []string{"epoch"}},
		{"/api/v1/public/epochs/-3", 400, []string{"epoch"}},
		{"/api/v1/public/epochs/1e3", 400, []string{"epoch"}},
		{"/api/v1/public/epochs/" + first + "?limit=501", 400, []string{"limit"}},
		{"/api/v1/public/epochs/" + first + "?offset=-1", 400, []string{"offset"}},
		{"/api/v1/public/epochs/" + first + "?offset=4", 400, []string{"offset", "3 lines"}},
		{"/api/v1/public/epochs/" + strconv.FormatInt(pe.first-1, 10), 404, []string{"before this ledger's first epoch"}},
		{"/api/v1/public/epochs/" + strconv.FormatInt(pe.sealedLast+1, 10), 404, []string{"not sealed yet"}},
		{"/api/v1/public/epochs/" + strconv.FormatInt(pe.first+1000, 10), 404, []string{"not started"}},
		{"/api/v1/public/epochs/" + first + "/proof/zz", 400, []string{"pid"}},
		{"/api/v1/public/epochs/" + first + "/proof/" + strings.ToUpper(pid), 400, []string{"pid"}},
		{"/api/v1/public/epochs/" + first + "/proof/" + pe.alice.ID, 404, []string{"no line"}}, // a user id is not a public id
		{"/api/v1/public/epochs/" + strconv.FormatInt(pe.first+2, 10) + "/proof/" + pid, 404, []string{"no line"}},
		{"/api/v1/public/epochs/" + strconv.FormatInt(pe.first+1000, 10) + "/proof/" + pid, 404, []string{"not started"}},
		{"/api/v1/public/users/" + pe.alice.ID + "x", 400, []string{"pid"}},
		{"/api/v1/public/users/0000000000000000", 404, []string{"no sealed epoch"}},
		{"/api/v1/public/users/" + pid + "?limit=101", 400, []string{"limit"}},
		{"/api/v1/public/users/" + pid + "?before=0", 400, []string{"before"}},
		{"/api/v1/public/nothing", 404, []string{"not found"}},
		{"/api/v1/public/epochs/1/2/3", 404, []string{"not found"}},
		{"/public/nothing.js", 404, []string{"not found"}},
	} {
		rec := pe.get(c.path)
		wantError(t, rec, c.status, c.parts...)
		if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: error Cache-Control = %q", c.path, cc)
		}
	}
	// Read-only: every other method is 405 with Allow, never 401.
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		for _, p := range []string{"/api/v1/public/epochs", "/api/v1/public/epochs/" + first, "/api/v1/public/users/" + pid, "/api/v1/public/x"} {
			rec := pe.from(m, p, "192.0.2.1:1", nil)
			wantError(t, rec, http.StatusMethodNotAllowed, "read-only")
			if rec.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: Allow = %q", m, p, rec.Header().Get("Allow"))
			}
		}
	}
	// HEAD is served.
	if rec := pe.from("HEAD", "/api/v1/public/epochs", "192.0.2.1:1", nil); rec.Code != 200 {
		t.Errorf("HEAD: %d", rec.Code)
	}
	// The admin API keeps its token.
	wantError(t, pe.get("/api/v1/epochs"), http.StatusUnauthorized)
	wantError(t, pe.get("/api/v1/users/"+pe.alice.ID), http.StatusUnauthorized)
}

// TestPublicNoLeaks reads every public route and checks that no private
// value appears anywhere in the bodies: user ids, passkeys, the admin
// token, signed transaction bytes, payout reasons or field names of them.
func TestPublicNoLeaks(t *testing.T) {
	pe := newPublicEnv(t, nil)
	ctx := context.Background()
	var bodies []string
	add := func(p string) *httptest.ResponseRecorder {
		rec := pe.get(p)
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", p, rec.Code, rec.Body)
		}
		bodies = append(bodies, p+" "+rec.Body.String())
		return rec
	}
	add("/api/v1/public/info")
	add("/api/v1/public/epochs?limit=50")
	add("/api/v1/public/pools")
	add("/api/v1/public/pools/p1")
	for n := pe.first; n <= pe.sealedLast; n++ {
		add("/api/v1/public/epochs/" + strconv.FormatInt(n, 10))
		stored, _ := rewards.LoadRecord(ctx, pe.rdb, n)
		for _, u := range stored.Users {
			add(fmt.Sprintf("/api/v1/public/epochs/%d/proof/%s", n, PublicID(u.User)))
		}
	}
	for _, id := range pe.userIDs {
		add("/api/v1/public/users/" + PublicID(id))
	}
	secrets := append(slices.Clone(pe.userIDs), pe.passkeys...)
	secrets = append(secrets, testToken, pe.rawAlice, pe.rawBob, hex.EncodeToString([]byte("signed-transfer-")))
	for _, n := range []string{"alice", "bob", "carol"} {
		secrets = append(secrets, `"`+n+`"`)
	}
	fields := []string{`"user"`, `"passkey"`, `"raw"`, `"reason"`, `"id":"1-`, `"name":"alice"`, `"expiration"`, `"token"`}
	for _, b := range bodies {
		for _, s := range secrets {
			if s != "" && strings.Contains(b, s) {
				t.Errorf("private value %q leaks in %.200s", s, b)
			}
		}
		for _, f := range fields {
			if strings.Contains(b, f) {
				t.Errorf("private field %s in %.200s", f, b)
			}
		}
	}
	// Private ids must not leak through errors either.
	rec := pe.get("/api/v1/public/users/" + PublicID(pe.alice.ID) + "?limit=abc")
	if strings.Contains(rec.Body.String(), pe.alice.ID) {
		t.Errorf("error leaks the user id: %s", rec.Body)
	}
}

func TestPublicRateLimit(t *testing.T) {
	pe := newPublicEnv(t, &PublicConfig{Rate: 0.5, Burst: 3, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	for i := range 3 {
		if rec := pe.from("GET", "/api/v1/public/info", "192.0.2.7:1000", nil); rec.Code != 200 {
			t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	rec := pe.from("GET", "/api/v1/public/epochs", "192.0.2.7:1001", nil)
	wantError(t, rec, http.StatusTooManyRequests, "rate limit")
	if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Errorf("Retry-After = %q", rec.Header().Get("Retry-After"))
	}
	// The page counts too.
	wantError(t, pe.from("GET", "/", "192.0.2.7:1002", nil), http.StatusTooManyRequests)
	// Another client is not affected; the admin API is not limited.
	if rec := pe.from("GET", "/api/v1/public/info", "192.0.2.8:1000", nil); rec.Code != 200 {
		t.Errorf("other client: %d", rec.Code)
	}
	for range 5 {
		if rec := pe.from("GET", "/healthz", "192.0.2.7:1000", nil); rec.Code != 200 {
			t.Errorf("healthz limited: %d", rec.Code)
		}
	}
	// X-Forwarded-For counts only from a trusted proxy.
	spoof := http.Header{"X-Forwarded-For": {"198.51.100.1"}}
	wantError(t, pe.from("GET", "/api/v1/public/info", "192.0.2.7:1003", spoof), http.StatusTooManyRequests)
	for i := range 3 {
		if rec := pe.from("GET", "/api/v1/public/info", "10.1.2.3:5", http.Header{"X-Forwarded-For": {"192.0.2.7, 198.51.100.9"}}); rec.Code != 200 {
			t.Fatalf("via proxy %d: %d", i, rec.Code)
		}
	}
	wantError(t, pe.from("GET", "/api/v1/public/info", "10.9.9.9:5", http.Header{"X-Forwarded-For": {"198.51.100.9"}}), http.StatusTooManyRequests)
}

func TestRateLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRateLimiter(2, 4, 3)
	l.now = func() time.Time { return now }
	k := netip.MustParsePrefix("192.0.2.1/32")
	for i := range 4 {
		if ok, _ := l.allow(k); !ok {
			t.Fatalf("request %d refused", i)
		}
	}
	ok, wait := l.allow(k)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("fifth = %v %v, want refused for 500ms", ok, wait)
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.allow(k); !ok {
		t.Fatal("refill did not happen")
	}
	now = now.Add(time.Hour)
	for i := range 4 { // refills to burst, never beyond
		if ok, _ := l.allow(k); !ok {
			t.Fatalf("after an hour, request %d refused", i)
		}
	}
	if ok, _ := l.allow(k); ok {
		t.Fatal("bucket grew beyond burst")
	}
	// Bounded: many clients keep at most max buckets; the oldest goes.
	for i := range 10 {
		l.allow(netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 32))
	}
	if l.len() != 3 {
		t.Fatalf("tracking %d clients, want 3", l.len())
	}
	if ok, _ := l.allow(k); !ok {
		t.Fatal("an evicted client starts with a full bucket")
	}
}

func TestClientKey(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, c := range []struct {
		remote, xff, want string
	}{
		{"192.0.2.1:80", "", "192.0.2.1/32"},
		{"[2001:db8:1:2:3:4:5:6]:80", "", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.1]:80", "", "192.0.2.1/32"},
		{"192.0.2.1:80", "203.0.113.5", "192.0.2.1/32"},                // untrusted peer: header ignored
		{"10.0.0.1:80", "203.0.113.5", "203.0.113.5/32"},               // trusted proxy
		{"10.0.0.1:80", "203.0.113.5, 10.0.0.2", "203.0.113.5/32"},     // two proxies
		{"10.0.0.1:80", "198.51.100.1, 203.0.113.5", "203.0.113.5/32"}, // client-supplied left part ignored
		{"10.0.0.1:80", "garbage", "10.0.0.1/32"},
		{"[fd00::1]:80", "2001:db8::9", "2001:db8::/64"},
		{"10.0.0.1:80", "10.0.0.3, garbage, 10.0.0.2", "10.0.0.2/32"}, // stops at a garbled hop: the last address read
		// Several header lines are one list, read from the last line's right end.
		{"10.0.0.1:80", "198.51.100.1, 203.0.113.7\n10.0.0.4", "203.0.113.7/32"},
		{"10.0.0.1:80", "203.0.113.8\n10.0.0.4, 10.0.0.5", "203.0.113.8/32"},
		{"10.0.0.1:80", "10.0.0.4\n203.0.113.9", "203.0.113.9/32"}, // the nearest hop is on the last line
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for _, line := range strings.Split(c.xff, "\n") {
			if line != "" {
				r.Header.Add("X-Forwarded-For", line)
			}
		}
		if got := clientKey(r, trusted); got.String() != c.want {
			t.Errorf("%s via %q: key %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

func TestAllocatePayouts(t *testing.T) {
	po := func(amount, state string) rewards.Payout { return rewards.Payout{Amount: amount, State: state} }
	for _, c := range []struct {
		name    string
		credits map[int64]string
		payouts []rewards.Payout
		want    map[int64]int
	}{
		{"nothing paid", map[int64]string{1: "10"}, nil, map[int64]int{}},
		{"one payout for two epochs", map[int64]string{1: "10", 2: "5"}, []rewards.Payout{po("15", "confirmed")}, map[int64]int{1: 0, 2: 0}},
		{"one payout each", map[int64]string{1: "10", 2: "5", 3: "7"},
			[]rewards.Payout{po("10", "confirmed"), po("5", "broadcast")}, map[int64]int{1: 0, 2: 1}},
		{"a failed payout is repaid by the next", map[int64]string{1: "10", 2: "5"},
			[]rewards.Payout{po("10", "failed"), po("15", "pending")}, map[int64]int{1: 1, 2: 1}},
		{"failed after a good one", map[int64]string{1: "10", 2: "5", 3: "1"},
			[]rewards.Payout{po("10", "confirmed"), po("5", "failed"), po("6", "signed")}, map[int64]int{1: 0, 2: 2, 3: 2}},
		{"zero credits are skipped", map[int64]string{1: "0", 2: "5"}, []rewards.Payout{po("5", "confirmed")}, map[int64]int{2: 0}},
	} {
		got := allocatePayouts(c.credits, c.payouts)
		if len(got) != len(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
	}
}

// TestPublicIndexIncremental seals epochs after the index was built: the
// index appends them, a new public id is found at once, a known one after
// the refresh interval.
func TestPublicIndexIncremental(t *testing.T) {
	pe := newPublicEnv(t, nil)
	ctx := context.Background()
	x := newPublicIndex(pe.rdb, zap.NewNop())
	now := time.Now()
	x.now = func() time.Time { return now }
	if err := x.refresh(ctx, false); err != nil {
		t.Fatal(err)
	}
	if first, last, ok := x.sealedThrough(); !ok || first != pe.first || last != pe.sealedLast {
		t.Fatalf("sealed %d..%d %v", first, last, ok)
	}
	// Seal the next epoch by hand: alice and a new user dave.
	n := pe.sealedLast + 1
	rec := &rewards.Record{Epoch: n, Start: 1, End: 2, TotalPoints: "2", TotalCredited: "20", Pools: []rewards.PoolRecord{},
		Users: []rewards.UserRecord{{User: pe.alice.ID, Address: addrAlice, Amount: "10"}, {User: "dave", Amount: "10"}}}
	leaves := [][32]byte{rewards.Leaf(n, pe.alice.ID, addrAlice, big.NewInt(10)), rewards.Leaf(n, "dave", "", big.NewInt(10))}
	root := rewards.NewTree(leaves).Root()
	rec.Root = hex.EncodeToString(root[:])
	body, _ := json.Marshal(rec)
	pe.rdb.Set(ctx, rewards.KeyEpochRecord(n), body, 0)

	if err := x.refresh(ctx, false); err != nil { // throttled: nothing new yet
		t.Fatal(err)
	}
	if _, last, _ := x.sealedThrough(); last != pe.sealedLast {
		t.Fatalf("throttled refresh indexed %d", last)
	}
	if err := x.refresh(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, last, _ := x.sealedThrough(); last != n {
		t.Fatalf("forced refresh: sealed through %d, want %d", last, n)
	}
	if user, epochs, ok := x.lookup(PublicID("dave")); !ok || user != "dave" || !slices.Equal(epochs, []int64{n}) {
		t.Errorf("dave: %s %v %v", user, epochs, ok)
	}
	if _, epochs, _ := x.lookup(PublicID(pe.alice.ID)); !slices.Equal(epochs, []int64{n, pe.first + 1, pe.first}) {
		t.Errorf("alice's epochs %v", epochs)
	}
	// The route finds a brand-new public id without waiting.
	n++
	rec = &rewards.Record{Epoch: n, Start: 1, End: 2, TotalPoints: "1", TotalCredited: "0", Pools: []rewards.PoolRecord{},
		Users: []rewards.UserRecord{{User: "erin", Amount: "0", SeedSeconds: 5}}}
	root = rewards.Leaf(n, "erin", "", big.NewInt(0))
	rec.Root = hex.EncodeToString(root[:])
	body, _ = json.Marshal(rec)
	pe.rdb.Set(ctx, rewards.KeyEpochRecord(n), body, 0)
	v := wantOK[publicUser](t, pe.get("/api/v1/public/users/"+PublicID("erin")))
	if len(v.Credits) != 1 || v.Credits[0].Epoch != n || v.Credits[0].Payout != nil || v.Credits[0].SeedSeconds != 5 {
		t.Errorf("erin = %+v", v)
	}

	// A record whose lines do not hash to its root is refused, not served.
	n++
	rec.Epoch, rec.Root = n, strings.Repeat("11", 32)
	body, _ = json.Marshal(rec)
	pe.rdb.Set(ctx, rewards.KeyEpochRecord(n), body, 0)
	wantError(t, pe.get("/api/v1/public/epochs/"+strconv.FormatInt(n, 10)), http.StatusInternalServerError)
}

// TestPublicNoTorrentAttribution seals an epoch in which a seeder earned
// from a bounty pool (one torrent): no public line says how many points it
// earned in which pool, and no epoch names the torrents its pools paid; the
// pool's all-time per-torrent totals are on the pool, not per epoch.
func TestPublicNoTorrentAttribution(t *testing.T) {
	pe := newPublicEnv(t, nil)
	ctx := context.Background()
	const ih = "00112233445566778899aabbccddeeff00112233"
	n := pe.sealedLast + 1
	rec := &rewards.Record{Epoch: n, Start: 1, End: 2, TotalPoints: "5000000", TotalCredited: "30",
		Pools: []rewards.PoolRecord{
			{ID: "global", Budget: "20", DustIn: "0", Available: "20", Points: "2000000", Credited: "20", DustOut: "0"},
			{ID: "p7", Budget: "10", DustIn: "0", Available: "10", Points: "3000000", Credited: "10", DustOut: "0", Remaining: "90",
				Torrents: map[string]string{ih: "10"}},
		},
		Users: []rewards.UserRecord{{User: pe.alice.ID, Address: addrAlice, SeedSeconds: 50, Amount: "30",
			Points: map[string]string{"global": "2000000", "p7": "3000000"}}}}
	leaf := rewards.Leaf(n, pe.alice.ID, addrAlice, big.NewInt(30))
	rec.Root = hex.EncodeToString(leaf[:])
	body, _ := json.Marshal(rec)
	pe.rdb.Set(ctx, rewards.KeyEpochRecord(n), body, 0)

	epoch := pe.get("/api/v1/public/epochs/" + strconv.FormatInt(n, 10))
	d := wantOK[publicEpochDetail](t, epoch)
	if len(d.UserLines) != 1 || d.UserLines[0].Amount != "30" || d.UserLines[0].SeedSeconds != 50 || d.UserLines[0].Leaf != rec.Root {
		t.Fatalf("epoch = %s", epoch.Body)
	}
	user := pe.get("/api/v1/public/users/" + PublicID(pe.alice.ID))
	u := wantOK[publicUser](t, user)
	if len(u.Credits) == 0 || u.Credits[0].Epoch != n || u.Credits[0].Amount != "30" || u.Credits[0].Leaf != rec.Root {
		t.Fatalf("user = %s", user.Body)
	}
	list := pe.get("/api/v1/public/epochs?limit=1")
	for _, b := range []*httptest.ResponseRecorder{epoch, user, list} {
		s := b.Body.String()
		if strings.Contains(s, ih) || strings.Contains(s, `"torrents"`) {
			t.Errorf("an epoch names a pool's torrents: %s", s)
		}
		// Pool lines keep their totals; user lines carry no points at all.
		var raw struct {
			UserLines []map[string]any `json:"user_lines"`
			Epochs    []map[string]any `json:"epochs"`
		}
		if err := json.Unmarshal(b.Body.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		for _, l := range append(raw.UserLines, raw.Epochs...) {
			if _, ok := l["points"]; ok {
				t.Errorf("a public line publishes points per pool: %v", l)
			}
		}
	}
	if !strings.Contains(epoch.Body.String(), `"points":"3000000"`) {
		t.Errorf("the pool line lost its total points: %s", epoch.Body)
	}
}

func TestPublicDisabled(t *testing.T) {
	e := newEnv(t, quiet())
	wantError(t, e.doAuth("GET", "/api/v1/public/info", "", ""), http.StatusUnauthorized)
	wantError(t, e.doAuth("GET", "/", "", ""), http.StatusNotFound)
	// Public without a ledger: left out, not a crash.
	srv, err := New(Config{AdminToken: testToken}, Deps{Store: e.store, Cache: e.cache, Swarms: e.swarms, Gatherer: e.reg, Public: &PublicConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("page without a ledger: %d", rec.Code)
	}
}

func TestPublicPage(t *testing.T) {
	pe := newPublicEnv(t, nil)
	rec := pe.get("/")
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(rec.Body.String(), "/public/app.js") {
		t.Fatalf("page: %d %q %.200s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("CSP = %q", csp)
	}
	for _, f := range []string{"app.js", "style.css"} {
		rec := pe.get("/public/" + f)
		if rec.Code != 200 || rec.Body.Len() == 0 || rec.Header().Get("ETag") == "" {
			t.Errorf("%s: %d", f, rec.Code)
		}
		for _, ext := range []string{"http://", "https://", "//fonts.", "cdn"} {
			if strings.Contains(strings.ToLower(rec.Body.String()), ext) {
				t.Errorf("%s refers to %q: the page must load nothing from elsewhere", f, ext)
			}
		}
		rec2 := pe.from("GET", "/public/"+f, "192.0.2.1:1", http.Header{"If-None-Match": {rec.Header().Get("ETag")}})
		if rec2.Code != http.StatusNotModified {
			t.Errorf("%s revalidation: %d", f, rec2.Code)
		}
	}
	if rec := pe.from("HEAD", "/", "192.0.2.1:1", nil); rec.Code != 200 {
		t.Errorf("HEAD /: %d", rec.Code)
	}
}

func TestLRU(t *testing.T) {
	c := newLRU[int, string](10)
	now := time.Now()
	c.put(1, "a", 4, now)
	c.put(2, "b", 4, now)
	c.get(1) // 2 is now the least recently used
	c.put(3, "c", 4, now)
	if _, _, ok := c.get(2); ok || c.len() != 2 {
		t.Fatalf("2 not evicted: %d items", c.len())
	}
	if v, _, ok := c.get(1); !ok || v != "a" {
		t.Fatal("1 evicted")
	}
	c.put(4, "huge", 100, now) // heavier than the bound: kept alone
	if c.len() != 1 {
		t.Fatalf("%d items after a huge one", c.len())
	}
	c.put(4, "small", 1, now)
	if c.weight != 1 {
		t.Fatalf("weight %d after replacing", c.weight)
	}
}

// TestPublicConcurrent reads every route from many goroutines at once (run
// with -race): the index, the caches and the payout lookups are shared.
func TestPublicConcurrent(t *testing.T) {
	pe := newPublicEnv(t, nil)
	paths := []string{"/api/v1/public/info", "/api/v1/public/epochs?limit=50", "/api/v1/public/pools",
		"/api/v1/public/epochs/" + strconv.FormatInt(pe.first, 10),
		fmt.Sprintf("/api/v1/public/epochs/%d/proof/%s", pe.first, PublicID(pe.bob.ID))}
	for _, id := range pe.userIDs {
		paths = append(paths, "/api/v1/public/users/"+PublicID(id))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				p := paths[(g+i)%len(paths)]
				req := httptest.NewRequest("GET", p, nil)
				req.RemoteAddr = fmt.Sprintf("192.0.2.%d:1", g)
				rec := httptest.NewRecorder()
				pe.srv.Handler().ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					t.Errorf("%s: %d %s", p, rec.Code, rec.Body)
					return
				}
			}
		}()
	}
	wg.Wait()
}

type oneDepositKey struct{ n int }

func (k *oneDepositKey) NewDepositAddress() (string, error) {
	k.n++
	return fmt.Sprintf("TDepositAddress%019d", k.n), nil
}

// TestPublicPoolsFromStore serves real pools through PublicPoolReader: the
// pool's public fields are there, its owner and refund address are not.
func TestPublicPoolsFromStore(t *testing.T) {
	e := newEnv(t, quiet())
	ctx := context.Background()
	pools := rewards.NewPools(e.rdb, &oneDepositKey{}, nil, "60", zap.NewNop())
	ih := "0123456789abcdef0123456789abcdef01234567"
	made, err := pools.Create(ctx, rewards.PoolSpec{Name: "Open films", Owner: "owner-private-name", RefundAddress: "TRefundPrivateAddress0000000000000",
		Torrents: []string{ih}, BudgetPerEpoch: "500"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rewards.DefaultConfig()
	pe := &publicEnv{env: e}
	pe.srv, err = New(Config{AdminToken: testToken}, Deps{Store: e.store, Cache: e.cache, Swarms: e.swarms, Gatherer: e.reg,
		Ledger: rewards.NewLedger(e.rdb, cfg), Public: &PublicConfig{Pools: PublicPoolReader(pools)}})
	if err != nil {
		t.Fatal(err)
	}
	list := pe.get("/api/v1/public/pools")
	v := wantOK[publicPoolPage](t, list)
	if len(v.Pools) != 2 || v.Pools[0].ID != rewards.GlobalPool || !v.Pools[0].Global || v.Pools[1].ID != made.ID {
		t.Fatalf("pools = %s", list.Body)
	}
	// The operator-funded global pool has no balance to show.
	if v.Pools[0].Balance != "" {
		t.Errorf("global pool balance %q", v.Pools[0].Balance)
	}
	// The list counts torrents; a pool's own view lists them.
	if p := v.Pools[1]; p.TorrentCount != 1 || p.Torrents != nil || strings.Contains(list.Body.String(), ih) {
		t.Errorf("list view of a pool = %+v", p)
	}
	one := pe.get("/api/v1/public/pools/" + made.ID)
	p := wantOK[PublicPool](t, one)
	if p.Name != "Open films" || p.State != rewards.PoolOpen || p.DepositAddress != made.DepositAddress || p.BudgetPerEpoch != "500" ||
		p.Funded != "0" || p.Balance != "0" || len(p.Torrents) != 1 || p.Torrents[0] != ih {
		t.Errorf("pool = %s", one.Body)
	}
	for _, body := range []string{list.Body.String(), one.Body.String()} {
		for _, private := range []string{"owner-private-name", "TRefundPrivateAddress", `"owner"`, `"refund_address"`} {
			if strings.Contains(body, private) {
				t.Errorf("%s leaks in %s", private, body)
			}
		}
	}
	wantError(t, pe.get("/api/v1/public/pools/p99"), http.StatusNotFound, "p99")
}

// countingPools counts list builds and holds each one until release.
type countingPools struct {
	fakePools
	builds  atomic.Int64
	release chan struct{}
}

func (c *countingPools) PublicPools(ctx context.Context) ([]PublicPool, error) {
	c.builds.Add(1)
	<-c.release
	return c.fakePools, nil
}

// TestPublicPoolsCached: concurrent requests for the pools list share one
// build, later ones within the TTL are served from memory, and the list
// pages.
func TestPublicPoolsCached(t *testing.T) {
	var many fakePools
	for i := range 7 {
		many = append(many, PublicPool{ID: "p" + strconv.Itoa(i+1), BudgetPerEpoch: "1", Funded: "0", Spent: "0", Balance: "0"})
	}
	cp := &countingPools{fakePools: many, release: make(chan struct{})}
	pe := newPublicEnv(t, &PublicConfig{Pools: cp, Rate: 1000, Burst: 1000})
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = pe.from("GET", "/api/v1/public/pools", fmt.Sprintf("192.0.2.%d:1", i), nil).Code
		}()
	}
	time.Sleep(100 * time.Millisecond) // every request is waiting on the one build
	close(cp.release)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	v := wantOK[publicPoolPage](t, pe.get("/api/v1/public/pools?limit=3"))
	if n := cp.builds.Load(); n != 1 {
		t.Errorf("%d builds for 21 requests within the TTL, want 1", n)
	}
	var ids []string
	for q := "?limit=3"; q != ""; q = v.Next {
		v = wantOK[publicPoolPage](t, pe.get("/api/v1/public/pools"+q))
		for _, p := range v.Pools {
			ids = append(ids, p.ID)
		}
		if v.Total != 7 || len(v.Pools) > 3 {
			t.Fatalf("page %s: %+v", q, v)
		}
	}
	if len(ids) != 7 || ids[6] != "p7" {
		t.Errorf("paged ids %v", ids)
	}
	wantError(t, pe.get("/api/v1/public/pools?limit=501"), http.StatusBadRequest, "limit")

	// After the TTL, the next request builds again.
	c := newPoolListCache()
	now := time.Now()
	c.now = func() time.Time { return now }
	builds := 0
	build := func(context.Context) ([]PublicPool, error) { builds++; return []PublicPool{}, nil }
	for range 3 {
		if _, err := c.get(context.Background(), build); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(poolListTTL)
	if _, err := c.get(context.Background(), build); err != nil || builds != 2 {
		t.Errorf("builds %d after the TTL, want 2 (%v)", builds, err)
	}
}

// TestPublicHandlerAlone serves the public API and page without the admin
// API, as a separate public listener would.
func TestPublicHandlerAlone(t *testing.T) {
	pe := newPublicEnv(t, nil)
	h, err := PublicHandler(Deps{Store: pe.store, Ledger: pe.ledger, Public: &PublicConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(method, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken) // the admin token opens nothing here
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve("GET", "/"); rec.Code != 200 || !strings.Contains(rec.Body.String(), "/public/app.js") {
		t.Errorf("page: %d", rec.Code)
	}
	if v := wantOK[publicEpochPage](t, serve("GET", "/api/v1/public/epochs")); len(v.Epochs) == 0 {
		t.Error("no epochs")
	}
	for _, p := range []string{"/api/v1/users/" + pe.alice.ID, "/api/v1/epochs", "/metrics", "/healthz", "/api/v1/public/pools"} {
		wantError(t, serve("GET", p), http.StatusNotFound)
	}
	wantError(t, serve("POST", "/api/v1/users"), http.StatusMethodNotAllowed, "read-only")
	wantError(t, serve("DELETE", "/"), http.StatusMethodNotAllowed, "read-only")
	if _, err := PublicHandler(Deps{Store: pe.store, Public: &PublicConfig{}}); err == nil {
		t.Error("a public handler without a ledger")
	}
}
