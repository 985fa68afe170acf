package tronsim

import (
	"bytes"
	"fmt"
	"math"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/fbsobreira/gotron-sdk/pkg/address"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/api"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/core"
	"google.golang.org/protobuf/proto"
)

// rejection is a broadcast refused with a java-tron response code.
type rejection struct {
	code api.ReturnResponseCode
	msg  string
}

func reject(code api.ReturnResponseCode, format string, args ...any) *rejection {
	return &rejection{code: code, msg: fmt.Sprintf(format, args...)}
}

// admitted is a validated transaction and what its bandwidth costs.
type admitted struct {
	id       []byte
	ct       *core.TriggerSmartContract
	owner    addrKey
	netBytes int64 // bandwidth used
	netFree  bool  // from free bandwidth; else burnt at netFeePerByte
}

// validate runs java-tron's broadcast checks in its order (after the
// duplicate check): size, TAPOS, expiration, contract shape, signature,
// contract validation, bandwidth. mu must be held.
func (n *Node) validate(tx *core.Transaction) (*admitted, *rejection) {
	raw := tx.GetRawData()
	if raw == nil {
		return nil, reject(api.Return_OTHER_ERROR, "transaction has no raw_data")
	}
	if proto.Size(tx) > maxTxSize {
		return nil, reject(api.Return_TOO_BIG_TRANSACTION_ERROR, "too big transaction, the size is %d bytes", proto.Size(tx))
	}
	if len(raw.RefBlockBytes) != 2 || len(raw.RefBlockHash) != 8 {
		return nil, reject(api.Return_TAPOS_ERROR, "Tapos check error: ref_block_bytes/ref_block_hash missing")
	}
	ref := uint16(raw.RefBlockBytes[0])<<8 | uint16(raw.RefBlockBytes[1])
	if h, ok := n.recent[ref]; !ok {
		return nil, reject(api.Return_TAPOS_ERROR, "Tapos check error: no block with ref bytes %x", raw.RefBlockBytes)
	} else if !bytes.Equal(h, raw.RefBlockHash) {
		return nil, reject(api.Return_TAPOS_ERROR, "Tapos check error: ref block hash %x != %x", raw.RefBlockHash, h)
	}
	headTS := n.head().header.RawData.Timestamp
	if raw.Expiration <= headTS {
		return nil, reject(api.Return_TRANSACTION_EXPIRATION_ERROR,
			"Transaction expiration, transaction expiration time is %d, but headBlockTime is %d", raw.Expiration, headTS)
	}
	if raw.Expiration > headTS+MaxExpiration.Milliseconds() {
		return nil, reject(api.Return_TRANSACTION_EXPIRATION_ERROR,
			"Transaction expiration time is %d, more than 24h after headBlockTime %d", raw.Expiration, headTS)
	}
	if len(raw.Contract) != 1 {
		return nil, reject(api.Return_CONTRACT_VALIDATE_ERROR, "transaction must carry exactly one contract, has %d", len(raw.Contract))
	}
	c := raw.Contract[0]
	if c.Type != core.Transaction_Contract_TriggerSmartContract || c.Parameter == nil {
		return nil, reject(api.Return_CONTRACT_VALIDATE_ERROR, "tronsim only executes TriggerSmartContract, got %s", c.Type)
	}
	ct := new(core.TriggerSmartContract)
	if err := c.Parameter.UnmarshalTo(ct); err != nil {
		return nil, reject(api.Return_CONTRACT_VALIDATE_ERROR, "bad TriggerSmartContract parameter: %v", err)
	}
	owner, ok := keyOf(ct.OwnerAddress)
	if !ok {
		return nil, reject(api.Return_CONTRACT_VALIDATE_ERROR, "Invalid ownerAddress")
	}
	id := txID(raw)
	if len(tx.Signature) == 0 {
		return nil, reject(api.Return_SIGERROR, "Validate signature error: miss sig or contract")
	}
	if len(tx.Signature) > 1 {
		return nil, reject(api.Return_SIGERROR, "Validate signature error: %d signatures for a threshold-1 owner permission", len(tx.Signature))
	}
	signer, err := recoverSigner(id, tx.Signature[0])
	if err != nil {
		return nil, reject(api.Return_SIGERROR, "Validate signature error: %v", err)
	}
	if !bytes.Equal(signer, owner[:]) {
		return nil, reject(api.Return_SIGERROR, "Validate signature error: %s is signed by %s but it is not contained of permission",
			address.Address(owner[:]).String(), address.Address(signer).String())
	}
	if n.tokenAt(ct.ContractAddress) == nil {
		return nil, reject(api.Return_CONTRACT_VALIDATE_ERROR, "No contract or not a smart contract")
	}
	if raw.FeeLimit < 0 || raw.FeeLimit > MaxFeeLimit {
		return nil, reject(api.Return_CONTRACT_VALIDATE_ERROR, "feeLimit must be >= 0 and <= %d", MaxFeeLimit)
	}
	if ct.CallValue != 0 || ct.CallTokenValue != 0 {
		return nil, reject(api.Return_CONTRACT_VALIDATE_ERROR, "tronsim: the token's functions are not payable")
	}
	a := n.accounts[owner]
	if a == nil {
		return nil, reject(api.Return_CONTRACT_VALIDATE_ERROR, "Validate TriggerSmartContract error, no OwnerAccount.")
	}
	ad := &admitted{id: id, ct: ct, owner: owner, netBytes: int64(proto.Size(tx)) + resultSizeInTx}
	used := recovered(a.netUsed, a.netTime, n.nowMS())
	switch {
	case used+ad.netBytes <= n.cfg.FreeNetLimit:
		ad.netFree = true
	case a.balance >= ad.netBytes*netFeePerByte:
	default:
		return nil, reject(api.Return_BANDWITH_ERROR,
			"account resource insufficient error: need %d bytes of bandwidth or %d sun, free bandwidth left %d, balance %d",
			ad.netBytes, ad.netBytes*netFeePerByte, max(n.cfg.FreeNetLimit-used, 0), a.balance)
	}
	return ad, nil
}

