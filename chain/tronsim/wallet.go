package tronsim

import (
	"bytes"
	"context"
	"fmt"

	"github.com/fbsobreira/gotron-sdk/pkg/proto/api"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/core"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// walletServer is the full node's Wallet service. Every response carries a
// non-nil Result where the message has one, as java-tron does.
type walletServer struct {
	api.UnimplementedWalletServer
	n *Node
}

// solidityServer is the WalletSolidity service: the view as of the latest
// solidified block.
type solidityServer struct {
	api.UnimplementedWalletSolidityServer
	n *Node
}

func ok() *api.Return { return &api.Return{Result: true, Code: api.Return_SUCCESS} }

func failed(code api.ReturnResponseCode, msg string) *api.Return {
	return &api.Return{Result: false, Code: code, Message: []byte(msg)}
}

// ---- accounts ----

func (w *walletServer) GetAccount(_ context.Context, in *core.Account) (*core.Account, error) {
	return w.n.getAccount(in), nil
}

func (s *solidityServer) GetAccount(_ context.Context, in *core.Account) (*core.Account, error) {
	// The sim keeps no historical state: the solidity view of an account is
	// the head state.
	return s.n.getAccount(in), nil
}

func (n *Node) getAccount(in *core.Account) *core.Account {
	n.mu.Lock()
	defer n.mu.Unlock()
	k, valid := keyOf(in.GetAddress())
	if !valid {
		return &core.Account{}
	}
	a := n.accounts[k]
	if a == nil {
		return &core.Account{} // java-tron answers an empty account
	}
	now := n.nowMS()
	return &core.Account{
		Address:    append([]byte(nil), k[:]...),
		Balance:    a.balance,
		CreateTime: a.createTime,
		NetUsage:   recovered(a.netUsed, a.netTime, now),
		AccountResource: &core.Account_AccountResource{
			EnergyUsage:                recovered(a.energyUsed, a.energyTime, now),
			LatestConsumeTimeForEnergy: a.energyTime,
		},
	}
}

func (w *walletServer) GetAccountResource(_ context.Context, in *core.Account) (*api.AccountResourceMessage, error) {
	n := w.n
	n.mu.Lock()
	defer n.mu.Unlock()
	m := &api.AccountResourceMessage{
		FreeNetLimit:      n.cfg.FreeNetLimit,
		TotalEnergyLimit:  180_000_000_000,
		TotalEnergyWeight: 19_000_000_000,
		TotalNetLimit:     43_200_000_000,
		TotalNetWeight:    26_000_000_000,
	}
	k, valid := keyOf(in.GetAddress())
	if !valid {
		return m, nil
	}
	if a := n.accounts[k]; a != nil {
		now := n.nowMS()
		m.FreeNetUsed = recovered(a.netUsed, a.netTime, now)
		m.EnergyLimit = a.energyLimit
		m.EnergyUsed = recovered(a.energyUsed, a.energyTime, now)
	}
	return m, nil
}

// ---- contracts ----

// checkCall validates a TriggerSmartContract for building or simulating;
// mu must be held.
func (n *Node) checkCall(in *core.TriggerSmartContract) *api.Return {
	if _, valid := keyOf(in.GetOwnerAddress()); !valid {
		return failed(api.Return_CONTRACT_VALIDATE_ERROR, "Invalid ownerAddress")
	}
	if n.tokenAt(in.GetContractAddress()) == nil {
		return failed(api.Return_CONTRACT_VALIDATE_ERROR, "No contract or not a smart contract")
	}
	if in.CallValue != 0 || in.CallTokenValue != 0 {
		return failed(api.Return_CONTRACT_VALIDATE_ERROR, "tronsim: the token's functions are not payable")
	}
	return nil
}

// buildTx wraps a contract call into an unsigned transaction referencing the
// head block, as java-tron's createTransactionCapsule; mu must be held.
func (n *Node) buildTx(in *core.TriggerSmartContract) (*core.Transaction, []byte, error) {
	param, err := anypb.New(in)
	if err != nil {
		return nil, nil, err
	}
	head := n.head()
	raw := &core.TransactionRaw{
		RefBlockBytes: append([]byte(nil), head.id[6:8]...),
		RefBlockHash:  append([]byte(nil), head.id[8:16]...),
		Expiration:    head.header.RawData.Timestamp + n.cfg.DefaultExpiration.Milliseconds(),
		Timestamp:     n.nowMS(),
		Contract: []*core.Transaction_Contract{{
			Type:      core.Transaction_Contract_TriggerSmartContract,
			Parameter: param,
		}},
	}
	return &core.Transaction{RawData: raw}, txID(raw), nil
}

func (w *walletServer) TriggerContract(_ context.Context, in *core.TriggerSmartContract) (*api.TransactionExtention, error) {
	n := w.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if r := n.checkCall(in); r != nil {
		return &api.TransactionExtention{Result: r}, nil
	}
	ct := proto.Clone(in).(*core.TriggerSmartContract)
	if f := n.take(FaultTamper); f != nil && len(ct.Data) >= 36 {
		ct.Data[35] ^= 0xff // another recipient
		n.log.Warn("tronsim: tampering with a TriggerContract answer")
	}
	tx, id, err := n.buildTx(ct)
	if err != nil {
		return &api.TransactionExtention{Result: failed(api.Return_OTHER_ERROR, err.Error())}, nil
	}
	return &api.TransactionExtention{Transaction: tx, Txid: id, Result: ok()}, nil
}

// constantCall runs a call on the head state without changing it.
func (n *Node) constantCall(in *core.TriggerSmartContract) *api.TransactionExtention {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r := n.checkCall(in); r != nil {
		return &api.TransactionExtention{Result: r}
	}
	c := n.tokenAt(in.ContractAddress).run(in.OwnerAddress, in.Data, n.cfg.TransferEnergy, n.cfg.NewHolderEnergy)
	tx, id, err := n.buildTx(proto.Clone(in).(*core.TriggerSmartContract))
	if err != nil {
		return &api.TransactionExtention{Result: failed(api.Return_OTHER_ERROR, err.Error())}
	}
	ext := &api.TransactionExtention{
		Transaction:    tx,
		Txid:           id,
		ConstantResult: [][]byte{c.ret},
		EnergyUsed:     c.energy,
		Result:         ok(),
	}
	if c.revert {
		// java-tron: result stays SUCCESS, the message and ret say REVERT.
		ext.Result.Message = []byte("REVERT opcode executed")
		tx.Ret = []*core.Transaction_Result{{Ret: core.Transaction_Result_FAILED, ContractRet: core.Transaction_Result_REVERT}}
	} else {
		tx.Ret = []*core.Transaction_Result{{Ret: core.Transaction_Result_SUCESS, ContractRet: core.Transaction_Result_SUCCESS}}
	}
	return ext
}

func (w *walletServer) TriggerConstantContract(_ context.Context, in *core.TriggerSmartContract) (*api.TransactionExtention, error) {
	return w.n.constantCall(in), nil
}

func (s *solidityServer) TriggerConstantContract(_ context.Context, in *core.TriggerSmartContract) (*api.TransactionExtention, error) {
	return s.n.constantCall(in), nil
}

func (w *walletServer) EstimateEnergy(ctx context.Context, in *core.TriggerSmartContract) (*api.EstimateEnergyMessage, error) {
	if w.n.cfg.NoEstimateEnergy {
		return w.UnimplementedWalletServer.EstimateEnergy(ctx, in)
	}
	ext := w.n.constantCall(in)
	if ext.Result.Code != api.Return_SUCCESS {
		return &api.EstimateEnergyMessage{Result: ext.Result}, nil
	}
	if r := ext.Transaction.GetRet(); len(r) > 0 && r[0].ContractRet == core.Transaction_Result_REVERT {
		return &api.EstimateEnergyMessage{Result: failed(api.Return_CONTRACT_EXE_ERROR, "REVERT opcode executed")}, nil
	}
	return &api.EstimateEnergyMessage{Result: ok(), EnergyRequired: ext.EnergyUsed}, nil
}

// ---- broadcast ----

func (w *walletServer) BroadcastTransaction(_ context.Context, tx *core.Transaction) (*api.Return, error) {
	n := w.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if f := n.take(FaultReject); f != nil {
		msg := f.Message
		if msg == "" {
			msg = "tronsim: injected " + f.Code.String()
		}
		return failed(f.Code, msg), nil
	}
	if tx.GetRawData() != nil {
		id := txID(tx.RawData)
		if n.pendingIDs[string(id)] || n.txs[string(id)] != nil {
			return failed(api.Return_DUP_TRANSACTION_ERROR, "Dup transaction."), nil
		}
	}
	ad, rej := n.validate(tx)
	if rej != nil {
		n.log.Info("tronsim: broadcast refused", zap.String("code", rej.code.String()), zap.String("message", rej.msg))
		return failed(rej.code, rej.msg), nil
	}
	txid := fmt.Sprintf("%x", ad.id)
	if n.take(FaultDrop) != nil {
		n.log.Info("tronsim: broadcast dropped (fault)", zap.String("txid", txid))
		return ok(), nil
	}
	usage, fee := n.chargeNet(ad)
	p := &pendingTx{id: ad.id, tx: proto.Clone(tx).(*core.Transaction), includeAt: n.head().num + 1, netUsage: usage, netFee: fee}
	if f := n.take(FaultDelay); f != nil {
		p.includeAt += int64(f.Blocks)
	}
	n.pending = append(n.pending, p)
	n.pendingIDs[string(ad.id)] = true
	n.log.Info("tronsim: broadcast accepted", zap.String("txid", txid), zap.Int64("include_at", p.includeAt))
	if n.take(FaultDup) != nil {
		return failed(api.Return_DUP_TRANSACTION_ERROR, "Dup transaction."), nil
	}
	return ok(), nil
}

// ---- transactions and blocks ----

// lookup finds a transaction in a block at or below maxBlock; mu must be
// held.
func (n *Node) lookup(id []byte, maxBlock int64) *txRecord {
	r := n.txs[string(id)]
	if r == nil || r.block > maxBlock {
		return nil
	}
	return r
}

func (n *Node) txByID(id []byte, solid bool) *core.Transaction {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r := n.lookup(id, n.limit(solid)); r != nil {
		return proto.Clone(r.tx).(*core.Transaction)
	}
	return &core.Transaction{}
}

func (n *Node) infoByID(id []byte, solid bool) *core.TransactionInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r := n.lookup(id, n.limit(solid)); r != nil {
		return proto.Clone(r.info).(*core.TransactionInfo)
	}
	return &core.TransactionInfo{}
}

