package tronsim_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fbsobreira/gotron-sdk/pkg/address"
	"github.com/fbsobreira/gotron-sdk/pkg/client"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/api"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/core"
	"github.com/fbsobreira/gotron-sdk/pkg/signer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/seedpay/seedpay/chain/tronsim"
)

type env struct {
	node *tronsim.Node
	sdk  *client.GrpcClient
	sol  api.WalletSolidityClient
	key  *ecdsa.PrivateKey
	hot  string
	tok  string
}

// start runs a node with manual blocks (ProduceBlock) and a funded hot
// wallet, and connects the SDK client to it over 127.0.0.1.
func start(t *testing.T, cfg tronsim.Config) *env {
	t.Helper()
	if cfg.BlockPeriod == 0 {
		cfg.BlockPeriod = -1
	}
	n, err := tronsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	key, _ := crypto.GenerateKey()
	hot := address.PubkeyToAddress(key.PublicKey).String()
	if err := n.Fund(hot, tronsim.TokenUnits(big.NewInt(1000), 18), 1_000*1_000_000, 10_000_000); err != nil {
		t.Fatal(err)
	}
	sdk := client.NewGrpcClientWithTimeout(n.Addr(), 5*time.Second)
	if err := sdk.Start(grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sdk.Stop)
	conn, err := grpc.NewClient(n.SolidityAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &env{node: n, sdk: sdk, sol: api.NewWalletSolidityClient(conn), key: key, hot: hot, tok: n.TokenAddress()}
}

func newAddr() string {
	k, _ := crypto.GenerateKey()
	return address.PubkeyToAddress(k.PublicKey).String()
}

func transferData(t *testing.T, to string, amount *big.Int) []byte {
	a, err := tronsim.ParseAddress(to)
	if err != nil {
		t.Fatal(err)
	}
	d := make([]byte, 68)
	copy(d, []byte{0xa9, 0x05, 0x9c, 0xbb})
	copy(d[16:36], a[1:])
	amount.FillBytes(d[36:])
	return d
}

// build asks the node for a transfer and lets edit change raw_data before
// signing with key.
func (e *env) build(t *testing.T, key *ecdsa.PrivateKey, to string, amount *big.Int, edit func(*core.TransactionRaw)) (*core.Transaction, []byte) {
	t.Helper()
	ext, err := e.sdk.TriggerContractWithData(e.hot, e.tok, transferData(t, to, amount), 50_000_000, 0, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	tx := ext.Transaction
	if edit != nil {
		edit(tx.RawData)
	}
	if key != nil {
		s, err := signer.NewPrivateKeySigner(key)
		if err != nil {
			t.Fatal(err)
		}
		if tx, err = s.Sign(tx); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := proto.Marshal(tx.RawData)
	id := sha256.Sum256(b)
	return tx, id[:]
}

func (e *env) broadcast(t *testing.T, tx *core.Transaction) *api.Return {
	t.Helper()
	ret, err := e.sdk.Client.BroadcastTransaction(context.Background(), tx)
	if err != nil {
		t.Fatal(err)
	}
	if ret == nil {
		t.Fatal("nil Return")
	}
	return ret
}

func TestTokenConstantCalls(t *testing.T) {
	e := start(t, tronsim.Config{})
	name, err := e.sdk.TRC20GetName(e.tok)
	if err != nil || name != "BitTorrent" {
		t.Fatalf("name %q %v", name, err)
	}
	sym, err := e.sdk.TRC20GetSymbol(e.tok)
	if err != nil || sym != "BTT" {
		t.Fatalf("symbol %q %v", sym, err)
	}
	dec, err := e.sdk.TRC20GetDecimals(e.tok)
	if err != nil || dec.Int64() != 18 {
		t.Fatalf("decimals %v %v", dec, err)
	}
	bal, err := e.sdk.TRC20ContractBalance(e.hot, e.tok)
	if err != nil || bal.Cmp(tronsim.TokenUnits(big.NewInt(1000), 18)) != 0 {
		t.Fatalf("balance %v %v", bal, err)
	}
	bal, err = e.sdk.TRC20ContractBalance(newAddr(), e.tok)
	if err != nil || bal.Sign() != 0 {
		t.Fatalf("empty balance %v %v", bal, err)
	}
	// Unknown contract: a Result, never nil.
	other := newAddr()
	ext, err := e.sdk.Client.TriggerConstantContract(context.Background(), &core.TriggerSmartContract{
		OwnerAddress: mustAddr(t, e.hot), ContractAddress: mustAddr(t, other), Data: []byte{1, 2, 3, 4}})
	if err != nil || ext.Result == nil || ext.Result.Code != api.Return_CONTRACT_VALIDATE_ERROR {
		t.Fatalf("unknown contract: %v %v", ext, err)
	}
	// A transfer beyond the balance reverts in simulation, with energy used.
	ext, err = e.sdk.TRC20Send(e.hot, newAddr(), e.tok, tronsim.TokenUnits(big.NewInt(5000), 18), 0, client.WithEstimate())
	if err != nil || len(ext.ConstantResult) != 1 || ext.Transaction.Ret[0].ContractRet != core.Transaction_Result_REVERT {
		t.Fatalf("reverting simulation: %v %v", ext, err)
	}
	est, err := e.sdk.EstimateEnergyWithData(e.hot, e.tok, transferData(t, newAddr(), big.NewInt(1)), 0, "", 0)
	if err != nil || est.EnergyRequired != 130_000 {
		t.Fatalf("estimate to a new holder: %v %v", est, err)
	}
}

func mustAddr(t *testing.T, s string) []byte {
	a, err := tronsim.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestTriggerContractShape(t *testing.T) {
	e := start(t, tronsim.Config{})
	data := transferData(t, newAddr(), big.NewInt(7))
	ext, err := e.sdk.Client.TriggerContract(context.Background(), &core.TriggerSmartContract{
		OwnerAddress: mustAddr(t, e.hot), ContractAddress: mustAddr(t, e.tok), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if ext.Result == nil || !ext.Result.Result || ext.Result.Code != api.Return_SUCCESS {
		t.Fatalf("result %v", ext.Result)
	}
	raw := ext.Transaction.RawData
	if len(raw.Contract) != 1 || raw.Contract[0].Type != core.Transaction_Contract_TriggerSmartContract ||
		raw.Contract[0].Parameter.TypeUrl != "type.googleapis.com/protocol.TriggerSmartContract" {
		t.Fatalf("contract %v", raw.Contract)
	}
	var ct core.TriggerSmartContract
	if err := raw.Contract[0].Parameter.UnmarshalTo(&ct); err != nil || string(ct.Data) != string(data) {
		t.Fatalf("parameter %v %v", &ct, err)
	}
	head, err := e.sdk.GetNowBlock()
	if err != nil {
		t.Fatal(err)
	}
	if string(raw.RefBlockBytes) != string(head.Blockid[6:8]) || string(raw.RefBlockHash) != string(head.Blockid[8:16]) {
		t.Fatalf("ref block %x/%x, head %x", raw.RefBlockBytes, raw.RefBlockHash, head.Blockid)
	}
	if raw.Expiration != head.BlockHeader.RawData.Timestamp+60_000 {
		t.Fatalf("expiration %d, head %d", raw.Expiration, head.BlockHeader.RawData.Timestamp)
	}
	b, _ := proto.Marshal(raw)
	if id := sha256.Sum256(b); string(id[:]) != string(ext.Txid) {
		t.Fatal("txid is not sha256(raw_data)")
	}
}

func TestBroadcastValidation(t *testing.T) {
	e := start(t, tronsim.Config{})
	other, _ := crypto.GenerateKey()
	future := func(r *core.TransactionRaw) { r.Expiration += (25 * time.Hour).Milliseconds() }
	cases := []struct {
		name string
		key  *ecdsa.PrivateKey
		edit func(*core.TransactionRaw)
		code api.ReturnResponseCode
	}{
		{"unsigned", nil, nil, api.Return_SIGERROR},
		{"wrong key", other, nil, api.Return_SIGERROR},
		{"bad ref hash", e.key, func(r *core.TransactionRaw) { r.RefBlockHash[0] ^= 1 }, api.Return_TAPOS_ERROR},
		{"unknown ref block", e.key, func(r *core.TransactionRaw) { r.RefBlockBytes = []byte{0x7f, 0x7f} }, api.Return_TAPOS_ERROR},
		{"expired", e.key, func(r *core.TransactionRaw) { r.Expiration = r.Timestamp - 120_000 }, api.Return_TRANSACTION_EXPIRATION_ERROR},
		{"beyond 24h", e.key, future, api.Return_TRANSACTION_EXPIRATION_ERROR},
		{"fee limit over 15000 TRX", e.key, func(r *core.TransactionRaw) { r.FeeLimit = tronsim.MaxFeeLimit + 1 }, api.Return_CONTRACT_VALIDATE_ERROR},
		{"good", e.key, nil, api.Return_SUCCESS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx, _ := e.build(t, tc.key, newAddr(), big.NewInt(1), tc.edit)
			ret := e.broadcast(t, tx)
			if ret.Code != tc.code || ret.Result != (tc.code == api.Return_SUCCESS) {
				t.Fatalf("got %s %q, want %s", ret.Code, ret.Message, tc.code)
			}
			if tc.code == api.Return_SUCCESS {
				if again := e.broadcast(t, tx); again.Code != api.Return_DUP_TRANSACTION_ERROR {
					t.Fatalf("second broadcast: %s", again.Code)
				}
			}
		})
	}
}

func TestBandwidthAndAccount(t *testing.T) {
	e := start(t, tronsim.Config{FreeNetLimit: -1})
	// No free bandwidth, no TRX: refused for bandwidth.
	if err := e.node.SetTRX(e.hot, 0); err != nil {
		t.Fatal(err)
	}
	tx, _ := e.build(t, e.key, newAddr(), big.NewInt(1), nil)
	if ret := e.broadcast(t, tx); ret.Code != api.Return_BANDWITH_ERROR {
		t.Fatalf("got %s", ret.Code)
	}
	// With TRX it burns 1000 sun per byte.
	if err := e.node.SetTRX(e.hot, 10_000_000); err != nil {
		t.Fatal(err)
	}
	if ret := e.broadcast(t, tx); ret.Code != api.Return_SUCCESS {
		t.Fatalf("got %s %s", ret.Code, ret.Message)
	}
	trx, _ := e.node.TRXBalance(e.hot)
	if want := 10_000_000 - int64(proto.Size(tx)+64)*1000; trx != want {
		t.Fatalf("TRX %d, want %d", trx, want)
	}
	// An account that does not exist cannot trigger.
	key, _ := crypto.GenerateKey()
	ghost := address.PubkeyToAddress(key.PublicKey).String()
	ext, err := e.sdk.TriggerContractWithData(ghost, e.tok, transferData(t, newAddr(), big.NewInt(1)), 1_000_000, 0, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := signer.NewPrivateKeySigner(key)
	signed, _ := s.Sign(ext.Transaction)
	if ret := e.broadcast(t, signed); ret.Code != api.Return_CONTRACT_VALIDATE_ERROR || !strings.Contains(string(ret.Message), "no OwnerAccount") {
		t.Fatalf("got %s %s", ret.Code, ret.Message)
	}
}

func TestEnergyAndReceipts(t *testing.T) {
	e := start(t, tronsim.Config{})
	units := func(n int64) *big.Int { return tronsim.TokenUnits(big.NewInt(n), 18) }
	to := newAddr()
	run := func(amount *big.Int, edit func(*core.TransactionRaw)) *core.TransactionInfo {
		t.Helper()
		tx, id := e.build(t, e.key, to, amount, edit)
		if ret := e.broadcast(t, tx); ret.Code != api.Return_SUCCESS {
			t.Fatalf("broadcast %s %s", ret.Code, ret.Message)
		}
		e.node.ProduceBlock()
		info, err := e.sdk.Client.GetTransactionInfoById(context.Background(), &api.BytesMessage{Value: id})
		if err != nil || string(info.Id) != string(id) {
			t.Fatalf("info %v %v", info, err)
		}
		return info
	}
	// First transfer to a new holder: 130k energy from stake.
	info := run(units(10), nil)
	if info.Receipt.Result != core.Transaction_Result_SUCCESS || info.Receipt.EnergyUsageTotal != 130_000 ||
		info.Receipt.EnergyUsage != 130_000 || info.Receipt.EnergyFee != 0 || len(info.Log) != 1 {
		t.Fatalf("first transfer %v", info)
	}
	// Second: 65k.
	info = run(units(1), nil)
	if info.Receipt.EnergyUsageTotal != 65_000 {
		t.Fatalf("second transfer %v", info.Receipt)
	}
	if b, _ := e.node.TokenBalance(to); b.Cmp(units(11)) != 0 {
		t.Fatalf("recipient %v", b)
	}
	// No stake: TRX burnt at 210 sun per energy.
	if err := e.node.SetEnergy(e.hot, 0); err != nil {
		t.Fatal(err)
	}
	before, _ := e.node.TRXBalance(e.hot)
	info = run(units(1), nil)
	after, _ := e.node.TRXBalance(e.hot)
	if info.Receipt.EnergyFee != 65_000*210 || before-after != info.Fee || info.Receipt.Result != core.Transaction_Result_SUCCESS {
		t.Fatalf("burn %v, TRX %d -> %d", info.Receipt, before, after)
	}
	// A fee limit below the cost: OUT_OF_ENERGY, burning the whole limit.
	info = run(units(1), func(r *core.TransactionRaw) { r.FeeLimit = 1_000_000 })
	if info.Receipt.Result != core.Transaction_Result_OUT_OF_ENERGY || info.Result != core.TransactionInfo_FAILED ||
		info.Receipt.EnergyFee != 1_000_000/210*210 {
		t.Fatalf("out of energy %v", info)
	}
	// fee_limit 0 (TriggerContract leaves it unset, as java-tron's gRPC
	// does): no energy may be spent, even staked.
	if err := e.node.SetEnergy(e.hot, 10_000_000); err != nil {
		t.Fatal(err)
	}
	info = run(units(1), func(r *core.TransactionRaw) { r.FeeLimit = 0 })
	if info.Receipt.Result != core.Transaction_Result_OUT_OF_ENERGY || info.Receipt.EnergyUsageTotal != 0 {
		t.Fatalf("fee_limit 0: %v", info.Receipt)
	}
	// More than the balance: REVERT, balances unchanged.
	info = run(units(1_000_000), nil)
	if info.Receipt.Result != core.Transaction_Result_REVERT || info.Result != core.TransactionInfo_FAILED {
		t.Fatalf("revert %v", info)
	}
	if b, _ := e.node.TokenBalance(to); b.Cmp(units(12)) != 0 {
		t.Fatalf("recipient after failures %v", b)
	}
	// The stored transaction carries its result.
	tx, _ := e.build(t, e.key, to, units(1), nil)
	e.broadcast(t, tx)
	e.node.ProduceBlock()
	b, _ := proto.Marshal(tx.RawData)
	id := sha256.Sum256(b)
	got, err := e.sdk.Client.GetTransactionById(context.Background(), &api.BytesMessage{Value: id[:]})
	if err != nil || len(got.Ret) != 1 || got.Ret[0].ContractRet != core.Transaction_Result_SUCCESS {
		t.Fatalf("stored tx %v %v", got, err)
	}
}

func TestSolidityView(t *testing.T) {
	e := start(t, tronsim.Config{SolidityLag: 3})
	tx, id := e.build(t, e.key, newAddr(), big.NewInt(1), nil)
	e.broadcast(t, tx)
	ctx := context.Background()
	msg := &api.BytesMessage{Value: id}
	// Pending pool before the block.
	p, err := e.sdk.Client.GetTransactionFromPending(ctx, msg)
	if err != nil || proto.Size(p) == 0 {
		t.Fatalf("pending %v %v", p, err)
	}
	if got, _ := e.sdk.Client.GetTransactionById(ctx, msg); proto.Size(got) != 0 {
		t.Fatal("full node returns a transaction not yet in a block")
	}
	e.node.ProduceBlock()
	if got, _ := e.sdk.Client.GetTransactionInfoById(ctx, msg); string(got.Id) != string(id) {
		t.Fatal("full node: no info after the block")
	}
	for i := 0; i < 3; i++ {
		if got, _ := e.sol.GetTransactionInfoById(ctx, msg); len(got.Id) != 0 {
			t.Fatalf("solidity shows it %d blocks after", i)
		}
		if got, _ := e.sol.GetTransactionById(ctx, msg); proto.Size(got) != 0 {
			t.Fatalf("solidity returns the tx %d blocks after", i)
		}
		e.node.ProduceBlock()
	}
	if got, _ := e.sol.GetTransactionInfoById(ctx, msg); string(got.Id) != string(id) {
		t.Fatal("solidity: no info after the lag")
	}
	sb, err := e.sol.GetNowBlock2(ctx, &api.EmptyMessage{})
	if err != nil || sb.BlockHeader.RawData.Number != e.node.Head()-3 {
		t.Fatalf("solid block %v %v (head %d)", sb, err, e.node.Head())
	}
	e.node.SetSolidityLag(0)
	if sb, _ := e.sol.GetNowBlock2(ctx, &api.EmptyMessage{}); sb.BlockHeader.RawData.Number != e.node.Head() {
		t.Fatal("SetSolidityLag(0) not applied")
	}
	list, err := e.sol.GetTransactionInfoByBlockNum(ctx, &api.NumberMessage{Num: e.node.Head() - 3})
	if err != nil || len(list.TransactionInfo) != 1 {
		t.Fatalf("infos by block %v %v", list, err)
	}
}

func TestFaultsCountAndClear(t *testing.T) {
	e := start(t, tronsim.Config{})
	e.node.Unavailable(2)
	for i := 0; i < 2; i++ {
		if _, err := e.sdk.GetNowBlock(); status.Code(unwrap(err)) != codes.Unavailable {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if _, err := e.sdk.GetNowBlock(); err != nil {
		t.Fatalf("after 2 calls: %v", err)
	}
	e.node.RejectBroadcast(api.Return_SERVER_BUSY, 0)
	tx, _ := e.build(t, e.key, newAddr(), big.NewInt(1), nil)
	for i := 0; i < 3; i++ {
		if ret := e.broadcast(t, tx); ret.Code != api.Return_SERVER_BUSY {
			t.Fatalf("until cleared: %s", ret.Code)
		}
	}
	e.node.Clear(tronsim.FaultReject)
	if ret := e.broadcast(t, tx); ret.Code != api.Return_SUCCESS {
		t.Fatalf("cleared: %s", ret.Code)
	}
	// Delay: included 3 blocks late.
	e.node.DelayBroadcast(3, 1)
	tx, id := e.build(t, e.key, newAddr(), big.NewInt(1), nil)
	e.broadcast(t, tx)
	for i := 0; i < 3; i++ {
		e.node.ProduceBlock()
		if _, _, ok := e.node.Transaction(hexOf(id)); ok {
			t.Fatalf("included after %d blocks", i+1)
		}
	}
	e.node.ProduceBlock()
	if _, _, ok := e.node.Transaction(hexOf(id)); !ok {
		t.Fatal("not included after the delay")
	}
	// Tamper changes the recipient in what TriggerContract builds.
	e.node.Inject(tronsim.Fault{Kind: tronsim.FaultTamper, Times: 1})
	to := newAddr()
	data := transferData(t, to, big.NewInt(1))
	ext, err := e.sdk.TriggerContractWithData(e.hot, e.tok, data, 1_000_000, 0, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ct core.TriggerSmartContract
	_ = ext.Transaction.RawData.Contract[0].Parameter.UnmarshalTo(&ct)
	if string(ct.Data) == string(data) {
		t.Fatal("tamper fault did not change the data")
	}
}

func TestExpiredPendingDropped(t *testing.T) {
	e := start(t, tronsim.Config{})
	e.node.DelayBroadcast(5, 1)
	tx, id := e.build(t, e.key, newAddr(), big.NewInt(1), nil)
	e.broadcast(t, tx)
	e.node.AdvanceTime(2 * time.Minute)
	for i := 0; i < 6; i++ {
		e.node.ProduceBlock()
	}
	if _, _, ok := e.node.Transaction(hexOf(id)); ok || e.node.PendingCount() != 0 {
		t.Fatal("an expired transaction was included or kept")
	}
}

func TestSeparateSolidityPortAndDev(t *testing.T) {
	node, tok, key, err := tronsim.NewDev("127.0.0.1:0", tronsim.Config{BlockPeriod: 20 * time.Millisecond, SolidityAddr: "127.0.0.1:0", SolidityLag: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Stop()
	if node.Addr() == node.SolidityAddr() || tok != tronsim.DefaultTokenAddress {
		t.Fatalf("addr %s solidity %s token %s", node.Addr(), node.SolidityAddr(), tok)
	}
	hot := address.PubkeyToAddress(key.PublicKey).String()
	if b, _ := node.TokenBalance(hot); b.Cmp(tronsim.TokenUnits(big.NewInt(tronsim.DevTokens), 18)) != 0 {
		t.Fatalf("dev balance %v", b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := node.WaitBlocks(ctx, 3); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(node.SolidityAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b, err := api.NewWalletSolidityClient(conn).GetNowBlock2(ctx, &api.EmptyMessage{})
	if err != nil || b.BlockHeader == nil {
		t.Fatalf("solidity port: %v %v", b, err)
	}
	// The full node's port does not serve WalletSolidity in this mode.
	full, _ := grpc.NewClient(node.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer full.Close()
	if _, err := api.NewWalletSolidityClient(full).GetNowBlock2(ctx, &api.EmptyMessage{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("solidity on the full port: %v", err)
	}
}

func TestParseFund(t *testing.T) {
	addr := newAddr()
	cases := []struct {
		in   string
		want string
		err  bool
	}{
		{addr + "=1000", "1000000000000000000000", false},
		{addr + "=0.5", "500000000000000000", false},
		{addr + "=.000000000000000001", "1", false},
		{addr + "=1.0000000000000000001", "", true},
		{addr + "=-1", "", true},
		{addr + "=1e3", "", true},
		{addr + "=", "", true},
		{addr, "", true},
		{"TNotAnAddress=1", "", true},
	}
	for _, tc := range cases {
		a, units, err := tronsim.ParseFund(tc.in, 18)
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if err == nil && (a != addr || units.String() != tc.want) {
			t.Errorf("%q: got %s %s", tc.in, a, units)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := tronsim.New(tronsim.Config{Token: tronsim.TokenConfig{Address: "nope"}}); err == nil {
		t.Fatal("bad token address accepted")
	}
	if _, err := tronsim.New(tronsim.Config{SolidityLag: -1}); err == nil {
		t.Fatal("negative lag accepted")
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// unwrap digs the gRPC status out of the SDK's wrapped error.
func unwrap(err error) error {
	for err != nil {
		if _, ok := status.FromError(err); ok {
			return err
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
	return nil
}
