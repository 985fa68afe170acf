// Package chain pays out on TRON: a gotron-sdk client for the hot wallet's
// TRC-20 transfers, their confirmation on the solidity node, balance and
// energy lookups, and block scans for the token's Transfer events (deposits).
// Client implements rewards.Chain and rewards.TransferSource. chain/tronsim
// is a simulated node for tests and the dev default.
package chain

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/fbsobreira/gotron-sdk/pkg/address"
	"github.com/fbsobreira/gotron-sdk/pkg/client"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/api"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/core"
	"github.com/fbsobreira/gotron-sdk/pkg/signer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/seedpay/seedpay/rewards"
)

var _ rewards.Chain = (*Client)(nil)

// ErrNodeMisbehaved: a node answered something we must not sign or trust
// (a transaction that is not the transfer we asked for, a malformed block).
// Not classified as a rewards chain error: the payout waits with the reason
// visible, and an operator should look.
var ErrNodeMisbehaved = errors.New("chain node answered something unexpected")

// ErrReadOnly: the client was built without a signer.
var ErrReadOnly = errors.New("chain client has no hot wallet signer")

// transferSelector is transfer(address,uint256).
var transferSelector = []byte{0xa9, 0x05, 0x9c, 0xbb}

// Client is a TRON client for one hot wallet and one TRC-20 token. It never
// holds the private key itself (the signer does) and never logs or returns it.
type Client struct {
	cfg     Config
	full    *client.GrpcClient
	solConn *grpc.ClientConn
	sol     api.WalletSolidityClient
	signer  signer.Signer // nil: read-only
	hot     address.Address
	token   address.Address

	// lastStamp makes every transaction this client signs unique: two
	// transfers of the same amount to the same address built in the same
	// millisecond would otherwise have the same raw_data, hence one txid,
	// and one on-chain transfer would "confirm" two payouts.
	stampMu   sync.Mutex
	lastStamp int64
}

// NewWithKey is New with a private-key signer.
func NewWithKey(cfg Config, key *ecdsa.PrivateKey) (*Client, error) {
	if key == nil {
		return nil, errors.New("chain: nil hot wallet key")
	}
	s, err := signer.NewPrivateKeySigner(key)
	if err != nil {
		return nil, fmt.Errorf("chain: hot wallet key: %w", err)
	}
	return New(cfg, s)
}

// New validates cfg and connects (lazily: no RPC is made until a call) to the
// full node and, on a second connection, the solidity node. hot signs
// transfers; nil makes a read-only client (balances, status).
func New(cfg Config, hot signer.Signer) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.Resolved()
	c := &Client{cfg: cfg, signer: hot}
	c.token, _ = address.Base58ToAddress(cfg.Token) // validated
	if hot != nil {
		c.hot = hot.Address()
		if len(c.hot) != address.AddressLength || c.hot[0] != address.TronBytePrefix {
			return nil, errors.New("chain: signer has no valid TRON address")
		}
	}
	opts := c.dialOptions()
	c.full = client.NewGrpcClientWithTimeout(cfg.FullNode, cfg.CallTimeout)
	if err := c.full.Start(opts...); err != nil {
		return nil, fmt.Errorf("chain: full node %s: %w", cfg.FullNode, err)
	}
	conn, err := grpc.NewClient(cfg.SolidityNode, opts...)
	if err != nil {
		c.full.Stop()
		return nil, fmt.Errorf("chain: solidity node %s: %w", cfg.SolidityNode, err)
	}
	c.solConn, c.sol = conn, api.NewWalletSolidityClient(conn)
	return c, nil
}

func (c *Client) dialOptions() []grpc.DialOption {
	creds := insecure.NewCredentials()
	if c.cfg.TLS {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if key := c.cfg.APIKey; key != "" {
		opts = append(opts, grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, o ...grpc.CallOption) error {
			return invoker(metadata.AppendToOutgoingContext(ctx, "TRON-PRO-API-KEY", key), method, req, reply, cc, o...)
		}))
	}
	return opts
}

