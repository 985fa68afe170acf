// Package tronsim is a simulated TRON node: a real gRPC server speaking the
// Wallet and WalletSolidity services (the subset seedpay calls) with a
// TRC-20 token contract (more with AddToken) whose transfers record
// Transfer event logs as java-tron does, block scans
// (GetTransactionInfoByBlockNum, GetBlockByNum2), TRX and energy
// accounting, signature, TAPOS and expiration checks, block production, a
// lagging solidity view and fault injection. Tests and the dev default talk to it with the real gotron-sdk
// client over a socket; nothing below the client is mocked.
//
// Chain time is the wall clock plus an offset that AdvanceTime moves forward,
// so a test can make a transaction expire without waiting a minute.
package tronsim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/fbsobreira/gotron-sdk/pkg/address"
	"github.com/fbsobreira/gotron-sdk/pkg/common"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/api"
	"github.com/fbsobreira/gotron-sdk/pkg/proto/core"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// DefaultTokenAddress is the simulated BTT contract, 0x41 followed by the
// first 20 bytes of sha256("seedpay/tronsim/token"): a fixed address that is
// not the mainnet one (TAFjULxiVgT4qWk6UZwjqwZXTSaGaqnVp4), so a sim config
// pointed at mainnet fails loudly instead of paying in real tokens.
const DefaultTokenAddress = "TZ8Vd8CwbpTeZ6f1BuRWdzYRQYq8gWnEzq"

// Chain constants mirrored from java-tron.
const (
	// MaxFeeLimit is the largest fee_limit a transaction may carry (15,000 TRX).
	MaxFeeLimit int64 = 15_000 * 1_000_000
	// MaxExpiration is how far past the head block a transaction's expiration
	// may be.
	MaxExpiration = 24 * time.Hour
	// resourceWindow is the period over which used energy and bandwidth
	// recover linearly.
	resourceWindow int64 = 24 * 3600 * 1000
	// netFeePerByte is the TRX burnt per byte of bandwidth without free or
	// staked bandwidth (sun).
	netFeePerByte int64 = 1000
	// resultSizeInTx is added to a transaction's size for bandwidth.
	resultSizeInTx = 64
	// maxTxSize is the largest accepted transaction.
	maxTxSize = 500 * 1024
	// keepBlocks is how many recent blocks stay queryable (TAPOS needs
	// 65,536); older ones are pruned so a long-running dev node stays small.
	keepBlocks = 100_000
	// revertEnergy is what a transfer that reverts on its require() costs.
	revertEnergy int64 = 14_000
	// readEnergy is what a view function costs when run in a transaction.
	readEnergy int64 = 1_000
)

// TokenConfig describes a TRC-20 contract on the sim chain.
type TokenConfig struct {
	Address  string // base58; default DefaultTokenAddress
	Name     string // default "BitTorrent"
	Symbol   string // default "BTT"
	Decimals uint8  // default 18
}

