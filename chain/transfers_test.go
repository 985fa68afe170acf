package chain

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fbsobreira/gotron-sdk/pkg/address"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/core"

	"github.com/seedpay/seedpay/chain/tronsim"
	"github.com/seedpay/seedpay/rewards"
)

// manual is a fixture whose node makes blocks only on ProduceBlock, with no
// solidity lag.
func manual(t *testing.T) *fixture {
	f := setup(t, func(c *tronsim.Config) { c.BlockPeriod = -1 })
	f.node.SetSolidityLag(0)
	return f
}

// wallet is an external wallet (a depositor) funded with tokens of the
// fixture's token, and a client signing with its key for token tok
// (default: the fixture's).
func (f *fixture) wallet(t *testing.T, tokens *big.Int) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, addr, err := f.node.NewWallet(tokens)
	if err != nil {
		t.Fatal(err)
	}
	return key, addr
}

func (f *fixture) clientFor(t *testing.T, key *ecdsa.PrivateKey, token string) *Client {
	t.Helper()
	if token == "" {
		token = f.node.TokenAddress()
	}
	c, err := NewWithKey(SimConfig(f.node.Addr(), token), key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (f *fixture) send(t *testing.T, c *Client, to string, amount *big.Int) string {
	t.Helper()
	txid, err := c.Send(ctxT(t), to, amount)
	if err != nil {
		t.Fatal(err)
	}
	return txid
}

func (f *fixture) receipt(t *testing.T, txid string) core.Transaction_ResultContractResult {
	t.Helper()
	_, info, ok := f.node.Transaction(txid)
	if !ok {
		t.Fatalf("%s not in a block", txid)
	}
	return info.GetReceipt().GetResult()
}

func TestTransferTopic(t *testing.T) {
	if got := crypto.Keccak256([]byte("Transfer(address,address,uint256)")); string(got) != string(transferTopic) {
		t.Fatalf("transferTopic %x, keccak256 says %x", transferTopic, got)
	}
}

// TestTokenTransfersEndToEnd: deposits from external wallets signed by real
// clients, through the real gRPC path, come back from a block scan exactly
// once with the right fields; failed transfers and another token's
// transfers do not.
func TestTokenTransfersEndToEnd(t *testing.T) {
	f := manual(t)
	ctx := ctxT(t)
	poolA, poolB, payee := newAddress(), newAddress(), newAddress()

	k1, dep1 := f.wallet(t, units(100))
	k2, dep2 := f.wallet(t, units(50))
	k3, dep3 := f.wallet(t, units(50))
	c1, c2, c3 := f.clientFor(t, k1, ""), f.clientFor(t, k2, ""), f.clientFor(t, k3, "")
	// dep3 cannot pay for energy: its transfer runs OUT_OF_ENERGY.
	if err := f.node.SetEnergy(dep3, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.node.SetTRX(dep3, 0); err != nil {
		t.Fatal(err)
	}
	// Another TRC-20 contract, same code, dep1 holds some of it.
	other := newAddress()
	if err := f.node.AddToken(tronsim.TokenConfig{Address: other}); err != nil {
		t.Fatal(err)
	}
	if err := f.node.MintToken(other, dep1, units(1000)); err != nil {
		t.Fatal(err)
	}
	c1other := f.clientFor(t, k1, other)

	start := f.node.Head() + 1
	odd := new(big.Int).Add(units(10), big.NewInt(7)) // not a round number
	tx1 := f.send(t, c1, poolA, odd)
	tx2 := f.send(t, c2, poolB, units(7))
	txPay := f.send(t, f.c, payee, units(5)) // a payout is a Transfer of the token too
	b1 := f.node.ProduceBlock()
	tx4 := f.send(t, c1, poolA, big.NewInt(3))
	txRevert := f.send(t, c2, poolB, units(1000)) // more than dep2 has
	txOOE := f.send(t, c3, poolA, units(1))
	txOther := f.send(t, c1other, poolA, units(99))
	b2 := f.node.ProduceBlock()
	f.node.ProduceBlock()
	end := f.node.ProduceBlock()

	for txid, want := range map[string]core.Transaction_ResultContractResult{
		tx1: core.Transaction_Result_SUCCESS, txRevert: core.Transaction_Result_REVERT,
		txOOE: core.Transaction_Result_OUT_OF_ENERGY, txOther: core.Transaction_Result_SUCCESS,
	} {
		if got := f.receipt(t, txid); got != want {
			t.Fatalf("%s: receipt %s, want %s", txid, got, want)
		}
	}
	if b, _ := f.node.TokenBalanceOf(other, poolA); b.Cmp(units(99)) != 0 {
		t.Fatalf("other token not moved: %v", b)
	}

	want := []rewards.TokenTransfer{
		{TxID: tx1, LogIndex: 0, Block: b1, From: dep1, To: poolA, Amount: odd},
		{TxID: tx2, LogIndex: 0, Block: b1, From: dep2, To: poolB, Amount: units(7)},
		{TxID: txPay, LogIndex: 0, Block: b1, From: f.hot, To: payee, Amount: units(5)},
		{TxID: tx4, LogIndex: 0, Block: b2, From: dep1, To: poolA, Amount: big.NewInt(3)},
	}
	check := func(name string, got []rewards.TokenTransfer, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !sameTransfers(got, want) {
			t.Fatalf("%s:\n got %s\nwant %s", name, fmtTransfers(got), fmtTransfers(want))
		}
	}
	got, err := f.c.TokenTransfers(ctx, start, end)
	check("full node", got, err)
	got, err = f.c.SolidifiedTransfers().TokenTransfers(ctx, start, end)
	check("solidity node", got, err)
	// Block by block gives the same, once each.
	var one []rewards.TokenTransfer
	for b := start; b <= end; b++ {
		got, err := f.c.TokenTransfers(ctx, b, b)
		if err != nil {
			t.Fatal(err)
		}
		one = append(one, got...)
	}
	check("block by block", one, nil)
	// A read-only client for the other token sees only that one.
	ro, err := New(SimConfig(f.node.Addr(), other), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	got, err = ro.TokenTransfers(ctx, start, end)
	if err != nil || len(got) != 1 || got[0].TxID != txOther || got[0].To != poolA || got[0].From != dep1 || got[0].Amount.Cmp(units(99)) != 0 {
		t.Fatalf("other token's client: %s %v", fmtTransfers(got), err)
	}
	if h, err := f.c.HeadBlock(ctx); err != nil || h != end {
		t.Fatalf("HeadBlock %d %v, want %d", h, err, end)
	}
}

func sameTransfers(a, b []rewards.TokenTransfer) bool {
	return slices.EqualFunc(a, b, func(x, y rewards.TokenTransfer) bool {
		return x.TxID == y.TxID && x.LogIndex == y.LogIndex && x.Block == y.Block &&
			x.From == y.From && x.To == y.To && x.Amount.Cmp(y.Amount) == 0
	})
}

func fmtTransfers(ts []rewards.TokenTransfer) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "\n  {%s #%d block %d %s->%s %v}", t.TxID, t.LogIndex, t.Block, t.From, t.To, t.Amount)
	}
	return b.String()
}

func TestSolidifiedTransfersLag(t *testing.T) {
	f := setup(t, func(c *tronsim.Config) { c.BlockPeriod = -1; c.SolidityLag = 3 })
	ctx := ctxT(t)
	for range 5 {
		f.node.ProduceBlock()
	}
	k, dep := f.wallet(t, units(10))
	to := newAddress()
	txid := f.send(t, f.clientFor(t, k, ""), to, units(1))
	b := f.node.ProduceBlock()
	sol := f.c.SolidifiedTransfers()
	if h, err := sol.HeadBlock(ctx); err != nil || h != b-3 {
		t.Fatalf("solidified head %d %v, want %d", h, err, b-3)
	}
	if _, err := sol.TokenTransfers(ctx, b, b); !errors.Is(err, rewards.ErrChainUnavailable) {
		t.Fatalf("unsolidified block: %v", err)
	}
	for range 3 {
		f.node.ProduceBlock()
	}
	got, err := sol.TokenTransfers(ctx, b, b)
	if err != nil || len(got) != 1 || got[0].TxID != txid || got[0].From != dep {
		t.Fatalf("after the lag: %s %v", fmtTransfers(got), err)
	}
}

func TestTokenTransfersRanges(t *testing.T) {
	f := manual(t)
	for range MaxTransferRange + 5 {
		f.node.ProduceBlock()
	}
	head := f.node.Head()
	cases := []struct {
		name     string
		from, to int64
		want     error // nil: succeeds
	}{
		{"one block", 3, 3, nil},
		{"genesis", 0, 0, nil},
		{"max range", 1, MaxTransferRange, nil},
		{"up to head", head - 2, head, nil},
		{"negative", -1, 3, ErrBadBlockRange},
		{"reversed", 5, 4, ErrBadBlockRange},
		{"too long", 1, MaxTransferRange + 1, ErrBadBlockRange},
		{"huge", 0, 1 << 62, ErrBadBlockRange},
		{"past head", head, head + 1, rewards.ErrChainUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.c.TokenTransfers(ctxT(t), tc.from, tc.to)
			if tc.want == nil && (err != nil || len(got) != 0) || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("%d..%d: %v %v, want %v", tc.from, tc.to, got, err, tc.want)
			}
			if tc.want == ErrBadBlockRange && errors.Is(err, rewards.ErrChainUnavailable) {
				t.Fatalf("a bad range is not a chain failure: %v", err)
			}
		})
	}
}