// Close closes both connections.
func (c *Client) Close() error {
	c.full.Stop()
	return c.solConn.Close()
}

// HotAddress is the hot wallet's base58 address ("" for a read-only client).
func (c *Client) HotAddress() string {
	if c.hot == nil {
		return ""
	}
	return c.hot.String()
}

// Config is the resolved configuration (print it with %v: the API key is
// redacted).
func (c *Client) Config() Config { return c.cfg }

// String names the network and hot address, nothing secret.
func (c *Client) String() string {
	return fmt.Sprintf("chain.Client{network=%s full_node=%s token=%s hot=%s}", c.cfg.Network, c.cfg.FullNode, c.cfg.Token, c.HotAddress())
}

// GoString is String, so %#v shows no internals.
func (c *Client) GoString() string { return c.String() }

func (c *Client) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.CallTimeout)
}

// SignTransfer asks the full node to build transfer(to, amount) on the token
// from the hot wallet, checks that the node built exactly that, sets
// fee_limit and expiration in raw_data, signs it and returns the txid
// (sha256 of raw_data) with the protobuf of the signed core.Transaction.
// Nothing is broadcast. A bad recipient or amount wraps ErrChainRejected
// (it can never succeed); an unreachable node ErrChainUnavailable.
func (c *Client) SignTransfer(ctx context.Context, to string, amount *big.Int) (rewards.SignedTx, error) {
	if c.signer == nil {
		return rewards.SignedTx{}, ErrReadOnly
	}
	toAddr, err := parseAddress(to)
	if err != nil {
		return rewards.SignedTx{}, fmt.Errorf("%w: recipient: %v", rewards.ErrChainRejected, err)
	}
	if amount == nil || amount.Sign() <= 0 || amount.BitLen() > 256 {
		return rewards.SignedTx{}, fmt.Errorf("%w: amount %v: must be 1..2^256-1 base units", rewards.ErrChainRejected, amount)
	}
	if bytes.Equal(toAddr, c.hot) {
		return rewards.SignedTx{}, fmt.Errorf("%w: recipient %s is the hot wallet itself", rewards.ErrChainRejected, to)
	}
	data := transferData(toAddr, amount)

	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	ext, err := c.full.TriggerContractWithDataCtx(cctx, c.hot.String(), c.cfg.Token, data, c.cfg.FeeLimit, 0, "", 0)
	if err != nil {
		return rewards.SignedTx{}, fmt.Errorf("build transfer: %w", rpcError(err))
	}
	tx := ext.GetTransaction()
	if err := c.checkBuilt(tx, data); err != nil {
		return rewards.SignedTx{}, err
	}
	raw := tx.RawData
	raw.FeeLimit = c.cfg.FeeLimit
	base := raw.Timestamp // the node's clock, in chain time
	if base <= 0 {
		base = time.Now().UnixMilli()
	}
	c.stampMu.Lock()
	if base <= c.lastStamp {
		base = c.lastStamp + 1
	}
	c.lastStamp = base
	c.stampMu.Unlock()
	raw.Timestamp = base
	raw.Expiration = base + c.cfg.Expiration.Milliseconds()
	tx.Signature, tx.Ret = nil, nil

	rawBytes, err := proto.Marshal(raw)
	if err != nil {
		return rewards.SignedTx{}, fmt.Errorf("chain: encode raw_data: %w", err)
	}
	id := sha256.Sum256(rawBytes)
	signed, err := c.signer.Sign(tx)
	if err != nil {
		return rewards.SignedTx{}, fmt.Errorf("chain: sign: %w", err)
	}
	if len(signed.Signature) != 1 {
		return rewards.SignedTx{}, fmt.Errorf("chain: signer produced %d signatures, want 1", len(signed.Signature))
	}
	// The signer must have signed these raw bytes with the hot key.
	if who, err := recoverDigestSigner(id[:], signed.Signature[0]); err != nil || !bytes.Equal(who, c.hot) {
		return rewards.SignedTx{}, errors.New("chain: the signature does not recover to the hot wallet address")
	}
	out, err := proto.Marshal(signed)
	if err != nil {
		return rewards.SignedTx{}, fmt.Errorf("chain: encode transaction: %w", err)
	}
	return rewards.SignedTx{
		TxID:       hex.EncodeToString(id[:]),
		Raw:        out,
		Expiration: time.UnixMilli(raw.Expiration),
	}, nil
}

