package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// seedpayBin is the tracker binary every test starts; set by TestMain.
var seedpayBin string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: these tests must run as root: they create network namespaces, "+
			"veth pairs and a bridge (CI runs them as root); try `sudo -E go test ./e2e/...`")
		return 1
	}
	sweepStaleLabs()
	if bin := os.Getenv("SEEDPAY_E2E_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: SEEDPAY_E2E_BIN: %v\n", err)
			return 1
		}
		seedpayBin = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "seedpay-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	seedpayBin = filepath.Join(dir, "seedpay")
	if err := buildSeedpay(seedpayBin); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building ./cmd/seedpay failed: %v\n", err)
		return 1
	}
	return m.Run()
}

// buildSeedpay compiles ./cmd/seedpay of the enclosing module into out.
func buildSeedpay(out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	start := time.Now()
	cmd := exec.Command(goBin, "build", "-o", out, "./cmd/seedpay")
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v\n%s", err, b)
	}
	fmt.Fprintf(os.Stderr, "e2e: built seedpay in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// moduleRoot walks up from the working directory (the package directory
// under `go test`) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 10 {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.Contains(string(b), "module github.com/seedpay/seedpay") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("go.mod of github.com/seedpay/seedpay not found above the working directory")
}