func TestTokenTransfersNodeFailures(t *testing.T) {
	f := manual(t)
	ctx := ctxT(t)
	k, _ := f.wallet(t, units(10))
	dep := f.clientFor(t, k, "")
	txid := f.send(t, dep, newAddress(), units(1))
	b := f.node.ProduceBlock()
	empty := f.node.ProduceBlock()

	scan := func(from, to int64) ([]rewards.TokenTransfer, error) { return f.c.TokenTransfers(ctx, from, to) }
	cases := []struct {
		name   string
		inject func()
		from   int64
		want   string // in the error
	}{
		{"head unavailable", func() { f.node.UnavailableFor("GetNowBlock2", 1) }, b, "Unavailable"},
		{"scan unavailable once", func() { f.node.UnavailableFor("GetTransactionInfoByBlockNum", 1) }, b, "Unavailable"},
		{"every RPC unavailable", func() { f.node.Unavailable(1) }, b, "Unavailable"},
		// A node that answers no infos for a block with transactions (it
		// does not keep them, or lags behind a load balancer).
		{"no infos for a full block", func() { f.node.NoInfos(1) }, b, "answered no transaction infos"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.inject()
			_, err := scan(tc.from, empty)
			if !errors.Is(err, rewards.ErrChainUnavailable) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want ErrChainUnavailable with %q", err, tc.want)
			}
			// The fault was one call: the next scan reads everything.
			got, err := scan(tc.from, empty)
			if err != nil || len(got) != 1 || got[0].TxID != txid {
				t.Fatalf("after the fault: %s %v", fmtTransfers(got), err)
			}
		})
	}
	// No infos for an empty block is an empty block.
	f.node.NoInfos(1)
	if got, err := scan(empty, empty); err != nil || len(got) != 0 {
		t.Fatalf("empty block: %v %v", got, err)
	}

	// Nothing listening at all.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	cfg := SimConfig(dead, f.node.TokenAddress())
	cfg.CallTimeout = 300 * time.Millisecond
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.HeadBlock(ctx); !errors.Is(err, rewards.ErrChainUnavailable) {
		t.Fatalf("no node, HeadBlock: %v", err)
	}
	if _, err := c.TokenTransfers(ctx, 0, 1); !errors.Is(err, rewards.ErrChainUnavailable) {
		t.Fatalf("no node, TokenTransfers: %v", err)
	}
	// A cancelled context is "retry later" too.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.c.TokenTransfers(cctx, b, b); !errors.Is(err, rewards.ErrChainUnavailable) {
		t.Fatalf("cancelled: %v", err)
	}
}

