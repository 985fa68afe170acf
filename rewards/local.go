package rewards

import (
	"encoding/binary"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// LocalAccountant accounts announces in the tracker's memory: the session
// state account.lua keeps in Redis (cumulative counters, last seen, the
// session cap, credited-until marks) lives here, next to the peer store,
// and Redis receives only what changed in aggregate, per user and epoch,
// once per flush (LocalFlusher). Redis work then scales with users and
// flushes, not with announces.
//
// Apply gives exactly account.lua's outcome for the same events in the
// same order (TestLocalMatchesScript replays random sessions through both).
// The price: one tracker instance must see all of a user's announces
// (LocalFlusher holds a lease in Redis so a second instance refuses to
// start), and a crash loses the credit of the sessions' current gaps
// (under-credit, never over-credit: see Restore). A graceful stop loses
// nothing: the sessions go to Redis and come back on start.
type LocalAccountant struct {
	epoch                        EpochConfig
	scoring                      ScoringConfig
	epochLen, maxGap, sessionTTL int64
	maxRate, maxWeight           int64
	maxSessions                  int
	shards                       []localShard
	errors                       atomic.Uint64 // events refused (CodeError)
}

// localShard holds the (user, torrent) records and the aggregates of the
// announces that hashed to it since the last flush.
type localShard struct {
	mu   sync.Mutex
	recs map[utKey]*utRecord
	agg  map[string]*userAgg
	live int // sessions in recs
	// outcomes counts the events applied here by Code, under mu: a
	// counter shared by every core cost more than the shard's own line.
	outcomes [CodeLate + 1]uint64
	_        [48]byte // 128 bytes: shards on separate cache lines
}

type utKey struct {
	user string
	ih   [20]byte
}

// utRecord is one user's state on one torrent: its sessions (the session
// set of account.lua, at most max_peers_per_torrent of them) and the
// credited-until mark.
type utRecord struct {
	mark     int64 // credited up to this Unix second (0: never)
	sessions []localSession
	// Addresses already recorded for ipEpoch: each is written to Redis once.
	ipEpoch int64
	ips     [][16]byte
	// The first session and address live in the record itself: a user
	// mostly runs one client per torrent, and one allocation then holds
	// the whole record (an announce touches one memory region instead of
	// three, at the same heap per session). More spill to the heap as
	// append grows the slices.
	inlSessions [1]localSession
	inlIPs      [1][16]byte
}

// newUTRecord returns an empty record whose slices start in its own arrays.
func newUTRecord() *utRecord {
	r := &utRecord{}
	r.sessions, r.ips = r.inlSessions[:0], r.inlIPs[:0]
	return r
}

type localSession struct {
	pid      [20]byte
	up, down int64
	seen     int64 // the score of the session set, and the hash's "seen"
	touched  int64 // last write: the session expires session_ttl later
	seeding  bool
	// member: the session holds a place under the cap. A session pruned
	// for silence keeps its counters (as account.lua keeps its hash) until
	// it expires or comes back.
	member bool
}

// userAgg is what one user earned since the last flush.
type userAgg struct {
	epochs []epochAgg
	ips    []ipAdd
}

type epochAgg struct {
	e               int64
	seedS, up, down int64
	pts             []poolPts
}

// poolPts is points earned under one pool list (the slice PoolIndex
// returns; lists are told apart by identity, never copied).
type poolPts struct {
	pools []string
	pts   int64
}

type ipAdd struct {
	ih [20]byte
	e  int64
	ip [16]byte
}

// maxRecordIPs bounds the addresses recorded for one user and torrent per
// epoch (account.lua records every one); the receipt checks need a few,
// and a bound keeps every flush.lua call small.
const maxRecordIPs = 16

// NewLocalAccountant validates cfg and returns an empty accountant.
func NewLocalAccountant(cfg Config) (*LocalAccountant, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &LocalAccountant{
		epoch:       cfg.Epoch,
		scoring:     cfg.Scoring,
		epochLen:    int64(cfg.Epoch.Length / time.Second),
		maxGap:      int64(cfg.Scoring.MaxGap / time.Second),
		maxRate:     int64(min(cfg.Scoring.MaxRate, maxExact)),
		maxSessions: cfg.Scoring.MaxPeersPerTorrent,
		shards:      make([]localShard, 256),
	}
	a.sessionTTL = cfg.sessionTTL()
	a.maxWeight = cfg.maxWeight()
	for i := range a.shards {
		a.shards[i].recs = make(map[utKey]*utRecord)
		a.shards[i].agg = make(map[string]*userAgg)
	}
	return a, nil
}

// SessionTTL is how long an idle session lives.
func (a *LocalAccountant) SessionTTL() time.Duration {
	return time.Duration(a.sessionTTL) * time.Second
}

func (a *LocalAccountant) shardOf(user string, ih *[20]byte) *localShard {
	// FNV-1a over the user id, mixed with 8 bytes of the info hash (random).
	h := uint64(14695981039346656037)
	for i := 0; i < len(user); i++ {
		h = (h ^ uint64(user[i])) * 1099511628211
	}
	h ^= binary.LittleEndian.Uint64(ih[:8])
	h *= 0x9e3779b97f4a7c15
	return &a.shards[h>>56%uint64(len(a.shards))]
}

// Apply accounts one event in memory, as account.lua would with min_open
// minOpen; pools names the pools covering the torrent (nil: the global
// pool only) and must stay unmodified (PoolIndex.Lookup's slices do). It
// never blocks on I/O. An event Apply refuses (empty user, time out of
// range) changes nothing and returns CodeError.
func (a *LocalAccountant) Apply(ev *Event, minOpen int64, pools []string) Outcome {
	if pools == nil {
		pools = globalOnlyPools
	}
	return a.applyLocked(ev, minOpen, pools, nil)
}

// ApplyLookup is Apply with the pool list asked of lookup(ev.InfoHash)
// only when the event earns points (new, capped, late and leeching
// announces do not), so most announces skip the lookup. lookup runs under
// a shard lock: it must not block or call a (PoolIndex.Lookup is an
// atomic load and a map read), and its lists must stay unmodified, as
// Apply's. A nil lookup or list means the global pool.
func (a *LocalAccountant) ApplyLookup(ev *Event, minOpen int64, lookup func(infoHash [20]byte) []string) Outcome {
	return a.applyLocked(ev, minOpen, nil, lookup)
}

func (a *LocalAccountant) applyLocked(ev *Event, minOpen int64, pools []string, lookup func([20]byte) []string) Outcome {
	if ev.User == "" || ev.Time <= 0 || ev.Time > maxExact/2 {
		a.errors.Add(1)
		return Outcome{}
	}
	minOpen = min(max(minOpen, -maxExact), maxExact)
	sh := a.shardOf(ev.User, &ev.InfoHash)
	sh.mu.Lock()
	o := a.apply(sh, ev, minOpen, pools, lookup)
	sh.outcomes[o.Code]++
	sh.mu.Unlock()
	return o
}

// Outcomes returns how many events Apply and ApplyLookup have seen, by
// Code, since the accountant was made.
func (a *LocalAccountant) Outcomes() (n [CodeLate + 1]uint64) {
	n[CodeError] = a.errors.Load()
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		for c, k := range sh.outcomes {
			n[c] += k
		}
		sh.mu.Unlock()
	}
	return n
}

