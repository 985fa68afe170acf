package rewards

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// The deposit watcher credits pools from the chain. It reads the reward
// token's Transfer events block by block from a cursor up to
// head - confirmations (deeper than any reorg TRON sees: a block is
// solidified after 19 confirmations), and for each transfer to a deposit
// address it made:
//
//   - credits the address's pool once: the marker sp:deposit:<txid>:<log
//     index> is written in the same transaction as the new funded total, so
//     a transfer seen twice (restart, overlapping scans, a node delivering
//     duplicates, several watchers) is credited once;
//   - or, when the address has no pool (its pool was never written, e.g. a
//     crash between making the key and writing the pool), records it in the
//     unclaimed list (sp:deposits:unclaimed) for an admin, and logs it;
//
// then moves the cursor (sp:deposits:cursor, the next block to read) past
// the range. Credit first, cursor second: a crash in between re-reads the
// range and the markers make the repeat a no-op. Transfers to other
// addresses are not ours and are skipped.

const (
	keyDepositCursor    = "sp:deposits:cursor"
	keyDepositUnclaimed = "sp:deposits:unclaimed"
)

func keyDeposit(id string) string      { return "sp:deposit:" + id }
func keyPoolDeposits(id string) string { return "sp:pool:" + id + ":dep" }

// DepositConfig tunes the deposit watcher.
type DepositConfig struct {
	// Enabled runs the watcher (with rewards enabled and a chain node).
	Enabled bool `yaml:"enabled"`
	// Confirmations: blocks on top of a block before its transfers count.
	Confirmations int64 `yaml:"confirmations"`
	// PollInterval between scans once caught up.
	PollInterval time.Duration `yaml:"poll_interval"`
	// MaxRange is the most blocks read per call (the chain client reads at
	// most 100).
	MaxRange int64 `yaml:"max_range"`
	// StartBlock is the first block a new ledger scans; 0 starts at the
	// confirmed head when the watcher first runs. It only applies while no
	// cursor is stored: to read old blocks again, RescanDeposits (POST
	// /api/v1/deposits/rescan) moves the cursor back.
	StartBlock int64 `yaml:"start_block"`
	// MinRefund (base units; configs sets it from pools.min_refund): a
	// deposit to a closed (refunded) pool reopens its refund only once the
	// pool holds at least this much unrefunded; below it the deposit is
	// credited and listed (held) but not refunded automatically, so dust
	// sent to a closed pool cannot force a refund payout each. "" or "1":
	// every late deposit is refunded.
	MinRefund string `yaml:"-"`
}

// DefaultDepositConfig is off (it needs a chain node: the config files
// turn it on); it waits 20 blocks (one more than TRON's 19 to solidify) and
// polls every 3s (one block).
func DefaultDepositConfig() DepositConfig {
	return DepositConfig{Enabled: false, Confirmations: 20, PollInterval: 3 * time.Second, MaxRange: 100}
}

// Validate names the bad key relative to the pools section.
func (c DepositConfig) Validate() error {
	var errs []error
	if c.Confirmations < 0 || c.Confirmations > 10000 {
		errs = append(errs, fmt.Errorf("pools.deposits.confirmations %d: must be 0..10000", c.Confirmations))
	}
	if c.PollInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("pools.deposits.poll_interval %s: at least 100ms", c.PollInterval))
	}
	if c.MaxRange < 1 || c.MaxRange > 100 {
		errs = append(errs, fmt.Errorf("pools.deposits.max_range %d: must be 1..100", c.MaxRange))
	}
	if c.StartBlock < 0 {
		errs = append(errs, fmt.Errorf("pools.deposits.start_block %d: must be >= 0", c.StartBlock))
	}
	if c.MinRefund != "" {
		if v, err := ParseAmount(c.MinRefund); err != nil || v.Sign() == 0 {
			errs = append(errs, fmt.Errorf("pools.min_refund %q: want a positive integer of base units", c.MinRefund))
		}
	}
	return errors.Join(errs...)
}

// Deposit is one transfer to a deposit address, credited or unclaimed.
type Deposit struct {
	ID       string `json:"id"` // "<txid>:<log index>"
	TxID     string `json:"txid"`
	LogIndex int    `json:"log_index"`
	Block    int64  `json:"block"`
	From     string `json:"from"`
	To       string `json:"to"`
	Amount   string `json:"amount"`         // base units
	Pool     string `json:"pool,omitempty"` // "" when unclaimed
	Seen     int64  `json:"seen"`           // unix time the watcher recorded it
	// Held: it reached a closed pool while the pool held less than
	// pools.min_refund unrefunded, so it was credited but not refunded
	// (a later deposit that brings the pool to min_refund refunds it all).
	Held bool `json:"held,omitempty"`
}