// checkBuilt refuses to sign anything but the one transfer asked for.
func (c *Client) checkBuilt(tx *core.Transaction, data []byte) error {
	raw := tx.GetRawData()
	if raw == nil {
		return fmt.Errorf("%w: TriggerContract returned no transaction", ErrNodeMisbehaved)
	}
	if len(raw.RefBlockBytes) != 2 || len(raw.RefBlockHash) != 8 {
		return fmt.Errorf("%w: transaction without a reference block", ErrNodeMisbehaved)
	}
	if len(raw.Contract) != 1 {
		return fmt.Errorf("%w: transaction has %d contracts, want 1", ErrNodeMisbehaved, len(raw.Contract))
	}
	k := raw.Contract[0]
	if k.Type != core.Transaction_Contract_TriggerSmartContract || k.PermissionId != 0 || k.Parameter == nil {
		return fmt.Errorf("%w: contract is %s (permission %d), want TriggerSmartContract", ErrNodeMisbehaved, k.Type, k.PermissionId)
	}
	ct := new(core.TriggerSmartContract)
	if err := k.Parameter.UnmarshalTo(ct); err != nil {
		return fmt.Errorf("%w: contract parameter: %v", ErrNodeMisbehaved, err)
	}
	if !bytes.Equal(ct.OwnerAddress, c.hot) || !bytes.Equal(ct.ContractAddress, c.token) ||
		!bytes.Equal(ct.Data, data) || ct.CallValue != 0 || ct.CallTokenValue != 0 || ct.TokenId != 0 {
		return fmt.Errorf("%w: the transaction built is not the transfer asked for", ErrNodeMisbehaved)
	}
	return nil
}

// Broadcast sends signed bytes to the full node. SUCCESS and
// DUP_TRANSACTION_ERROR (the node has it already) are success; refusals wrap
// ErrChainRejected, ErrChainResources or ErrChainUnavailable by code, and
// transport failures ErrChainUnavailable.
//
// ErrChainRejected means this node refused these bytes now; it does not prove
// the transaction is nowhere (a node answers TRANSACTION_EXPIRATION_ERROR for
// an old transaction even if a block holds it): look it up with Status.
func (c *Client) Broadcast(ctx context.Context, raw []byte) error {
	tx := new(core.Transaction)
	if err := proto.Unmarshal(raw, tx); err != nil || tx.RawData == nil {
		return fmt.Errorf("%w: stored bytes are not a signed transaction", rewards.ErrChainRejected)
	}
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	ret, err := c.full.BroadcastCtx(cctx, tx)
	if ret != nil {
		return classifyReturn(ret)
	}
	if err != nil {
		return fmt.Errorf("broadcast: %w", rpcError(err))
	}
	return fmt.Errorf("%w: broadcast: empty answer", rewards.ErrChainUnavailable)
}

