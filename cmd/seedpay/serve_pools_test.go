package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeDevPools: the dev default serves the pool routes, makes deposit
// keys in a temporary keystore it deletes at exit, runs the deposit watcher
// on the simulated chain, and never prints a key.
func TestServeDevPools(t *testing.T) {
	api := freePort(t)
	cmd, out := seedpay(t, []string{"SEEDPAY_ADMIN_TOKEN=", "SEEDPAY_POOL_KEYSTORE_PASSPHRASE="}, "serve", "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--api", api)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+api+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer dev-admin-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code, _ := call("GET", "/readyz", ""); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready:\n%s", out)
		}
	}
	ih := strings.Repeat("ab", 20)
	if code, body := call("POST", "/api/v1/torrents", `{"info_hash":"`+ih+`","name":"film","size":1000000}`); code != http.StatusCreated {
		t.Fatalf("torrent: %d %s", code, body)
	}
	code, body := call("POST", "/api/v1/pools", `{"name":"films","owner":"studio","refund_address":"TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE","torrents":["`+ih+`"],"budget_per_epoch":"1000"}`)
	if code != http.StatusCreated {
		t.Fatalf("pool: %d %s", code, body)
	}
	var pool struct {
		ID             string `json:"id"`
		DepositAddress string `json:"deposit_address"`
	}
	_ = json.Unmarshal([]byte(body), &pool)
	if pool.ID != "p1" || !strings.HasPrefix(pool.DepositAddress, "T") {
		t.Fatalf("pool %s", body)
	}
	if code, body := call("POST", "/api/v1/torrents/"+ih+"/bounty", `{"refund_address":"TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE","budget_per_epoch":"5"}`); code != http.StatusCreated {
		t.Fatalf("bounty: %d %s", code, body)
	}
	if code, body := call("GET", "/api/v1/pools", ""); code != 200 || !strings.Contains(body, pool.DepositAddress) {
		t.Fatalf("list: %d %s", code, body)
	}
	_, metrics := call("GET", "/metrics", "")
	for _, name := range []string{"seedpay_deposits_watcher_height", "seedpay_deposits_credited_total"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	dir := regexp.MustCompile(`deposit keys go to (\S+)`).FindStringSubmatch(out.String())
	if dir == nil {
		t.Fatalf("no dev keystore note:\n%s", out)
	}
	if files, err := os.ReadDir(dir[1]); err != nil || len(files) != 2 {
		t.Fatalf("keystore %s: %v %v", dir[1], files, err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd, out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("dev keystore %s not removed at exit: %v", dir[1], err)
	}
	for _, secret := range []string{`"ciphertext"`, `"crypto"`, "private"} {
		if strings.Contains(strings.ToLower(out.String()), secret) {
			t.Errorf("output mentions %s:\n%s", secret, out)
		}
	}
}
