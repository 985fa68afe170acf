package rewards

import (
	"cmp"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

//go:embed lua/flush.lua
var flushLua string

var flushScript = redis.NewScript(flushLua)

// Keys of local session mode (not in a user's slot: one per deployment).
const (
	// KeyLocalLease names the tracker instance accounting in local mode:
	// "<instance>:<generation>".
	KeyLocalLease = "sp:{acct}:local"
	// KeyLocalLeaseGen counts lease acquisitions: a holder whose lease
	// lapsed takes it back only if the generation is still its own.
	KeyLocalLeaseGen = "sp:{acct}:local:gen" // in the lease's slot
	// KeyLocalFlushed is "<instance> <seq> <unix s>" of the last flush
	// whose writes began: every second credited by that instance up to
	// then may be in Redis.
	KeyLocalFlushed = "sp:acct:flushed"
	// KeyLocalSnapshot is the hash describing the last session snapshot;
	// its parts are KeyLocalSnapshot:<gen>:<i>.
	KeyLocalSnapshot = "sp:acct:snap"
)

// ErrLeaseHeld means another tracker instance accounts in local mode on
// this Redis: two would each credit the same user's seeding.
var ErrLeaseHeld = errors.New("rewards: another tracker instance accounts in local session mode on this Redis")

// ErrLeaseLost means this instance's lease lapsed and another instance
// took it since: this instance's sessions and unwritten credit are stale
// (the other may have restored and credited them) and must not be written.
// The flusher stops; restart the tracker.
var ErrLeaseLost = errors.New("rewards: lost the local accounting lease to another instance; its sessions are stale and are not written")

// tokenTTL is how long a flush token outlives its last call, and a pending
// flush older than half of it is dropped (a retry after the token expired
// could apply twice).
const tokenTTL = 24 * time.Hour

// LocalFlusher writes a LocalAccountant's aggregates to Redis every flush
// (flush.lua, one call per user, applied at most once), holds the
// single-instance lease, and saves the sessions to Redis on stop (and
// periodically) so the next start goes on where this one left off.
type LocalFlusher struct {
	rdb      redis.UniversalClient
	acct     *LocalAccountant
	epoch    EpochConfig
	log      *zap.Logger
	now      func() time.Time
	instance string
	lease    string // "<instance>:<generation>" once Start took the lease
	gen      string
	ordered  bool
	epochTTL int64
	leaseTTL time.Duration
	interval time.Duration
	snapshot time.Duration

	seq       int64               // the last sequence number given to a call
	base      int64               // the first sequence number of calls
	pending   map[string]*userAgg // taken, not yet applied
	calls     []flushCall         // the calls that apply pending, in seq order
	pendingAt int64               // when pending was taken
	group     int                 // users per call
	sweepAt   int
	scratch   flushScratch

	flushes    prometheus.Counter
	failures   prometheus.Counter
	users      prometheus.Counter
	carried    prometheus.Counter
	live       prometheus.Gauge
	latency    prometheus.Histogram
	snapTime   prometheus.Histogram
	snapErrors prometheus.Counter
	dropped    prometheus.Counter
}

// LocalFlusherConfig sets the cadences of a LocalFlusher.
type LocalFlusherConfig struct {
	FlushInterval    time.Duration // how often aggregates go to Redis
	SnapshotInterval time.Duration // 0: sessions are saved on stop only
}

// NewLocalFlusher prepares the flusher; Start must succeed before the
// tracker serves.
func NewLocalFlusher(rdb redis.UniversalClient, acct *LocalAccountant, cfg Config, fc LocalFlusherConfig, reg prometheus.Registerer, log *zap.Logger) (*LocalFlusher, error) {
	if rdb == nil || acct == nil {
		return nil, errors.New("rewards: NewLocalFlusher: nil redis client or accountant")
	}
	if fc.FlushInterval <= 0 {
		return nil, errors.New("rewards: NewLocalFlusher: flush interval must be > 0")
	}
	if log == nil {
		log = zap.NewNop()
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	f := &LocalFlusher{
		rdb:      rdb,
		acct:     acct,
		epoch:    cfg.Epoch,
		log:      log,
		now:      time.Now,
		instance: hex.EncodeToString(id[:]),
		epochTTL: int64(cfg.Epoch.Retention/time.Second) + 2*int64(cfg.Epoch.Length/time.Second),
		leaseTTL: max(10*time.Second, 5*fc.FlushInterval),
		interval: fc.FlushInterval,
		snapshot: fc.SnapshotInterval,
		flushes:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "local_flushes_total", Help: "Flushes of in-memory accounting aggregates that landed in Redis."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "local_flush_failures_total", Help: "Flush attempts that failed; the same flush is retried (at most once applied) before any newer one."}),
		users:    prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "local_user_writes_total", Help: "Per-user aggregate writes (flush.lua calls) applied."}),
		carried:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "local_carried_seconds_total", Help: "Seed seconds whose epoch was sealed before their flush landed, carried into the oldest open epoch."}),
		live:     prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "local_sessions", Help: "Client sessions held in memory (local session mode)."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "local_flush_duration_seconds", Help: "Time to write one flush of aggregates.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		snapTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "local_snapshot_duration_seconds", Help: "Time to save the sessions to Redis.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		snapErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "local_snapshot_failures_total", Help: "Session snapshots that failed."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "seedpay", Subsystem: "accounting", Name: "local_dropped_users_total",
			Help: "Users whose pending credit was dropped after their flush failed for 12 h (a later retry could apply twice)."}),
	}
	_, f.ordered = rdb.(*redis.Client)
	f.group = 1 // Cluster: one user (one slot) per call
	if f.ordered {
		// One Redis: many users per call. A call's run blocks Redis; 128
		// users are about 1 ms of it.
		f.group = 128
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{f.flushes, f.failures, f.users, f.carried, f.live, f.latency, f.snapTime, f.snapErrors, f.dropped} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

// Instance is this process's random id (in the lease and flush tokens).
func (f *LocalFlusher) Instance() string { return f.instance }

// acquireScript takes a free lease under a new generation; it answers
// {1, value} or {0, holder, remaining ms}.
var acquireScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false then
  local val = ARGV[1] .. ':' .. redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], val, 'PX', ARGV[2])
  return {1, val}