// Config tunes a Node. Zero values take the documented defaults.
type Config struct {
	// BlockPeriod is the wall-clock time between blocks (default 3s).
	// Negative: no automatic blocks, only ProduceBlock.
	BlockPeriod time.Duration
	// SolidityLag is how many blocks the solidity view trails the head
	// (default 19; use SetSolidityLag(0) for none).
	SolidityLag int
	// DefaultExpiration is what TriggerContract puts in raw_data.expiration,
	// past the head block time (default 60s, as java-tron).
	DefaultExpiration time.Duration
	// EnergyPrice is the sun burnt per unit of energy (default 210).
	EnergyPrice int64
	// TransferEnergy is a transfer's cost to an address that held the token
	// before (default 65,000); NewHolderEnergy to one that never did
	// (default 130,000).
	TransferEnergy  int64
	NewHolderEnergy int64
	// FreeNetLimit is each account's free daily bandwidth in bytes
	// (default 600; negative: none).
	FreeNetLimit int64
	// NoEstimateEnergy makes EstimateEnergy answer Unimplemented, as nodes
	// without vm.estimateEnergy do.
	NoEstimateEnergy bool
	// SolidityAddr, when set, serves WalletSolidity on its own listener at
	// this address; otherwise both services share Start's address.
	SolidityAddr string
	Token        TokenConfig
	Logger       *zap.Logger
	// Now is the clock (default time.Now); AdvanceTime adds to it.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.BlockPeriod == 0 {
		c.BlockPeriod = 3 * time.Second
	}
	if c.SolidityLag == 0 {
		c.SolidityLag = 19
	}
	if c.DefaultExpiration == 0 {
		c.DefaultExpiration = 60 * time.Second
	}
	if c.EnergyPrice == 0 {
		c.EnergyPrice = 210
	}
	if c.TransferEnergy == 0 {
		c.TransferEnergy = 65_000
	}
	if c.NewHolderEnergy == 0 {
		c.NewHolderEnergy = 130_000
	}
	if c.FreeNetLimit == 0 {
		c.FreeNetLimit = 600
	}
	if c.FreeNetLimit < 0 {
		c.FreeNetLimit = 0
	}
	if c.Token.Address == "" {
		c.Token.Address = DefaultTokenAddress
	}
	if c.Token.Name == "" {
		c.Token.Name = "BitTorrent"
	}
	if c.Token.Symbol == "" {
		c.Token.Symbol = "BTT"
	}
	if c.Token.Decimals == 0 {
		c.Token.Decimals = 18
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

type addrKey [address.AddressLength]byte

type account struct {
	balance     int64 // sun
	createTime  int64 // ms
	energyLimit int64 // from stake
	energyUsed  int64
	energyTime  int64 // ms of the last energy use
	netUsed     int64 // free bandwidth
	netTime     int64
}

type block struct {
	num    int64
	id     []byte // 8-byte number || sha256(raw header)[8:]
	header *core.BlockHeader
	txids  [][]byte
}

type txRecord struct {
	tx    *core.Transaction // with Ret once executed
	info  *core.TransactionInfo
	block int64
}

type pendingTx struct {
	id        []byte
	tx        *core.Transaction
	includeAt int64 // first block number that may carry it
	netUsage  int64 // bandwidth charged on admission
	netFee    int64
}

// Node is one simulated TRON node (full node and solidity view).
type Node struct {
	cfg   Config
	log   *zap.Logger
	token *token // the configured token (Config.Token)

	// tokens holds every TRC-20 contract on the chain by 21-byte address:
	// the configured one and those added with AddToken (mu guards it).
	tokens map[addrKey]*token

	mu          sync.Mutex
	accounts    map[addrKey]*account
	blocks      []*block
	recent      map[uint16][]byte // TAPOS: low 16 bits of number -> hash[8:16]
	txs         map[string]*txRecord
	pending     []*pendingTx
	pendingIDs  map[string]bool
	faults      map[FaultKind]*Fault
	solidityLag int
	offset      time.Duration
	newBlock    chan struct{} // closed and replaced on every block

	srv, solSrv   *grpc.Server
	lis, solLis   net.Listener
	stop          chan struct{}
	wg            sync.WaitGroup
	started       bool
	stopped       bool
	lifecycleLock sync.Mutex
}

// New builds a node with a genesis block. It serves nothing until Start.
func New(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if cfg.SolidityLag < 0 {
		return nil, fmt.Errorf("tronsim: SolidityLag %d: must be >= 0", cfg.SolidityLag)
	}
	if cfg.DefaultExpiration < 0 || cfg.DefaultExpiration > MaxExpiration {
		return nil, fmt.Errorf("tronsim: DefaultExpiration %s: must be 0..24h", cfg.DefaultExpiration)
	}
	if cfg.EnergyPrice < 0 || cfg.TransferEnergy < 0 || cfg.NewHolderEnergy < 0 {
		return nil, errors.New("tronsim: energy price and costs must be >= 0")
	}
	tokAddr, err := ParseAddress(cfg.Token.Address)
	if err != nil {
		return nil, fmt.Errorf("tronsim: token address: %w", err)
	}
	tk, _ := keyOf(tokAddr)
	n := &Node{
		cfg:         cfg,
		log:         cfg.Logger,
		token:       newToken(tokAddr, cfg.Token),
		tokens:      map[addrKey]*token{},
		accounts:    map[addrKey]*account{},
		recent:      map[uint16][]byte{},
		txs:         map[string]*txRecord{},
		pendingIDs:  map[string]bool{},
		faults:      map[FaultKind]*Fault{},
		solidityLag: cfg.SolidityLag,
		newBlock:    make(chan struct{}),
		stop:        make(chan struct{}),
	}
	n.tokens[tk] = n.token
	n.appendBlock(n.nowMS(), nil)
	return n, nil
}

// AddToken deploys another TRC-20 contract with the same code as the
// configured one (name, symbol, decimals, balanceOf, transfer and its
// Transfer event) at tc.Address, which is required and must be free. Its
// balances are separate; MintToken and TokenBalanceOf reach them. Tests use
// it to check that only the configured token's events count.
func (n *Node) AddToken(tc TokenConfig) error {
	if tc.Address == "" {
		return errors.New("tronsim: AddToken: address required")
	}
	k, err := mustKey(tc.Address)
	if err != nil {
		return fmt.Errorf("tronsim: AddToken: %w", err)
	}
	if tc.Name == "" {
		tc.Name = "Other"
	}
	if tc.Symbol == "" {
		tc.Symbol = "OTH"
	}
	if tc.Decimals == 0 {
		tc.Decimals = 18
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.tokens[k] != nil {
		return fmt.Errorf("tronsim: AddToken: a token already lives at %s", tc.Address)
	}
	if n.accounts[k] != nil {
		return fmt.Errorf("tronsim: AddToken: %s is an account", tc.Address)
	}
	n.tokens[k] = newToken(address.Address(k[:]), tc)
	return nil
}

// tokenAt is the contract at a 21-byte address, or nil; mu must be held.
func (n *Node) tokenAt(b []byte) *token {
	k, ok := keyOf(b)
	if !ok {
		return nil
	}
	return n.tokens[k]
}

// ParseAddress decodes a base58check TRON address and checks its length and
// 0x41 prefix.
func ParseAddress(s string) (address.Address, error) {
	b, err := common.DecodeCheck(s)
	if err != nil {
		return nil, fmt.Errorf("%q: not a base58check TRON address: %w", s, err)
	}
	if len(b) != address.AddressLength || b[0] != address.TronBytePrefix {
		return nil, fmt.Errorf("%q: not a TRON address (want 21 bytes starting 0x41)", s)
	}
	return address.Address(b), nil
}

func keyOf(b []byte) (addrKey, bool) {
	var k addrKey
	if len(b) != address.AddressLength || b[0] != address.TronBytePrefix {
		return k, false
	}
	copy(k[:], b)
	return k, true
}

func mustKey(s string) (addrKey, error) {
	a, err := ParseAddress(s)
	if err != nil {
		return addrKey{}, err
	}
	k, _ := keyOf(a)
	return k, nil
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves both services there
// (or WalletSolidity on Config.SolidityAddr when set), and starts producing
// blocks.
func (n *Node) Start(addr string) error {
	n.lifecycleLock.Lock()
	defer n.lifecycleLock.Unlock()
	if n.started {
		return errors.New("tronsim: already started")
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("tronsim: listen %s: %w", addr, err)
	}
	var solLis net.Listener
	if n.cfg.SolidityAddr != "" {
		if solLis, err = net.Listen("tcp", n.cfg.SolidityAddr); err != nil {
			lis.Close()
			return fmt.Errorf("tronsim: listen solidity %s: %w", n.cfg.SolidityAddr, err)
		}
	}
	n.lis, n.solLis = lis, solLis
	n.srv = grpc.NewServer(grpc.UnaryInterceptor(n.intercept))
	api.RegisterWalletServer(n.srv, &walletServer{n: n})
	if solLis == nil {
		api.RegisterWalletSolidityServer(n.srv, &solidityServer{n: n})
	} else {
		n.solSrv = grpc.NewServer(grpc.UnaryInterceptor(n.intercept))
		api.RegisterWalletSolidityServer(n.solSrv, &solidityServer{n: n})
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			_ = n.solSrv.Serve(solLis)
		}()
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		_ = n.srv.Serve(lis)
	}()
	if n.cfg.BlockPeriod > 0 {
		n.wg.Add(1)
		go n.produceLoop()
	}
	n.started = true
	n.log.Info("tronsim started",
		zap.String("addr", n.Addr()), zap.String("solidity_addr", n.SolidityAddr()),
		zap.String("token", n.cfg.Token.Address), zap.Duration("block_period", n.cfg.BlockPeriod),
		zap.Int("solidity_lag", n.cfg.SolidityLag))
	return nil
}

// Addr is the full node's listening address ("" before Start).
func (n *Node) Addr() string {
	if n.lis == nil {
		return ""
	}
	return n.lis.Addr().String()
}

// SolidityAddr is where WalletSolidity is served (Addr unless configured
// separately).
func (n *Node) SolidityAddr() string {
	if n.solLis != nil {
		return n.solLis.Addr().String()
	}
	return n.Addr()
}

// Stop stops block production and the gRPC servers. It is safe to call more
// than once.
func (n *Node) Stop() {
	n.lifecycleLock.Lock()
	defer n.lifecycleLock.Unlock()
	if n.stopped {
		return
	}
	n.stopped = true
	close(n.stop)
	if n.srv != nil {
		n.srv.Stop()
	}
	if n.solSrv != nil {
		n.solSrv.Stop()
	}
	n.wg.Wait()
}

// TokenAddress is the TRC-20 contract's base58 address.
func (n *Node) TokenAddress() string { return n.cfg.Token.Address }

// Config returns the node's configuration with defaults applied.
func (n *Node) Config() Config { return n.cfg }

func (n *Node) produceLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.BlockPeriod)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			n.ProduceBlock()
		}
	}
}

