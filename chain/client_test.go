package chain

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fbsobreira/gotron-sdk/pkg/address"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/api"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/core"
	"github.com/fbsobreira/gotron-sdk/pkg/signer"
	"google.golang.org/protobuf/proto"

	"github.com/seedpay/seedpay/chain/tronsim"
	"github.com/seedpay/seedpay/rewards"
)

// fixture is a tronsim node producing a block every 25 ms with a 2-block
// solidity lag, a funded hot wallet, and a Client talking to the node over
// 127.0.0.1.
type fixture struct {
	node *tronsim.Node
	c    *Client
	key  *ecdsa.PrivateKey
	hot  string
}

const blockPeriod = 25 * time.Millisecond

func setup(t *testing.T, edit func(*tronsim.Config)) *fixture {
	t.Helper()
	t.Parallel()
	cfg := tronsim.Config{BlockPeriod: blockPeriod, SolidityLag: 2}
	if edit != nil {
		edit(&cfg)
	}
	node, tok, key, err := tronsim.NewDev("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	c, err := NewWithKey(SimConfig(node.Addr(), tok), key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fixture{node: node, c: c, key: key, hot: c.HotAddress()}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newAddress() string {
	k, _ := crypto.GenerateKey()
	return address.PubkeyToAddress(k.PublicKey).String()
}

func units(whole int64) *big.Int { return tronsim.TokenUnits(big.NewInt(whole), 18) }

// waitState polls Status until it reports want.
func (f *fixture) waitState(t *testing.T, txid string, want rewards.TxState) rewards.TxStatus {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := f.c.Status(context.Background(), txid)
		if err == nil && st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("txid %s: state %v (%q, err %v), want %v", txid, st.State, st.Reason, err, want)
		}
		time.Sleep(blockPeriod / 2)
	}
}

func (f *fixture) waitBlocks(t *testing.T, n int) {
	t.Helper()
	if err := f.node.WaitBlocks(ctxT(t), n); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) sign(t *testing.T, to string, amount *big.Int) rewards.SignedTx {
	t.Helper()
	stx, err := f.c.SignTransfer(ctxT(t), to, amount)
	if err != nil {
		t.Fatal(err)
	}
	return stx
}

func TestTransferConfirmedEndToEnd(t *testing.T) {
	f := setup(t, nil)
	ctx := ctxT(t)
	to := newAddress()
	amount := new(big.Int).Add(units(123), big.NewInt(456)) // not a round number
	hotBefore, _ := f.node.TokenBalance(f.hot)
	trxBefore, _ := f.node.TRXBalance(f.hot)
	f.node.SetSolidityLag(1_000_000) // hold solidification to observe Pending

	stx := f.sign(t, to, amount)
	if st, err := f.c.Status(ctx, stx.TxID); err != nil || st.State != rewards.TxUnknown {
		t.Fatalf("before broadcast: %v %v", st, err)
	}
	if err := f.c.Broadcast(ctx, stx.Raw); err != nil {
		t.Fatal(err)
	}
	f.waitState(t, stx.TxID, rewards.TxPending) // in the pool, then in a block
	f.waitBlocks(t, 2)
	st := f.waitState(t, stx.TxID, rewards.TxPending)
	if !strings.Contains(st.Reason, "in block") {
		t.Fatalf("pending reason %q", st.Reason)
	}
	if solid, err := f.c.SolidifiedTime(ctx); err != nil || !solid.Before(f.node.HeadTime()) {
		t.Fatalf("solidified time %v %v while head is %v", solid, err, f.node.HeadTime())
	}
	f.node.SetSolidityLag(2)
	f.waitState(t, stx.TxID, rewards.TxConfirmed)

	hotAfter, _ := f.node.TokenBalance(f.hot)
	toAfter, _ := f.node.TokenBalance(to)
	if d := new(big.Int).Sub(hotBefore, hotAfter); d.Cmp(amount) != 0 || toAfter.Cmp(amount) != 0 {
		t.Fatalf("hot lost %v, recipient has %v, want both %v", d, toAfter, amount)
	}
	if trxAfter, _ := f.node.TRXBalance(f.hot); trxAfter != trxBefore {
		t.Fatalf("TRX %d -> %d: energy and bandwidth should have come from stake and the free allowance", trxBefore, trxAfter)
	}
	if got, err := f.c.TokenBalance(ctx, to); err != nil || got.Cmp(amount) != 0 {
		t.Fatalf("client TokenBalance %v %v", got, err)
	}
	// Sending the confirmed bytes again is harmless.
	if err := f.c.Broadcast(ctx, stx.Raw); err != nil {
		t.Fatalf("re-broadcast of a confirmed tx: %v", err)
	}
}

