package rewards

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Payout states. pending -> signed -> broadcast -> confirmed | failed.
const (
	PayoutPending   = "pending"   // balance debited; no live transaction
	PayoutSigned    = "signed"    // a transaction is signed and stored, maybe not sent
	PayoutBroadcast = "broadcast" // a node accepted the transaction
	PayoutConfirmed = "confirmed" // solidified with receipt SUCCESS
	PayoutFailed    = "failed"    // will not be paid; the amount went back to the balance
)

// PayoutStates lists every state, in order.
var PayoutStates = []string{PayoutPending, PayoutSigned, PayoutBroadcast, PayoutConfirmed, PayoutFailed}

// Payout is one transfer of a user's balance, with every transaction ever
// signed for it.
type Payout struct {
	ID        string     `json:"id"`
	User      string     `json:"user"`
	Address   string     `json:"address"`
	Amount    string     `json:"amount"` // base units
	State     string     `json:"state"`
	Reason    string     `json:"reason,omitempty"` // why it failed or waits
	Created   int64      `json:"created"`
	Updated   int64      `json:"updated"`
	Confirmed int64      `json:"confirmed,omitempty"`
	Txs       []PayoutTx `json:"txs"`
}

// PayoutTx is one signed transaction of a payout. Only the last may be live;
// the others are dead (expired and absent from every node).
type PayoutTx struct {
	TxID       string `json:"txid"`
	Raw        string `json:"raw"` // hex of the signed protobuf
	Expiration int64  `json:"expiration"`
	Dead       bool   `json:"dead,omitempty"`
}

func (p *Payout) live() *PayoutTx {
	if n := len(p.Txs); n > 0 && !p.Txs[n-1].Dead {
		return &p.Txs[n-1]
	}
	return nil
}

// Payout keys. The outbox needs cross-key transactions between a user's
// balance and the payout records, so it assumes one Redis primary (as the
// production ledger check requires).
func keyPayout(id string) string         { return "sp:payout:" + id }
func keyPayoutState(state string) string { return "sp:payouts:" + state }
func keyUserPayouts(user string) string  { return "sp:{u:" + user + "}:payouts" }
func keyPayoutNext() string              { return "sp:payouts:seq" }

// KeyPayoutCandidates holds users whose balance grew since their last
// payout; the settler adds them as it credits.
const KeyPayoutCandidates = "sp:payouts:candidates"

func newPayoutID(seq int64) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return strconv.FormatInt(seq, 10) + "-" + hex.EncodeToString(b[:]), nil
}

// PayerConfig tunes the outbox.
type PayerConfig struct {
	// MinPayout is the smallest balance paid out, in base units (decimal).
	MinPayout string `yaml:"min_payout"`
	// Interval between passes over the outbox.
	Interval time.Duration `yaml:"interval"`
	// Concurrency bounds the payouts in flight in one pass.
	Concurrency int `yaml:"concurrency"`
	// ResourcePause is how long payouts pause after the hot wallet ran out
	// of energy/TRX, instead of burning through failures.
	ResourcePause time.Duration `yaml:"resource_pause"`
}

// DefaultPayerConfig pays balances of at least 1 token (18 decimals).
func DefaultPayerConfig() PayerConfig {
	return PayerConfig{MinPayout: "1000000000000000000", Interval: 10 * time.Second, Concurrency: 4, ResourcePause: 5 * time.Minute}
}

// Validate names the first bad key relative to the payouts section.
func (c PayerConfig) Validate() error {
	if v, ok := new(big.Int).SetString(c.MinPayout, 10); !ok || v.Sign() <= 0 {
		return fmt.Errorf("payouts.min_payout %q: want a positive integer of base units", c.MinPayout)
	}
	if c.Interval < 100*time.Millisecond {
		return fmt.Errorf("payouts.interval %s: at least 100ms", c.Interval)
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		return fmt.Errorf("payouts.concurrency %d: 1..64", c.Concurrency)
	}
	if c.ResourcePause < time.Second {
		return fmt.Errorf("payouts.resource_pause %s: at least 1s", c.ResourcePause)
	}
	return nil
}