// nowMS is chain time in milliseconds; mu must be held (or the node not yet
// shared).
func (n *Node) nowMS() int64 {
	return n.cfg.Now().Add(n.offset).UnixMilli()
}

// AdvanceTime moves chain time forward by d: later blocks carry timestamps
// that much further on (transactions expire, resources recover).
func (n *Node) AdvanceTime(d time.Duration) {
	if d <= 0 {
		return
	}
	n.mu.Lock()
	n.offset += d
	n.mu.Unlock()
}

// SetSolidityLag changes how many blocks the solidity view trails the head.
func (n *Node) SetSolidityLag(blocks int) {
	if blocks < 0 {
		blocks = 0
	}
	n.mu.Lock()
	n.solidityLag = blocks
	n.mu.Unlock()
}

// Head is the latest block number.
func (n *Node) Head() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.head().num
}

// HeadTime is the latest block's timestamp.
func (n *Node) HeadTime() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return time.UnixMilli(n.head().header.RawData.Timestamp)
}

// SolidHead is the latest solidified block number.
func (n *Node) SolidHead() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.solid().num
}

func (n *Node) head() *block { return n.blocks[len(n.blocks)-1] }

// blockAt is block num, or nil if it is pruned or not yet made; mu must be
// held.
func (n *Node) blockAt(num int64) *block {
	i := num - n.blocks[0].num
	if i < 0 || i >= int64(len(n.blocks)) {
		return nil
	}
	return n.blocks[i]
}

