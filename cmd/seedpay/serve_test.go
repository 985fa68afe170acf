package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the seedpay binary: with this variable set it
// runs main, so the tests below exercise real processes, exit codes and
// signals.
const runMainEnv = "SEEDPAY_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is read by the test while the process writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func seedpay(t *testing.T, env []string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), runMainEnv+"=1"), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	return cmd, out
}

func exitCode(t *testing.T, cmd *exec.Cmd, out *syncBuffer) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("seedpay did not exit; output:\n%s", out)
		return -1
	}
}

func TestServeFailsLoudlyWhenAPortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cmd, out := seedpay(t, nil, "serve", "--http", taken.Addr().String(), "--udp", "127.0.0.1:0", "--api", freePort(t))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd, out); code != 1 {
		t.Fatalf("exit code %d, want 1; output:\n%s", code, out)
	}
	want := "seedpay: http tracker: listen on " + taken.Addr().String()
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "address already in use") {
		t.Fatalf("output lacks %q and the cause:\n%s", want, out)
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("tracker:\n  max_numwant: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, out := seedpay(t, []string{"SEEDPAY_ADMIN_TOKEN=" + strings.Repeat("a", 30)}, "serve", "--config", path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd, out); code != 1 || !strings.Contains(out.String(), "tracker.max_numwant") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}

func TestServeDevDefaultAndGracefulSIGTERM(t *testing.T) {
	api := freePort(t)
	cmd, out := seedpay(t, []string{"SEEDPAY_ADMIN_TOKEN="}, "serve", "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--api", api)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	ready := false
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + api + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ready = true
				break
			}
		}
	}
	if !ready {
		t.Fatalf("never ready; output:\n%s", out)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+api+"/api/v1/users", strings.NewReader(`{"name":"alice"}`))
	req.Header.Set("Authorization", "Bearer dev-admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("dev admin token refused: %d", resp.StatusCode)
	}

	resp, err = http.Get("http://" + api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	names := []string{"seedpay_tracker_requests_total", "seedpay_tracker_request_duration_seconds", "seedpay_peers", "seedpay_swarms"}
	if runtime.GOOS == "linux" { // the kernel's socket accounting
		names = append(names, "seedpay_tracker_udp_receive_queue_bytes", "seedpay_tracker_udp_receive_drops_total")
	}
	for _, name := range names {
		if !bytes.Contains(metrics, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd, out); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0; output:\n%s", code, out)
	}
	for _, want := range []string{"NOTHING PERSISTS", "admin token: dev-admin-token", "shutting down", "stopped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestBannerNeverPrintsATokenFromTheEnvironment(t *testing.T) {
	secret := fmt.Sprintf("secret-%d-%s", time.Now().UnixNano(), strings.Repeat("z", 20))
	api := freePort(t)
	cmd, out := seedpay(t, []string{"SEEDPAY_ADMIN_TOKEN=" + secret}, "serve", "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--api", api)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && !strings.Contains(out.String(), "seedpay serving"); time.Sleep(50 * time.Millisecond) {
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd, out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !strings.Contains(out.String(), "seedpay serving") {
		t.Fatalf("never served:\n%s", out)
	}
	if strings.Contains(out.String(), secret) {
		t.Fatal("the admin token from the environment was printed")
	}
}
