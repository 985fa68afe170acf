package main

import (
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seedpay/seedpay/rewards"
)

func TestVerifyProofCLI(t *testing.T) {
	leaves := [][32]byte{
		rewards.Leaf(7, "alice", "", big.NewInt(750)),
		rewards.Leaf(7, "bob", "TXYZ", big.NewInt(250)),
		rewards.Leaf(7, "carol", "", big.NewInt(1)),
	}
	tree := rewards.NewTree(leaves)
	p, ok := tree.ProofFor(7, "bob", "TXYZ", big.NewInt(250))
	if !ok {
		t.Fatal("no proof")
	}
	root := tree.Root()
	write := func(p rewards.Proof) string {
		body, _ := json.Marshal(p)
		path := filepath.Join(t.TempDir(), "proof.json")
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write(p)
	tampered := p
	tampered.Amount = "2500"
	otherRoot := strings.Repeat("ab", 32)

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"verifies", []string{"rewards", "verify-proof", "--root", hex.EncodeToString(root[:]), good}, 0, "ok: epoch 7, user bob, amount 250"},
		{"tampered amount", []string{"rewards", "verify-proof", write(tampered)}, 1, "leaf mismatch"},
		{"other root", []string{"rewards", "verify-proof", "--root", otherRoot, good}, 1, "not the published root"},
		{"missing file", []string{"rewards", "verify-proof", filepath.Join(t.TempDir(), "none.json")}, 1, "no such file"},
		{"not JSON", []string{"rewards", "verify-proof", writeRaw(t, "{nope")}, 1, "proof JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, out := seedpay(t, nil, tt.args...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if code := exitCode(t, cmd, out); code != tt.code || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("exit %d, output %q; want %d and %q", code, out, tt.code, tt.want)
			}
		})
	}
}

func writeRaw(t *testing.T, s string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "raw.json")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