// ---- decoding, without a node ----

var (
	testToken = mustParse(tronsim.DefaultTokenAddress)
	alice     = fixedAddress(0xa1)
	bob       = fixedAddress(0xb0)
)

func fixedAddress(b byte) address.Address {
	return append(address.Address{address.TronBytePrefix}, bytes.Repeat([]byte{b}, 20)...)
}

func mustParse(s string) address.Address {
	a, err := ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

func word32(v *big.Int) []byte {
	b := make([]byte, 32)
	v.FillBytes(b)
	return b
}

func topicOf(a address.Address) []byte {
	b := make([]byte, 32)
	copy(b[12:], a[1:])
	return b
}

func transferLog(contract []byte, from, to address.Address, amount *big.Int) *core.TransactionInfo_Log {
	return &core.TransactionInfo_Log{
		Address: contract,
		Topics:  [][]byte{transferTopic, topicOf(from), topicOf(to)},
		Data:    word32(amount),
	}
}

func txInfo(id byte, block int64, result core.Transaction_ResultContractResult, logs ...*core.TransactionInfo_Log) *core.TransactionInfo {
	i := &core.TransactionInfo{Id: append(make([]byte, 31), id), BlockNumber: block, Receipt: &core.ResourceReceipt{Result: result}, Log: logs}
	if result != core.Transaction_Result_SUCCESS {
		i.Result = core.TransactionInfo_FAILED
	}
	return i
}

func TestBlockTransfers(t *testing.T) {
	tok20 := []byte(testToken[1:])
	other := mustParse(MainnetBTT)
	approval := &core.TransactionInfo_Log{Address: tok20, Topics: [][]byte{make([]byte, 32), topicOf(alice), topicOf(bob)}, Data: word32(big.NewInt(1))}
	maxAmount := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	id := func(b byte) string { return fmt.Sprintf("%062x%02x", 0, b) }
	cases := []struct {
		name  string
		infos []*core.TransactionInfo
		want  []rewards.TokenTransfer
		err   string // non-empty: an error containing it
	}{
		{"empty", nil, nil, ""},
		{"one transfer", []*core.TransactionInfo{txInfo(1, 7, core.Transaction_Result_SUCCESS, transferLog(tok20, alice, bob, big.NewInt(5)))},
			[]rewards.TokenTransfer{{TxID: id(1), Block: 7, From: alice.String(), To: bob.String(), Amount: big.NewInt(5)}}, ""},
		{"log index counts every log of the transaction", []*core.TransactionInfo{
			txInfo(1, 7, core.Transaction_Result_SUCCESS,
				approval,
				transferLog(other[1:], alice, bob, big.NewInt(9)),
				transferLog(tok20, alice, bob, big.NewInt(1)),
				transferLog(tok20, bob, alice, maxAmount)),
			txInfo(2, 7, core.Transaction_Result_SUCCESS, transferLog(tok20, bob, bob, big.NewInt(0))),
		}, []rewards.TokenTransfer{
			{TxID: id(1), LogIndex: 2, Block: 7, From: alice.String(), To: bob.String(), Amount: big.NewInt(1)},
			{TxID: id(1), LogIndex: 3, Block: 7, From: bob.String(), To: alice.String(), Amount: maxAmount},
			{TxID: id(2), LogIndex: 0, Block: 7, From: bob.String(), To: bob.String(), Amount: big.NewInt(0)},
		}, ""},
		{"21-byte contract address accepted", []*core.TransactionInfo{txInfo(1, 7, core.Transaction_Result_SUCCESS, transferLog(testToken, alice, bob, big.NewInt(5)))},
			[]rewards.TokenTransfer{{TxID: id(1), Block: 7, From: alice.String(), To: bob.String(), Amount: big.NewInt(5)}}, ""},
		{"failed receipts ignored even with logs", []*core.TransactionInfo{
			txInfo(1, 7, core.Transaction_Result_REVERT, transferLog(tok20, alice, bob, big.NewInt(5))),
			txInfo(2, 7, core.Transaction_Result_OUT_OF_ENERGY, transferLog(tok20, alice, bob, big.NewInt(5))),
			{Id: append(make([]byte, 31), 3), BlockNumber: 7, Result: core.TransactionInfo_FAILED,
				Receipt: &core.ResourceReceipt{Result: core.Transaction_Result_SUCCESS}, Log: []*core.TransactionInfo_Log{transferLog(tok20, alice, bob, big.NewInt(5))}},
			{Id: append(make([]byte, 31), 4), BlockNumber: 7, Log: []*core.TransactionInfo_Log{transferLog(tok20, alice, bob, big.NewInt(5))}}, // no receipt
		}, nil, ""},
		{"other contracts, events and shapes ignored", []*core.TransactionInfo{txInfo(1, 7, core.Transaction_Result_SUCCESS,
			transferLog(other[1:], alice, bob, big.NewInt(5)),
			transferLog(append([]byte{0x42}, tok20...), alice, bob, big.NewInt(5)),
			transferLog(tok20[:19], alice, bob, big.NewInt(5)),
			approval,
			&core.TransactionInfo_Log{Address: tok20, Topics: [][]byte{transferTopic, topicOf(alice), topicOf(bob), word32(big.NewInt(5))}}, // 4 topics (ERC-721 shape)
			&core.TransactionInfo_Log{Address: tok20, Topics: [][]byte{transferTopic, topicOf(alice)}, Data: word32(big.NewInt(5))},
			&core.TransactionInfo_Log{Address: tok20, Data: word32(big.NewInt(5))},
			nil,
		)}, nil, ""},
		{"short data", []*core.TransactionInfo{txInfo(1, 7, core.Transaction_Result_SUCCESS,
			&core.TransactionInfo_Log{Address: tok20, Topics: [][]byte{transferTopic, topicOf(alice), topicOf(bob)}, Data: []byte{5}})}, nil, "data is 1 bytes"},
		{"over 256 bits", []*core.TransactionInfo{txInfo(1, 7, core.Transaction_Result_SUCCESS,
			&core.TransactionInfo_Log{Address: tok20, Topics: [][]byte{transferTopic, topicOf(alice), topicOf(bob)}, Data: make([]byte, 33)})}, nil, "data is 33 bytes"},
		{"no data", []*core.TransactionInfo{txInfo(1, 7, core.Transaction_Result_SUCCESS,
			&core.TransactionInfo_Log{Address: tok20, Topics: [][]byte{transferTopic, topicOf(alice), topicOf(bob)}})}, nil, "data is 0 bytes"},
		{"dirty address topic", []*core.TransactionInfo{txInfo(1, 7, core.Transaction_Result_SUCCESS,
			&core.TransactionInfo_Log{Address: tok20, Topics: [][]byte{transferTopic, append([]byte{1}, topicOf(alice)[1:]...), topicOf(bob)}, Data: word32(big.NewInt(1))})}, nil, "from: topic"},
		{"short address topic", []*core.TransactionInfo{txInfo(1, 7, core.Transaction_Result_SUCCESS,
			&core.TransactionInfo_Log{Address: tok20, Topics: [][]byte{transferTopic, topicOf(alice), bob[1:]}, Data: word32(big.NewInt(1))})}, nil, "to: topic is 20 bytes"},
		{"info from another block", []*core.TransactionInfo{txInfo(1, 8, core.Transaction_Result_SUCCESS)}, nil, "says it is in block 8"},
		{"info without id", []*core.TransactionInfo{{BlockNumber: 7}}, nil, "no 32-byte id"},
		{"nil info", []*core.TransactionInfo{nil}, nil, "no 32-byte id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := blockTransfers(7, tc.infos, testToken)
			if tc.err != "" {
				if !errors.Is(err, ErrNodeMisbehaved) || !strings.Contains(err.Error(), tc.err) || got != nil {
					t.Fatalf("%s %v, want ErrNodeMisbehaved with %q", fmtTransfers(got), err, tc.err)
				}
				return
			}
			if err != nil || !sameTransfers(got, tc.want) {
				t.Fatalf("%v\n got %s\nwant %s", err, fmtTransfers(got), fmtTransfers(tc.want))
			}
		})
	}
}