// Payer moves balances to users' addresses through the outbox. Every step is
// stored before the next one acts on the chain, and every step can be
// repeated, so a crash anywhere leaves each payout where the next run
// resumes it; nothing is paid twice and nothing is lost.
type Payer struct {
	rdb       redis.UniversalClient
	chain     Chain
	addresses AddressBook
	cfg       PayerConfig
	min       *big.Int
	log       *zap.Logger
	now       func() time.Time

	pausedUntil time.Time
	mu          sync.Mutex

	// crashPoint, when set (tests only), is called between a chain action
	// and the store that records it: the crash tests kill the process there.
	crashPoint func(step string)

	states       *prometheus.GaugeVec
	chainErrors  *prometheus.CounterVec
	confirmation prometheus.Histogram
	paused       prometheus.Gauge
}

// NewPayer returns a payer.
func NewPayer(rdb redis.UniversalClient, chain Chain, addresses AddressBook, cfg PayerConfig, reg prometheus.Registerer, log *zap.Logger) (*Payer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	min, _ := new(big.Int).SetString(cfg.MinPayout, 10)
	p := &Payer{
		rdb: rdb, chain: chain, addresses: addresses, cfg: cfg, min: min, log: log, now: time.Now,
		states: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "seedpay", Subsystem: "payouts", Name: "by_state",
			Help: "Payouts in each state."}, []string{"state"}),
		chainErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "payouts", Name: "chain_errors_total",
			Help: "Chain errors seen by the payer, by kind (unavailable, rejected, resources, failed_receipt, other)."}, []string{"kind"}),
		confirmation: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "seedpay", Subsystem: "payouts", Name: "confirmation_seconds",
			Help: "From payout creation to solidified confirmation.", Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "seedpay", Subsystem: "payouts", Name: "paused",
			Help: "1 while payouts are paused because the hot wallet lacks energy or TRX: fund it."}),
	}
	for _, c := range []prometheus.Collector{p.states, p.chainErrors, p.confirmation, p.paused} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Errors of payout operations.
var (
	ErrPayoutNotFound = errors.New("payout not found")
	ErrBelowMinimum   = errors.New("balance below min_payout")
	ErrNoAddress      = errors.New("no payout address linked")
)

// LoadPayout reads one payout.
func LoadPayout(ctx context.Context, rdb redis.Cmdable, id string) (*Payout, error) {
	body, err := rdb.Get(ctx, keyPayout(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("payout %s: %w", id, ErrPayoutNotFound)
	}
	if err != nil {
		return nil, err
	}
	var p Payout
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("payout %s: %w", id, err)
	}
	return &p, nil
}

// Create debits the user's whole balance into a new pending payout, in one
// transaction: either both happen or neither.
func (p *Payer) Create(ctx context.Context, user string) (*Payout, error) {
	addr, err := p.addresses.PayoutAddress(ctx, user)
	if err != nil {
		return nil, err
	}
	if addr == "" {
		return nil, fmt.Errorf("user %s: %w", user, ErrNoAddress)
	}
	seq, err := p.rdb.Incr(ctx, keyPayoutNext()).Result()
	if err != nil {
		return nil, err
	}
	id, err := newPayoutID(seq)
	if err != nil {
		return nil, err
	}
	var out *Payout
	err = p.rdb.Watch(ctx, func(tx *redis.Tx) error {
		bal, err := readBalance(ctx, tx, user)
		if err != nil {
			return err
		}
		if bal.Cmp(p.minFor(user)) < 0 {
			return fmt.Errorf("user %s balance %s: %w", user, bal, ErrBelowMinimum)
		}
		now := p.now()
		out = &Payout{ID: id, User: user, Address: addr, Amount: bal.String(), State: PayoutPending, Created: now.Unix(), Updated: now.Unix(), Txs: []PayoutTx{}}
		body, _ := json.Marshal(out)
		_, err = tx.TxPipelined(ctx, func(pl redis.Pipeliner) error {
			pl.Set(ctx, KeyBalance(user), "0", 0)
			pl.SRem(ctx, KeyPayoutCandidates, user)
			pl.Set(ctx, keyPayout(id), body, 0)
			pl.ZAdd(ctx, keyPayoutState(PayoutPending), redis.Z{Score: float64(now.Unix()), Member: id})
			pl.ZAdd(ctx, keyUserPayouts(user), redis.Z{Score: float64(seq), Member: id})
			return nil
		})
		return err
	}, KeyBalance(user))
	if err != nil {
		return nil, err
	}
	p.log.Info("payout created", zap.String("payout", id), zap.String("user_id", user), zap.String("amount", out.Amount), zap.String("address", addr))
	return out, nil
}