// limit is the highest block number a view may show; mu must be held.
func (n *Node) limit(solid bool) int64 {
	if solid {
		return n.solid().num
	}
	return n.head().num
}

// blockExt is block num as a view shows it; num < 0 is the view's latest.
func (n *Node) blockExt(num int64, solid bool) *api.BlockExtention {
	n.mu.Lock()
	defer n.mu.Unlock()
	if num < 0 {
		num = n.limit(solid)
	}
	b := n.blockAt(num)
	if b == nil || num > n.limit(solid) {
		return &api.BlockExtention{}
	}
	ext := &api.BlockExtention{
		BlockHeader: proto.Clone(b.header).(*core.BlockHeader),
		Blockid:     append([]byte(nil), b.id...),
	}
	for _, id := range b.txids {
		r := n.txs[string(id)]
		ext.Transactions = append(ext.Transactions, &api.TransactionExtention{
			Transaction: proto.Clone(r.tx).(*core.Transaction),
			Txid:        append([]byte(nil), id...),
			Result:      ok(),
		})
	}
	return ext
}

func (n *Node) infosByBlock(num int64, solid bool) *api.TransactionInfoList {
	n.mu.Lock()
	defer n.mu.Unlock()
	list := &api.TransactionInfoList{}
	b := n.blockAt(num)
	if b == nil || num > n.limit(solid) {
		return list
	}
	if n.take(FaultNoInfos) != nil {
		return list
	}
	for _, id := range b.txids {
		list.TransactionInfo = append(list.TransactionInfo, proto.Clone(n.txs[string(id)].info).(*core.TransactionInfo))
	}
	return list
}