// apply applies ev under sh.mu. The pool list is pools, or else lookup's
// answer, asked only when the event earns points.
func (a *LocalAccountant) apply(sh *localShard, ev *Event, minOpen int64, pools []string, lookup func([20]byte) []string) Outcome {
	now := ev.Time
	nowEpoch := a.epoch.EpochOf(now)
	first := a.epoch.EpochOf(now - a.maxGap)
	up := int64(min(ev.Uploaded, maxExact))
	down := int64(min(ev.Downloaded, maxExact))
	left := min(ev.Left, maxExact)
	size := ev.Size
	if size <= 0 || size > maxExact {
		size = maxExact
	}

	k := utKey{ev.User, ev.InfoHash}
	r := sh.recs[k]
	if r == nil {
		r = newUTRecord()
		sh.recs[k] = r
	}
	var ua *userAgg // the user's aggregate: looked up once, when first needed
	if ev.IP != ([16]byte{}) && nowEpoch >= minOpen && r.newIP(ev.IP, nowEpoch) {
		ua = userAggOf(sh, ev.User)
		ua.ips = append(ua.ips, ipAdd{ih: ev.InfoHash, e: nowEpoch, ip: ev.IP})
	}

	seedingNow := left == 0 && !ev.Stopped
	si := -1
	for i := range r.sessions {
		if r.sessions[i].pid == ev.PeerID {
			si = i
			break
		}
	}
	if si < 0 || !r.sessions[si].member {
		members := 0
		for i := range r.sessions {
			if r.sessions[i].member {
				members++
			}
		}
		if members >= a.maxSessions {
			// Sessions silent for longer than max_gap can never earn again
			// without a fresh start: they no longer hold a place.
			floor := now - a.maxGap
			for i := range r.sessions {
				if s := &r.sessions[i]; s.member && s.seen < floor {
					s.member = false
					members--
				}
			}
		}
		if members >= a.maxSessions {
			return Outcome{Code: CodeCapped}
		}
	}

	save := func(s *localSession, seeding bool) {
		s.up, s.down, s.seen, s.touched, s.seeding, s.member = up, down, now, now, seeding, true
	}
	if si < 0 || (now >= r.sessions[si].seen && (up < r.sessions[si].up || down < r.sessions[si].down)) {
		code := CodeNew
		if si >= 0 {
			code = CodeReset
		}
		switch {
		case ev.Stopped && si >= 0:
			a.remove(sh, r, si)
		case ev.Stopped:
		case si >= 0:
			save(&r.sessions[si], seedingNow)
		default:
			r.sessions = append(r.sessions, localSession{pid: ev.PeerID})
			sh.live++
			save(&r.sessions[len(r.sessions)-1], seedingNow)
		}
		return Outcome{Code: code}
	}
	s := &r.sessions[si]
	if now < s.seen {
		// Older than the session's state: no credit, the newer state stays.
		if ev.Stopped {
			a.remove(sh, r, si)
		} else {
			s.touched, s.member = max(s.touched, now), true
		}
		return Outcome{Code: CodeLate}
	}

	elapsed := now - s.seen
	rateCap := satMul(a.maxRate, elapsed)
	dUp := min(up-s.up, rateCap)
	dDown := min(down-s.down, rateCap, size)
	var credited, sealed int64
	if s.seeding && left == 0 && elapsed > 0 && elapsed <= a.maxGap {
		from := max(s.seen, r.mark)
		if now > from {
			weight := min(max(a.scoring.Weight(ev.Size, ev.Seeders), 0), a.maxWeight)
			if ua == nil {
				ua = userAggOf(sh, ev.User)
			}
			for e := first; e <= nowEpoch; e++ {
				lo := max(from, a.epoch.Start(e))
				hi := min(now, a.epoch.Start(e+1))
				if hi > lo {
					if e >= minOpen {
						pools = poolsFor(pools, lookup, weight, &ev.InfoHash)
						ua.credit(e, hi-lo, weight, pools)
						credited += hi - lo
					} else {
						sealed += hi - lo
					}
				}
			}
			// Seconds of sealed epochs go to the oldest open one.
			if sealed > 0 && minOpen >= first && minOpen <= nowEpoch {
				pools = poolsFor(pools, lookup, weight, &ev.InfoHash)
				ua.credit(minOpen, sealed, weight, pools)
				credited += sealed
			}
			r.mark = now
		}
	}
	if nowEpoch >= minOpen && (dUp > 0 || dDown > 0) {
		if ua == nil {
			ua = userAggOf(sh, ev.User)
		}
		ea := ua.epochOf(nowEpoch)
		ea.up = satAdd(ea.up, max(dUp, 0))
		ea.down = satAdd(ea.down, max(dDown, 0))
	}
	if ev.Stopped {
		a.remove(sh, r, si)
	} else {
		save(s, seedingNow)
	}
	return Outcome{Code: CodeAccounted, Seconds: credited, Up: dUp, Down: dDown, Sealed: sealed}
}