func TestSignedTransaction(t *testing.T) {
	f := setup(t, nil)
	to := newAddress()
	stx := f.sign(t, to, big.NewInt(42))
	var tx core.Transaction
	if err := proto.Unmarshal(stx.Raw, &tx); err != nil {
		t.Fatal(err)
	}
	raw := tx.RawData
	if raw.FeeLimit != DefaultFeeLimit {
		t.Errorf("fee_limit %d", raw.FeeLimit)
	}
	if raw.Expiration != raw.Timestamp+DefaultExpiration.Milliseconds() || !stx.Expiration.Equal(time.UnixMilli(raw.Expiration)) {
		t.Errorf("expiration %d, timestamp %d, SignedTx %v", raw.Expiration, raw.Timestamp, stx.Expiration)
	}
	if fmt.Sprintf("%x", rawID(raw)) != stx.TxID {
		t.Errorf("txid %s is not sha256(raw_data)", stx.TxID)
	}
	if len(tx.Signature) != 1 {
		t.Fatalf("%d signatures", len(tx.Signature))
	}
	who, err := recoverDigestSigner(rawID(raw), tx.Signature[0])
	if err != nil || who.String() != f.hot {
		t.Errorf("signed by %v (%v), want %s", who, err, f.hot)
	}
	var ct core.TriggerSmartContract
	if err := raw.Contract[0].Parameter.UnmarshalTo(&ct); err != nil {
		t.Fatal(err)
	}
	toAddr, _ := parseAddress(to)
	if string(ct.Data) != string(transferData(toAddr, big.NewInt(42))) {
		t.Errorf("data %x", ct.Data)
	}
	// Each signature is a new transaction.
	if again := f.sign(t, to, big.NewInt(42)); again.TxID == stx.TxID {
		t.Error("two signings gave the same txid")
	}
}

