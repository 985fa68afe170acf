package rewards

import (
	"context"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

//go:embed lua/lock.lua
var lockLua string

// Errors callers check with errors.Is.
var (
	ErrNotSealed = errors.New("epoch not sealed")
	ErrNotLeader = errors.New("settler lost its lock")
	ErrNoUser    = errors.New("user not in epoch")
)

// Record is the sealed settlement of one epoch. It is written once, as one
// key, so an epoch is either unsealed or sealed with all of it; it contains
// nothing from the wall clock, so the same inputs give the same bytes.
type Record struct {
	Epoch         int64        `json:"epoch"`
	Start         int64        `json:"start"`
	End           int64        `json:"end"`
	Root          string       `json:"root"`
	TotalPoints   string       `json:"total_points"`
	TotalCredited string       `json:"total_credited"`
	Pools         []PoolRecord `json:"pools"`
	Users         []UserRecord `json:"users"`
}

// PoolRecord is one pool's budget and spending in an epoch, base units.
type PoolRecord struct {
	ID        string `json:"id"`
	Budget    string `json:"budget"`    // this epoch's allowance
	DustIn    string `json:"dust_in"`   // carried from the previous epoch
	Available string `json:"available"` // budget + dust_in
	Points    string `json:"points"`    // micro-points earned on the pool's torrents
	Credited  string `json:"credited"`  // paid to users
	DustOut   string `json:"dust_out"`  // carried to the next epoch
	// Remaining is a content-owner pool's balance at seal time (Budget is
	// min(budget_per_epoch, Remaining)); empty for the global pool.
	Remaining string `json:"remaining,omitempty"`
	// Torrents splits Credited by torrent (info hash hex -> base units):
	// each user's credit from the pool divided over the pool's torrents by
	// the user's points on each. Content-owner pools only. (Records sealed
	// before Unattributed existed may hold it here under the key "other".)
	Torrents map[string]string `json:"torrents,omitempty"`
	// Unattributed is the part of Credited no torrent's points account for
	// (the user's points were on a torrent that left the pool during the
	// epoch); it is not an info hash, so it is kept apart from Torrents.
	Unattributed string `json:"unattributed,omitempty"`
}

// UserRecord is one user's line in a sealed epoch.
type UserRecord struct {
	User        string            `json:"user"`
	Address     string            `json:"address"`
	SeedSeconds int64             `json:"seed_seconds"`
	Points      map[string]string `json:"points"` // pool -> micro-points
	Amount      string            `json:"amount"` // base units, all pools
}

// AddressBook returns a user's payout address ("" while none is linked).
type AddressBook interface {
	PayoutAddress(ctx context.Context, user string) (string, error)
}

// Settler seals epochs and credits balances. Several may run; a Redis lock
// with a fencing token makes one the leader, and every write is idempotent,
// so a crash at any point is repaired by the next run.
type Settler struct {
	rdb       redis.UniversalClient
	cfg       Config
	log       *zap.Logger
	now       func() time.Time
	addresses AddressBook
	lock      *redis.Script
	// Margin is waited beyond grace before sealing, covering flushes in flight.
	margin  time.Duration
	lockTTL time.Duration

	settleSeconds prometheus.Histogram
	sealed        prometheus.Counter
	credited      *prometheus.CounterVec
}

// NewSettler returns a settler; addresses may be nil (no payout addresses yet).
func NewSettler(rdb redis.UniversalClient, cfg Config, addresses AddressBook, reg prometheus.Registerer, log *zap.Logger) (*Settler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Settler{
		rdb: rdb, cfg: cfg, log: log, now: time.Now, addresses: addresses,
		lock:    redis.NewScript(lockLua),
		margin:  2*cfg.FlushInterval + 2*time.Second,
		lockTTL: 30 * time.Second,
		settleSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "seedpay", Subsystem: "settlement", Name: "duration_seconds",
			Help: "Time to seal and credit one epoch.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		sealed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "settlement", Name: "epochs_sealed_total",
			Help: "Epochs sealed and credited by this process."}),
		credited: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "settlement", Name: "points_total",
			Help: "Micro-points settled, by pool (global, or owner for all content-owner pools)."}, []string{"pool"}),
	}
	for _, c := range []prometheus.Collector{s.settleSeconds, s.sealed, s.credited} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Sealable reports whether epoch n may be sealed now.
