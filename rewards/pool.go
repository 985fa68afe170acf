package rewards

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Content-owner pools (issue 7). A pool pays the seeders of its own
// torrents from tokens sent to its deposit address, at most budget_per_epoch
// per epoch and never more than it holds. The global pool covers every
// torrent and is funded by configuration (the hot wallet), not on chain.
//
// Every amount is token base units as a decimal string, added with
// math/big in optimistic transactions (WATCH/MULTI): Redis has no bigints.
// For each pool, at any moment:
//
//	remaining = funded - spent - refunded >= 0
//
// funded grows once per deposit (txid + log index, deposit.go), spent once
// per sealed epoch (Settler.Apply), refunded once per close (Settler.refund).
//
// Keys (one Redis primary: pool writes watch the settler lock and a
// pseudo-account's balance in the same transaction, like the payout outbox):
//
//	sp:pool:<id>            hash: name, owner, refund, deposit, budget, state,
//	                        bounty, created, closed, funded, spent, refunded
//	sp:pool:<id>:t          set of info hashes (hex)
//	sp:pool:<id>:ep         hash epoch -> amount spent (idempotency of Apply)
//	sp:pool:<id>:tsp        hash info hash -> amount spent on its seeders
//	sp:pool:<id>:dep        list of deposit ids credited to the pool
//	sp:pools                set of pool ids (all states)
//	sp:pools:seq            INCR source of ids p1, p2, ...
//	sp:pools:addr:<address> deposit address -> pool id ("" while reserved)
//	sp:pools:bounty:<hex>   the torrent's bounty pool id

// Pool states: open pools earn and spend; a closing pool waits for the
// settler to refund what it holds; a closed pool is refunded (a late
// deposit makes it closing again, so that is refunded too).
const (
	PoolOpen    = "open"
	PoolClosing = "closing"
	PoolClosed  = "closed"
)

// PoolsChannel is the pub/sub channel announcing pool changes.
const PoolsChannel = "seedpay:pools"

// PoolAccountPrefix names the pseudo-account a closed pool's refund is
// credited to ("pool:<id>"); the payer pays it to the refund address.
const PoolAccountPrefix = "pool:"

// TorrentPointsPrefix marks the per-torrent attribution field of a user's
// epoch hash: "pts:@<info hash hex>" holds the points earned on a torrent
// that some content-owner pool covers. It is not a pool; settlement uses it
// to say which torrents a pool's spending went to.
const TorrentPointsPrefix = "@"

// Limits on pool input.
const (
	MaxPoolTorrents  = 1000
	MaxPoolNameLen   = 128
	maxAmountDigits  = 60 // 10^60 base units: far beyond any token supply
	maxListedEpochs  = 100
	maxListedDeposit = 1000
)

// Errors of pool operations; returned errors wrap one of them.
var (
	ErrPoolNotFound = errors.New("pool not found")
	ErrPoolInvalid  = errors.New("invalid pool")
	ErrPoolClosed   = errors.New("pool is closed")
	// ErrPoolBusy: the pool kept changing under an edit (deposits or
	// settlement writing its hash); the edit was retried and not applied.
	ErrPoolBusy = errors.New("pool is busy (changed by a concurrent deposit or settlement); try again")
	// ErrBountyTorrents: a bounty pool funds exactly its one torrent.
	ErrBountyTorrents = errors.New("a bounty pool funds exactly its one torrent: its torrents cannot be changed")
	// ErrAddressInUse: a new deposit address is already mapped (to a pool
	// or reserved); the keystore handed out an address twice.
	ErrAddressInUse = errors.New("deposit address already in use")
	// ErrNoKeystore: no deposit keystore is configured (pools.keystore_dir).
	ErrNoKeystore = errors.New("pool creation is off: no deposit keystore configured (pools.keystore_dir)")
)