// DepositID names a transfer uniquely.
func DepositID(t TokenTransfer) string { return t.TxID + ":" + strconv.Itoa(t.LogIndex) }

// DepositWatcher credits pools from confirmed token transfers.
type DepositWatcher struct {
	rdb redis.UniversalClient
	src TransferSource
	cfg DepositConfig
	log *zap.Logger
	now func() time.Time

	minRefund *big.Int

	credited  prometheus.Counter
	unclaimed prometheus.Counter
	held      prometheus.Counter
	errors    prometheus.Counter
	height    prometheus.Gauge
	lag       prometheus.Gauge
}

// NewDepositWatcher returns a watcher reading src.
func NewDepositWatcher(rdb redis.UniversalClient, src TransferSource, cfg DepositConfig, reg prometheus.Registerer, log *zap.Logger) (*DepositWatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	minRefund := big.NewInt(1)
	if cfg.MinRefund != "" {
		minRefund, _ = ParseAmount(cfg.MinRefund)
	}
	w := &DepositWatcher{rdb: rdb, src: src, cfg: cfg, log: log, now: time.Now, minRefund: minRefund,
		held: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "deposits", Name: "held_total",
			Help: "Deposits to a closed pool credited but not refunded: the pool holds less than pools.min_refund unrefunded."}),
		credited: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "deposits", Name: "credited_total",
			Help: "Deposits credited to a pool (once per transfer)."}),
		unclaimed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "deposits", Name: "unclaimed_total",
			Help: "Transfers to a deposit address without a pool, recorded for an admin (GET /api/v1/deposits?unclaimed=1)."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "deposits", Name: "watcher_errors_total",
			Help: "Failed scans (node or Redis unavailable); the watcher retries from its cursor."}),
		height: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "seedpay", Subsystem: "deposits", Name: "watcher_height",
			Help: "Last block the deposit watcher has scanned."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "seedpay", Subsystem: "deposits", Name: "watcher_lag_blocks",
			Help: "Chain head minus the last scanned block (confirmations included)."}),
	}
	for _, c := range []prometheus.Collector{w.credited, w.unclaimed, w.held, w.errors, w.height, w.lag} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Run scans every PollInterval until ctx ends.
