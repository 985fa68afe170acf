package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/seedpay/seedpay/rewards"
)

// downChain is a TRON node that is never reachable: payouts wait in
// pending with the reason visible, which is what these routes show.
type downChain struct{}

func (downChain) SignTransfer(context.Context, string, *big.Int) (rewards.SignedTx, error) {
	return rewards.SignedTx{}, fmt.Errorf("dial: %w", rewards.ErrChainUnavailable)
}
func (downChain) Broadcast(context.Context, []byte) error { return rewards.ErrChainUnavailable }
func (downChain) Status(context.Context, string) (rewards.TxStatus, error) {
	return rewards.TxStatus{}, rewards.ErrChainUnavailable
}
func (downChain) SolidifiedTime(context.Context) (time.Time, error) {
	return time.Time{}, rewards.ErrChainUnavailable
}

type oneAddress struct{ user, addr string }

func (o oneAddress) PayoutAddress(_ context.Context, user string) (string, error) {
	if user == o.user {
		return o.addr, nil
	}
	return "", nil
}

func TestPayoutRoutes(t *testing.T) {
	e := newEnv(t, quiet())
	ctx := context.Background()
	rec := e.do(http.MethodPost, "/api/v1/users", `{"name":"alice"}`)
	var u userJSON
	_ = json.Unmarshal(rec.Body.Bytes(), &u)
	e.rdb.Set(ctx, rewards.KeyBalance(u.ID), "5000", 0)
	e.rdb.SAdd(ctx, rewards.KeyPayoutCandidates, u.ID)

	cfg := rewards.DefaultPayerConfig()
	cfg.MinPayout = "1000"
	payer, err := rewards.NewPayer(e.rdb, downChain{}, oneAddress{u.ID, "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"}, cfg, prometheus.NewRegistry(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := payer.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	e.srv, err = New(Config{AdminToken: testToken}, Deps{Store: e.store, Cache: e.cache, Swarms: e.swarms, Gatherer: e.reg, Payer: payer})
	if err != nil {
		t.Fatal(err)
	}

	var page payoutPage
	rec = e.do(http.MethodGet, "/api/v1/users/"+u.ID+"/payouts", "")
	_ = json.Unmarshal(rec.Body.Bytes(), &page)
	if rec.Code != 200 || len(page.Payouts) != 1 || page.Payouts[0].Amount != "5000" || page.Payouts[0].State != rewards.PayoutPending ||
		!strings.Contains(page.Payouts[0].Reason, "unavailable") {
		t.Fatalf("user payouts: %d %s", rec.Code, rec.Body)
	}
	id := page.Payouts[0].ID

	rec = e.do(http.MethodGet, "/api/v1/payouts?state=pending", "")
	_ = json.Unmarshal(rec.Body.Bytes(), &page)
	if len(page.Payouts) != 1 || page.Payouts[0].ID != id {
		t.Fatalf("pending list: %s", rec.Body)
	}
	rec = e.do(http.MethodGet, "/api/v1/payouts?state=confirmed", "")
	_ = json.Unmarshal(rec.Body.Bytes(), &page)
	if len(page.Payouts) != 0 || !strings.Contains(rec.Body.String(), `"payouts":[]`) {
		t.Fatalf("confirmed list: %s", rec.Body)
	}

	rec = e.do(http.MethodPost, "/api/v1/payouts/"+id+"/retry", "")
	var po rewards.Payout
	_ = json.Unmarshal(rec.Body.Bytes(), &po)
	if rec.Code != 200 || po.ID != id || po.State != rewards.PayoutPending {
		t.Fatalf("retry: %d %s", rec.Code, rec.Body)
	}

	for _, tc := range []struct {
		method, path string
		status       int
		want         string
	}{
		{http.MethodGet, "/api/v1/payouts?state=lost", 400, "state"},
		{http.MethodGet, "/api/v1/payouts?limit=0", 400, "limit"},
		{http.MethodPost, "/api/v1/payouts/nope-1/retry", 404, "payout not found"},
		{http.MethodGet, "/api/v1/users/ffffffffffffffff/payouts", 404, "user not found"},
	} {
		rec := e.do(tc.method, tc.path, "")
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, rec.Code, rec.Body)
		}
	}
	if rec := e.doAuth(http.MethodGet, "/api/v1/payouts", "", ""); rec.Code != 401 {
		t.Errorf("no token: %d", rec.Code)
	}
}
