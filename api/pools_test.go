package api

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/chain"
	"github.com/seedpay/seedpay/rewards"
)

const refundAddr = "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"

type fakeDepositKeys struct{ n atomic.Int64 }

func (k *fakeDepositKeys) NewDepositAddress() (string, error) {
	return fmt.Sprintf("TDeposit%034d", k.n.Add(1)), nil
}

func checkTronAddress(a string) error { _, err := chain.ParseAddress(a); return err }

// poolEnv is an API with pools on, and torrents aa.., bb.., cc.. registered.
func poolEnv(t testing.TB) (*env, *rewards.Pools) {
	t.Helper()
	e := newEnv(t, quiet())
	pools := rewards.NewPools(e.rdb, &fakeDepositKeys{}, checkTronAddress, "1000", zap.NewNop())
	var err error
	e.srv, err = New(Config{AdminToken: testToken}, Deps{Store: e.store, Cache: e.cache, Swarms: e.swarms, Gatherer: e.reg, Pools: pools})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range "abc" {
		rec := e.do("POST", "/api/v1/torrents", `{"info_hash":"`+strings.Repeat(string(c), 40)+`","name":"t","size":1000}`)
		if rec.Code != http.StatusCreated {
			t.Fatalf("torrent: %d %s", rec.Code, rec.Body)
		}
	}
	return e, pools
}

var (
	ihA = strings.Repeat("a", 40)
	ihB = strings.Repeat("b", 40)
	ihC = strings.Repeat("c", 40)
)

func poolBody(torrents, budget string) string {
	return `{"name":"Studio films","owner":"studio","refund_address":"` + refundAddr + `","torrents":` + torrents + `,"budget_per_epoch":` + budget + `}`
}