func (n *Node) solid() *block {
	i := len(n.blocks) - 1 - n.solidityLag
	if i < 0 {
		i = 0
	}
	return n.blocks[i]
}

// WaitBlocks returns once k more blocks have been produced.
func (n *Node) WaitBlocks(ctx context.Context, k int) error {
	n.mu.Lock()
	target := n.head().num + int64(k)
	n.mu.Unlock()
	return n.WaitHeight(ctx, target)
}

// WaitHeight returns once the head block number is at least h.
func (n *Node) WaitHeight(ctx context.Context, h int64) error {
	for {
		n.mu.Lock()
		num, ch := n.head().num, n.newBlock
		n.mu.Unlock()
		if num >= h {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// ProduceBlock makes one block now from the pending transactions that are
// due, executes them and returns the new block number.
func (n *Node) ProduceBlock() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	parent := n.head()
	num := parent.num + 1
	ts := n.nowMS()
	if ts <= parent.header.RawData.Timestamp {
		ts = parent.header.RawData.Timestamp + 1
	}
	var due []*pendingTx
	keep := n.pending[:0]
	for _, p := range n.pending {
		switch {
		case p.includeAt > num:
			keep = append(keep, p)
		case p.tx.RawData.Expiration <= ts:
			delete(n.pendingIDs, string(p.id))
			n.log.Info("tronsim: pending transaction expired, dropped", zap.String("txid", fmt.Sprintf("%x", p.id)))
		default:
			due = append(due, p)
		}
	}
	for i := len(keep); i < len(n.pending); i++ {
		n.pending[i] = nil
	}
	n.pending = keep
	var ids [][]byte
	for _, p := range due {
		delete(n.pendingIDs, string(p.id))
		tx, info := n.execute(p, num, ts)
		n.txs[string(p.id)] = &txRecord{tx: tx, info: info, block: num}
		ids = append(ids, p.id)
		n.log.Info("tronsim: transaction executed", zap.Int64("block", num),
			zap.String("txid", fmt.Sprintf("%x", p.id)),
			zap.String("result", info.GetReceipt().GetResult().String()))
	}
	n.appendBlock(ts, ids)
	return num
}

// appendBlock adds a block after the head; mu must be held (or the node not
// yet shared).
func (n *Node) appendBlock(ts int64, ids [][]byte) {
	var num int64
	var parentID []byte
	if len(n.blocks) > 0 {
		p := n.head()
		num, parentID = p.num+1, p.id
	} else {
		parentID = make([]byte, 32)
	}
	root := sha256.New()
	for _, id := range ids {
		root.Write(id)
	}
	raw := &core.BlockHeaderRaw{
		Timestamp:      ts,
		TxTrieRoot:     root.Sum(nil),
		ParentHash:     parentID,
		Number:         num,
		WitnessAddress: simWitness,
		Version:        32,
	}
	rawBytes, _ := proto.Marshal(raw)
	h := sha256.Sum256(rawBytes)
	id := make([]byte, 32)
	binary.BigEndian.PutUint64(id[:8], uint64(num))
	copy(id[8:], h[8:])
	b := &block{num: num, id: id, header: &core.BlockHeader{RawData: raw, WitnessSignature: make([]byte, 65)}, txids: ids}
	n.blocks = append(n.blocks, b)
	if len(n.blocks) > keepBlocks+keepBlocks/10 {
		n.blocks = append([]*block(nil), n.blocks[len(n.blocks)-keepBlocks:]...)
	}
	n.recent[uint16(num)] = append([]byte(nil), id[8:16]...)
	close(n.newBlock)
	n.newBlock = make(chan struct{})
}

var simWitness = append([]byte{address.TronBytePrefix}, make([]byte, 20)...)

// txID is sha256 of the serialized raw_data.
func txID(raw *core.TransactionRaw) []byte {
	b, _ := proto.Marshal(raw)
	h := sha256.Sum256(b)
	return h[:]
}

// ---- accounts and test helpers ----

func (n *Node) acct(k addrKey, create bool) *account {
	a := n.accounts[k]
	if a == nil && create {
		a = &account{createTime: n.nowMS()}
		n.accounts[k] = a
	}
	return a
}

// SetTRX sets addr's TRX balance in sun (creating the account).
func (n *Node) SetTRX(addr string, sun int64) error {
	k, err := mustKey(addr)
	if err != nil {
		return err
	}
	if sun < 0 {
		return errors.New("tronsim: negative TRX balance")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.acct(k, true).balance = sun
	return nil
}

// SetEnergy sets addr's energy from stake (creating the account) and clears
// its used energy.
func (n *Node) SetEnergy(addr string, limit int64) error {
	k, err := mustKey(addr)
	if err != nil {
		return err
	}
	if limit < 0 {
		return errors.New("tronsim: negative energy")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	a := n.acct(k, true)
	a.energyLimit, a.energyUsed = limit, 0
	return nil
}

// Mint adds amount token base units to addr (it then counts as a holder).
func (n *Node) Mint(addr string, amount *big.Int) error {
	return n.MintToken(n.cfg.Token.Address, addr, amount)
}

// MintToken is Mint on the token contract at tokenAddr (the configured one
// or one from AddToken).
func (n *Node) MintToken(tokenAddr, addr string, amount *big.Int) error {
	k, err := mustKey(addr)
	if err != nil {
		return err
	}
	if amount == nil || amount.Sign() < 0 {
		return errors.New("tronsim: mint amount must be >= 0")
	}
	tk, err := mustKey(tokenAddr)
	if err != nil {
		return fmt.Errorf("tronsim: token: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.tokens[tk]
	if t == nil {
		return fmt.Errorf("tronsim: no token contract at %s", tokenAddr)
	}
	t.mint(k, amount)
	return nil
}

// TokenBalance is addr's token balance on the head state.
func (n *Node) TokenBalance(addr string) (*big.Int, error) {
	return n.TokenBalanceOf(n.cfg.Token.Address, addr)
}

// TokenBalanceOf is addr's balance of the token contract at tokenAddr.
func (n *Node) TokenBalanceOf(tokenAddr, addr string) (*big.Int, error) {
	k, err := mustKey(addr)
	if err != nil {
		return nil, err
	}
	tk, err := mustKey(tokenAddr)
	if err != nil {
		return nil, fmt.Errorf("tronsim: token: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.tokens[tk]
	if t == nil {
		return nil, fmt.Errorf("tronsim: no token contract at %s", tokenAddr)
	}
	return t.balanceOf(k), nil
}

// TRXBalance is addr's TRX balance in sun.
func (n *Node) TRXBalance(addr string) (int64, error) {
	k, err := mustKey(addr)
	if err != nil {
		return 0, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if a := n.accounts[k]; a != nil {
		return a.balance, nil
	}
	return 0, nil
}

// Energy is addr's staked energy and the part of it in use now.
func (n *Node) Energy(addr string) (limit, used int64, err error) {
	k, err := mustKey(addr)
	if err != nil {
		return 0, 0, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	a := n.accounts[k]
	if a == nil {
		return 0, 0, nil
	}
	return a.energyLimit, recovered(a.energyUsed, a.energyTime, n.nowMS()), nil
}

// Transaction returns the stored transaction and its info once it is in a
// block (ok false otherwise).
func (n *Node) Transaction(txid string) (tx *core.Transaction, info *core.TransactionInfo, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	id, err := common.FromHex(txid)
	if err != nil {
		return nil, nil, false
	}
	r := n.txs[string(id)]
	if r == nil {
		return nil, nil, false
	}
	return proto.Clone(r.tx).(*core.Transaction), proto.Clone(r.info).(*core.TransactionInfo), true
}

// PendingCount is how many accepted transactions wait for a block.
func (n *Node) PendingCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.pending)
}

// recovered is the part of used resource still in use at now, recovering
// linearly over 24 h since the last use (as java-tron).
func recovered(used, last, now int64) int64 {
	if used <= 0 {
		return 0
	}
	el := now - last
	if el <= 0 {
		return used
	}
	if el >= resourceWindow {
		return 0
	}
	return new(big.Int).Div(new(big.Int).Mul(big.NewInt(used), big.NewInt(resourceWindow-el)), big.NewInt(resourceWindow)).Int64()
}