func (w *DepositWatcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.PollInterval)
	defer t.Stop()
	for {
		if _, err := w.Poll(ctx); err != nil && ctx.Err() == nil {
			w.errors.Inc()
			w.log.Warn("deposit scan failed; retrying from the cursor", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Cursor returns the next block to scan (0 before the first scan).
func (w *DepositWatcher) Cursor(ctx context.Context) (int64, error) {
	n, err := w.rdb.Get(ctx, keyDepositCursor).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

// Poll scans from the cursor up to the confirmed head and returns how many
// transfers it credited or recorded as unclaimed.
func (w *DepositWatcher) Poll(ctx context.Context) (int, error) {
	head, err := w.src.HeadBlock(ctx)
	if err != nil {
		return 0, fmt.Errorf("deposits: head: %w", err)
	}
	safe := head - w.cfg.Confirmations
	start := w.cfg.StartBlock
	if start == 0 {
		start = max(safe+1, 0)
	}
	if err := w.rdb.SetNX(ctx, keyDepositCursor, start, 0).Err(); err != nil {
		return 0, fmt.Errorf("deposits: cursor: %w", err)
	}
	cur, err := w.Cursor(ctx)
	if err != nil {
		return 0, fmt.Errorf("deposits: cursor: %w", err)
	}
	done := 0
	for cur <= safe {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		to := min(cur+w.cfg.MaxRange-1, safe)
		ts, err := w.src.TokenTransfers(ctx, cur, to)
		if err != nil {
			return done, fmt.Errorf("deposits: blocks %d..%d: %w", cur, to, err)
		}
		n, err := w.creditAll(ctx, ts)
		done += n
		if err != nil {
			return done, err
		}
		if cur, err = w.advance(ctx, cur, to+1); err != nil {
			return done, err
		}
		w.height.Set(float64(to))
	}
	w.lag.Set(float64(head - (cur - 1)))
	return done, nil
}

// advance moves the cursor from `from` (where the range just read began)
// to next, forward only, and returns where to read on. Another watcher may
// be ahead (then the cursor stays where it is, or moves to next if that is
// further); a rescan may have moved it back below from (then it stays,
// and reading continues from it).
func (w *DepositWatcher) advance(ctx context.Context, from, next int64) (int64, error) {
	on := next
	err := w.rdb.Watch(ctx, func(tx *redis.Tx) error {
		cur, err := tx.Get(ctx, keyDepositCursor).Int64()
		switch {
		case errors.Is(err, redis.Nil):
			cur = from
		case err != nil:
			return err
		}
		if cur < from { // moved back by a rescan: read from there
			on = cur
			return nil
		}
		if cur >= next {
			on = cur
			return nil
		}
		on = next
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, keyDepositCursor, next, 0)
			return nil
		})
		return err
	}, keyDepositCursor)
	if errors.Is(err, redis.TxFailedErr) {
		// Moved meanwhile (another watcher, or a rescan): read from it.
		cur, err := w.Cursor(ctx)
		if err != nil {
			return 0, fmt.Errorf("deposits: cursor: %w", err)
		}
		return cur, nil
	}
	if err != nil {
		return 0, fmt.Errorf("deposits: move cursor: %w", err)
	}
	return on, nil
}

//go:embed lua/rescan.lua
var rescanLua string

// rescanScript is immutable (source and hash), shared by every client.
var rescanScript = redis.NewScript(rescanLua)

// ErrRescanForward: a rescan may only move the deposit cursor back.
var ErrRescanForward = errors.New("rescan: from_block is at or after the cursor (a rescan only moves it back)")

// RescanDeposits moves the deposit watcher's cursor back to from, so the
// next scan reads blocks from..cursor again: transfers it missed (a node
// that answered an empty block, a pool whose address was mapped late) are
// credited, and the markers sp:deposit:<txid>:<log index> make the ones
// already credited a no-op. It never moves the cursor forward (from at or
// past the cursor is ErrRescanForward) and, before the first scan, sets
// the first block to read. It returns the cursor before and after.
func RescanDeposits(ctx context.Context, rdb redis.UniversalClient, from int64) (prev, next int64, err error) {
	if from < 0 {
		return 0, 0, fmt.Errorf("rescan: from_block %d: must be >= 0", from)
	}
	res, err := rescanScript.Run(ctx, rdb, []string{keyDepositCursor}, strconv.FormatInt(from, 10)).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("deposits: rescan: %w", err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("deposits: rescan: script returned %v", res)
	}
	cur := res[1]
	if res[0] == 0 {
		return cur, cur, fmt.Errorf("%w: cursor %d, from_block %d", ErrRescanForward, cur, from)
	}
	return max(cur, 0), from, nil
}

// creditAll credits the transfers that go to one of our deposit addresses.
func (w *DepositWatcher) creditAll(ctx context.Context, ts []TokenTransfer) (int, error) {
	if len(ts) == 0 {
		return 0, nil
	}
	owners := make([]*redis.StringCmd, len(ts))
	_, err := w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range ts {
			owners[i] = p.Get(ctx, keyPoolAddr(t.To))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("deposits: address lookup: %w", err)
	}
	n := 0
	for i, t := range ts {
		pool, err := owners[i].Result()
		if errors.Is(err, redis.Nil) {
			continue // not a deposit address
		}
		if err != nil {
			return n, err
		}
		ok, err := w.credit(ctx, t, pool)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// Credit records one transfer to a deposit address: it credits the pool
// owning t.To, or records it as unclaimed. It returns false when the
// transfer was already recorded (or is not to a deposit address).
func (w *DepositWatcher) Credit(ctx context.Context, t TokenTransfer) (bool, error) {
	pool, err := w.rdb.Get(ctx, keyPoolAddr(t.To)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return w.credit(ctx, t, pool)
}

func (w *DepositWatcher) credit(ctx context.Context, t TokenTransfer, pool string) (bool, error) {
	id := DepositID(t)
	if t.Amount == nil || t.Amount.Sign() <= 0 {
		w.log.Info("deposit of no tokens ignored", zap.String("deposit", id), zap.String("to", t.To))
		return false, nil
	}
	d := Deposit{ID: id, TxID: t.TxID, LogIndex: t.LogIndex, Block: t.Block, From: t.From, To: t.To, Amount: t.Amount.String(), Seen: w.now().Unix()}
	fresh := false
	err := w.rdb.Watch(ctx, func(tx *redis.Tx) error {
		fresh = false
		if n, err := tx.Exists(ctx, keyDeposit(id)).Result(); err != nil || n == 1 {
			return err // already recorded: credited once
		}
		var m map[string]string
		if pool != "" {
			var err error
			if m, err = tx.HGetAll(ctx, keyPool(pool)).Result(); err != nil {
				return err
			}
		}
		d.Pool, d.Held = "", false
		var funded *big.Int
		reopen := false
		if m["state"] != "" {
			f, ok := new(big.Int).SetString(orZero(m["funded"]), 10)
			if !ok {
				return fmt.Errorf("pool %s: stored funded %q", pool, m["funded"])
			}
			funded, d.Pool = f.Add(f, t.Amount), pool
			if m["state"] == PoolClosed { // closed and refunded: refund this too, if it is worth a payout
				after := map[string]string{"funded": funded.String(), "spent": m["spent"], "refunded": m["refunded"]}
				rem, err := remainingOf(after)
				if err != nil {
					return fmt.Errorf("pool %s: %w", pool, err)
				}
				reopen = rem.Cmp(w.minRefund) >= 0
				d.Held = !reopen
			}
		}
		body, _ := json.Marshal(d)
		fresh = true
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, keyDeposit(id), body, 0)
			if funded == nil {
				p.LPush(ctx, keyDepositUnclaimed, id)
				return nil
			}
			p.HSet(ctx, keyPool(pool), "funded", funded.String())
			p.LPush(ctx, keyPoolDeposits(pool), id)
			if reopen {
				p.HSet(ctx, keyPool(pool), "state", PoolClosing)
			}
			return nil
		})
		return err
	}, keyDeposit(id), keyPool(pool))
	if err != nil {
		return false, fmt.Errorf("deposits: record %s: %w", id, err)
	}
	if !fresh {
		return false, nil
	}
	if d.Pool == "" {
		w.unclaimed.Inc()
		w.log.Warn("deposit to an address without a pool recorded as unclaimed", zap.String("deposit", id),
			zap.String("to", t.To), zap.String("from", t.From), zap.String("amount", d.Amount), zap.Int64("block", t.Block))
		return true, nil
	}
	w.credited.Inc()
	if d.Held {
		w.held.Inc()
		w.log.Warn("deposit to a closed pool held: below pools.min_refund, not refunded automatically", zap.String("pool", d.Pool),
			zap.String("deposit", id), zap.String("from", t.From), zap.String("amount", d.Amount), zap.String("min_refund", w.minRefund.String()))
	}
	w.log.Info("deposit credited", zap.String("pool", d.Pool), zap.String("deposit", id), zap.String("from", t.From),
		zap.String("amount", d.Amount), zap.Int64("block", t.Block))
	_ = w.rdb.Publish(ctx, PoolsChannel, d.Pool).Err()
	return true, nil
}

// Deposits lists deposits newest first: a pool's (pool != ""), or the
// unclaimed ones (pool == ""), at most limit (1..maxListedDeposit; a
// limit below 1 lists one, never the whole list).
func Deposits(ctx context.Context, rdb redis.UniversalClient, pool string, limit int64) ([]Deposit, error) {
	key := keyDepositUnclaimed
	if pool != "" {
		key = keyPoolDeposits(pool)
	}
	ids, err := rdb.LRange(ctx, key, 0, min(max(limit, 1), maxListedDeposit)-1).Result()
	if err != nil {
		return nil, err
	}
	byID, err := loadDeposits(ctx, rdb, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Deposit, 0, len(ids))
	for _, id := range ids {
		out = append(out, byID[id])
	}
	return out, nil
}

// depositBatch is the most deposit keys one MGET reads.
const depositBatch = 1000

// loadDeposits reads deposit records by id, an MGET per 1000.
func loadDeposits(ctx context.Context, rdb redis.UniversalClient, ids []string) (map[string]Deposit, error) {
	out := make(map[string]Deposit, len(ids))
	for start := 0; start < len(ids); start += depositBatch {
		batch := ids[start:min(start+depositBatch, len(ids))]
		keys := make([]string, len(batch))
		for i, id := range batch {
			keys[i] = keyDeposit(id)
		}
		vals, err := rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fmt.Errorf("deposits: %w", err)
		}
		for i, v := range vals {
			body, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("deposit %s: %w", batch[i], redis.Nil)
			}
			var d Deposit
			if err := json.Unmarshal([]byte(body), &d); err != nil {
				return nil, fmt.Errorf("deposit %s: %w", batch[i], err)
			}
			out[batch[i]] = d
		}
	}
	return out, nil
}

// Deposits lists a pool's deposits (pool != "") or the unclaimed ones
// (pool == ""), newest first, at most limit (<= 1000).
func (p *Pools) Deposits(ctx context.Context, pool string, limit int64) ([]Deposit, error) {
	if pool != "" {
		if _, err := p.state(ctx, p.rdb, pool); err != nil {
			return nil, err
		}
	}
	return Deposits(ctx, p.rdb, pool, limit)
}

// RescanDeposits moves the deposit cursor back to from (RescanDeposits).
func (p *Pools) RescanDeposits(ctx context.Context, from int64) (prev, next int64, err error) {
	prev, next, err = RescanDeposits(ctx, p.rdb, from)
	if err == nil {
		p.log.Info("deposit cursor moved back: the watcher rescans", zap.Int64("from", prev), zap.Int64("to", next))
	}
	return prev, next, err
}