func TestPoolRoutes(t *testing.T) {
	e, pools := poolEnv(t)
	ctx := context.Background()

	rec := e.do("POST", "/api/v1/pools", poolBody(`["`+strings.ToUpper(ihA)+`","`+ihB+`"]`, `"1000000000000000000000000"`))
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	p := decodeBody[rewards.PoolView](t, rec)
	if p.ID != "p1" || p.State != "open" || p.DepositAddress == "" || p.RefundAddress != refundAddr || p.Funded != "0" ||
		p.Remaining != "0" || len(p.Torrents) != 2 || p.Torrents[0] != ihA || p.BudgetPerEpoch != "1000000000000000000000000" {
		t.Fatalf("created %+v", p)
	}
	if strings.Contains(strings.ToLower(rec.Body.String()), "key") {
		t.Fatalf("a key field in the answer: %s", rec.Body)
	}

	rec = e.do("GET", "/api/v1/pools", "")
	list := decodeBody[struct {
		Pools []rewards.PoolView `json:"pools"`
	}](t, rec)
	if len(list.Pools) != 2 || list.Pools[0].ID != "global" || !list.Pools[0].Global || list.Pools[0].BudgetPerEpoch != "1000" || list.Pools[1].ID != "p1" {
		t.Fatalf("list %s", rec.Body)
	}
	if rec = e.do("GET", "/api/v1/pools/p1", ""); rec.Code != 200 {
		t.Fatalf("get %d", rec.Code)
	}
	if rec = e.do("GET", "/api/v1/pools/global", ""); rec.Code != 200 || !decodeBody[rewards.PoolView](t, rec).Global {
		t.Fatalf("get global %d %s", rec.Code, rec.Body)
	}
	for _, id := range []string{"p2", "bogus", "p01", "%7B"} {
		wantError(t, e.do("GET", "/api/v1/pools/"+id, ""), 404, "pool not found")
	}

	// Torrents.
	rec = e.do("POST", "/api/v1/pools/p1/torrents", `{"torrents":["`+ihC+`"]}`)
	if rec.Code != 200 || len(decodeBody[rewards.PoolView](t, rec).Torrents) != 3 {
		t.Fatalf("add %d %s", rec.Code, rec.Body)
	}
	wantError(t, e.do("POST", "/api/v1/pools/p1/torrents", `{"torrents":[]}`), 400, "torrents", "1..1000")
	wantError(t, e.do("POST", "/api/v1/pools/p1/torrents", `{"torrents":["`+strings.Repeat("d", 40)+`"]}`), 400, "not registered")
	wantError(t, e.do("POST", "/api/v1/pools/p1/torrents", `{"info_hash":"x"}`), 400, "unknown field")
	wantError(t, e.do("POST", "/api/v1/pools/p9/torrents", `{"torrents":["`+ihC+`"]}`), 404, "pool not found")
	rec = e.do("DELETE", "/api/v1/pools/p1/torrents/"+ihC, "")
	if rec.Code != 200 || len(decodeBody[rewards.PoolView](t, rec).Torrents) != 2 {
		t.Fatalf("remove %d %s", rec.Code, rec.Body)
	}
	wantError(t, e.do("DELETE", "/api/v1/pools/p1/torrents/xyz", ""), 400, "info_hash")
	wantError(t, e.do("DELETE", "/api/v1/pools/global/torrents/"+ihA, ""), 404, "pool not found")

	// Deposits.
	wantError(t, e.do("GET", "/api/v1/deposits", ""), 400, "unclaimed=1")
	rec = e.do("GET", "/api/v1/deposits?unclaimed=1", "")
	if rec.Code != 200 || rec.Body.String() != "{\"deposits\":[]}\n" {
		t.Fatalf("unclaimed %d %s", rec.Code, rec.Body)
	}
	wantError(t, e.do("GET", "/api/v1/deposits?unclaimed=1&limit=0", ""), 400, "limit")
	if rec = e.do("GET", "/api/v1/pools/p1/deposits", ""); rec.Code != 200 {
		t.Fatalf("pool deposits %d", rec.Code)
	}
	w, err := rewards.NewDepositWatcher(e.rdb, nil, rewards.DefaultDepositConfig(), prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the same transfer twice: credited once
		to := p.DepositAddress
		if _, err := w.Credit(ctx, rewards.TokenTransfer{TxID: "ab12", LogIndex: 0, Block: 9, From: "TFrom", To: to, Amount: big.NewInt(1234)}); err != nil {
			t.Fatal(err)
		}
	}
	rec = e.do("GET", "/api/v1/pools/p1/deposits", "")
	deps := decodeBody[depositPage](t, rec).Deposits
	if len(deps) != 1 || deps[0].Amount != "1234" || deps[0].Pool != "p1" || deps[0].ID != "ab12:0" {
		t.Fatalf("deposits %s", rec.Body)
	}
	if v := decodeBody[rewards.PoolView](t, e.do("GET", "/api/v1/pools/p1", "")); v.Funded != "1234" || v.Remaining != "1234" {
		t.Fatalf("funded %+v", v)
	}
	wantError(t, e.do("GET", "/api/v1/pools/p7/deposits", ""), 404, "pool not found")
	wantError(t, e.do("GET", "/api/v1/pools/global/deposits", ""), 404, "no deposit address")

	// Close: 202 closing (the settler refunds), again the same, then no edits.
	rec = e.do("POST", "/api/v1/pools/p1/close", "")
	if rec.Code != http.StatusAccepted || decodeBody[rewards.PoolView](t, rec).State != "closing" {
		t.Fatalf("close %d %s", rec.Code, rec.Body)
	}
	if rec = e.do("POST", "/api/v1/pools/p1/close", ""); rec.Code != http.StatusAccepted {
		t.Fatalf("close again %d", rec.Code)
	}
	wantError(t, e.do("POST", "/api/v1/pools/p1/torrents", `{"torrents":["`+ihC+`"]}`), 409, "closing")
	wantError(t, e.do("POST", "/api/v1/pools/p5/close", ""), 404, "pool not found")
	wantError(t, e.do("POST", "/api/v1/pools/global/close", ""), 404, "pool not found")

	// Bounty.
	wantError(t, e.do("POST", "/api/v1/torrents/"+ihA+"/bounty", ""), 400, "refund_address")
	wantError(t, e.do("POST", "/api/v1/torrents/"+strings.Repeat("e", 40)+"/bounty", ""), 404, "torrent not found")
	wantError(t, e.do("POST", "/api/v1/torrents/nothex/bounty", ""), 400, "info_hash")
	wantError(t, e.do("POST", "/api/v1/torrents/"+ihA+"/bounty", `{"refund_address":"T1","budget_per_epoch":"5"}`), 400, "refund_address")
	wantError(t, e.do("POST", "/api/v1/torrents/"+ihA+"/bounty", `{"refund_address":"`+refundAddr+`","budget_per_epoch":5}`), 400, "budget_per_epoch", "string")
	rec = e.do("POST", "/api/v1/torrents/"+ihA+"/bounty", `{"refund_address":"`+refundAddr+`","budget_per_epoch":"5"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("bounty %d %s", rec.Code, rec.Body)
	}
	b := decodeBody[rewards.PoolView](t, rec)
	if b.Bounty != ihA || len(b.Torrents) != 1 || b.DepositAddress == "" || b.ID != "p2" {
		t.Fatalf("bounty %+v", b)
	}
	rec = e.do("POST", "/api/v1/torrents/"+strings.ToUpper(ihA)+"/bounty", "")
	if rec.Code != http.StatusOK || decodeBody[bountyResponse](t, rec).ID != b.ID {
		t.Fatalf("bounty again %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(rec.Body.String(), `"existing":true`) || strings.Contains(rec.Body.String(), `"note"`) {
		t.Errorf("bounty again without a body: %s", rec.Body)
	}
	// A body for a torrent with an open bounty is not applied, and the
	// answer says so.
	rec = e.do("POST", "/api/v1/torrents/"+ihA+"/bounty", `{"refund_address":"`+refundAddr+`","budget_per_epoch":"99"}`)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"existing":true`) || !strings.Contains(rec.Body.String(), "not applied") ||
		decodeBody[bountyResponse](t, rec).BudgetPerEpoch != "5" {
		t.Errorf("bounty with a body while one is open: %d %s", rec.Code, rec.Body)
	}
	// A bounty pool's torrents cannot be edited.
	wantError(t, e.do("POST", "/api/v1/pools/"+b.ID+"/torrents", `{"torrents":["`+ihB+`"]}`), http.StatusConflict, "bounty")
	wantError(t, e.do("DELETE", "/api/v1/pools/"+b.ID+"/torrents/"+ihA, ""), http.StatusConflict, "bounty")
	if v, _ := pools.Get(ctx, b.ID); len(v.Torrents) != 1 || v.Torrents[0] != ihA {
		t.Errorf("bounty torrents changed: %v", v.Torrents)
	}
	if ids, _ := pools.IDs(ctx); len(ids) != 2 {
		t.Fatalf("pools %v", ids)
	}

	// The token is required everywhere.
	for _, r := range [][2]string{{"GET", "/api/v1/pools"}, {"POST", "/api/v1/pools"}, {"GET", "/api/v1/deposits?unclaimed=1"},
		{"POST", "/api/v1/torrents/" + ihA + "/bounty"}, {"POST", "/api/v1/pools/p1/close"}} {
		wantError(t, e.doAuth(r[0], r[1], "", ""), 401, "missing bearer token")
	}
}