func (s *Settler) Sealable(n int64) bool {
	end := time.Unix(s.cfg.Epoch.Start(n+1), 0)
	return !s.now().Before(end.Add(s.cfg.Epoch.Grace + s.margin))
}

// Run leads settlement until ctx ends: it takes the lock when free, seals
// every due epoch and keeps the lock alive.
func (s *Settler) Run(ctx context.Context) error {
	if err := s.Init(ctx); err != nil {
		return err
	}
	tick := time.NewTicker(min(s.cfg.Epoch.Length/4, 5*time.Second))
	defer tick.Stop()
	var token int64
	defer func() {
		if token != 0 {
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.lock.Run(rctx, s.rdb, []string{KeySettleLock}, token, 0)
			cancel()
		}
	}()
	for {
		if token == 0 {
			t, err := s.Acquire(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("settler: lock", zap.Error(err))
			}
			token = t
		} else if ok, err := s.renew(ctx, token); err != nil || !ok {
			s.log.Warn("settler: lost the lock", zap.Int64("token", token), zap.Error(err))
			token = 0
		}
		if token != 0 {
			if err := s.SettleDue(ctx, token); err != nil && ctx.Err() == nil {
				s.log.Error("settler: settlement failed; retrying", zap.Error(err))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Init records the first epoch of a new ledger: epochs before it are never
// settled (there is nothing in them).
func (s *Settler) Init(ctx context.Context) error {
	cur := s.cfg.Epoch.EpochOf(s.now().Unix())
	if err := s.rdb.SetNX(ctx, KeyFirstEpoch, cur, 0).Err(); err != nil {
		return fmt.Errorf("settler: init: %w", err)
	}
	return nil
}

// Acquire takes the leader lock if it is free and returns its fencing token
// (0 when another settler holds it).
func (s *Settler) Acquire(ctx context.Context) (int64, error) {
	token, err := s.rdb.Incr(ctx, KeySettleFence).Result()
	if err != nil {
		return 0, err
	}
	ok, err := s.rdb.SetNX(ctx, KeySettleLock, token, s.lockTTL).Result()
	if err != nil || !ok {
		return 0, err
	}
	return token, nil
}

func (s *Settler) renew(ctx context.Context, token int64) (bool, error) {
	n, err := s.lock.Run(ctx, s.rdb, []string{KeySettleLock}, token, s.lockTTL.Milliseconds()).Int()
	return n == 1, err
}

// keyNext is the next epoch to seal; it moves only after an epoch is sealed
// and fully credited.
const keyNext = "sp:settle:next"

// SettleDue seals and credits every due epoch in order.
func (s *Settler) SettleDue(ctx context.Context, token int64) error {
	next, err := s.rdb.Get(ctx, keyNext).Int64()
	if errors.Is(err, redis.Nil) {
		next, err = s.rdb.Get(ctx, KeyFirstEpoch).Int64()
	}
	if err != nil {
		return fmt.Errorf("settler: next epoch: %w", err)
	}
	for s.Sealable(next) {
		start := time.Now()
		rec, err := s.seal(ctx, next, token)
		if err != nil {
			return err
		}
		if err := s.Apply(ctx, rec, token); err != nil {
			return err
		}
		if err := s.rdb.Set(ctx, keyNext, next+1, 0).Err(); err != nil {
			return fmt.Errorf("settler: advance: %w", err)
		}
		s.settleSeconds.Observe(time.Since(start).Seconds())
		s.sealed.Inc()
		for _, p := range rec.Pools {
			if f, ok := new(big.Float).SetString(p.Points); ok {
				v, _ := f.Float64()
				label := p.ID
				if label != GlobalPool {
					label = "owner" // one series for every content-owner pool: they are many
				}
				s.credited.WithLabelValues(label).Add(v)
			}
		}
		s.log.Info("epoch settled", zap.Int64("epoch", rec.Epoch), zap.Int("users", len(rec.Users)),
			zap.String("credited", rec.TotalCredited), zap.String("root", rec.Root))
		next++
	}
	// Every sealed epoch is credited now: closing pools can be refunded
	// without racing a record that still spends from them.
	return s.refundClosing(ctx, token, next)
}

// seal returns the record of epoch n, computing and writing it if it is not
// sealed yet. A record, once written, is never rewritten. It is written
// only while token holds the leader lock (else ErrNotLeader, nothing
// written), so a settler that lost its lock cannot seal an epoch after the
// leader refunded a pool the record spends from. There is no unfenced way
// to seal.
func (s *Settler) seal(ctx context.Context, n int64, token int64) (*Record, error) {
	if rec, err := LoadRecord(ctx, s.rdb, n); err == nil {
		return rec, nil
	} else if !errors.Is(err, ErrNotSealed) {
		return nil, err
	}
	rec, err := s.Compute(ctx, n)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	ok, err := s.setRecordFenced(ctx, n, body, token)
	if err != nil {
		return nil, fmt.Errorf("settler: write record %d: %w", n, err)
	}
	if !ok { // another settler sealed it first: theirs stands
		return LoadRecord(ctx, s.rdb, n)
	}
	return rec, nil
}

func (s *Settler) setRecordFenced(ctx context.Context, n int64, body []byte, token int64) (bool, error) {
	var set *redis.BoolCmd
	err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		if err := s.checkLeader(ctx, tx, token); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			set = p.SetNX(ctx, KeyEpochRecord(n), body, 0)
			return nil
		})
		return err
	}, KeySettleLock)
	if err != nil {
		return false, err
	}
	return set.Val(), nil
}

