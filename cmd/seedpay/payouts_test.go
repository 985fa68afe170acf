package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPayoutsCLIAgainstDevServer(t *testing.T) {
	api := freePort(t)
	srv, out := seedpay(t, []string{"SEEDPAY_ADMIN_TOKEN="}, "serve", "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--api", api)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Signal(syscall.SIGTERM); exitCode(t, srv, out) }()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + api + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", out)
		}
	}
	if !strings.Contains(out.String(), "TRON is SIMULATED") {
		t.Fatalf("dev default did not start the simulated chain:\n%s", out)
	}
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"list with the dev token", []string{"SEEDPAY_ADMIN_TOKEN=dev-admin-token"}, []string{"payouts", "list", "--api", "http://" + api, "--state", "confirmed"}, 0, "ID  USER  AMOUNT  STATE  TXIDS  REASON"},
		{"bad state named", []string{"SEEDPAY_ADMIN_TOKEN=dev-admin-token"}, []string{"payouts", "list", "--api", "http://" + api, "--state", "lost"}, 1, "state: want one of"},
		{"retry unknown", []string{"SEEDPAY_ADMIN_TOKEN=dev-admin-token"}, []string{"payouts", "retry", "1-deadbeef", "--api", "http://" + api}, 1, "payout not found"},
		{"wrong token", []string{"SEEDPAY_ADMIN_TOKEN=nope-nope-nope"}, []string{"payouts", "list", "--api", "http://" + api}, 1, "401"},
		{"no token", []string{"SEEDPAY_ADMIN_TOKEN="}, []string{"payouts", "list", "--api", "http://" + api}, 1, "set SEEDPAY_ADMIN_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, cout := seedpay(t, tt.env, tt.args...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if code := exitCode(t, cmd, cout); code != tt.code || !strings.Contains(cout.String(), tt.want) {
				t.Fatalf("exit %d, output %q; want %d containing %q", code, cout, tt.code, tt.want)
			}
		})
	}
}