func TestCreatePoolBadInput(t *testing.T) {
	e, _ := poolEnv(t)
	ok := `["` + ihA + `"]`
	cases := []struct{ body, want string }{
		{``, "empty"},
		{`[]`, "JSON object"},
		{`{"name":"x"}`, "missing required field"},
		{poolBody(ok, `"10"`)[:40], "malformed JSON"},
		{strings.Replace(poolBody(ok, `"10"`), `"owner"`, `"Owner"`, 1), "unknown field"},
		{strings.Replace(poolBody(ok, `"10"`), `"Studio films"`, `""`, 1), `"name"`},
		{strings.Replace(poolBody(ok, `"10"`), `"studio"`, `"`+strings.Repeat("x", 200)+`"`, 1), `"owner"`},
		{strings.Replace(poolBody(ok, `"10"`), refundAddr, "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSF", 1), "refund_address"},
		{poolBody(ok, `10`), "budget_per_epoch"},
		{poolBody(ok, `1e30`), "budget_per_epoch"},
		{poolBody(ok, `"0"`), "positive"},
		{poolBody(ok, `"010"`), "leading zeros"},
		{poolBody(ok, `"-5"`), "decimal digits"},
		{poolBody(ok, `"1.5"`), "decimal digits"},
		{poolBody(ok, `"`+strings.Repeat("9", 61)+`"`), "digits"},
		{poolBody(`"`+ihA+`"`, `"10"`), "array"},
		{poolBody(`[1]`, `"10"`), "item 0 must be a string"},
		{poolBody(`["abc"]`, `"10"`), "item 0 must be 40 hexadecimal"},
		{poolBody(`["`+strings.Repeat("f", 40)+`"]`, `"10"`), "not registered"},
		{poolBody(`[`+strings.Repeat(`"`+ihA+`",`, 1000)+`"`+ihA+`"]`, `"10"`), "1001"},
	}
	for _, c := range cases {
		rec := e.do("POST", "/api/v1/pools", c.body)
		if rec.Code != 400 && rec.Code != 413 {
			t.Errorf("%.60q: status %d", c.body, rec.Code)
			continue
		}
		wantError(t, rec, rec.Code, c.want)
	}
	// An empty torrent list is fine: add them later.
	if rec := e.do("POST", "/api/v1/pools", poolBody(`[]`, `"10"`)); rec.Code != 201 {
		t.Fatalf("empty list: %d %s", rec.Code, rec.Body)
	}
}