// transition rewrites payout id from state `from` with change, atomically;
// it fails with redis.TxFailedErr if someone else moved it first.
// creditBack returns the amount to the user's balance in the same step.
func (p *Payer) transition(ctx context.Context, id, from string, creditBack bool, change func(*Payout)) (*Payout, error) {
	var out *Payout
	err := p.rdb.Watch(ctx, func(tx *redis.Tx) error {
		cur, err := LoadPayout(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur.State != from {
			return fmt.Errorf("payout %s is %s, not %s: %w", id, cur.State, from, redis.TxFailedErr)
		}
		change(cur)
		cur.Updated = p.now().Unix()
		var bal *big.Int
		if creditBack {
			if bal, err = readBalance(ctx, tx, cur.User); err != nil {
				return err
			}
			amt, _ := new(big.Int).SetString(cur.Amount, 10)
			bal.Add(bal, amt)
		}
		body, _ := json.Marshal(cur)
		_, err = tx.TxPipelined(ctx, func(pl redis.Pipeliner) error {
			pl.Set(ctx, keyPayout(id), body, 0)
			if cur.State != from {
				pl.ZRem(ctx, keyPayoutState(from), id)
				pl.ZAdd(ctx, keyPayoutState(cur.State), redis.Z{Score: float64(cur.Created), Member: id})
			}
			if bal != nil {
				pl.Set(ctx, KeyBalance(cur.User), bal.String(), 0)
				pl.SAdd(ctx, KeyPayoutCandidates, cur.User)
			}
			return nil
		})
		out = cur
		return err
	}, keyPayout(id), keyUserBalanceOf(ctx, p.rdb, id))
	return out, err
}

// minFor is the smallest balance paid out: min_payout, except for a closed
// pool's refund ("pool:<id>"), which is paid whatever its size (at least 1).
func (p *Payer) minFor(user string) *big.Int {
	if _, ok := PoolOfAccount(user); ok {
		return big.NewInt(1)
	}
	return p.min
}

// keyUserBalanceOf names the balance key a payout may credit back, so the
// transition watches it too.
func keyUserBalanceOf(ctx context.Context, rdb redis.Cmdable, id string) string {
	if cur, err := LoadPayout(ctx, rdb, id); err == nil {
		return KeyBalance(cur.User)
	}
	return keyPayout(id)
}

// Step moves one payout as far as the chain lets it now. It is safe to run
// again at any point, from any process: each action re-reads the stored
// state, and a transition loses cleanly to a concurrent one.
func (p *Payer) Step(ctx context.Context, id string) (*Payout, error) {
	for range 4 { // pending -> signed -> broadcast -> confirmed in one pass at most
		cur, err := LoadPayout(ctx, p.rdb, id)
		if err != nil {
			return nil, err
		}
		next, err := p.step(ctx, cur)
		if err != nil || next == nil || next.State == cur.State {
			if next == nil {
				next = cur
			}
			return next, err
		}
	}
	return LoadPayout(ctx, p.rdb, id)
}

func (p *Payer) step(ctx context.Context, cur *Payout) (*Payout, error) {
	switch cur.State {
	case PayoutPending:
		if p.isPaused() {
			return nil, nil
		}
		amount, ok := new(big.Int).SetString(cur.Amount, 10)
		if !ok {
			return nil, fmt.Errorf("payout %s: amount %q", cur.ID, cur.Amount)
		}
		stx, err := p.chain.SignTransfer(ctx, cur.Address, amount)
		if err != nil {
			return p.chainError(ctx, cur, "sign", err)
		}
		p.crash("signed-not-stored")
		// Stored before any broadcast: from here the txid is known forever.
		return p.transition(ctx, cur.ID, PayoutPending, false, func(x *Payout) {
			x.State, x.Reason = PayoutSigned, ""
			x.Txs = append(x.Txs, PayoutTx{TxID: stx.TxID, Raw: hex.EncodeToString(stx.Raw), Expiration: stx.Expiration.Unix()})
		})
	case PayoutSigned:
		if p.isPaused() {
			return nil, nil
		}
		live := cur.live()
		if live == nil {
			return nil, fmt.Errorf("payout %s signed without a live transaction", cur.ID)
		}
		raw, err := hex.DecodeString(live.Raw)
		if err != nil {
			return nil, fmt.Errorf("payout %s: stored transaction: %w", cur.ID, err)
		}
		p.crash("stored-not-broadcast")
		if err := p.chain.Broadcast(ctx, raw); err != nil {
			if errors.Is(err, ErrChainRejected) {
				// Refused now, but an earlier send may have landed, or it
				// expired: let the chain decide before failing the payout.
				return p.settleUnsent(ctx, cur, live, err)
			}
			return p.chainError(ctx, cur, "broadcast", err)
		}
		p.crash("broadcast-not-stored")
		return p.transition(ctx, cur.ID, PayoutSigned, false, func(x *Payout) { x.State, x.Reason = PayoutBroadcast, "" })
	case PayoutBroadcast:
		live := cur.live()
		if live == nil {
			return nil, fmt.Errorf("payout %s broadcast without a live transaction", cur.ID)
		}
		st, err := p.chain.Status(ctx, live.TxID)
		if err != nil {
			return p.chainError(ctx, cur, "status", err)
		}
		switch st.State {
		case TxConfirmed:
			p.crash("confirmed-not-stored")
			return p.confirm(ctx, cur, PayoutBroadcast)
		case TxFailed:
			p.chainErrors.WithLabelValues("failed_receipt").Inc()
			return p.fail(ctx, cur, PayoutBroadcast, "transaction "+live.TxID+" failed on chain: "+st.Reason)
		case TxPending:
			return nil, nil
		default: // no node has it: dropped, or expired
			return p.unknown(ctx, cur, live)
		}
	}
	return nil, nil // confirmed and failed are final
}

// settleUnsent handles a broadcast the node refused.
func (p *Payer) settleUnsent(ctx context.Context, cur *Payout, live *PayoutTx, cause error) (*Payout, error) {
	st, err := p.chain.Status(ctx, live.TxID)
	if err != nil {
		return p.chainError(ctx, cur, "status", err)
	}
	switch st.State {
	case TxPending, TxConfirmed, TxFailed:
		// It is on chain after all: follow it.
		return p.transition(ctx, cur.ID, PayoutSigned, false, func(x *Payout) { x.State, x.Reason = PayoutBroadcast, "" })
	}
	if dead, err := p.expired(ctx, live); err != nil {
		return p.chainError(ctx, cur, "status", err)
	} else if dead {
		return p.markDead(ctx, cur, PayoutSigned, live.TxID)
	}
	// One node refusing these bytes now does not prove no other node holds
	// them: failing (and crediting back) here could pay twice. The payout
	// stays signed, with the reason visible, until the transaction expires
	// unseen; then it is re-signed.
	p.chainErrors.WithLabelValues("rejected").Inc()
	reason := "broadcast refused, waiting for expiry: " + cause.Error()
	if cur.Reason != reason {
		_, _ = p.transition(ctx, cur.ID, PayoutSigned, false, func(x *Payout) { x.Reason = reason })
	}
	return nil, nil
}

// unknown handles a broadcast transaction that no node knows.
func (p *Payer) unknown(ctx context.Context, cur *Payout, live *PayoutTx) (*Payout, error) {
	dead, err := p.expired(ctx, live)
	if err != nil {
		return p.chainError(ctx, cur, "status", err)
	}
	if dead {
		return p.markDead(ctx, cur, PayoutBroadcast, live.TxID)
	}
	// Not expired: send the same bytes again; a node that has it says DUP.
	raw, err := hex.DecodeString(live.Raw)
	if err != nil {
		return nil, err
	}
	if err := p.chain.Broadcast(ctx, raw); err != nil && !errors.Is(err, ErrChainRejected) {
		return p.chainError(ctx, cur, "rebroadcast", err)
	}
	return nil, nil
}

// expired: a solidified block is past the expiration, so the transaction can
// never be included any more.
func (p *Payer) expired(ctx context.Context, live *PayoutTx) (bool, error) {
	solid, err := p.chain.SolidifiedTime(ctx)
	if err != nil {
		return false, err
	}
	return solid.Unix() > live.Expiration, nil
}

// markDead keeps the dead txid and sends the payout back to pending, where a
// new transaction (new txid) is signed.
func (p *Payer) markDead(ctx context.Context, cur *Payout, from, txid string) (*Payout, error) {
	p.log.Warn("payout transaction expired unseen; signing a new one", zap.String("payout", cur.ID), zap.String("txid", txid))
	return p.transition(ctx, cur.ID, from, false, func(x *Payout) {
		x.Txs[len(x.Txs)-1].Dead = true
		x.State, x.Reason = PayoutPending, "transaction "+txid+" expired without being included"
	})
}

func (p *Payer) confirm(ctx context.Context, cur *Payout, from string) (*Payout, error) {
	out, err := p.transition(ctx, cur.ID, from, false, func(x *Payout) {
		x.State, x.Reason, x.Confirmed = PayoutConfirmed, "", p.now().Unix()
	})
	if err == nil {
		p.confirmation.Observe(float64(out.Confirmed - out.Created))
		p.log.Info("payout confirmed", zap.String("payout", cur.ID), zap.String("user_id", cur.User), zap.String("amount", cur.Amount), zap.String("txid", out.live().TxID))
	}
	return out, err
}

// fail ends a payout that will not be paid and returns its amount to the
// balance in the same transaction.
func (p *Payer) fail(ctx context.Context, cur *Payout, from, reason string) (*Payout, error) {
	p.log.Warn("payout failed; amount credited back", zap.String("payout", cur.ID), zap.String("user_id", cur.User), zap.String("reason", reason))
	return p.transition(ctx, cur.ID, from, true, func(x *Payout) { x.State, x.Reason = PayoutFailed, reason })
}

// chainError records why a payout waits; resource shortages pause payouts.
func (p *Payer) chainError(ctx context.Context, cur *Payout, op string, err error) (*Payout, error) {
	kind := "other"
	switch {
	case errors.Is(err, ErrChainUnavailable):
		kind = "unavailable"
	case errors.Is(err, ErrChainResources):
		kind = "resources"
		p.pause()
	case errors.Is(err, ErrChainRejected):
		kind = "rejected"
	}
	p.chainErrors.WithLabelValues(kind).Inc()
	reason := op + ": " + err.Error()
	if cur.Reason != reason {
		_, _ = p.transition(ctx, cur.ID, cur.State, false, func(x *Payout) { x.Reason = reason })
	}
	if kind == "rejected" && cur.State == PayoutPending {
		// Signing itself was refused (bad address, ...): it cannot succeed.
		return p.fail(ctx, cur, PayoutPending, reason)
	}
	return nil, fmt.Errorf("payout %s: %s: %w", cur.ID, op, err)
}

// SetCrashPoint installs f to be called between each chain action and the
// store that records it (steps: signed-not-stored, stored-not-broadcast,
// broadcast-not-stored, confirmed-not-stored). Only crash tests use it: they
// kill the process there and check that the next run repairs everything.
func (p *Payer) SetCrashPoint(f func(step string)) { p.crashPoint = f }

func (p *Payer) crash(step string) {
	if p.crashPoint != nil {
		p.crashPoint(step)
	}
}

func (p *Payer) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pausedUntil = p.now().Add(p.cfg.ResourcePause)
	p.paused.Set(1)
	p.log.Error("payouts paused: the hot wallet lacks energy or TRX", zap.Time("until", p.pausedUntil))
}

