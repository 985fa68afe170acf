package chain

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/fbsobreira/gotron-sdk/pkg/address"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/api"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/core"
	"google.golang.org/grpc"

	"github.com/seedpay/seedpay/rewards"
)

var _ rewards.TransferSource = (*Client)(nil)

// MaxTransferRange is the most blocks one TokenTransfers call reads (one
// GetTransactionInfoByBlockNum call each).
const MaxTransferRange = 100

// ErrBadBlockRange: a TokenTransfers range that can never be read (negative,
// reversed, or longer than MaxTransferRange). A caller bug, not a chain
// error.
var ErrBadBlockRange = errors.New("chain: bad block range")

// transferTopic is keccak256("Transfer(address,address,uint256)"), the
// TRC-20 Transfer event's topic 0.
var transferTopic = []byte{
	0xdd, 0xf2, 0x52, 0xad, 0x1b, 0xe2, 0xc8, 0x9b, 0x69, 0xc2, 0xb0, 0x68, 0xfc, 0x37, 0x8d, 0xaa,
	0x95, 0x2b, 0xa7, 0xf1, 0x63, 0xc4, 0xa1, 0x16, 0x28, 0xf5, 0x5a, 0x4d, 0xf5, 0x23, 0xb3, 0xef,
}

// maxScanMsg bounds one block's answer (transaction infos or the block
// itself); gRPC's default of 4 MB is too small for a busy mainnet block.
const maxScanMsg = 64 << 20

// blockReader is what a block scan calls; api.WalletClient (full node) and
// api.WalletSolidityClient (solidity node) both have it.
type blockReader interface {
	GetNowBlock2(ctx context.Context, in *api.EmptyMessage, opts ...grpc.CallOption) (*api.BlockExtention, error)
	GetBlockByNum2(ctx context.Context, in *api.NumberMessage, opts ...grpc.CallOption) (*api.BlockExtention, error)
	GetTransactionInfoByBlockNum(ctx context.Context, in *api.NumberMessage, opts ...grpc.CallOption) (*api.TransactionInfoList, error)
}

// transferReader reads the token's Transfer events from one node service.
type transferReader struct {
	c    *Client
	r    blockReader
	node string // "full node" or "solidity node", for errors
}

var _ rewards.TransferSource = transferReader{}

func (c *Client) fullReader() transferReader {
	return transferReader{c: c, r: c.full.Client, node: "full node"}
}

// SolidifiedTransfers is a TransferSource reading the solidity node: its
// HeadBlock is the latest solidified block, so everything it lists is final
// (about a minute behind the head on mainnet). The Client itself reads the
// full node, where the caller's own confirmation count is all that guards
// against a fork.
func (c *Client) SolidifiedTransfers() rewards.TransferSource {
	return transferReader{c: c, r: c.sol, node: "solidity node"}
}

// HeadBlock is the full node's newest block number. Failures wrap
// rewards.ErrChainUnavailable.
func (c *Client) HeadBlock(ctx context.Context) (int64, error) {
	return c.fullReader().HeadBlock(ctx)
}

// TokenTransfers lists the configured token's Transfer events in blocks
// from..to (inclusive, at most MaxTransferRange blocks, none past the full
// node's head) from transactions whose receipt is SUCCESS, in block,
// transaction and log order. A bad range wraps ErrBadBlockRange; a node that
// cannot answer, or answers a block it does not fully have, wraps
// rewards.ErrChainUnavailable; a Transfer log of the token that does not
// decode (malformed topics or data) wraps ErrNodeMisbehaved. Nothing is
// skipped silently: on any error no transfers are returned.
func (c *Client) TokenTransfers(ctx context.Context, from, to int64) ([]rewards.TokenTransfer, error) {
	return c.fullReader().TokenTransfers(ctx, from, to)
}

func (t transferReader) HeadBlock(ctx context.Context) (int64, error) {
	cctx, cancel := t.c.callCtx(ctx)
	defer cancel()
	b, err := t.r.GetNowBlock2(cctx, &api.EmptyMessage{})
	if err != nil {
		return 0, fmt.Errorf("%s head block: %w", t.node, rpcError(err))
	}
	raw := b.GetBlockHeader().GetRawData()
	if raw == nil || raw.Number < 0 {
		return 0, fmt.Errorf("%w: %s answered no head block", rewards.ErrChainUnavailable, t.node)
	}
	return raw.Number, nil
}

