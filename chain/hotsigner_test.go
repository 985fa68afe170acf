package chain

import (
	"encoding/hex"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/seedpay/seedpay/rewards"
)

func TestNewWithHotKey(t *testing.T) {
	f := setup(t, nil)
	ctx := ctxT(t)
	keyHex := hex.EncodeToString(crypto.FromECDSA(f.key))
	hk, err := LoadHotKey(KeyConfig{LookupEnv: func(k string) (string, bool) {
		if k == EnvHotKey {
			return keyHex, true
		}
		return "", false
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewWithHotKey(f.c.Config(), hk)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.HotAddress() != f.hot {
		t.Fatalf("hot address %s, want %s", c.HotAddress(), f.hot)
	}
	to := newAddress()
	stx, err := c.SignTransfer(ctx, to, units(3))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Broadcast(ctx, stx.Raw); err != nil {
		t.Fatal(err)
	}
	f.waitState(t, stx.TxID, rewards.TxConfirmed)
	hk.Destroy()
	if _, err := c.SignTransfer(ctx, to, units(1)); err == nil {
		t.Fatal("signed after HotKey.Destroy")
	}
	if _, err := NewWithHotKey(f.c.Config(), hk); err == nil {
		t.Fatal("NewWithHotKey accepted a destroyed key")
	}
}