func (p *Payer) isPaused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.now().Before(p.pausedUntil) {
		return true
	}
	p.paused.Set(0)
	return false
}

// Pass creates payouts for every candidate over the minimum with an address,
// then steps every unfinished payout, at most Concurrency at a time.
func (p *Payer) Pass(ctx context.Context) error {
	users, err := p.rdb.SMembers(ctx, KeyPayoutCandidates).Result()
	if err != nil {
		return err
	}
	for _, u := range users {
		if _, err := p.Create(ctx, u); err != nil && !errors.Is(err, ErrBelowMinimum) && !errors.Is(err, ErrNoAddress) {
			p.log.Warn("payout not created", zap.String("user_id", u), zap.Error(err))
		}
	}
	var ids []string
	for _, st := range []string{PayoutPending, PayoutSigned, PayoutBroadcast} {
		got, err := p.rdb.ZRange(ctx, keyPayoutState(st), 0, -1).Result()
		if err != nil {
			return err
		}
		ids = append(ids, got...)
	}
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := p.Step(ctx, id); err != nil && !errors.Is(err, redis.TxFailedErr) {
				p.log.Debug("payout waits", zap.String("payout", id), zap.Error(err))
			}
		}()
	}
	wg.Wait()
	return p.refreshGauges(ctx)
}