// checkLeader fails with ErrNotLeader unless token holds the lock.
func (s *Settler) checkLeader(ctx context.Context, tx *redis.Tx, token int64) error {
	holder, err := tx.Get(ctx, KeySettleLock).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	if holder != strconv.FormatInt(token, 10) {
		return ErrNotLeader
	}
	return nil
}

// LoadRecord reads a sealed record.
func LoadRecord(ctx context.Context, rdb redis.UniversalClient, n int64) (*Record, error) {
	body, err := rdb.Get(ctx, KeyEpochRecord(n)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("epoch %d: %w", n, ErrNotSealed)
	}
	if err != nil {
		return nil, fmt.Errorf("read record %d: %w", n, err)
	}
	var rec Record
	if err := json.Unmarshal(body, &rec); err != nil {
		return nil, fmt.Errorf("decode record %d: %w", n, err)
	}
	return &rec, nil
}

// Compute builds epoch n's record from the ledger without writing anything.
func (s *Settler) Compute(ctx context.Context, n int64) (*Record, error) {
	users, err := s.rdb.SMembers(ctx, KeyEpochUsers(n)).Result()
	if err != nil {
		return nil, fmt.Errorf("settler: users of %d: %w", n, err)
	}
	slices.Sort(users)
	hashes, err := loadUserEpochs(ctx, s.rdb, users, n)
	if err != nil {
		return nil, err
	}
	dustIn, err := s.carriedDust(ctx, n)
	if err != nil {
		return nil, err
	}
	rate, err := s.cfg.Global.Budget()
	if err != nil {
		return nil, err
	}

	rec := &Record{Epoch: n, Start: s.cfg.Epoch.Start(n), End: s.cfg.Epoch.Start(n + 1)}
	lines := make(map[string]*UserRecord, len(users))
	amounts := make(map[string]*big.Int, len(users))
	for i, u := range users {
		secs, _ := strconv.ParseInt(hashes[i]["seed_s"], 10, 64)
		line := &UserRecord{User: u, SeedSeconds: secs, Points: poolPoints(hashes[i])}
		lines[u] = line
		amounts[u] = new(big.Int)
	}

	owners, err := loadOpenPools(ctx, s.rdb)
	if err != nil {
		return nil, fmt.Errorf("settler: pools of epoch %d: %w", n, err)
	}
	totalPoints, totalCredited := new(big.Int), new(big.Int)
	settle := func(pool string, available *big.Int) (*big.Int, []Credit, *big.Int, error) {
		var shares []Share
		points := new(big.Int)
		for _, u := range users {
			p, ok := new(big.Int).SetString(lines[u].Points[pool], 10)
			if !ok || p.Sign() <= 0 {
				continue
			}
			shares = append(shares, Share{User: u, Points: p})
			points.Add(points, p)
		}
		credits, dust, err := Divide(available, shares)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("settler: divide pool %s of epoch %d: %w", pool, n, err)
		}
		for _, c := range credits {
			amounts[c.User].Add(amounts[c.User], c.Amount)
			totalCredited.Add(totalCredited, c.Amount)
		}
		totalPoints.Add(totalPoints, points)
		return points, credits, dust, nil
	}

	// The global pool: its configured rate plus the dust it carried.
	in := dustIn[GlobalPool]
	if in == nil {
		in = new(big.Int)
	}
	available := new(big.Int).Add(rate, in)
	points, credits, dust, err := settle(GlobalPool, available)
	if err != nil {
		return nil, err
	}
	rec.Pools = append(rec.Pools, PoolRecord{ID: GlobalPool, Budget: rate.String(), DustIn: in.String(), Available: available.String(),
		Points: points.String(), Credited: sumCredits(credits).String(), DustOut: dust.String()})

	// Content-owner pools: min(budget, remaining), only among points earned
	// on their torrents. Nothing assigned (no points) stays in the pool's
	// remaining balance, so it never carries as dust.
	for _, op := range owners {
		budget := op.budget
		if op.remaining.Cmp(budget) < 0 {
			budget = new(big.Int).Set(op.remaining)
		}
		if budget.Sign() < 0 {
			budget = new(big.Int)
		}
		points, credits, _, err := settle(op.id, budget)
		if err != nil {
			return nil, err
		}
		credited := sumCredits(credits)
		pr := PoolRecord{ID: op.id, Budget: budget.String(), DustIn: "0", Available: budget.String(),
			Points: points.String(), Credited: credited.String(), DustOut: "0", Remaining: op.remaining.String()}
		if credited.Sign() > 0 {
			if pr.Torrents, pr.Unattributed, err = attribute(credits, hashes, users, op.torrents); err != nil {
				return nil, fmt.Errorf("settler: pool %s of epoch %d: %w", op.id, n, err)
			}
		}
		rec.Pools = append(rec.Pools, pr)
	}

	leaves := make([][32]byte, 0, len(users))
	for _, u := range users {
		line := lines[u]
		if len(line.Points) == 0 && line.SeedSeconds == 0 {
			continue // announced, earned nothing: not part of the record
		}
		if s.addresses != nil {
			if line.Address, err = s.addresses.PayoutAddress(ctx, u); err != nil {
				return nil, fmt.Errorf("settler: address of %s: %w", u, err)
			}
		}
		line.Amount = amounts[u].String()
		rec.Users = append(rec.Users, *line)
		leaves = append(leaves, Leaf(n, u, line.Address, amounts[u]))
	}
	root := NewTree(leaves).Root()
	rec.Root = hex.EncodeToString(root[:])
	rec.TotalPoints, rec.TotalCredited = totalPoints.String(), totalCredited.String()
	return rec, nil
}

