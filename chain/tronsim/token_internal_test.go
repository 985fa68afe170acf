package tronsim

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fbsobreira/gotron-sdk/pkg/address"
)

func TestSelectors(t *testing.T) {
	for sig, sel := range map[string][]byte{
		"name()":                    selName,
		"symbol()":                  selSymbol,
		"decimals()":                selDecimals,
		"totalSupply()":             selTotalSupply,
		"balanceOf(address)":        selBalanceOf,
		"transfer(address,uint256)": selTransfer,
		"Error(string)":             selError,
	} {
		if got := crypto.Keccak256([]byte(sig))[:4]; !bytes.Equal(got, sel) {
			t.Errorf("%s: %x, want %x", sig, sel, got)
		}
	}
	if got := crypto.Keccak256([]byte("Transfer(address,address,uint256)")); !bytes.Equal(got, topicTransfer) {
		t.Errorf("Transfer topic %x", topicTransfer)
	}
}

func TestDefaultTokenAddress(t *testing.T) {
	h := sha256.Sum256([]byte("seedpay/tronsim/token"))
	want := address.Address(append([]byte{0x41}, h[:20]...)).String()
	if DefaultTokenAddress != want {
		t.Fatalf("DefaultTokenAddress %s, derivation gives %s", DefaultTokenAddress, want)
	}
}

func TestRecovered(t *testing.T) {
	day := resourceWindow
	cases := []struct{ used, last, now, want int64 }{
		{1000, 0, 0, 1000},
		{1000, 0, day / 2, 500},
		{1000, 0, day, 0},
		{0, 0, 10, 0},
		{1000, 10, 5, 1000},
	}
	for _, c := range cases {
		if got := recovered(c.used, c.last, c.now); got != c.want {
			t.Errorf("recovered(%d, %d, %d) = %d, want %d", c.used, c.last, c.now, got, c.want)
		}
	}
}

func TestBlockPruning(t *testing.T) {
	if testing.Short() {
		t.Skip("produces 110k blocks")
	}
	n, err := New(Config{BlockPeriod: -1, SolidityLag: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < keepBlocks+keepBlocks/10; i++ {
		n.ProduceBlock()
	}
	n.mu.Lock()
	first, kept := n.blocks[0].num, len(n.blocks)
	n.mu.Unlock()
	if first == 0 || kept != keepBlocks {
		t.Fatalf("first kept block %d, %d kept", first, kept)
	}
	if b := n.blockExt(first-1, false); b.BlockHeader != nil {
		t.Fatal("a pruned block is still served")
	}
	if b := n.blockExt(first, false); b.BlockHeader.RawData.Number != first {
		t.Fatal("the oldest kept block is not served")
	}
	if s := n.SolidHead(); s != n.Head()-5 {
		t.Fatalf("solid head %d, head %d", s, n.Head())
	}
}