// poolsFor is the pool list for a credit of weight: pools if known, else
// lookup's answer (nil: the global pool). A credit of weight 0 earns no
// points and needs no list, so lookup is not asked for it.
func poolsFor(pools []string, lookup func([20]byte) []string, weight int64, ih *[20]byte) []string {
	if pools != nil || weight <= 0 {
		return pools
	}
	if lookup != nil {
		pools = lookup(*ih)
	}
	if pools == nil {
		pools = globalOnlyPools
	}
	return pools
}

func (a *LocalAccountant) remove(sh *localShard, r *utRecord, i int) {
	last := len(r.sessions) - 1
	r.sessions[i] = r.sessions[last]
	r.sessions[last] = localSession{}
	r.sessions = r.sessions[:last]
	sh.live--
}

// newIP notes address ip for epoch e in r and reports whether it is to be
// written (new for the epoch, and under the cap).
func (r *utRecord) newIP(ip [16]byte, e int64) bool {
	if r.ipEpoch != e {
		r.ipEpoch = e
		r.ips = r.ips[:0]
	}
	for _, have := range r.ips {
		if have == ip {
			return false
		}
	}
	if len(r.ips) >= maxRecordIPs {
		return false // more addresses for one torrent in one epoch are not recorded
	}
	r.ips = append(r.ips, ip)
	return true
}