func (p *Payer) refreshGauges(ctx context.Context) error {
	for _, st := range PayoutStates {
		n, err := p.rdb.ZCard(ctx, keyPayoutState(st)).Result()
		if err != nil {
			return err
		}
		p.states.WithLabelValues(st).Set(float64(n))
	}
	return nil
}

// Run makes a pass every interval until ctx ends.
func (p *Payer) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		if err := p.Pass(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("payout pass failed", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// List returns payouts in a state, or a user's payouts, newest first.
func (p *Payer) List(ctx context.Context, state, user string, limit int64) ([]Payout, error) {
	return Payouts(ctx, p.rdb, state, user, limit)
}

// Retry steps one payout now, lifting a resource pause first: the operator
// calls it after funding the hot wallet or fixing the node.
func (p *Payer) Retry(ctx context.Context, id string) (*Payout, error) {
	if _, err := LoadPayout(ctx, p.rdb, id); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.pausedUntil = time.Time{}
	p.mu.Unlock()
	return p.Step(ctx, id)
}

// Payouts lists payouts in a state (newest first), or a user's payouts.
func Payouts(ctx context.Context, rdb redis.UniversalClient, state, user string, limit int64) ([]Payout, error) {
	key := keyPayoutState(state)
	if user != "" {
		key = keyUserPayouts(user)
	}
	ids, err := rdb.ZRevRange(ctx, key, 0, limit-1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]Payout, 0, len(ids))
	for _, id := range ids {
		po, err := LoadPayout(ctx, rdb, id)
		if err != nil {
			return nil, err
		}
		out = append(out, *po)
	}
	return out, nil
}