func sumCredits(cs []Credit) *big.Int {
	sum := new(big.Int)
	for _, c := range cs {
		sum.Add(sum, c.Amount)
	}
	return sum
}

// openPool is a content-owner pool as settlement sees it at seal time.
type openPool struct {
	id                string
	budget, remaining *big.Int
	torrents          map[string]bool
}

// loadOpenPools reads every open content-owner pool, in id order.
func loadOpenPools(ctx context.Context, rdb redis.UniversalClient) ([]openPool, error) {
	ids, err := rdb.SMembers(ctx, keyPoolsSet).Result()
	if err != nil {
		return nil, err
	}
	sortPoolIDs(ids)
	metas := make([]*redis.MapStringStringCmd, len(ids))
	sets := make([]*redis.StringSliceCmd, len(ids))
	if len(ids) > 0 {
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				metas[i] = p.HGetAll(ctx, keyPool(id))
				sets[i] = p.SMembers(ctx, keyPoolTorrents(id))
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	var out []openPool
	for i, id := range ids {
		m := metas[i].Val()
		if m["state"] != PoolOpen || !ValidPoolID(id) || id == GlobalPool {
			continue
		}
		budget, err := ParseAmount(m["budget"])
		if err != nil {
			return nil, fmt.Errorf("pool %s: %w", id, err)
		}
		rem, err := remainingOf(m)
		if err != nil {
			return nil, fmt.Errorf("pool %s: %w", id, err)
		}
		ts := map[string]bool{}
		for _, t := range sets[i].Val() {
			ts[t] = true
		}
		out = append(out, openPool{id: id, budget: budget, remaining: rem, torrents: ts})
	}
	return out, nil
}

// attribute splits a pool's credits by torrent: each user's amount is
// divided (exactly, largest remainder) over the pool's torrents by the
// user's attribution points on each ("pts:@<hex>"); an amount with no such
// points (the torrent left the pool during the epoch) is unattributed
// (returned apart, "" when none: never mixed with info hashes).
func attribute(credits []Credit, hashes []map[string]string, users []string, torrents map[string]bool) (map[string]string, string, error) {
	idx := make(map[string]int, len(users))
	for i, u := range users {
		idx[u] = i
	}
	sum := map[string]*big.Int{}
	unattributed := new(big.Int)
	add := func(k string, v *big.Int) {
		if sum[k] == nil {
			sum[k] = new(big.Int)
		}
		sum[k].Add(sum[k], v)
	}
	for _, c := range credits {
		if c.Amount.Sign() == 0 {
			continue
		}
		var shares []Share
		for ih, v := range torrentPoints(hashes[idx[c.User]]) {
			p, ok := new(big.Int).SetString(v, 10)
			if ok && p.Sign() > 0 && torrents[ih] {
				shares = append(shares, Share{User: ih, Points: p})
			}
		}
		parts, dust, err := Divide(c.Amount, shares)
		if err != nil {
			return nil, "", err
		}
		for _, p := range parts {
			add(p.User, p.Amount)
		}
		unattributed.Add(unattributed, dust)
	}
	out := make(map[string]string, len(sum))
	for k, v := range sum {
		if v.Sign() > 0 {
			out[k] = v.String()
		}
	}
	if unattributed.Sign() == 0 {
		return out, "", nil
	}
	return out, unattributed.String(), nil
}

// carriedDust reads what the previous epoch carried forward per pool.
func (s *Settler) carriedDust(ctx context.Context, n int64) (map[string]*big.Int, error) {
	first, err := s.rdb.Get(ctx, KeyFirstEpoch).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("settler: first epoch: %w", err)
	}
	if errors.Is(err, redis.Nil) || n <= first {
		return map[string]*big.Int{}, nil
	}
	prev, err := LoadRecord(ctx, s.rdb, n-1)
	if err != nil {
		return nil, fmt.Errorf("settler: epoch %d needs %d sealed first: %w", n, n-1, err)
	}
	out := map[string]*big.Int{}
	for _, p := range prev.Pools {
		d, ok := new(big.Int).SetString(p.DustOut, 10)
		if !ok {
			return nil, fmt.Errorf("settler: record %d: dust_out %q", n-1, p.DustOut)
		}
		out[p.ID] = d
	}
	return out, nil
}