func keyPool(id string) string             { return "sp:pool:" + id }
func keyPoolTorrents(id string) string     { return "sp:pool:" + id + ":t" }
func keyPoolEpochs(id string) string       { return "sp:pool:" + id + ":ep" }
func keyPoolTorrentSpend(id string) string { return "sp:pool:" + id + ":tsp" }
func keyPoolAddr(addr string) string       { return "sp:pools:addr:" + addr }
func keyPoolBounty(ih string) string       { return "sp:pools:bounty:" + ih }

const (
	keyPoolsSet = "sp:pools"
	keyPoolsSeq = "sp:pools:seq"
)

// DepositKeys makes deposit addresses. The key is written encrypted to a
// keystore (chain.NewKeystoreFile) and never leaves it: only the address
// comes back.
type DepositKeys interface {
	NewDepositAddress() (string, error)
}

// PoolSpec is what creating a pool takes.
type PoolSpec struct {
	Name           string
	Owner          string
	RefundAddress  string
	Torrents       []string // info hashes, 40 hex digits
	BudgetPerEpoch string   // base units, decimal
	Bounty         string   // set for a torrent's bounty pool
}

// PoolView is a pool as the API and the transparency page show it.
type PoolView struct {
	ID             string         `json:"id"`
	Name           string         `json:"name"`
	Owner          string         `json:"owner"`
	State          string         `json:"state"`
	Global         bool           `json:"global,omitempty"` // covers every torrent, funded by the operator
	Bounty         string         `json:"bounty,omitempty"` // the torrent a bounty pool funds
	DepositAddress string         `json:"deposit_address,omitempty"`
	RefundAddress  string         `json:"refund_address,omitempty"`
	BudgetPerEpoch string         `json:"budget_per_epoch"`
	Torrents       []string       `json:"torrents"`
	TorrentCount   int            `json:"torrent_count"`
	Funded         string         `json:"funded"`
	Spent          string         `json:"spent"`
	Refunded       string         `json:"refunded"`
	Remaining      string         `json:"remaining,omitempty"` // absent for the global pool: the operator funds it, it has no balance
	EpochSpend     []EpochSpend   `json:"epoch_spend"`         // newest first, at most 100
	TorrentSpend   []TorrentSpend `json:"torrent_spend"`       // largest first
	// Unattributed is spending no torrent accounts for (points on a
	// torrent that left the pool during the epoch); not an info hash.
	Unattributed string `json:"unattributed,omitempty"`
	Created      int64  `json:"created,omitempty"`
	Closed       int64  `json:"closed,omitempty"`
	// Refunds are the payouts of the refund to RefundAddress (newest first).
	Refunds []RefundPayout `json:"refunds,omitempty"`
}

// RefundPayout is a payout of a closed pool's refund.
type RefundPayout struct {
	Payout string `json:"payout"`
	Amount string `json:"amount"`
	State  string `json:"state"`
	TxID   string `json:"txid,omitempty"` // the live (or confirming) transaction
}

// EpochSpend is what a pool paid out in one sealed epoch.
type EpochSpend struct {
	Epoch  int64  `json:"epoch"`
	Amount string `json:"amount"`
}

// TorrentSpend is what a pool paid, all epochs, to one torrent's seeders.
type TorrentSpend struct {
	InfoHash string `json:"info_hash"`
	Amount   string `json:"amount"`
}

// Pools stores content-owner pools. It is safe for concurrent use.
type Pools struct {
	rdb          redis.UniversalClient
	keys         DepositKeys
	checkAddress func(string) error
	globalBudget string
	log          *zap.Logger
	now          func() time.Time
}

// NewPools returns the pool store. keys makes deposit addresses (nil: pools
// cannot be created, only read); checkAddress validates refund addresses
// (nil accepts any non-empty one); globalBudget is the global pool's
// configured budget, shown in its view.
func NewPools(rdb redis.UniversalClient, keys DepositKeys, checkAddress func(string) error, globalBudget string, log *zap.Logger) *Pools {
	if log == nil {
		log = zap.NewNop()
	}
	return &Pools{rdb: rdb, keys: keys, checkAddress: checkAddress, globalBudget: globalBudget, log: log, now: time.Now}
}