// chargeNet takes an admitted transaction's bandwidth; mu must be held.
func (n *Node) chargeNet(ad *admitted) (usage, fee int64) {
	a := n.accounts[ad.owner]
	now := n.nowMS()
	if ad.netFree {
		a.netUsed = recovered(a.netUsed, a.netTime, now) + ad.netBytes
		a.netTime = now
		return ad.netBytes, 0
	}
	fee = ad.netBytes * netFeePerByte
	a.balance -= fee
	return 0, fee
}

// recoverSigner returns the 21-byte TRON address that made sig over the
// transaction id (sha256 of raw_data).
func recoverSigner(id, sig []byte) ([]byte, error) {
	if len(sig) != 65 {
		return nil, fmt.Errorf("signature is %d bytes, want 65", len(sig))
	}
	s := append([]byte(nil), sig...)
	if s[64] >= 27 {
		s[64] -= 27
	}
	pub, err := crypto.SigToPub(id, s)
	if err != nil {
		return nil, err
	}
	return address.PubkeyToAddress(*pub), nil
}

// execute runs a due transaction in block num at time ts and returns the
// stored transaction (with its result) and its info. mu must be held.
func (n *Node) execute(p *pendingTx, num, ts int64) (*core.Transaction, *core.TransactionInfo) {
	tx := proto.Clone(p.tx).(*core.Transaction)
	ct := new(core.TriggerSmartContract)
	_ = tx.RawData.Contract[0].Parameter.UnmarshalTo(ct) // validated on broadcast
	tok := n.tokenAt(ct.ContractAddress)                 // validated; contracts are never removed
	info := &core.TransactionInfo{
		Id:              p.id,
		BlockNumber:     num,
		BlockTimeStamp:  ts,
		ContractAddress: append([]byte(nil), tok.addr...),
		Receipt:         &core.ResourceReceipt{NetUsage: p.netUsage, NetFee: p.netFee},
	}
	owner, _ := keyOf(ct.OwnerAddress)
	a := n.acct(owner, true)

	c := tok.run(ct.OwnerAddress, ct.Data, n.cfg.TransferEnergy, n.cfg.NewHolderEnergy)
	if f := n.take(FaultRevert); f != nil {
		c = revertCall("tronsim: injected revert")
	}
	forceOOE := n.take(FaultOutOfEnergy) != nil

	price := n.cfg.EnergyPrice
	avail := max(a.energyLimit-recovered(a.energyUsed, a.energyTime, ts), 0)
	capEnergy := int64(math.MaxInt64 / 4)
	if price > 0 {
		capEnergy = min(avail+a.balance/price, tx.RawData.FeeLimit/price)
	}
	used := c.energy
	oom := forceOOE || c.energy > capEnergy
	if oom {
		used = capEnergy
	}
	fromStake := min(avail, used)
	burnt := (used - fromStake) * price
	a.energyUsed = recovered(a.energyUsed, a.energyTime, ts) + fromStake
	a.energyTime = ts
	a.balance -= burnt

	r := info.Receipt
	r.EnergyUsage, r.EnergyFee, r.EnergyUsageTotal = fromStake, burnt, used
	info.Fee = burnt + p.netFee
	switch {
	case oom:
		r.Result = core.Transaction_Result_OUT_OF_ENERGY
		info.Result = core.TransactionInfo_FAILED
		info.ResMessage = fmt.Appendf(nil,
			"Not enough energy for 'SSTORE' operation executing: curInvokeEnergyLimit[%d], curOpEnergy[%d], usedEnergy[%d]",
			capEnergy, c.energy, used)
		info.ContractResult = [][]byte{{}}
	case c.revert:
		r.Result = core.Transaction_Result_REVERT
		info.Result = core.TransactionInfo_FAILED
		info.ResMessage = []byte("REVERT opcode executed")
		info.ContractResult = [][]byte{c.ret}
	default:
		r.Result = core.Transaction_Result_SUCCESS
		info.ContractResult = [][]byte{c.ret}
		if c.transfer {
			tok.apply(c)
			info.Log = []*core.TransactionInfo_Log{tok.transferLog(c)}
		}
	}
	tx.Ret = []*core.Transaction_Result{{Fee: info.Fee, ContractRet: r.Result}}
	return tx, info
}