// FuzzDecodeTransferLog: any log decodes or is refused, never panics, and
// what decodes is a 21-byte TRON address pair and an amount of at most 256
// bits that round-trip to the log.
func FuzzDecodeTransferLog(f *testing.F) {
	f.Add([]byte(testToken[1:]), transferTopic, topicOf(alice), topicOf(bob), word32(big.NewInt(5)), uint8(3))
	f.Add([]byte(testToken), transferTopic, topicOf(alice), topicOf(bob), make([]byte, 33), uint8(3))
	f.Add([]byte(testToken[1:]), transferTopic, []byte{1}, topicOf(bob), []byte{}, uint8(3))
	f.Add([]byte(testToken[1:]), transferTopic, topicOf(alice), topicOf(bob), word32(big.NewInt(5)), uint8(4))
	f.Add([]byte{}, []byte{}, []byte{}, []byte{}, []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, contract, t0, t1, t2, data []byte, n uint8) {
		topics := [][]byte{t0, t1, t2, t2, t0}[:int(n)%6]
		lg := &core.TransactionInfo_Log{Address: contract, Topics: topics, Data: data}
		from, to, amount, ok, err := decodeTransferLog(lg, testToken)
		if ok && err != nil || !ok && (from != nil || to != nil || amount != nil) {
			t.Fatalf("ok %v err %v with results", ok, err)
		}
		if !ok {
			return
		}
		if len(from) != 21 || len(to) != 21 || from[0] != 0x41 || to[0] != 0x41 || amount.Sign() < 0 || amount.BitLen() > 256 {
			t.Fatalf("decoded %x %x %v", from, to, amount)
		}
		if string(topicOf(from)) != string(t1) || string(topicOf(to)) != string(t2) || string(word32(amount)) != string(data) {
			t.Fatal("decoded values do not round-trip")
		}
		// The same log inside an info decodes the same way.
		got, err := blockTransfers(1, []*core.TransactionInfo{txInfo(9, 1, core.Transaction_Result_SUCCESS, lg)}, testToken)
		if err != nil || len(got) != 1 || got[0].From != from.String() || got[0].Amount.Cmp(amount) != 0 {
			t.Fatalf("blockTransfers: %v %v", got, err)
		}
	})
}

// BenchmarkTokenTransfers scans MaxTransferRange blocks over loopback gRPC,
// each block holding one deposit (one RPC per block) or none (two RPCs: the
// empty list is checked against the block).
func BenchmarkTokenTransfers(b *testing.B) {
	for _, full := range []bool{true, false} {
		name := "empty blocks"
		if full {
			name = "one transfer per block"
		}
		b.Run(name, func(b *testing.B) {
			node, tok, key, err := tronsim.NewDev("127.0.0.1:0", tronsim.Config{BlockPeriod: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer node.Stop()
			c, err := NewWithKey(SimConfig(node.Addr(), tok), key)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			from := node.Head() + 1
			for range MaxTransferRange {
				if full {
					if _, err := c.Send(ctx, newAddress(), big.NewInt(1)); err != nil {
						b.Fatal(err)
					}
				}
				node.ProduceBlock()
			}
			to := from + MaxTransferRange - 1
			b.ResetTimer()
			for b.Loop() {
				got, err := c.TokenTransfers(ctx, from, to)
				if err != nil || full && len(got) != MaxTransferRange {
					b.Fatal(len(got), err)
				}
			}
		})
	}
}