// ValidPoolID reports whether id can name a pool: "global" or "p" and
// digits, so it is always a safe "pts:<pool>" field suffix.
func ValidPoolID(id string) bool {
	if id == GlobalPool {
		return true
	}
	if len(id) < 2 || len(id) > 20 || id[0] != 'p' || id[1] == '0' {
		return false
	}
	for i := 1; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

// ParseAmount reads a non-negative integer of base units written in
// canonical decimal (no sign, no leading zeros, at most 60 digits).
func ParseAmount(s string) (*big.Int, error) {
	if s == "" || len(s) > maxAmountDigits {
		return nil, fmt.Errorf("amount %q: want 1..%d decimal digits", s, maxAmountDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, fmt.Errorf("amount %q: want decimal digits only (base units, no sign, no decimal point)", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return nil, fmt.Errorf("amount %q: no leading zeros", s)
	}
	v, _ := new(big.Int).SetString(s, 10)
	return v, nil
}

// normalizeTorrents lower-cases, checks and de-duplicates info hashes.
func normalizeTorrents(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, t := range in {
		t = strings.ToLower(t)
		if b, err := hex.DecodeString(t); err != nil || len(b) != 20 {
			return nil, fmt.Errorf("%w: torrent %q: want 40 hex digits", ErrPoolInvalid, t)
		}
		out = append(out, t)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (p *Pools) validate(spec *PoolSpec) error {
	if strings.TrimSpace(spec.Name) == "" || len(spec.Name) > MaxPoolNameLen*4 {
		return fmt.Errorf("%w: name must be 1..%d characters", ErrPoolInvalid, MaxPoolNameLen)
	}
	if strings.TrimSpace(spec.Owner) == "" || len(spec.Owner) > MaxPoolNameLen*4 {
		return fmt.Errorf("%w: owner must be 1..%d characters", ErrPoolInvalid, MaxPoolNameLen)
	}
	if spec.RefundAddress == "" {
		return fmt.Errorf("%w: refund_address is required", ErrPoolInvalid)
	}
	if p.checkAddress != nil {
		if err := p.checkAddress(spec.RefundAddress); err != nil {
			return fmt.Errorf("%w: refund_address: %w", ErrPoolInvalid, err)
		}
	}
	b, err := ParseAmount(spec.BudgetPerEpoch)
	if err != nil {
		return fmt.Errorf("%w: budget_per_epoch: %w", ErrPoolInvalid, err)
	}
	if b.Sign() == 0 {
		return fmt.Errorf("%w: budget_per_epoch must be positive", ErrPoolInvalid)
	}
	if len(spec.Torrents) > MaxPoolTorrents {
		return fmt.Errorf("%w: at most %d torrents", ErrPoolInvalid, MaxPoolTorrents)
	}
	spec.Torrents, err = normalizeTorrents(spec.Torrents)
	return err
}

// Create makes a pool with a fresh deposit address. The address is reserved
// (mapped to "") before the pool is written, so a deposit to an address
// whose pool never got written is recorded as unclaimed, not ignored.
func (p *Pools) Create(ctx context.Context, spec PoolSpec) (PoolView, error) {
	if p.keys == nil {
		return PoolView{}, ErrNoKeystore
	}
	if err := p.validate(&spec); err != nil {
		return PoolView{}, err
	}
	addr, err := p.keys.NewDepositAddress()
	if err != nil {
		return PoolView{}, fmt.Errorf("pools: new deposit key: %w", err)
	}
	reserved, err := p.rdb.SetNX(ctx, keyPoolAddr(addr), "", 0).Result()
	if err != nil {
		return PoolView{}, fmt.Errorf("pools: reserve deposit address: %w", err)
	}
	if !reserved { // never hand one address to two pools: its deposits would credit the wrong one
		p.log.Error("pools: the keystore returned a deposit address that is already mapped", zap.String("deposit_address", addr))
		return PoolView{}, fmt.Errorf("pools: reserve deposit address %s: %w", addr, ErrAddressInUse)
	}
	seq, err := p.rdb.Incr(ctx, keyPoolsSeq).Result()
	if err != nil {
		return PoolView{}, err
	}
	id := "p" + strconv.FormatInt(seq, 10)
	now := p.now().Unix()
	_, err = p.rdb.TxPipelined(ctx, func(pl redis.Pipeliner) error {
		pl.HSet(ctx, keyPool(id), map[string]any{
			"name": spec.Name, "owner": spec.Owner, "refund": spec.RefundAddress, "deposit": addr,
			"budget": spec.BudgetPerEpoch, "state": PoolOpen, "bounty": spec.Bounty, "created": now,
			"funded": "0", "spent": "0", "refunded": "0",
		})
		if len(spec.Torrents) > 0 {
			pl.SAdd(ctx, keyPoolTorrents(id), toAny(spec.Torrents)...)
		}
		pl.SAdd(ctx, keyPoolsSet, id)
		pl.Set(ctx, keyPoolAddr(addr), id, 0)
		return nil
	})
	if err != nil {
		return PoolView{}, fmt.Errorf("pools: create: %w", err)
	}
	p.publish(ctx, id)
	p.log.Info("pool created", zap.String("pool", id), zap.String("owner", spec.Owner), zap.String("deposit_address", addr),
		zap.Int("torrents", len(spec.Torrents)), zap.String("budget_per_epoch", spec.BudgetPerEpoch), zap.String("bounty", spec.Bounty))
	return p.Get(ctx, id)
}

// Bounty returns the open bounty pool of torrent ih (40 hex digits),
// creating it from spec (Name, Owner, Torrents and Bounty are filled in)
// when the torrent has none, or only a closed one. created says which.
func (p *Pools) Bounty(ctx context.Context, ih string, spec PoolSpec) (v PoolView, created bool, err error) {
	ts, err := normalizeTorrents([]string{ih})
	if err != nil {
		return PoolView{}, false, err
	}
	ih = ts[0]
	old, err := p.rdb.Get(ctx, keyPoolBounty(ih)).Result()
	switch {
	case err == nil:
		v, err := p.Get(ctx, old)
		if err != nil || v.State == PoolOpen {
			return v, false, err
		}
	case !errors.Is(err, redis.Nil):
		return PoolView{}, false, err
	}
	if spec.Name == "" {
		spec.Name = "bounty " + ih
	}
	if spec.Owner == "" {
		spec.Owner = "bounty"
	}
	spec.Torrents, spec.Bounty = []string{ih}, ih
	v, err = p.Create(ctx, spec)
	if err != nil {
		return PoolView{}, false, err
	}
	// Claim the torrent's bounty slot if it still holds what we saw.
	won := false
	err = p.rdb.Watch(ctx, func(tx *redis.Tx) error {
		cur, err := tx.Get(ctx, keyPoolBounty(ih)).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if cur != old {
			return nil
		}
		_, err = tx.TxPipelined(ctx, func(pl redis.Pipeliner) error {
			pl.Set(ctx, keyPoolBounty(ih), v.ID, 0)
			return nil
		})
		won = err == nil
		return err
	}, keyPoolBounty(ih))
	if err != nil && !errors.Is(err, redis.TxFailedErr) {
		return PoolView{}, false, err
	}
	if !won { // a concurrent request made one first: close ours (it holds nothing) and return theirs
		_, _ = p.Close(ctx, v.ID)
		id, err := p.rdb.Get(ctx, keyPoolBounty(ih)).Result()
		if err != nil {
			return PoolView{}, false, err
		}
		v, err := p.Get(ctx, id)
		return v, false, err
	}
	return v, true, nil
}

// SetTorrents adds (add) or removes (!add) torrents of an open pool. Points
// already earned in the open epoch stay with the pool.
func (p *Pools) SetTorrents(ctx context.Context, id string, torrents []string, add bool) (PoolView, error) {
	ts, err := normalizeTorrents(torrents)
	if err != nil {
		return PoolView{}, err
	}
	if len(ts) == 0 {
		return PoolView{}, fmt.Errorf("%w: no torrents given", ErrPoolInvalid)
	}
	err = p.watchRetry(ctx, id, func(tx *redis.Tx) error {
		m, err := tx.HMGet(ctx, keyPool(id), "state", "bounty").Result()
		if err != nil {
			return err
		}
		st, _ := m[0].(string)
		if st == "" {
			return fmt.Errorf("pool %s: %w", id, ErrPoolNotFound)
		}
		if b, _ := m[1].(string); b != "" {
			return fmt.Errorf("pool %s (bounty of %s): %w", id, b, ErrBountyTorrents)
		}
		if st != PoolOpen {
			return fmt.Errorf("pool %s is %s: %w", id, st, ErrPoolClosed)
		}
		if add {
			n, err := tx.SCard(ctx, keyPoolTorrents(id)).Result()
			if err != nil {
				return err
			}
			member, err := tx.SMIsMember(ctx, keyPoolTorrents(id), toAny(ts)...).Result()
			if err != nil {
				return err
			}
			fresh := 0
			for _, in := range member {
				if !in {
					fresh++
				}
			}
			if int(n)+fresh > MaxPoolTorrents { // only new members count
				return fmt.Errorf("%w: at most %d torrents per pool (has %d, %d new)", ErrPoolInvalid, MaxPoolTorrents, n, fresh)
			}
		}
		_, err = tx.TxPipelined(ctx, func(pl redis.Pipeliner) error {
			if add {
				pl.SAdd(ctx, keyPoolTorrents(id), toAny(ts)...)
			} else {
				pl.SRem(ctx, keyPoolTorrents(id), toAny(ts)...)
			}
			return nil
		})
		return err
	}, keyPool(id), keyPoolTorrents(id))
	if err != nil {
		return PoolView{}, err
	}
	p.publish(ctx, id)
	p.log.Info("pool torrents changed", zap.String("pool", id), zap.Bool("added", add), zap.Strings("torrents", ts))
	return p.Get(ctx, id)
}

// Close stops a pool from earning; the settler then refunds what it holds
// to the refund address (through the payout outbox) once no sealed epoch
// that may spend from it is still being credited. Closing again is a no-op.
func (p *Pools) Close(ctx context.Context, id string) (PoolView, error) {
	changed := false
	err := p.watchRetry(ctx, id, func(tx *redis.Tx) error {
		changed = false
		st, err := p.state(ctx, tx, id)
		if err != nil || st != PoolOpen {
			return err
		}
		changed = true
		_, err = tx.TxPipelined(ctx, func(pl redis.Pipeliner) error {
			pl.HSet(ctx, keyPool(id), "state", PoolClosing, "closed", p.now().Unix())
			return nil
		})
		return err
	}, keyPool(id))
	if err != nil {
		return PoolView{}, err
	}
	if changed {
		p.publish(ctx, id)
		p.log.Info("pool closing: the settler refunds what it holds", zap.String("pool", id))
	}
	return p.Get(ctx, id)
}

// poolEditAttempts bounds the optimistic transactions of one pool edit.
const poolEditAttempts = 5

// watchRetry runs fn in an optimistic transaction on keys, again when a
// concurrent write (a deposit, settlement) to a watched key aborted it,
// at most poolEditAttempts times; then it fails with ErrPoolBusy.
func (p *Pools) watchRetry(ctx context.Context, id string, fn func(*redis.Tx) error, keys ...string) error {
	for range poolEditAttempts {
		err := p.rdb.Watch(ctx, fn, keys...)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return fmt.Errorf("pool %s: %w", id, ErrPoolBusy)
}

func (p *Pools) state(ctx context.Context, c redis.Cmdable, id string) (string, error) {
	if !ValidPoolID(id) || id == GlobalPool {
		return "", fmt.Errorf("pool %q: %w", id, ErrPoolNotFound)
	}
	st, err := c.HGet(ctx, keyPool(id), "state").Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("pool %s: %w", id, ErrPoolNotFound)
	}
	return st, err
}

func (p *Pools) publish(ctx context.Context, id string) {
	if err := p.rdb.Publish(ctx, PoolsChannel, id).Err(); err != nil {
		p.log.Warn("pools: publish change (the periodic reload catches up)", zap.String("pool", id), zap.Error(err))
	}
}

// Get returns one pool; "global" is the global pool.
func (p *Pools) Get(ctx context.Context, id string) (PoolView, error) { return p.get(ctx, id, true) }

// GetPublic is Get without the refund payouts (which the public view does
// not show): one pipelined round trip.
func (p *Pools) GetPublic(ctx context.Context, id string) (PoolView, error) {
	return p.get(ctx, id, false)
}

func (p *Pools) get(ctx context.Context, id string, refunds bool) (PoolView, error) {
	if id == GlobalPool {
		return p.global(ctx)
	}
	if !ValidPoolID(id) {
		return PoolView{}, fmt.Errorf("pool %q: %w", id, ErrPoolNotFound)
	}
	var (
		meta *redis.MapStringStringCmd
		ts   *redis.StringSliceCmd
		ep   *redis.MapStringStringCmd
		tsp  *redis.MapStringStringCmd
	)
	_, err := p.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		meta = pl.HGetAll(ctx, keyPool(id))
		ts = pl.SMembers(ctx, keyPoolTorrents(id))
		ep = pl.HGetAll(ctx, keyPoolEpochs(id))
		tsp = pl.HGetAll(ctx, keyPoolTorrentSpend(id))
		return nil
	})
	if err != nil {
		return PoolView{}, err
	}
	m := meta.Val()
	if len(m) == 0 || m["state"] == "" {
		return PoolView{}, fmt.Errorf("pool %s: %w", id, ErrPoolNotFound)
	}
	v, err := viewOf(id, m)
	if err != nil {
		return PoolView{}, err
	}
	v.Torrents = ts.Val()
	slices.Sort(v.Torrents)
	v.TorrentCount = len(v.Torrents)
	v.EpochSpend, v.TorrentSpend = epochSpend(ep.Val()), torrentSpend(tsp.Val())
	// Pools settled before "unattributed" was a pool field kept that
	// spending as a torrent-spend field named "other".
	un, _ := new(big.Int).SetString(orZero(m["unattributed"]), 10)
	if old, ok := new(big.Int).SetString(tsp.Val()[legacyUnattributed], 10); ok && un != nil {
		un.Add(un, old)
	}
	if un != nil && un.Sign() > 0 {
		v.Unattributed = un.String()
	}
	if refunds && v.State != PoolOpen {
		pos, err := Payouts(ctx, p.rdb, "", PoolAccount(id), 10)
		if err != nil {
			return PoolView{}, fmt.Errorf("pool %s: refunds: %w", id, err)
		}
		for _, po := range pos {
			r := RefundPayout{Payout: po.ID, Amount: po.Amount, State: po.State}
			if n := len(po.Txs); n > 0 {
				r.TxID = po.Txs[n-1].TxID
			}
			v.Refunds = append(v.Refunds, r)
		}
	}
	return v, nil
}

func (p *Pools) global(ctx context.Context) (PoolView, error) {
	var (
		meta *redis.StringCmd
		ep   *redis.MapStringStringCmd
	)
	_, err := p.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		meta = pl.HGet(ctx, keyPool(GlobalPool), "spent")
		ep = pl.HGetAll(ctx, keyPoolEpochs(GlobalPool))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return PoolView{}, err
	}
	return PoolView{ID: GlobalPool, Name: "global", Owner: "operator", State: PoolOpen, Global: true,
		BudgetPerEpoch: orZero(p.globalBudget), Torrents: []string{}, Funded: "0", Spent: orZero(meta.Val()), Refunded: "0",
		EpochSpend: epochSpend(ep.Val()), TorrentSpend: []TorrentSpend{}}, nil
}

// List returns the global pool and every content-owner pool, by id.
func (p *Pools) List(ctx context.Context) ([]PoolView, error) {
	ids, err := p.IDs(ctx)
	if err != nil {
		return nil, err
	}
	g, err := p.global(ctx)
	if err != nil {
		return nil, err
	}
	out := []PoolView{g}
	for _, id := range ids {
		v, err := p.Get(ctx, id)
		if errors.Is(err, ErrPoolNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// summaryBatch is how many pools one pipelined round trip of Summaries reads.
const summaryBatch = 500

// Summaries lists the global pool and every content-owner pool, by id,
// without their torrents (only TorrentCount), per-torrent spend or refunds,
// with at most epochs epoch spends and deposits deposits (newest first)
// each. It reads in pipelines (a round trip per 500 pools, and an MGET per
// 1000 deposits), never a round trip per pool.
func (p *Pools) Summaries(ctx context.Context, epochs, deposits int) ([]PoolView, [][]Deposit, error) {
	ids, err := p.IDs(ctx)
	if err != nil {
		return nil, nil, err
	}
	g, err := p.global(ctx)
	if err != nil {
		return nil, nil, err
	}
	g.EpochSpend = g.EpochSpend[:min(len(g.EpochSpend), epochs)]
	views, deps := []PoolView{g}, [][]Deposit{nil}
	var depIDs []string
	for start := 0; start < len(ids); start += summaryBatch {
		batch := ids[start:min(start+summaryBatch, len(ids))]
		metas := make([]*redis.MapStringStringCmd, len(batch))
		counts := make([]*redis.IntCmd, len(batch))
		eps := make([]*redis.MapStringStringCmd, len(batch))
		lists := make([]*redis.StringSliceCmd, len(batch))
		if _, err := p.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i, id := range batch {
				metas[i] = pl.HGetAll(ctx, keyPool(id))
				counts[i] = pl.SCard(ctx, keyPoolTorrents(id))
				eps[i] = pl.HGetAll(ctx, keyPoolEpochs(id))
				if deposits > 0 {
					lists[i] = pl.LRange(ctx, keyPoolDeposits(id), 0, int64(deposits)-1)
				}
			}
			return nil
		}); err != nil {
			return nil, nil, err
		}
		for i, id := range batch {
			m := metas[i].Val()
			if len(m) == 0 || m["state"] == "" || !ValidPoolID(id) || id == GlobalPool {
				continue
			}
			v, err := viewOf(id, m)
			if err != nil {
				return nil, nil, err
			}
			v.TorrentCount = int(counts[i].Val())
			es := epochSpend(eps[i].Val())
			v.EpochSpend = es[:min(len(es), epochs)]
			var ds []Deposit
			if deposits > 0 {
				for _, d := range lists[i].Val() {
					ds = append(ds, Deposit{ID: d})
					depIDs = append(depIDs, d)
				}
			}
			views, deps = append(views, v), append(deps, ds)
		}
	}
	bodies, err := loadDeposits(ctx, p.rdb, depIDs)
	if err != nil {
		return nil, nil, err
	}
	for _, ds := range deps {
		for j := range ds {
			ds[j] = bodies[ds[j].ID]
		}
	}
	return views, deps, nil
}

// IDs returns every content-owner pool id in settlement order (p1, p2, ...).
func (p *Pools) IDs(ctx context.Context) ([]string, error) {
	ids, err := p.rdb.SMembers(ctx, keyPoolsSet).Result()
	if err != nil {
		return nil, err
	}
	sortPoolIDs(ids)
	return ids, nil
}

// sortPoolIDs orders "p<n>" ids by n (shorter first, then bytewise).
func sortPoolIDs(ids []string) {
	slices.SortFunc(ids, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
}

// PoolAccount is the pseudo-account a pool's refund is paid from.
func PoolAccount(id string) string { return PoolAccountPrefix + id }

// PoolOfAccount returns the pool of a pseudo-account ("pool:<id>").
func PoolOfAccount(user string) (string, bool) {
	id, ok := strings.CutPrefix(user, PoolAccountPrefix)
	return id, ok && ValidPoolID(id) && id != GlobalPool
}

// PayoutAddress implements AddressBook for pool pseudo-accounts: their
// refund address. Other users go to next.
type PoolAddressBook struct {
	Pools *Pools
	Next  AddressBook
}

// PayoutAddress implements AddressBook.
func (b PoolAddressBook) PayoutAddress(ctx context.Context, user string) (string, error) {
	if id, ok := PoolOfAccount(user); ok {
		addr, err := b.Pools.rdb.HGet(ctx, keyPool(id), "refund").Result()
		if errors.Is(err, redis.Nil) {
			return "", nil
		}
		return addr, err
	}
	if b.Next == nil {
		return "", nil
	}
	return b.Next.PayoutAddress(ctx, user)
}

func remainingOf(m map[string]string) (*big.Int, error) {
	var vals [3]*big.Int
	for i, f := range []string{"funded", "spent", "refunded"} {
		v, ok := new(big.Int).SetString(orZero(m[f]), 10)
		if !ok {
			return nil, fmt.Errorf("stored %s %q is not an integer", f, m[f])
		}
		vals[i] = v
	}
	return vals[0].Sub(vals[0], vals[1]).Sub(vals[0], vals[2]), nil
}

func epochSpend(m map[string]string) []EpochSpend {
	out := make([]EpochSpend, 0, len(m))
	for f, v := range m {
		if n, err := strconv.ParseInt(f, 10, 64); err == nil {
			out = append(out, EpochSpend{Epoch: n, Amount: v})
		}
	}
	slices.SortFunc(out, func(a, b EpochSpend) int { return int(b.Epoch - a.Epoch) })
	if len(out) > maxListedEpochs {
		out = out[:maxListedEpochs]
	}
	return out
}

// viewOf is the view of a pool's meta hash m: everything but its lists.
func viewOf(id string, m map[string]string) (PoolView, error) {
	v := PoolView{ID: id, Name: m["name"], Owner: m["owner"], State: m["state"], Bounty: m["bounty"],
		DepositAddress: m["deposit"], RefundAddress: m["refund"], BudgetPerEpoch: m["budget"],
		Funded: orZero(m["funded"]), Spent: orZero(m["spent"]), Refunded: orZero(m["refunded"])}
	v.Created, _ = strconv.ParseInt(m["created"], 10, 64)
	v.Closed, _ = strconv.ParseInt(m["closed"], 10, 64)
	rem, err := remainingOf(m)
	if err != nil {
		return PoolView{}, fmt.Errorf("pool %s: %w", id, err)
	}
	v.Remaining = rem.String()
	return v, nil
}

func torrentSpend(m map[string]string) []TorrentSpend {
	out := make([]TorrentSpend, 0, len(m))
	amt := make(map[string]*big.Int, len(m))
	for f, v := range m {
		a, ok := new(big.Int).SetString(v, 10)
		if !ok || len(f) != 40 { // only info hashes (an old "other" field is not one)
			continue
		}
		amt[f] = a
		out = append(out, TorrentSpend{InfoHash: f, Amount: v})
	}
	slices.SortFunc(out, func(a, b TorrentSpend) int {
		if c := amt[b.InfoHash].Cmp(amt[a.InfoHash]); c != 0 {
			return c
		}
		return strings.Compare(a.InfoHash, b.InfoHash)
	})
	return out
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// torrentPoints picks the attribution fields "pts:@<hex>" of a user's epoch
// hash, by info hash.
func torrentPoints(h map[string]string) map[string]string {
	out := map[string]string{}
	for f, v := range h {
		if ih, ok := strings.CutPrefix(f, "pts:"+TorrentPointsPrefix); ok {
			out[ih] = v
		}
	}
	return out
}
