package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServePublicListener: with public.addr the transparency page and the
// public API answer on their own port and not on the admin port, whose
// admin routes keep working.
func TestServePublicListener(t *testing.T) {
	apiAddr, pubAddr := freePort(t), freePort(t)
	cfg := filepath.Join(t.TempDir(), "public.yaml")
	body := "redis:\n  embedded: true\nrewards:\n  enabled: true\npublic:\n  addr: " + pubAddr + "\n  rate: 50\n  burst: 5\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, out := seedpay(t, []string{"SEEDPAY_ADMIN_TOKEN=public-listener-token"}, "serve", "--config", cfg,
		"--http", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--api", apiAddr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	get := func(addr, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer public-listener-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code, _ := get(pubAddr, "/api/v1/public/info"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("public listener %s never answered:\n%s", pubAddr, out)
		}
	}
	if code, page := get(pubAddr, "/"); code != http.StatusOK || !strings.Contains(page, "<html") {
		t.Errorf("GET / on the public port: %d %.80q", code, page)
	}
	if code, _ := get(apiAddr, "/api/v1/public/info"); code == http.StatusOK {
		t.Errorf("the admin port %s serves /api/v1/public/info too; want it only on %s", apiAddr, pubAddr)
	}
	if code, _ := get(pubAddr, "/api/v1/epochs"); code == http.StatusOK {
		t.Errorf("the public port serves the admin route /api/v1/epochs")
	}
	if code, body := get(apiAddr, "/api/v1/epochs"); code != http.StatusOK {
		t.Errorf("admin /api/v1/epochs: %d %s", code, body)
	}
	// burst 5: the sixth request at once is refused.
	limited := false
	for range 20 {
		if code, _ := get(pubAddr, "/api/v1/public/info"); code == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Errorf("public.burst 5 never answered 429 in 20 quick requests")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd, out); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, out)
	}
}
