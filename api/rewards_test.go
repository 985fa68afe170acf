package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/rewards"
)

// rewardsEnv is an API with a ledger in which one past epoch is sealed.
func rewardsEnv(t *testing.T) (e *env, sealed int64, alice, bob string) {
	t.Helper()
	e = newEnv(t, quiet())
	ctx := context.Background()
	cfg := rewards.DefaultConfig()
	cfg.Epoch = rewards.EpochConfig{Length: 10 * time.Second, Grace: 2 * time.Second, Retention: time.Hour}
	cfg.Scoring.MaxGap = 30 * time.Second
	cfg.Global.BudgetPerEpoch = "1000"
	cur := cfg.Epoch.EpochOf(time.Now().Unix())
	sealed = cur - 3 // ended 20 s+ ago: past grace and margin
	for _, name := range []string{"alice", "bob"} {
		rec := e.do(http.MethodPost, "/api/v1/users", `{"name":"`+name+`"}`)
		var u userJSON
		_ = json.Unmarshal(rec.Body.Bytes(), &u)
		if name == "alice" {
			alice = u.ID
		} else {
			bob = u.ID
		}
	}
	e.rdb.Set(ctx, rewards.KeyFirstEpoch, sealed, 0)
	for user, pts := range map[string]int64{alice: 3, bob: 1} {
		e.rdb.SAdd(ctx, rewards.KeyEpochUsers(sealed), user)
		e.rdb.HSet(ctx, rewards.KeyUserEpoch(user, sealed), "pts:global", pts, "seed_s", pts*10)
	}
	e.rdb.SAdd(ctx, rewards.KeyEpochUsers(cur), alice)
	e.rdb.HSet(ctx, rewards.KeyUserEpoch(alice, cur), "pts:global", 9, "seed_s", 4)

	s, err := rewards.NewSettler(e.rdb, cfg, nil, prometheus.NewRegistry(), zap.NewNop())
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
	e.srv, err = New(Config{AdminToken: testToken}, Deps{Store: e.store, Cache: e.cache, Swarms: e.swarms, Gatherer: e.reg,
		Ledger: rewards.NewLedger(e.rdb, cfg)})
	if err != nil {
		t.Fatal(err)
	}
	return e, sealed, alice, bob
}

func TestEpochRoutes(t *testing.T) {
	e, sealed, alice, bob := rewardsEnv(t)

	rec := e.do(http.MethodGet, "/api/v1/epochs?limit=5", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}
	var page struct {
		Epochs []rewards.EpochView `json:"epochs"`
		Next   string              `json:"next"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	// Newest first: current (open), then settling/sealed ones down to the first.
	if len(page.Epochs) < 4 || page.Epochs[0].State != rewards.StateOpen || page.Epochs[len(page.Epochs)-1].Epoch != sealed {
		t.Fatalf("epochs %+v", page.Epochs)
	}
	last := page.Epochs[len(page.Epochs)-1]
	if last.State != rewards.StateSealed || last.Credited != "1000" || len(last.Root) != 64 {
		t.Fatalf("sealed epoch %+v", last)
	}
	for i := 1; i < len(page.Epochs); i++ {
		if page.Epochs[i].Epoch != page.Epochs[i-1].Epoch-1 {
			t.Fatalf("not newest first: %+v", page.Epochs)
		}
	}
	rec = e.do(http.MethodGet, fmt.Sprintf("/api/v1/epochs?limit=1&before=%d", sealed+1), "")
	_ = json.Unmarshal(rec.Body.Bytes(), &page)
	if len(page.Epochs) != 1 || page.Epochs[0].Epoch != sealed {
		t.Fatalf("paging: %+v", page.Epochs)
	}

	rec = e.do(http.MethodGet, fmt.Sprintf("/api/v1/epochs/%d", sealed), "")
	var v rewards.EpochView
	_ = json.Unmarshal(rec.Body.Bytes(), &v)
	amounts := map[string]string{}
	for _, l := range v.UserLines {
		amounts[l.User] = l.Amount
	}
	if rec.Code != http.StatusOK || amounts[alice] != "750" || amounts[bob] != "250" {
		t.Fatalf("epoch: %d %s", rec.Code, rec.Body)
	}

	rec = e.do(http.MethodGet, fmt.Sprintf("/api/v1/epochs/%d/proof/%s", sealed, bob), "")
	var p rewards.Proof
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("proof: %d %s", rec.Code, rec.Body)
	}
	if err := p.Verify(); err != nil || p.Root != v.Root || p.Amount != "250" {
		t.Fatalf("proof %+v does not verify against %s: %v", p, v.Root, err)
	}

	rec = e.do(http.MethodGet, "/api/v1/users/"+alice+"/rewards", "")
	var ur rewards.UserRewards
	_ = json.Unmarshal(rec.Body.Bytes(), &ur)
	if rec.Code != http.StatusOK || ur.Balance != "750" || len(ur.Epochs) < 2 || ur.Epochs[0].State != rewards.StateOpen || ur.Epochs[0].Points["global"] != "9" {
		t.Fatalf("user rewards: %d %s", rec.Code, rec.Body)
	}
}

func TestEpochRoutesBadInput(t *testing.T) {
	e, sealed, alice, _ := rewardsEnv(t)
	tests := []struct {
		path   string
		status int
		want   string
	}{
		{"/api/v1/epochs?limit=0", 400, "limit"},
		{"/api/v1/epochs?limit=1000", 400, "limit"},
		{"/api/v1/epochs?limit=x", 400, "limit"},
		{"/api/v1/epochs?before=-4", 400, "before"},
		{"/api/v1/epochs/abc", 400, "epoch"},
		{"/api/v1/epochs/-1", 400, "epoch"},
		{"/api/v1/epochs/99999999999", 404, "not started"},
		{fmt.Sprintf("/api/v1/epochs/%d/proof/nobody", sealed), 404, "no line"},
		{fmt.Sprintf("/api/v1/epochs/%d/proof/%s", sealed+3, alice), 404, "not sealed"},
		{"/api/v1/epochs/1/proof/bad%20id", 404, "user not found"},
		{"/api/v1/users/ffffffffffffffff/rewards", 404, "user not found"},
	}
	for _, tt := range tests {
		rec := e.do(http.MethodGet, tt.path, "")
		if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("%s: %d %s, want %d containing %q", tt.path, rec.Code, rec.Body, tt.status, tt.want)
		}
	}
	if rec := e.doAuth(http.MethodGet, "/api/v1/epochs", "", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("epochs without a token: %d", rec.Code)
	}
}