end
return {0, v, redis.call('PTTL', KEYS[1])}`)

// renewScript extends this instance's lease; a lapsed one is taken back
// only if nobody acquired it since (the generation is unchanged).
var renewScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if v == false and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

func (f *LocalFlusher) renew(ctx context.Context) error {
	ok, err := renewScript.Run(ctx, f.rdb, []string{KeyLocalLease, KeyLocalLeaseGen}, f.lease, f.leaseTTL.Milliseconds(), f.gen).Int()
	if err != nil {
		return fmt.Errorf("rewards: local accounting lease: %w", err)
	}
	if ok != 1 {
		return ErrLeaseLost
	}
	return nil
}

// Start takes the lease (waiting for a stopped or crashed holder's to
// expire, up to 6 minutes) and restores the sessions saved by the previous
// instance.
func (f *LocalFlusher) Start(ctx context.Context) error {
	deadline := f.now().Add(f.leaseTTL + time.Second)
	for first := true; ; first = false {
		r, err := acquireScript.Run(ctx, f.rdb, []string{KeyLocalLease, KeyLocalLeaseGen}, f.instance, f.leaseTTL.Milliseconds()).Slice()
		if err != nil {
			return fmt.Errorf("rewards: local accounting lease: %w", err)
		}
		if len(r) >= 2 && r[0] == int64(1) {
			f.lease, _ = r[1].(string)
			_, f.gen, _ = strings.Cut(f.lease, ":")
			break
		}
		holder, left := "", int64(0)
		if len(r) == 3 {
			holder, _ = r[1].(string)
			left, _ = r[2].(int64)
		}
		// The holder's own TTL may be longer than ours (another
		// flush_interval); a live holder renewing it is not waited for.
		if wait := f.now().Add(time.Duration(left)*time.Millisecond + time.Second); first && wait.After(deadline) {
			deadline = wait
			if limit := f.now().Add(6 * time.Minute); deadline.After(limit) {
				deadline = limit
			}
		}
		if !f.now().Before(deadline) {
			return fmt.Errorf("%w (lease %s held by %s). Several tracker instances need rewards.sessions: redis", ErrLeaseHeld, KeyLocalLease, holder)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return f.restore(ctx)
}

// Run flushes every interval, sweeps idle sessions and saves snapshots
// until ctx ends; then it flushes, saves the sessions and releases the
// lease (within 30 s).
func (f *LocalFlusher) Run(ctx context.Context) error {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	lastSnap := f.now()
	// Every shard is swept once per minute (at least one per tick).
	perTick := max(1, f.acct.Shards()*int(f.interval/time.Millisecond)/60000)
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return f.Stop(sctx)
		case <-t.C:
			if err := f.Flush(ctx); errors.Is(err, ErrLeaseLost) {
				f.log.Error("local accounting stopped: the tracker must restart", zap.Error(err))
				return err
			} else if err != nil && ctx.Err() == nil {
				f.log.Warn("accounting flush failed; it is retried before newer credit is written", zap.Error(err))
			}
			f.sweep(perTick)
			if f.snapshot > 0 && f.now().Sub(lastSnap) >= f.snapshot && f.pending == nil {
				lastSnap = f.now()
				if err := f.Snapshot(ctx); err != nil && ctx.Err() == nil {
					f.log.Warn("session snapshot failed; the previous one stays", zap.Error(err))
				}
			}
		}
	}
}

func (f *LocalFlusher) sweep(n int) {
	live := 0
	shards := f.acct.Shards()
	for i := 0; i < n; i++ {
		f.acct.Sweep(f.now().Unix(), f.sweepAt, 1)
		f.sweepAt = (f.sweepAt + 1) % shards
	}
	for i := range f.acct.shards {
		sh := &f.acct.shards[i]
		sh.mu.Lock()
		live += sh.live
		sh.mu.Unlock()
	}
	f.live.Set(float64(live))
}

// Stop writes what is left, saves the sessions for the next start and
// releases the lease. Announces applied after Stop began are not saved.
func (f *LocalFlusher) Stop(ctx context.Context) error {
	var errs []error
	if err := f.Snapshot(ctx); err != nil { // flushes first, then saves and flushes the rest
		errs = append(errs, err)
	}
	if err := releaseScript.Run(ctx, f.rdb, []string{KeyLocalLease}, f.lease).Err(); err != nil {
		errs = append(errs, fmt.Errorf("rewards: release the local accounting lease: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		f.log.Error("accounting stop incomplete: credit since the last flush may be lost", zap.Error(err))
		return err
	}
	f.log.Info("accounting stopped: aggregates written and sessions saved")
	return nil
}

// flushCall is one flush.lua call: users in seq order, frozen when the
// aggregates are taken so a retry resends exactly the same call.
type flushCall struct {
	seq   int64
	users []string
}

// Flush writes the pending calls if some failed before, else everything
// accounted since the last flush. Failed calls stay pending and are
// retried, with the same sequence numbers, before anything newer.
func (f *LocalFlusher) Flush(ctx context.Context) error {
	if f.pending != nil && f.now().Unix()-f.pendingAt > int64(tokenTTL/time.Second)/2 {
		// Its tokens may expire before a retry lands: never risk a second
		// application; the credit is lost (and logged).
		f.dropped.Add(float64(len(f.pending)))
		f.log.Error("accounting flush dropped after failing for too long; its credit is lost",
			zap.Int("users", len(f.pending)), zap.Int64("taken_at", f.pendingAt))
		f.pending, f.calls = nil, nil
	}
	if f.pending == nil {
		m := make(map[string]*userAgg)
		f.acct.take(m)
		if len(m) == 0 {
			return f.renew(ctx)
		}
		f.freeze(m)
	}
	start := f.now()
	err := f.write(ctx)
	f.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		f.failures.Inc()
		return err
	}
	f.flushes.Inc()
	f.pending, f.calls = nil, nil
	return nil
}

// freeze makes m the pending aggregates and cuts them into calls.
func (f *LocalFlusher) freeze(m map[string]*userAgg) {
	users := make([]string, 0, len(m))
	for u := range m {
		users = append(users, u)
	}
	slices.Sort(users)
	f.calls = f.calls[:0]
	f.base = f.seq + 1
	for from := 0; from < len(users); from += f.group {
		f.seq++
		f.calls = append(f.calls, flushCall{seq: f.seq, users: users[from:min(from+f.group, len(users))]})
	}
	f.pending, f.pendingAt = m, f.now().Unix()
}

func (f *LocalFlusher) write(ctx context.Context) error {
	if err := f.renew(ctx); err != nil {
		return err
	}
	if len(f.calls) == 0 {
		return nil
	}
	minOpen := f.epoch.MinOpenEpoch(f.now())
	for _, ua := range f.pending {
		if c := ua.carry(minOpen); c > 0 {
			f.carried.Add(float64(c))
		}
	}
	last := f.calls[len(f.calls)-1].seq
	pipe := f.rdb.Pipeline()
	// Before any credit of these calls lands: restore reads it to know the
	// last second this instance may have credited.
	pipe.Set(ctx, KeyLocalFlushed, f.instance+" "+strconv.FormatInt(last, 10)+" "+strconv.FormatInt(f.pendingAt, 10), 0)
	epochUsers := map[int64][]any{}
	for _, c := range f.calls {
		for _, u := range c.users {
			for _, ea := range f.pending[u].epochs {
				epochUsers[ea.e] = append(epochUsers[ea.e], u)
			}
		}
	}
	for e, us := range epochUsers {
		pipe.SAdd(ctx, KeyEpochUsers(e), us...)
		pipe.Expire(ctx, KeyEpochUsers(e), time.Duration(f.epochTTL)*time.Second)
	}
	if !f.ordered {
		// Cross-node pipelines run in parallel: users and mark land first.
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("rewards: local flush %d: mark and epoch users: %w", last, err)
		}
		pipe = f.rdb.Pipeline()
	}
	sc := &f.scratch
	defer sc.release()
	cmds := make([]*redis.Cmd, len(f.calls))
	keys, args := sc.calls(len(f.calls))
	for i, c := range f.calls {
		keys[i], args[i] = f.callArgs(keys[i], args[i], c)
		cmds[i] = flushScript.EvalSha(ctx, pipe, keys[i], args[i]...)
	}
	_, _ = pipe.Exec(ctx)
	if slices.ContainsFunc(cmds, func(c *redis.Cmd) bool { return redis.HasErrorPrefix(c.Err(), "NOSCRIPT") }) {
		// Resend every call in order (the chain needs the order; the
		// tokens make the ones that ran no-ops).
		if err := flushScript.Load(ctx, f.rdb).Err(); err != nil {
			return fmt.Errorf("rewards: local flush %d: load flush.lua: %w", last, err)
		}
		pipe = f.rdb.Pipeline()
		for i := range f.calls {
			cmds[i] = flushScript.EvalSha(ctx, pipe, keys[i], args[i]...)
		}
		_, _ = pipe.Exec(ctx)
	}
	var firstErr error
	kept := f.calls[:0]
	for i, c := range f.calls {
		r, err := cmds[i].Int64()
		switch {
		case err == nil && r == -1:
			err = errors.New("a call before it did not land")
		case err == nil && r == -2:
			return ErrLeaseLost
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("call %d (%d users from %s): %w", c.seq, len(c.users), c.users[0], err)
			}
			kept = append(kept, c)
			continue
		}
		f.users.Add(float64(len(c.users)))
		for _, u := range c.users {
			delete(f.pending, u) // applied (or applied before): never resent
		}
	}
	f.calls = kept
	if len(kept) > 0 {
		// Every call below the first kept one landed: a chain token lost
		// meanwhile restarts from it, not from the flush's first call.
		f.base = kept[0].seq
	}
	if firstErr != nil {
		return fmt.Errorf("rewards: local flush up to %d: %d of %d calls not applied (retried before anything newer): %w", last, len(kept), len(cmds), firstErr)
	}
	return nil
}

// aggMaps recycles the shards' aggregate maps: take and Snapshot install a
// map an earlier flush emptied (cleared outside the lock), so a shard's
// lock is held for a swap, never for an allocation.
var aggMaps = sync.Pool{New: func() any { return make(map[string]*userAgg) }}

// flushScratch holds what building flush.lua's arguments needs, kept from
// one flush to the next: a flush of many users then allocates its keys,
// addresses and numbers, not the slices and maps around them (garbage that
// starts GC cycles while announces run).
type flushScratch struct {
	keys   [][]string // per call
	args   [][]any
	fields []flushField
	sets   []ipSet
	setOf  map[ipSetKey]int // index in sets
	names  map[string]any   // "pts:<pool>", boxed once
}

type flushField struct {
	name any // a string
	key  string
	v    int64
}

type ipSetKey struct {
	ih [20]byte
	e  int64
}

type ipSet struct {
	ipSetKey
	ips []string
}

// calls returns n emptied key and argument slices.
func (sc *flushScratch) calls(n int) ([][]string, [][]any) {
	for len(sc.keys) < n {
		sc.keys = append(sc.keys, nil)
		sc.args = append(sc.args, nil)
	}
	for i := range n {
		sc.keys[i], sc.args[i] = sc.keys[i][:0], sc.args[i][:0]
	}
	return sc.keys[:n], sc.args[:n]
}

// release drops the references the last flush left in the buffers.
func (sc *flushScratch) release() {
	for i := range sc.keys {
		clear(sc.keys[i][:cap(sc.keys[i])])
		clear(sc.args[i][:cap(sc.args[i])])
	}
	for _, set := range sc.sets[:cap(sc.sets)] {
		clear(set.ips[:cap(set.ips)])
	}
	clear(sc.fields[:cap(sc.fields)])
}

// ptsName is "pts:"+pool as an interface value, made once per pool.
func (sc *flushScratch) ptsName(pool string) any {
	if n, ok := sc.names[pool]; ok {
		return n
	}
	if sc.names == nil || len(sc.names) >= 4096 {
		sc.names = make(map[string]any)
	}
	n := any("pts:" + pool)
	sc.names[pool] = n
	return n
}

// callArgs builds flush.lua's keys and arguments for one call, appending
// to keys and args (emptied).
func (f *LocalFlusher) callArgs(keys []string, args []any, c flushCall) ([]string, []any) {
	// One Redis: the chain token, and the lease checked in the same script
	// as the writes. A Cluster: a token in the user's slot, the lease
	// checked by renew just before.
	keys = append(keys, KeyFlushToken("", f.instance), KeyLocalLease)
	args = append(args, c.seq, "chain", int64(tokenTTL/time.Second), f.epochTTL, f.base, f.lease, len(c.users))
	if !f.ordered {
		keys = append(keys[:0], KeyFlushToken(c.users[0], f.instance))
		args[1], args[5] = "max", ""
	}
	for _, u := range c.users {
		keys, args = f.userArgs(keys, args, u, f.pending[u])
	}
	return keys, args
}

// userArgs appends one user's segment of a flush.lua call.
func (f *LocalFlusher) userArgs(keys []string, args []any, user string, ua *userAgg) ([]string, []any) {
	sc := &f.scratch
	args = append(args, len(ua.epochs))
	slices.SortFunc(ua.epochs, func(x, y epochAgg) int { return cmp.Compare(x.e, y.e) })
	for _, ea := range ua.epochs {
		keys = append(keys, KeyUserEpoch(user, ea.e))
		fields := sc.fields[:0]
		if ea.seedS > 0 {
			fields = append(fields, flushField{"seed_s", "seed_s", ea.seedS})
		}
		if ea.up > 0 {
			fields = append(fields, flushField{"up", "up", ea.up})
		}
		if ea.down > 0 {
			fields = append(fields, flushField{"down", "down", ea.down})
		}
		for _, p := range ea.pts {
			if p.pts <= 0 {
				continue
			}
		pools:
			for _, pool := range p.pools {
				if pool == "" || strings.ContainsRune(pool, ',') {
					continue // PoolIndex never lists one; account.lua skips empties too
				}
				for i := range fields {
					if fd := &fields[i]; len(fd.key) == 4+len(pool) && fd.key[:4] == "pts:" && fd.key[4:] == pool {
						fd.v = satAdd(fd.v, p.pts)
						continue pools
					}
				}
				n := sc.ptsName(pool)
				fields = append(fields, flushField{n, n.(string), p.pts})
			}
		}
		slices.SortFunc(fields, func(x, y flushField) int { return strings.Compare(x.key, y.key) })
		args = append(args, len(fields))
		for _, fd := range fields {
			args = append(args, fd.name, fd.v)
		}
		sc.fields = fields
	}
	if sc.setOf == nil {
		sc.setOf = make(map[ipSetKey]int)
	}
	sets := sc.sets[:0]
	for _, ip := range ua.ips {
		k := ipSetKey{ip.ih, ip.e}
		i, ok := sc.setOf[k]
		if !ok {
			i = len(sets)
			sc.setOf[k] = i
			if len(sets) < cap(sets) {
				sets = sets[:i+1]
				sets[i].ipSetKey, sets[i].ips = k, sets[i].ips[:0]
			} else {
				sets = append(sets, ipSet{ipSetKey: k})
			}
		}
		txt := ipText(ip.ip)
		if !slices.Contains(sets[i].ips, txt) {
			sets[i].ips = append(sets[i].ips, txt)
		}
	}
	args = append(args, len(sets))
	for i := range sets {
		s := &sets[i]
		delete(sc.setOf, s.ipSetKey)
		keys = append(keys, KeyTorrentIPs(user, hex.EncodeToString(s.ih[:]), s.e))
		args = append(args, len(s.ips))
		for _, ip := range s.ips {
			args = append(args, ip)
		}
	}
	sc.sets = sets
	return keys, args
}