func TestBroadcastFaults(t *testing.T) {
	cases := []struct {
		name   string
		inject func(n *tronsim.Node)
		// broadcast is what the first Broadcast returns.
		broadcast error
		// then: the state the transaction reaches without further action,
		// after which the same bytes are broadcast again and confirmed.
		then rewards.TxState
	}{
		{"drop", func(n *tronsim.Node) { n.DropBroadcast(1) }, nil, rewards.TxUnknown},
		{"delay", func(n *tronsim.Node) { n.DelayBroadcast(8, 1) }, nil, rewards.TxPending},
		{"dup answer", func(n *tronsim.Node) { n.AnswerDup(1) }, nil, rewards.TxConfirmed},
		{"server busy", func(n *tronsim.Node) { n.RejectBroadcast(api.Return_SERVER_BUSY, 1) }, rewards.ErrChainUnavailable, rewards.TxUnknown},
		{"bandwidth", func(n *tronsim.Node) { n.RejectBroadcast(api.Return_BANDWITH_ERROR, 1) }, rewards.ErrChainResources, rewards.TxUnknown},
		{"validate: no TRX", func(n *tronsim.Node) {
			n.Inject(tronsim.Fault{Kind: tronsim.FaultReject, Times: 1, Code: api.Return_CONTRACT_VALIDATE_ERROR,
				Message: "Validate TriggerSmartContract error, balance is not sufficient."})
		}, rewards.ErrChainResources, rewards.TxUnknown},
		{"sigerror", func(n *tronsim.Node) { n.RejectBroadcast(api.Return_SIGERROR, 1) }, rewards.ErrChainRejected, rewards.TxUnknown},
		{"tapos", func(n *tronsim.Node) { n.RejectBroadcast(api.Return_TAPOS_ERROR, 1) }, rewards.ErrChainRejected, rewards.TxUnknown},
		{"unavailable", func(n *tronsim.Node) { n.Unavailable(1) }, rewards.ErrChainUnavailable, rewards.TxUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, nil)
			ctx := ctxT(t)
			to := newAddress()
			stx := f.sign(t, to, units(5))
			tc.inject(f.node)
			err := f.c.Broadcast(ctx, stx.Raw)
			if tc.broadcast == nil && err != nil || tc.broadcast != nil && !errors.Is(err, tc.broadcast) {
				t.Fatalf("broadcast: %v, want %v", err, tc.broadcast)
			}
			if err != nil {
				t.Logf("broadcast: %v", err)
			}
			if tc.then == rewards.TxUnknown {
				f.waitBlocks(t, 4)
			}
			st := f.waitState(t, stx.TxID, tc.then)
			t.Logf("then: %v %s", st.State, st.Reason)
			if err := f.c.Broadcast(ctx, stx.Raw); err != nil {
				t.Fatalf("broadcasting the same bytes again: %v", err)
			}
			f.waitState(t, stx.TxID, rewards.TxConfirmed)
			if b, _ := f.node.TokenBalance(to); b.Cmp(units(5)) != 0 {
				t.Fatalf("recipient has %v: paid more or less than once", b)
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	f := setup(t, nil)
	ctx := ctxT(t)
	stx := f.sign(t, newAddress(), units(1))
	f.node.Unavailable(0)
	if err := f.c.Broadcast(ctx, stx.Raw); !errors.Is(err, rewards.ErrChainUnavailable) {
		t.Fatalf("Broadcast: %v", err)
	}
	if _, err := f.c.Status(ctx, stx.TxID); !errors.Is(err, rewards.ErrChainUnavailable) {
		t.Fatalf("Status: %v", err)
	}
	if _, err := f.c.SolidifiedTime(ctx); !errors.Is(err, rewards.ErrChainUnavailable) {
		t.Fatalf("SolidifiedTime: %v", err)
	}
	if _, err := f.c.SignTransfer(ctx, newAddress(), units(1)); !errors.Is(err, rewards.ErrChainUnavailable) {
		t.Fatalf("SignTransfer: %v", err)
	}
	if _, err := f.c.TokenBalance(ctx, f.hot); !errors.Is(err, rewards.ErrChainUnavailable) {
		t.Fatalf("TokenBalance: %v", err)
	}
	f.node.Clear(tronsim.FaultUnavailable)
	if err := f.c.Broadcast(ctx, stx.Raw); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	f.waitState(t, stx.TxID, rewards.TxConfirmed)

	// Nothing listening at all.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	cfg := SimConfig(dead, f.node.TokenAddress())
	cfg.CallTimeout = 500 * time.Millisecond
	c, err := NewWithKey(cfg, f.key)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Broadcast(ctx, stx.Raw); !errors.Is(err, rewards.ErrChainUnavailable) {
		t.Fatalf("no node: %v", err)
	}
	if _, err := c.Status(ctx, stx.TxID); !errors.Is(err, rewards.ErrChainUnavailable) {
		t.Fatalf("no node, Status: %v", err)
	}
}

func TestFailedReceipts(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(t *testing.T, f *fixture)
		amount  *big.Int
		reason  []string
	}{
		{"injected out of energy", func(_ *testing.T, f *fixture) { f.node.OutOfEnergy(1) }, units(1), []string{"OUT_OF_ENERGY"}},
		{"injected revert", func(_ *testing.T, f *fixture) { f.node.Revert(1) }, units(1), []string{"REVERT", "injected revert"}},
		{"no energy, little TRX", func(t *testing.T, f *fixture) {
			if err := f.node.SetEnergy(f.hot, 0); err != nil {
				t.Fatal(err)
			}
			if err := f.node.SetTRX(f.hot, 1_000_000); err != nil { // 1 TRX: ~4.7k energy
				t.Fatal(err)
			}
		}, units(1), []string{"OUT_OF_ENERGY", "Not enough energy"}},
		{"more than the balance", nil, units(tronsim.DevTokens + 1), []string{"REVERT", "transfer amount exceeds balance"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, nil)
			ctx := ctxT(t)
			to := newAddress()
			hotBefore, _ := f.node.TokenBalance(f.hot)
			stx := f.sign(t, to, tc.amount)
			if tc.prepare != nil {
				tc.prepare(t, f)
			}
			if err := f.c.Broadcast(ctx, stx.Raw); err != nil {
				t.Fatal(err)
			}
			st := f.waitState(t, stx.TxID, rewards.TxFailed)
			for _, want := range tc.reason {
				if !strings.Contains(st.Reason, want) {
					t.Errorf("reason %q lacks %q", st.Reason, want)
				}
			}
			hotAfter, _ := f.node.TokenBalance(f.hot)
			toAfter, _ := f.node.TokenBalance(to)
			if hotAfter.Cmp(hotBefore) != 0 || toAfter.Sign() != 0 {
				t.Errorf("a failed transfer moved tokens: hot %v -> %v, recipient %v", hotBefore, hotAfter, toAfter)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	f := setup(t, nil)
	ctx := ctxT(t)
	stx := f.sign(t, newAddress(), units(1))
	f.node.AdvanceTime(2 * DefaultExpiration)
	f.waitBlocks(t, 1)
	err := f.c.Broadcast(ctx, stx.Raw)
	if !errors.Is(err, rewards.ErrChainRejected) || !strings.Contains(err.Error(), "TRANSACTION_EXPIRATION_ERROR") {
		t.Fatalf("expired broadcast: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		solid, err := f.c.SolidifiedTime(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if solid.After(stx.Expiration) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("solidified time %v never passed the expiration %v", solid, stx.Expiration)
		}
		time.Sleep(blockPeriod)
	}
	if st, err := f.c.Status(ctx, stx.TxID); err != nil || st.State != rewards.TxUnknown {
		t.Fatalf("expired tx: %v %v", st, err)
	}
}

func TestWrongKeyRejected(t *testing.T) {
	f := setup(t, nil)
	ctx := ctxT(t)
	stx := f.sign(t, newAddress(), units(1))
	var tx core.Transaction
	if err := proto.Unmarshal(stx.Raw, &tx); err != nil {
		t.Fatal(err)
	}
	other, _ := crypto.GenerateKey()
	s, _ := signer.NewPrivateKeySigner(other)
	tx.Signature = nil
	if _, err := s.Sign(&tx); err != nil {
		t.Fatal(err)
	}
	forged, _ := proto.Marshal(&tx)
	err := f.c.Broadcast(ctx, forged)
	if !errors.Is(err, rewards.ErrChainRejected) || !strings.Contains(err.Error(), "SIGERROR") {
		t.Fatalf("wrong key: %v", err)
	}
	// A hot wallet the chain has never seen cannot pay either.
	c, err := NewWithKey(f.c.Config(), other)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stx2, err := c.SignTransfer(ctx, newAddress(), units(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Broadcast(ctx, stx2.Raw); !errors.Is(err, rewards.ErrChainRejected) {
		t.Fatalf("unknown owner: %v", err)
	}
	if err := f.c.Broadcast(ctx, []byte("garbage")); !errors.Is(err, rewards.ErrChainRejected) {
		t.Fatalf("garbage bytes: %v", err)
	}
}

func TestSignTransferRefuses(t *testing.T) {
	f := setup(t, nil)
	ctx := ctxT(t)
	huge := new(big.Int).Lsh(big.NewInt(1), 256)
	for name, tc := range map[string]struct {
		to     string
		amount *big.Int
	}{
		"bad address":    {"TNotAnAddress", big.NewInt(1)},
		"hex address":    {"41" + strings.Repeat("ab", 20), big.NewInt(1)},
		"zero":           {newAddress(), big.NewInt(0)},
		"negative":       {newAddress(), big.NewInt(-1)},
		"nil":            {newAddress(), nil},
		"2^256":          {newAddress(), huge},
		"the hot wallet": {f.hot, big.NewInt(1)},
	} {
		if _, err := f.c.SignTransfer(ctx, tc.to, tc.amount); !errors.Is(err, rewards.ErrChainRejected) {
			t.Errorf("%s: %v", name, err)
		}
	}
	ro, err := New(f.c.Config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.SignTransfer(ctx, newAddress(), big.NewInt(1)); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only: %v", err)
	}
	if ro.HotAddress() != "" {
		t.Error("read-only client has a hot address")
	}
	// A node that builds a different transfer than asked is refused.
	f.node.Inject(tronsim.Fault{Kind: tronsim.FaultTamper, Times: 1})
	_, err = f.c.SignTransfer(ctx, newAddress(), big.NewInt(1))
	if !errors.Is(err, ErrNodeMisbehaved) || errors.Is(err, rewards.ErrChainRejected) {
		t.Errorf("tampered build: %v", err)
	}
}

func TestBalancesEstimatesResources(t *testing.T) {
	f := setup(t, nil)
	ctx := ctxT(t)
	to := newAddress()
	e, err := f.c.EstimateTransferEnergy(ctx, to, units(1))
	if err != nil || e != 130_000 {
		t.Fatalf("estimate to a new holder: %d %v", e, err)
	}
	if _, err := f.c.EstimateTransferEnergy(ctx, to, units(tronsim.DevTokens+1)); err == nil {
		t.Fatal("estimate of a reverting transfer succeeded")
	}
	stx := f.sign(t, to, units(1))
	if err := f.c.Broadcast(ctx, stx.Raw); err != nil {
		t.Fatal(err)
	}
	f.waitState(t, stx.TxID, rewards.TxConfirmed)
	if e, err := f.c.EstimateTransferEnergy(ctx, to, units(1)); err != nil || e != 65_000 {
		t.Fatalf("estimate to a holder: %d %v", e, err)
	}
	trx, err := f.c.TRXBalance(ctx, f.hot)
	if want, _ := f.node.TRXBalance(f.hot); err != nil || trx != want || trx == 0 {
		t.Fatalf("TRXBalance %d %v, sim says %d", trx, err, want)
	}
	if trx, err := f.c.TRXBalance(ctx, newAddress()); err != nil || trx != 0 {
		t.Fatalf("TRXBalance of a new address %d %v", trx, err)
	}
	r, err := f.c.HotResources(ctx)
	if err != nil || r.EnergyLimit != tronsim.DevEnergy || r.EnergyUsed < 129_000 || r.FreeNetLimit != 600 || r.FreeNetUsed == 0 {
		t.Fatalf("resources %+v %v", r, err)
	}
	sym, err := f.c.VerifyToken(ctx)
	if err != nil || sym != "BTT" {
		t.Fatalf("VerifyToken %q %v", sym, err)
	}
	cfg := f.c.Config()
	cfg.TokenDecimals = 6
	c6, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c6.Close()
	if _, err := c6.VerifyToken(ctx); err == nil || !strings.Contains(err.Error(), "token_decimals") {
		t.Fatalf("wrong decimals: %v", err)
	}
	if _, err := f.c.TokenBalance(ctx, "nope"); err == nil {
		t.Fatal("TokenBalance of a bad address")
	}
	if _, err := f.c.Status(ctx, "xyz"); err == nil {
		t.Fatal("Status of a bad txid")
	}
}

func TestEstimateWithoutEstimateEnergy(t *testing.T) {
	f := setup(t, func(c *tronsim.Config) { c.NoEstimateEnergy = true })
	ctx := ctxT(t)
	if e, err := f.c.EstimateTransferEnergy(ctx, newAddress(), units(1)); err != nil || e != 130_000 {
		t.Fatalf("fallback estimate: %d %v", e, err)
	}
	if _, err := f.c.EstimateTransferEnergy(ctx, newAddress(), units(tronsim.DevTokens+1)); err == nil || !strings.Contains(err.Error(), "REVERT") {
		t.Fatalf("fallback estimate of a reverting transfer: %v", err)
	}
}

func TestNoSecretsInOutput(t *testing.T) {
	f := setup(t, nil)
	keyHex := fmt.Sprintf("%x", crypto.FromECDSA(f.key))
	cfg := f.c.Config()
	cfg.APIKey = "super-secret-api-key"
	for _, s := range []string{
		fmt.Sprintf("%v %+v %#v %s", f.c, f.c, f.c, f.c),
		fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg),
	} {
		if strings.Contains(s, keyHex) || strings.Contains(s, "super-secret-api-key") {
			t.Fatalf("secret in %q", s)
		}
	}
}

func TestConfig(t *testing.T) {
	main := DefaultConfig().Resolved()
	if main.FullNode != "grpc.trongrid.io:50051" || main.SolidityNode != "grpc.trongrid.io:50052" ||
		main.Token != MainnetBTT || main.TokenDecimals != 18 || main.Validate() != nil {
		t.Fatalf("mainnet preset %v: %v", main, main.Validate())
	}
	nile := Config{Network: Nile, Token: MainnetBTT}.Resolved()
	if nile.FullNode != "grpc.nile.trongrid.io:50051" || nile.Validate() != nil {
		t.Fatalf("nile %v %v", nile, nile.Validate())
	}
	cases := []struct {
		name string
		edit func(*Config)
		keys []string
	}{
		{"ok", func(*Config) {}, nil},
		{"network", func(c *Config) { c.Network = "moon" }, []string{"chain.network", "chain.full_node", "chain.solidity_node", "chain.token"}},
		{"sim without endpoints", func(c *Config) { c.Network = Sim; c.FullNode, c.SolidityNode, c.Token = "", "", "" }, []string{"chain.full_node", "chain.solidity_node", "chain.token"}},
		{"testnet without token", func(c *Config) { c.Network, c.Token = Shasta, "" }, []string{"chain.token"}},
		{"bad token", func(c *Config) { c.Token = "TAFjULxiVgT4qWk6UZwjqwZXTSaGaqnVp5" }, []string{"chain.token"}},
		{"fee limit", func(c *Config) { c.FeeLimit = MaxFeeLimit + 1 }, []string{"chain.fee_limit"}},
		{"negative fee limit", func(c *Config) { c.FeeLimit = -1 }, []string{"chain.fee_limit"}},
		{"expiration", func(c *Config) { c.Expiration = 25 * time.Hour }, []string{"chain.expiration"}},
		{"short expiration", func(c *Config) { c.Expiration = time.Millisecond }, []string{"chain.expiration"}},
		{"timeout", func(c *Config) { c.CallTimeout = time.Hour }, []string{"chain.call_timeout"}},
		{"decimals", func(c *Config) { c.TokenDecimals = 78 }, []string{"chain.token_decimals"}},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.edit(&c)
		err := c.Validate()
		if len(tc.keys) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, k := range tc.keys {
			if !strings.Contains(err.Error(), k+":") {
				t.Errorf("%s: %q does not name %s", tc.name, err, k)
			}
		}
		if _, nerr := New(c, nil); nerr == nil {
			t.Errorf("%s: New accepted an invalid config", tc.name)
		}
	}
}

func TestClassifyReturn(t *testing.T) {
	cases := []struct {
		code   api.ReturnResponseCode
		result bool
		msg    string
		want   error
	}{
		{api.Return_SUCCESS, true, "", nil},
		{api.Return_SUCCESS, false, "", rewards.ErrChainUnavailable},
		{api.Return_DUP_TRANSACTION_ERROR, false, "Dup transaction.", nil},
		{api.Return_SIGERROR, false, "", rewards.ErrChainRejected},
		{api.Return_CONTRACT_VALIDATE_ERROR, false, "No contract or not a smart contract", rewards.ErrChainRejected},
		{api.Return_CONTRACT_VALIDATE_ERROR, false, "Validate TriggerSmartContract error, balance is not sufficient.", rewards.ErrChainResources},
		{api.Return_CONTRACT_EXE_ERROR, false, "", rewards.ErrChainRejected},
		{api.Return_BANDWITH_ERROR, false, "", rewards.ErrChainResources},
		{api.Return_TAPOS_ERROR, false, "", rewards.ErrChainRejected},
		{api.Return_TOO_BIG_TRANSACTION_ERROR, false, "", rewards.ErrChainRejected},
		{api.Return_TRANSACTION_EXPIRATION_ERROR, false, "", rewards.ErrChainRejected},
		{api.Return_SERVER_BUSY, false, "", rewards.ErrChainUnavailable},
		{api.Return_NO_CONNECTION, false, "", rewards.ErrChainUnavailable},
		{api.Return_NOT_ENOUGH_EFFECTIVE_CONNECTION, false, "", rewards.ErrChainUnavailable},
		{api.Return_BLOCK_UNSOLIDIFIED, false, "", rewards.ErrChainUnavailable},
		{api.Return_OTHER_ERROR, false, "", rewards.ErrChainRejected},
		{api.ReturnResponseCode(99), false, "", rewards.ErrChainRejected},
	}
	for _, tc := range cases {
		err := classifyReturn(&api.Return{Result: tc.result, Code: tc.code, Message: []byte(tc.msg)})
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.code, err, tc.want)
		}
	}
}

func TestRevertReason(t *testing.T) {
	msg := "ERC20: transfer amount exceeds balance"
	b := []byte{0x08, 0xc3, 0x79, 0xa0}
	b = append(b, make([]byte, 31)...)
	b = append(b, 32)
	l := make([]byte, 32)
	l[31] = byte(len(msg))
	b = append(b, l...)
	b = append(b, []byte(msg)...)
	b = append(b, make([]byte, 32-len(msg)%32)...)
	if got := revertReason(b); got != msg {
		t.Fatalf("got %q", got)
	}
	if got := revertReason(b[:40]); got != "" {
		t.Fatalf("short payload gave %q", got)
	}
	long := append([]byte(nil), b...)
	long[4+63] = 0xff // length beyond the payload
	if got := revertReason(long); got != "" {
		t.Fatalf("bad length gave %q", got)
	}
}