func loadUserEpochs(ctx context.Context, rdb redis.UniversalClient, users []string, n int64) ([]map[string]string, error) {
	out := make([]map[string]string, 0, len(users))
	for start := 0; start < len(users); start += 1000 {
		batch := users[start:min(start+1000, len(users))]
		cmds := make([]*redis.MapStringStringCmd, len(batch))
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, u := range batch {
				cmds[i] = p.HGetAll(ctx, KeyUserEpoch(u, n))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("settler: points of epoch %d: %w", n, err)
		}
		for _, c := range cmds {
			out = append(out, c.Val())
		}
	}
	return out, nil
}

// Apply credits every user of a sealed record exactly once. Each user is
// one optimistic transaction that also checks the fencing token: a settler
// that lost its lock cannot write.
func (s *Settler) Apply(ctx context.Context, rec *Record, token int64) error {
	applied, err := s.rdb.Exists(ctx, KeyEpochApplied(rec.Epoch)).Result()
	if err != nil {
		return fmt.Errorf("settler: applied %d: %w", rec.Epoch, err)
	}
	if applied == 1 {
		return nil
	}
	if err := s.applyPoolSpend(ctx, rec, token); err != nil {
		return err
	}
	field := strconv.FormatInt(rec.Epoch, 10)
	tok := strconv.FormatInt(token, 10)
	for _, u := range rec.Users {
		amount, ok := new(big.Int).SetString(u.Amount, 10)
		if !ok {
			return fmt.Errorf("settler: record %d: amount %q of %s", rec.Epoch, u.Amount, u.User)
		}
		if amount.Sign() == 0 {
			continue
		}
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			holder, err := tx.Get(ctx, KeySettleLock).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			if holder != tok {
				return ErrNotLeader
			}
			done, err := tx.HExists(ctx, KeyCredits(u.User), field).Result()
			if err != nil || done {
				return err
			}
			bal, err := readBalance(ctx, tx, u.User)
			if err != nil {
				return err
			}
			bal.Add(bal, amount)
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, KeyBalance(u.User), bal.String(), 0)
				p.HSet(ctx, KeyCredits(u.User), field, u.Amount)
				p.SAdd(ctx, KeyPayoutCandidates, u.User)
				return nil
			})
			return err
		}, KeySettleLock, KeyCredits(u.User), KeyBalance(u.User))
		if err != nil {
			return fmt.Errorf("settler: credit %s for epoch %d: %w", u.User, rec.Epoch, err)
		}
	}
	if err := s.rdb.Set(ctx, KeyEpochApplied(rec.Epoch), 1, 0).Err(); err != nil {
		return fmt.Errorf("settler: mark %d applied: %w", rec.Epoch, err)
	}
	s.expireEpoch(ctx, rec)
	return nil
}

// expireEpoch lets settled per-user epoch data age out after retention; the
// record itself is kept.
func (s *Settler) expireEpoch(ctx context.Context, rec *Record) {
	ttl := s.cfg.Epoch.Retention
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Expire(ctx, KeyEpochUsers(rec.Epoch), ttl)
		for _, u := range rec.Users {
			p.Expire(ctx, KeyUserEpoch(u.User, rec.Epoch), ttl)
		}
		return nil
	})
	if err != nil {
		s.log.Warn("settler: set retention", zap.Int64("epoch", rec.Epoch), zap.Error(err))
	}
}

func readBalance(ctx context.Context, c redis.Cmdable, user string) (*big.Int, error) {
	v, err := c.Get(ctx, KeyBalance(user)).Result()
	if errors.Is(err, redis.Nil) {
		return new(big.Int), nil
	}
	if err != nil {
		return nil, err
	}
	b, ok := new(big.Int).SetString(v, 10)
	if !ok {
		return nil, fmt.Errorf("balance of %s: stored %q is not an integer", user, v)
	}
	return b, nil
}