func userAggOf(sh *localShard, user string) *userAgg {
	ua := sh.agg[user]
	if ua == nil {
		ua = &userAgg{}
		sh.agg[user] = ua
	}
	return ua
}

func (ua *userAgg) epochOf(e int64) *epochAgg {
	for i := range ua.epochs {
		if ua.epochs[i].e == e {
			return &ua.epochs[i]
		}
	}
	ua.epochs = append(ua.epochs, epochAgg{e: e})
	return &ua.epochs[len(ua.epochs)-1]
}

func (ua *userAgg) credit(e, secs, weight int64, pools []string) {
	ea := ua.epochOf(e)
	ea.seedS = satAdd(ea.seedS, secs)
	if weight <= 0 {
		return
	}
	pts := secs * weight // exact: secs <= min(epoch, max_gap), weight <= maxWeight
	ea.addPts(pools, pts)
}

func (ea *epochAgg) addPts(pools []string, pts int64) {
	for i := range ea.pts {
		p := &ea.pts[i]
		if len(p.pools) == len(pools) && unsafe.SliceData(p.pools) == unsafe.SliceData(pools) {
			p.pts = satAdd(p.pts, pts)
			return
		}
	}
	ea.pts = append(ea.pts, poolPts{pools: pools, pts: pts})
}

// merge adds o into ua (both of one user).
func (ua *userAgg) merge(o *userAgg) {
	for i := range o.epochs {
		src := &o.epochs[i]
		dst := ua.epochOf(src.e)
		dst.seedS = satAdd(dst.seedS, src.seedS)
		dst.up = satAdd(dst.up, src.up)
		dst.down = satAdd(dst.down, src.down)
		for _, p := range src.pts {
			dst.addPts(p.pools, p.pts)
		}
	}
	ua.ips = append(ua.ips, o.ips...)
}

// carry moves what ua holds for epochs below minOpen (sealed since it was
// earned) into minOpen, as account.lua carries sealed seconds; self-reported
// bytes of sealed epochs are statistics and are dropped. It reports the
// seed seconds carried.
func (ua *userAgg) carry(minOpen int64) (carried int64) {
	kept := ua.epochs[:0]
	var moved []epochAgg
	for _, ea := range ua.epochs {
		if ea.e >= minOpen {
			kept = append(kept, ea)
		} else {
			moved = append(moved, ea)
		}
	}
	ua.epochs = kept
	for _, ea := range moved {
		if ea.seedS == 0 && len(ea.pts) == 0 {
			continue
		}
		dst := ua.epochOf(minOpen)
		dst.seedS = satAdd(dst.seedS, ea.seedS)
		carried += ea.seedS
		for _, p := range ea.pts {
			dst.addPts(p.pools, p.pts)
		}
	}
	ips := ua.ips[:0]
	for _, ip := range ua.ips {
		if ip.e >= minOpen {
			ips = append(ips, ip)
		}
	}
	ua.ips = ips
	return carried
}