func (w *walletServer) GetTransactionById(_ context.Context, in *api.BytesMessage) (*core.Transaction, error) {
	return w.n.txByID(in.GetValue(), false), nil
}

func (w *walletServer) GetTransactionInfoById(_ context.Context, in *api.BytesMessage) (*core.TransactionInfo, error) {
	return w.n.infoByID(in.GetValue(), false), nil
}

func (w *walletServer) GetTransactionFromPending(_ context.Context, in *api.BytesMessage) (*core.Transaction, error) {
	n := w.n
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.pending {
		if bytes.Equal(p.id, in.GetValue()) {
			return proto.Clone(p.tx).(*core.Transaction), nil
		}
	}
	return &core.Transaction{}, nil
}

func (w *walletServer) GetNowBlock2(context.Context, *api.EmptyMessage) (*api.BlockExtention, error) {
	return w.n.blockExt(-1, false), nil
}

func (w *walletServer) GetBlockByNum2(_ context.Context, in *api.NumberMessage) (*api.BlockExtention, error) {
	if in.GetNum() < 0 {
		return &api.BlockExtention{}, nil
	}
	return w.n.blockExt(in.GetNum(), false), nil
}

func (w *walletServer) GetTransactionInfoByBlockNum(_ context.Context, in *api.NumberMessage) (*api.TransactionInfoList, error) {
	return w.n.infosByBlock(in.GetNum(), false), nil
}

func (s *solidityServer) GetTransactionById(_ context.Context, in *api.BytesMessage) (*core.Transaction, error) {
	return s.n.txByID(in.GetValue(), true), nil
}

func (s *solidityServer) GetTransactionInfoById(_ context.Context, in *api.BytesMessage) (*core.TransactionInfo, error) {
	return s.n.infoByID(in.GetValue(), true), nil
}

func (s *solidityServer) GetNowBlock2(context.Context, *api.EmptyMessage) (*api.BlockExtention, error) {
	return s.n.blockExt(-1, true), nil
}

func (s *solidityServer) GetBlockByNum2(_ context.Context, in *api.NumberMessage) (*api.BlockExtention, error) {
	if in.GetNum() < 0 {
		return &api.BlockExtention{}, nil
	}
	return s.n.blockExt(in.GetNum(), true), nil
}

func (s *solidityServer) GetTransactionInfoByBlockNum(_ context.Context, in *api.NumberMessage) (*api.TransactionInfoList, error) {
	return s.n.infosByBlock(in.GetNum(), true), nil
}
