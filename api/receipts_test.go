package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/seedpay/seedpay/rewards"
)

func TestReceiptKeyAndStatsRoutes(t *testing.T) {
	e := newEnv(t, quiet())
	keys := rewards.NewReceiptKeys(e.rdb)
	var err error
	e.srv, err = New(Config{AdminToken: testToken}, Deps{Store: e.store, Cache: e.cache, Swarms: e.swarms, Gatherer: e.reg, ReceiptKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	var a, b userJSON
	_ = json.Unmarshal(e.do(http.MethodPost, "/api/v1/users", `{"name":"a"}`).Body.Bytes(), &a)
	_ = json.Unmarshal(e.do(http.MethodPost, "/api/v1/users", `{"name":"b"}`).Body.Bytes(), &b)
	key := strings.Repeat("ab", 32)
	if rec := e.do(http.MethodPost, "/api/v1/users/"+a.ID+"/keys", `{"key":"`+key+`"}`); rec.Code != 201 {
		t.Fatalf("add key: %d %s", rec.Code, rec.Body)
	}
	rec := e.do(http.MethodGet, "/api/v1/users/"+a.ID+"/keys", "")
	if !strings.Contains(rec.Body.String(), key) {
		t.Fatalf("list keys: %s", rec.Body)
	}
	for _, tc := range []struct {
		path, body string
		status     int
		want       string
	}{
		{"/api/v1/users/" + b.ID + "/keys", `{"key":"` + key + `"}`, 409, "another user"},
		{"/api/v1/users/" + a.ID + "/keys", `{"key":"abc"}`, 400, "key"},
		{"/api/v1/users/" + a.ID + "/keys", `{"key":"` + key + `","x":1}`, 400, "x"},
		{"/api/v1/users/ffffffffffffffff/keys", `{"key":"` + key + `"}`, 404, "user not found"},
	} {
		rec := e.do(http.MethodPost, tc.path, tc.body)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s %s: %d %s", tc.path, tc.body, rec.Code, rec.Body)
		}
	}
	e.rdb.HSet(context.Background(), rewards.KeyReceiptStats, "accepted", 3, "credited_bytes", 99, "shared_ip", 2)
	rec = e.do(http.MethodGet, "/api/v1/receipts/stats", "")
	var stats struct {
		Accepted      int64            `json:"accepted"`
		CreditedBytes int64            `json:"credited_bytes"`
		Rejected      map[string]int64 `json:"rejected"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &stats)
	if stats.Accepted != 3 || stats.CreditedBytes != 99 || stats.Rejected["shared_ip"] != 2 {
		t.Fatalf("stats %s", rec.Body)
	}
	if rec := e.doAuth(http.MethodGet, "/api/v1/receipts/stats", "", ""); rec.Code != 401 {
		t.Fatalf("stats without a token: %d", rec.Code)
	}
}
