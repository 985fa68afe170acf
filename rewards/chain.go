package rewards

import (
	"context"
	"errors"
	"math/big"
	"time"
)

// Chain is what the payout outbox needs from a TRON node. chain.Client
// implements it with gotron-sdk; rewards never imports chain.
type Chain interface {
	// SignTransfer builds and signs a TRC-20 transfer of amount base units
	// from the hot wallet to address, without sending it. The txid is known
	// from here on (sha256 of the raw data).
	SignTransfer(ctx context.Context, to string, amount *big.Int) (SignedTx, error)
	// Broadcast sends signed bytes. A node that already has the transaction
	// (DUP_TRANSACTION_ERROR) is success. Errors wrap ErrChainUnavailable,
	// ErrChainRejected or ErrChainResources.
	Broadcast(ctx context.Context, raw []byte) error
	// Status looks a transaction up: TxConfirmed only when a solidified
	// block holds it with receipt SUCCESS.
	Status(ctx context.Context, txid string) (TxStatus, error)
	// SolidifiedTime is the timestamp of the latest solidified block: a
	// transaction whose expiration is before it and which no node has is dead.
	SolidifiedTime(ctx context.Context) (time.Time, error)
}

// SignedTx is a signed transfer, stored before it is ever broadcast.
type SignedTx struct {
	TxID       string    `json:"txid"`       // hex
	Raw        []byte    `json:"raw"`        // protobuf of core.Transaction
	Expiration time.Time `json:"expiration"` // after this, the chain refuses it
}

// TxState is a transaction's state as the chain reports it.
type TxState int

// Transaction states.
const (
	TxUnknown   TxState = iota // no node has it
	TxPending                  // a full node has it; not solidified
	TxConfirmed                // solidified with receipt SUCCESS
	TxFailed                   // solidified with a failed receipt (REVERT, OUT_OF_ENERGY, ...)
)

// TxStatus is a lookup result; Reason names a failure.
type TxStatus struct {
	State  TxState
	Reason string
}

// Chain errors the outbox classifies with errors.Is.
var (
	ErrChainUnavailable = errors.New("chain node unavailable")      // retry later, same bytes
	ErrChainRejected    = errors.New("chain rejected transaction")  // this node refused these bytes: look the txid up before deciding
	ErrChainResources   = errors.New("hot wallet lacks energy/TRX") // pause payouts, alert
)

// TokenTransfer is one TRC-20 Transfer event of the reward token, from a
// transaction whose receipt is SUCCESS. TxID and LogIndex name it uniquely.
type TokenTransfer struct {
	TxID     string   // hex, lower case
	LogIndex int      // position of the log in the transaction's receipt
	Block    int64    // block number holding the transaction
	From     string   // base58 address
	To       string   // base58 address
	Amount   *big.Int // base units
}

// TransferSource is what the deposit watcher reads from a TRON node.
// chain.Client implements it.
type TransferSource interface {
	// HeadBlock is the number of the newest block the node has.
	HeadBlock(ctx context.Context) (int64, error)
	// TokenTransfers lists the reward token's successful Transfer events in
	// blocks from..to (inclusive), in block, transaction and log order.
	// Errors wrap ErrChainUnavailable when the node could not answer.
	TokenTransfers(ctx context.Context, from, to int64) ([]TokenTransfer, error)
}