func FuzzCreatePool(f *testing.F) {
	e := newEnv(f, quiet())
	pools := rewards.NewPools(e.rdb, &fakeDepositKeys{}, checkTronAddress, "0", zap.NewNop())
	var err error
	e.srv, err = New(Config{AdminToken: testToken}, Deps{Store: e.store, Cache: e.cache, Swarms: e.swarms, Gatherer: prometheus.NewRegistry(), Pools: pools})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, aerr := decodeCreatePool(bytes.NewReader(body))
		checkDecodeError(t, aerr)
		if aerr == nil {
			checkName(t, req.Name, rewards.MaxPoolNameLen)
			checkName(t, req.Owner, rewards.MaxPoolNameLen)
			if v, err := rewards.ParseAmount(req.Budget); err != nil || v.Sign() <= 0 {
				t.Fatalf("accepted budget %q", req.Budget)
			}
			if checkTronAddress(req.RefundAddress) != nil {
				t.Fatalf("accepted address %q", req.RefundAddress)
			}
		}
		rec := serveBody(e, "/api/v1/pools", body)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
		}
		if aerr != nil {
			checkSameError(t, rec, aerr, body)
			return
		}
		// Torrents are not registered here: only an empty list creates.
		if len(req.Torrents) == 0 && rec.Code != http.StatusCreated || len(req.Torrents) > 0 && rec.Code != http.StatusBadRequest {
			t.Fatalf("decoder accepted %q, handler said %d: %s", body, rec.Code, rec.Body.String())
		}
	})
}