func (t transferReader) TokenTransfers(ctx context.Context, from, to int64) ([]rewards.TokenTransfer, error) {
	switch {
	case from < 0 || to < from:
		return nil, fmt.Errorf("%w: %d..%d", ErrBadBlockRange, from, to)
	case to-from >= MaxTransferRange:
		return nil, fmt.Errorf("%w: %d..%d is %d blocks, at most %d per call", ErrBadBlockRange, from, to, to-from+1, MaxTransferRange)
	}
	// A node answers an empty list for a block it does not have yet:
	// never read past its head.
	head, err := t.HeadBlock(ctx)
	if err != nil {
		return nil, err
	}
	if to > head {
		return nil, fmt.Errorf("%w: block %d is past the %s's head %d", rewards.ErrChainUnavailable, to, t.node, head)
	}
	var out []rewards.TokenTransfer
	for num := from; num <= to; num++ {
		infos, err := t.blockInfos(ctx, num)
		if err != nil {
			return nil, err
		}
		got, err := blockTransfers(num, infos, t.c.token)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// blockInfos is block num's transaction infos. An empty answer is checked
// against the block itself: a node that lacks the block or does not keep
// transaction infos answers an empty list too, and taking that for "no
// transfers" would lose deposits for good.
func (t transferReader) blockInfos(ctx context.Context, num int64) ([]*core.TransactionInfo, error) {
	cctx, cancel := t.c.callCtx(ctx)
	defer cancel()
	list, err := t.r.GetTransactionInfoByBlockNum(cctx, &api.NumberMessage{Num: num}, grpc.MaxCallRecvMsgSize(maxScanMsg))
	if err != nil {
		return nil, fmt.Errorf("%s block %d transaction infos: %w", t.node, num, rpcError(err))
	}
	if infos := list.GetTransactionInfo(); len(infos) > 0 {
		return infos, nil
	}
	b, err := t.r.GetBlockByNum2(cctx, &api.NumberMessage{Num: num}, grpc.MaxCallRecvMsgSize(maxScanMsg))
	if err != nil {
		return nil, fmt.Errorf("%s block %d: %w", t.node, num, rpcError(err))
	}
	if raw := b.GetBlockHeader().GetRawData(); raw == nil || raw.Number != num {
		return nil, fmt.Errorf("%w: the %s does not have block %d", rewards.ErrChainUnavailable, t.node, num)
	}
	if n := len(b.GetTransactions()); n > 0 {
		return nil, fmt.Errorf("%w: block %d holds %d transactions but the %s answered no transaction infos for it",
			rewards.ErrChainUnavailable, num, n, t.node)
	}
	return nil, nil
}

// blockTransfers picks token's Transfer events out of block num's
// transaction infos: only from infos whose result and receipt are SUCCESS,
// only logs the token contract emitted with Transfer's signature and three
// topics. LogIndex is the log's position in its transaction's info.
func blockTransfers(num int64, infos []*core.TransactionInfo, token address.Address) ([]rewards.TokenTransfer, error) {
	var out []rewards.TokenTransfer
	for i, info := range infos {
		if info == nil || len(info.Id) != 32 {
			return nil, fmt.Errorf("%w: block %d: transaction info %d has no 32-byte id", ErrNodeMisbehaved, num, i)
		}
		txid := hex.EncodeToString(info.Id)
		if info.BlockNumber != num {
			return nil, fmt.Errorf("%w: block %d: transaction %s says it is in block %d", ErrNodeMisbehaved, num, txid, info.BlockNumber)
		}
		if info.Result != core.TransactionInfo_SUCESS || info.GetReceipt().GetResult() != core.Transaction_Result_SUCCESS {
			continue // failed: its logs (a node should record none) do not count
		}
		for j, lg := range info.Log {
			from, to, amount, ok, err := decodeTransferLog(lg, token)
			if err != nil {
				return nil, fmt.Errorf("%w: block %d: transaction %s log %d: %v", ErrNodeMisbehaved, num, txid, j, err)
			}
			if !ok {
				continue
			}
			out = append(out, rewards.TokenTransfer{
				TxID: txid, LogIndex: j, Block: num,
				From: from.String(), To: to.String(), Amount: amount,
			})
		}
	}
	return out, nil
}

// decodeTransferLog reads a TRC-20 Transfer event. ok is false for a log that
// is not one of token's Transfer events (another contract, another event,
// or not three topics); err is set for one that is but does not decode: an
// address topic that is not 12 zero bytes and 20 address bytes, or data
// that is not one 32-byte word.
func decodeTransferLog(lg *core.TransactionInfo_Log, token address.Address) (from, to address.Address, amount *big.Int, ok bool, err error) {
	if lg == nil || !logFrom(lg.Address, token) {
		return nil, nil, nil, false, nil
	}
	if len(lg.Topics) != 3 || !bytes.Equal(lg.Topics[0], transferTopic) {
		return nil, nil, nil, false, nil
	}
	if from, err = topicAddress(lg.Topics[1]); err != nil {
		return nil, nil, nil, false, fmt.Errorf("from: %w", err)
	}
	if to, err = topicAddress(lg.Topics[2]); err != nil {
		return nil, nil, nil, false, fmt.Errorf("to: %w", err)
	}
	if len(lg.Data) != 32 {
		return nil, nil, nil, false, fmt.Errorf("amount: data is %d bytes, want one 32-byte word", len(lg.Data))
	}
	return from, to, new(big.Int).SetBytes(lg.Data), true, nil
}

// logFrom: java-tron records a log's contract as the 20-byte address without
// the 0x41 prefix; the 21-byte form is accepted too.
func logFrom(a []byte, token address.Address) bool {
	switch len(a) {
	case address.AddressLength - 1:
		return bytes.Equal(a, token[1:])
	case address.AddressLength:
		return bytes.Equal(a, token)
	}
	return false
}

// topicAddress decodes an indexed address: 12 zero bytes, 20 address bytes.
func topicAddress(w []byte) (address.Address, error) {
	if len(w) != 32 {
		return nil, fmt.Errorf("topic is %d bytes, want 32", len(w))
	}
	for _, b := range w[:12] {
		if b != 0 {
			return nil, fmt.Errorf("topic %x is not an address", w)
		}
	}
	a := make(address.Address, address.AddressLength)
	a[0] = address.TronBytePrefix
	copy(a[1:], w[12:])
	return a, nil
}

// Send signs a transfer of amount to `to` with the client's key and
// broadcasts it, returning the txid: a deposit from an external wallet in
// tests and the dev default. Payouts never use it: they store the signed
// bytes (SignTransfer) before Broadcast.
func (c *Client) Send(ctx context.Context, to string, amount *big.Int) (txid string, err error) {
	stx, err := c.SignTransfer(ctx, to, amount)
	if err != nil {
		return "", err
	}
	if err := c.Broadcast(ctx, stx.Raw); err != nil {
		return stx.TxID, err
	}
	return stx.TxID, nil
}