// classifyReturn maps a broadcast answer to nil or a rewards chain error.
func classifyReturn(ret *api.Return) error {
	code, msg := ret.GetCode(), strings.TrimSpace(string(ret.GetMessage()))
	wrap := func(kind error) error {
		if msg == "" {
			return fmt.Errorf("%w: %s", kind, code)
		}
		return fmt.Errorf("%w: %s: %s", kind, code, msg)
	}
	switch code {
	case api.Return_SUCCESS:
		if ret.GetResult() {
			return nil
		}
		return wrap(rewards.ErrChainUnavailable) // result=false without a code: unknown, retry
	case api.Return_DUP_TRANSACTION_ERROR:
		return nil
	case api.Return_BANDWITH_ERROR:
		return wrap(rewards.ErrChainResources)
	case api.Return_SERVER_BUSY, api.Return_NO_CONNECTION, api.Return_NOT_ENOUGH_EFFECTIVE_CONNECTION, api.Return_BLOCK_UNSOLIDIFIED:
		return wrap(rewards.ErrChainUnavailable)
	case api.Return_CONTRACT_VALIDATE_ERROR:
		if resourceShortage(msg) {
			return wrap(rewards.ErrChainResources)
		}
		return wrap(rewards.ErrChainRejected)
	default: // SIGERROR, CONTRACT_EXE_ERROR, TAPOS_ERROR, TOO_BIG, EXPIRATION, OTHER_ERROR, unknown
		return wrap(rewards.ErrChainRejected)
	}
}

// resourceShortage recognizes java-tron's validation messages about the
// owner's TRX, energy or bandwidth.
func resourceShortage(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"balance is not sufficient", "balance not sufficient", "insufficient balance",
		"not enough energy", "resource insufficient", "energy insufficient", "not enough balance"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// rpcError classifies a failed call: anything below a node's verdict (no
// connection, deadline, throttling, a server error) is "retry later".
func rpcError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %v", rewards.ErrChainUnavailable, err)
	}
	if s, ok := status.FromError(err); ok {
		return fmt.Errorf("%w: %s: %s", rewards.ErrChainUnavailable, s.Code(), s.Message())
	}
	// Not a gRPC status: the SDK turned a node's Result into an error text.
	return err
}

// Status looks txid up: receipt on the solidity node (confirmed or failed),
// else on the full node (in a block or its pending pool: pending), else
// unknown. Lookup failures wrap ErrChainUnavailable.
func (c *Client) Status(ctx context.Context, txid string) (rewards.TxStatus, error) {
	id, err := hex.DecodeString(txid)
	if err != nil || len(id) != 32 {
		return rewards.TxStatus{}, fmt.Errorf("chain: txid %q: want 64 hex digits", txid)
	}
	msg := &api.BytesMessage{Value: id}
	cctx, cancel := c.callCtx(ctx)
	defer cancel()

	info, err := c.sol.GetTransactionInfoById(cctx, msg)
	if err != nil {
		return rewards.TxStatus{}, fmt.Errorf("solidity lookup: %w", rpcError(err))
	}
	if bytes.Equal(info.GetId(), id) {
		return receiptStatus(info)
	}
	fi, err := c.full.Client.GetTransactionInfoById(cctx, msg)
	if err != nil {
		return rewards.TxStatus{}, fmt.Errorf("full node lookup: %w", rpcError(err))
	}
	if bytes.Equal(fi.GetId(), id) {
		return rewards.TxStatus{State: rewards.TxPending,
			Reason: fmt.Sprintf("in block %d (receipt %s), not solidified yet", fi.BlockNumber, fi.GetReceipt().GetResult())}, nil
	}
	tx, err := c.full.Client.GetTransactionById(cctx, msg)
	if err != nil {
		return rewards.TxStatus{}, fmt.Errorf("full node lookup: %w", rpcError(err))
	}
	if tx.GetRawData() != nil && bytes.Equal(rawID(tx.RawData), id) {
		return rewards.TxStatus{State: rewards.TxPending, Reason: "known to the full node, not solidified yet"}, nil
	}
	ptx, err := c.full.Client.GetTransactionFromPending(cctx, msg)
	switch {
	case status.Code(err) == codes.Unimplemented:
		// Not every node exposes its pending pool.
	case err != nil:
		return rewards.TxStatus{}, fmt.Errorf("pending pool lookup: %w", rpcError(err))
	case ptx.GetRawData() != nil && bytes.Equal(rawID(ptx.RawData), id):
		return rewards.TxStatus{State: rewards.TxPending, Reason: "in the full node's pending pool"}, nil
	}
	return rewards.TxStatus{State: rewards.TxUnknown}, nil
}