// take swaps out every shard's aggregates, merged per user, one shard at
// a time; the lock is held for the swap only.
func (a *LocalAccountant) take(into map[string]*userAgg) {
	for i := range a.shards {
		sh := &a.shards[i]
		spare := aggMaps.Get().(map[string]*userAgg)
		sh.mu.Lock()
		m := sh.swapAgg(spare)
		sh.mu.Unlock()
		mergeAggs(into, m, spare)
	}
}

// swapAgg takes the shard's aggregates, leaving spare (empty) in their
// place; sh.mu held. An empty map stays the shard's (Apply may write it
// once unlocked): nil.
func (sh *localShard) swapAgg(spare map[string]*userAgg) map[string]*userAgg {
	m := sh.agg
	if len(m) == 0 {
		return nil
	}
	sh.agg = spare
	return m
}

// mergeAggs adds every user's aggregate of from into into, then empties
// from for reuse; spare, the map offered to swapAgg, is kept for reuse if
// swapAgg did not take it (from is nil).
func mergeAggs(into, from, spare map[string]*userAgg) {
	if from == nil {
		aggMaps.Put(spare)
		return
	}
	for u, ua := range from {
		if have := into[u]; have != nil {
			have.merge(ua)
		} else {
			into[u] = ua
		}
	}
	clear(from)
	aggMaps.Put(from)
}

// Sweep drops sessions idle for longer than the session TTL (as their
// Redis keys would expire under account.lua) and records left with no
// session, in shards [from, from+n). A mark needs no keeping without a
// session: a new session starts after it. It returns the sessions left in
// those shards.
//
// It lets go of a shard's lock after every sweepChunk records it looks at,
// so an announce hashed to the shard waits for a chunk, not for the whole
// shard (thousands of records at a million sessions). A record Apply adds
// meanwhile may or may not be visited (it is fresh either way); a session
// Apply touches meanwhile is judged by its new time if not visited yet.
func (a *LocalAccountant) Sweep(now int64, from, n int) (live int) {
	for i := from; i < from+n && i < len(a.shards); i++ {
		sh := &a.shards[i]
		sh.mu.Lock()
		seen := 0
		for k, r := range sh.recs {
			kept := r.sessions[:0]
			for _, s := range r.sessions {
				if now-s.touched < a.sessionTTL {
					kept = append(kept, s)
				}
			}
			clear(r.sessions[len(kept):])
			sh.live -= len(r.sessions) - len(kept)
			r.sessions = kept
			if len(r.sessions) == 0 {
				delete(sh.recs, k)
			}
			// Each record is read, judged and dropped in one hold, and the
			// next iteration step runs under the lock again: Apply's writes
			// in between are ordered before it, and a range may see entries
			// added and removed while it runs.
			if seen++; seen%sweepChunk == 0 {
				sh.mu.Unlock()
				sweepYield(sh)
				sh.mu.Lock()
			}
		}
		live += sh.live
		sh.mu.Unlock()
	}
	return live
}

// sweepChunk is how many records Sweep looks at per hold of a shard's lock
// (tens of µs).
const sweepChunk = 256

// sweepYield runs between Sweep's chunks, the shard unlocked: an announce
// woken by the unlock takes the lock before Sweep takes it back (a
// sync.Mutex lets the unlocker barge in otherwise). Tests replace it.
var sweepYield = func(*localShard) { runtime.Gosched() }

// Shards is the number of shards Sweep walks.
func (a *LocalAccountant) Shards() int { return len(a.shards) }

// satAdd adds non-negative amounts, stopping at MaxInt64 (unreachable in
// practice: one user's seconds x weight of one flush).
func satAdd(x, y int64) int64 {
	if y > math.MaxInt64-x {
		return math.MaxInt64
	}
	return x + y
}

func satMul(x, y int64) int64 {
	if x <= 0 || y <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(x), uint64(y))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}