func TestPublicPoolReader(t *testing.T) {
	e, pools := poolEnv(t)
	ctx := context.Background()
	v, err := pools.Create(ctx, rewards.PoolSpec{Name: "films", Owner: "secret studio", RefundAddress: refundAddr, Torrents: []string{ihA}, BudgetPerEpoch: "10"})
	if err != nil {
		t.Fatal(err)
	}
	e.srv, err = New(Config{AdminToken: testToken}, Deps{Store: e.store, Cache: e.cache, Swarms: e.swarms, Gatherer: e.reg, Pools: pools,
		Ledger: rewards.NewLedger(e.rdb, rewards.DefaultConfig()), Public: &PublicConfig{Pools: PublicPoolReader(pools)}})
	if err != nil {
		t.Fatal(err)
	}
	rec := e.doAuth("GET", "/api/v1/public/pools/"+v.ID, "", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), v.DepositAddress) || !strings.Contains(rec.Body.String(), `"balance":"0"`) {
		t.Fatalf("public pool %d %s", rec.Code, rec.Body)
	}
	rec = e.doAuth("GET", "/api/v1/public/pools", "", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"global"`) || !strings.Contains(rec.Body.String(), v.ID) {
		t.Fatalf("public pools %d %s", rec.Code, rec.Body)
	}
	for _, secret := range []string{"secret studio", refundAddr} {
		if strings.Contains(rec.Body.String(), secret) {
			t.Fatalf("public view shows %q: %s", secret, rec.Body)
		}
	}
	if rec := e.doAuth("GET", "/api/v1/public/pools/p77", "", ""); rec.Code != 404 {
		t.Fatalf("unknown pool %d %s", rec.Code, rec.Body)
	}
}

// TestDepositRescanRoute moves the deposit cursor back (never forward) and
// refuses bad bodies.
func TestDepositRescanRoute(t *testing.T) {
	e, _ := poolEnv(t)
	ctx := context.Background()
	e.rdb.Set(ctx, "sp:deposits:cursor", 500, 0)
	rec := e.do("POST", "/api/v1/deposits/rescan", `{"from_block":120}`)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"previous":500`) || !strings.Contains(rec.Body.String(), `"cursor":120`) {
		t.Fatalf("rescan: %d %s", rec.Code, rec.Body)
	}
	if cur, _ := e.rdb.Get(ctx, "sp:deposits:cursor").Int64(); cur != 120 {
		t.Fatalf("cursor %d", cur)
	}
	wantError(t, e.do("POST", "/api/v1/deposits/rescan", `{"from_block":121}`), http.StatusConflict, "back")
	for _, body := range []string{`{}`, `{"from_block":-1}`, `{"from_block":"5"}`, `{"from_block":1.5}`, `{"from_block":5,"x":1}`} {
		wantError(t, e.do("POST", "/api/v1/deposits/rescan", body), http.StatusBadRequest)
	}
	if cur, _ := e.rdb.Get(ctx, "sp:deposits:cursor").Int64(); cur != 120 {
		t.Fatalf("cursor %d after refused rescans", cur)
	}
	wantError(t, e.doAuth("POST", "/api/v1/deposits/rescan", `{"from_block":1}`, ""), http.StatusUnauthorized)
}

// alwaysConflict writes the pool's hash from another client before every
// MULTI/EXEC, so every optimistic pool edit loses.
type alwaysConflict struct {
	other *redis.Client
	key   string
}

func (c alwaysConflict) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (c alwaysConflict) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (c alwaysConflict) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "multi" {
			c.other.HIncrBy(ctx, c.key, "touched", 1)
		}
		return next(ctx, cmds)
	}
}

// TestPoolEditBusyIs409: an edit that keeps losing to concurrent writes
// (deposits, settlement) answers 409, not 500.
func TestPoolEditBusyIs409(t *testing.T) {
	e, _ := poolEnv(t)
	rec := e.do("POST", "/api/v1/pools", poolBody(`["`+ihA+`"]`, `"5"`))
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	other := redis.NewClient(&redis.Options{Addr: e.rdb.Options().Addr})
	defer other.Close()
	e.rdb.AddHook(alwaysConflict{other: other, key: "sp:pool:p1"})
	wantError(t, e.do("POST", "/api/v1/pools/p1/close", ""), http.StatusConflict, "busy")
	wantError(t, e.do("POST", "/api/v1/pools/p1/torrents", `{"torrents":["`+ihB+`"]}`), http.StatusConflict, "busy")
}