// receiptStatus reads a solidified transaction's receipt.
func receiptStatus(info *core.TransactionInfo) (rewards.TxStatus, error) {
	r := info.GetReceipt().GetResult()
	switch {
	case r == core.Transaction_Result_SUCCESS && info.Result == core.TransactionInfo_SUCESS:
		return rewards.TxStatus{State: rewards.TxConfirmed}, nil
	case r == core.Transaction_Result_DEFAULT && info.Result == core.TransactionInfo_SUCESS:
		// A contract call always has a contract result: do not guess.
		return rewards.TxStatus{}, fmt.Errorf("%w: solidified transaction %x has no contract result", ErrNodeMisbehaved, info.Id)
	}
	reason := r.String()
	if m := strings.TrimSpace(string(info.ResMessage)); m != "" {
		reason += ": " + m
	}
	if r == core.Transaction_Result_REVERT && len(info.ContractResult) > 0 {
		if why := revertReason(info.ContractResult[0]); why != "" {
			reason += " (" + why + ")"
		}
	}
	return rewards.TxStatus{State: rewards.TxFailed, Reason: reason}, nil
}

// revertReason decodes Solidity's Error(string) revert payload.
func revertReason(b []byte) string {
	if len(b) < 4+64 || !bytes.Equal(b[:4], []byte{0x08, 0xc3, 0x79, 0xa0}) {
		return ""
	}
	b = b[4:]
	n := new(big.Int).SetBytes(b[32:64])
	if !n.IsInt64() || n.Int64() > int64(len(b)-64) || n.Int64() > 256 {
		return ""
	}
	return strings.ToValidUTF8(string(b[64:64+n.Int64()]), "?")
}

// SolidifiedTime is the latest solidified block's timestamp.
func (c *Client) SolidifiedTime(ctx context.Context) (time.Time, error) {
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	b, err := c.sol.GetNowBlock2(cctx, &api.EmptyMessage{})
	if err != nil {
		return time.Time{}, fmt.Errorf("solidified block: %w", rpcError(err))
	}
	ts := b.GetBlockHeader().GetRawData().GetTimestamp()
	if ts <= 0 {
		return time.Time{}, fmt.Errorf("%w: solidified block without a timestamp", rewards.ErrChainUnavailable)
	}
	return time.UnixMilli(ts), nil
}

// TokenBalance is addr's token balance in base units (full node, latest
// block).
func (c *Client) TokenBalance(ctx context.Context, addr string) (*big.Int, error) {
	if _, err := parseAddress(addr); err != nil {
		return nil, fmt.Errorf("chain: %w", err)
	}
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	b, err := c.full.TRC20ContractBalanceCtx(cctx, addr, c.cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("token balance: %w", rpcError(err))
	}
	return b, nil
}

// TRXBalance is addr's TRX balance in sun (0 for an account that does not
// exist).
func (c *Client) TRXBalance(ctx context.Context, addr string) (int64, error) {
	a, err := parseAddress(addr)
	if err != nil {
		return 0, fmt.Errorf("chain: %w", err)
	}
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	acc, err := c.full.Client.GetAccount(cctx, &core.Account{Address: a})
	if err != nil {
		return 0, fmt.Errorf("account: %w", rpcError(err))
	}
	return acc.GetBalance(), nil
}

// Resources is what the hot wallet has to pay fees with.
type Resources struct {
	TRX          int64 // sun
	EnergyLimit  int64 // from stake or delegation
	EnergyUsed   int64
	FreeNetLimit int64 // bytes
	FreeNetUsed  int64
}

// HotResources reads the hot wallet's TRX, energy and bandwidth.
func (c *Client) HotResources(ctx context.Context) (Resources, error) {
	if c.hot == nil {
		return Resources{}, ErrReadOnly
	}
	trx, err := c.TRXBalance(ctx, c.hot.String())
	if err != nil {
		return Resources{}, err
	}
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	r, err := c.full.GetAccountResourceCtx(cctx, c.hot.String())
	if err != nil {
		return Resources{}, fmt.Errorf("account resources: %w", rpcError(err))
	}
	return Resources{TRX: trx, EnergyLimit: r.EnergyLimit, EnergyUsed: r.EnergyUsed,
		FreeNetLimit: r.FreeNetLimit, FreeNetUsed: r.FreeNetUsed}, nil
}

// EstimateTransferEnergy is the energy a transfer of amount to `to` from the
// hot wallet would use now (EstimateEnergy, or a constant call on nodes
// without it). A transfer that would revert is an error.
func (c *Client) EstimateTransferEnergy(ctx context.Context, to string, amount *big.Int) (int64, error) {
	if c.hot == nil {
		return 0, ErrReadOnly
	}
	toAddr, err := parseAddress(to)
	if err != nil {
		return 0, fmt.Errorf("chain: recipient: %w", err)
	}
	if amount == nil || amount.Sign() < 0 || amount.BitLen() > 256 {
		return 0, fmt.Errorf("chain: amount %v: must be 0..2^256-1", amount)
	}
	data := transferData(toAddr, amount)
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	est, err := c.full.EstimateEnergyWithDataCtx(cctx, c.hot.String(), c.cfg.Token, data, 0, "", 0)
	if err == nil {
		return est.EnergyRequired, nil
	}
	// Nodes without vm.estimateEnergy answer Unimplemented or say so in the
	// Result: fall back to a constant call.
	if !errors.Is(err, client.ErrEstimateEnergyNotSupported) && !strings.Contains(err.Error(), "not support estimate energy") {
		return 0, fmt.Errorf("estimate energy: %w", rpcError(err))
	}
	ext, err := c.full.TriggerConstantContractWithDataCtx(cctx, c.hot.String(), c.cfg.Token, data)
	if err != nil {
		return 0, fmt.Errorf("simulate transfer: %w", rpcError(err))
	}
	if ext.GetResult().GetCode() != api.Return_SUCCESS {
		return 0, fmt.Errorf("simulate transfer: %s: %s", ext.GetResult().GetCode(), ext.GetResult().GetMessage())
	}
	if r := ext.GetTransaction().GetRet(); len(r) > 0 && r[0].ContractRet != core.Transaction_Result_SUCCESS {
		return 0, fmt.Errorf("simulate transfer: would fail with %s", r[0].ContractRet)
	}
	return ext.EnergyUsed, nil
}

// VerifyToken reads the token's symbol and decimals from the chain and checks
// the decimals against the config: paying with the wrong contract or scale is
// caught before any payout.
func (c *Client) VerifyToken(ctx context.Context) (symbol string, err error) {
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	d, err := c.full.TRC20GetDecimalsCtx(cctx, c.cfg.Token)
	if err != nil {
		return "", fmt.Errorf("token decimals: %w", rpcError(err))
	}
	if !d.IsInt64() || d.Int64() != int64(c.cfg.TokenDecimals) {
		return "", fmt.Errorf("chain.token_decimals: %d, but contract %s says %s", c.cfg.TokenDecimals, c.cfg.Token, d)
	}
	symbol, err = c.full.TRC20GetSymbolCtx(cctx, c.cfg.Token)
	if err != nil {
		return "", fmt.Errorf("token symbol: %w", rpcError(err))
	}
	return symbol, nil
}

// transferData is the ABI call transfer(to, amount): selector, the 20-byte
// address left-padded to 32 bytes, the amount as a 32-byte word.
func transferData(to address.Address, amount *big.Int) []byte {
	out := make([]byte, 4+64)
	copy(out, transferSelector)
	copy(out[4+12:4+32], to[1:])
	amount.FillBytes(out[4+32:])
	return out
}

func parseAddress(s string) (address.Address, error) { return ParseAddress(s) }

func rawID(raw *core.TransactionRaw) []byte {
	b, err := proto.Marshal(raw)
	if err != nil {
		return nil
	}
	h := sha256.Sum256(b)
	return h[:]
}
